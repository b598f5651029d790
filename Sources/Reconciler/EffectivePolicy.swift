import Deployment
import XMLSource
import XPRESS

/// A resource's policy after inheritance (Default <- resourceType <- resource), each value with
/// where it came from (`recon policy show`).
public struct EffectivePolicy: Sendable {
    /// Where a value came from: a policy file position, or the built-in default.
    public enum Source: Sendable, CustomStringConvertible {
        case builtIn
        case policy(name: String, level: PolicyLevel, location: SourcePosition)

        public var description: String {
            switch self {
            case .builtIn: "built-in default"
            case .policy(let name, let level, let location): "policy '\(name)' (\(level)) at \(location)"
            }
        }
    }

    public struct Setting<Value: Sendable>: Sendable {
        public let value: Value
        public let source: Source
    }

    public var server: Setting<String?>
    public var buckets: Setting<Int>
    public var modes: Setting<ReconcileModes>
    public var fullSchedule: Setting<ScheduleDefinition?>
    public var incrementalSchedule: Setting<ScheduleDefinition?>
    public var correlationRule: Setting<String>
    public var confirmationRule: Setting<String?>
    public var proxyAdministrator: Setting<String?>
    public var preReconciliationWorkflow: Setting<String?>
    public var perAccountWorkflow: Setting<String?>
    public var postReconciliationWorkflow: Setting<String?>
    public var responses: [Situation: Setting<Response>]
    public var attributeReconciliation: Setting<Bool>
    public var reconciledAttributes: Setting<[String]>
    public var explainSituation: Setting<Bool>
    public var errorLimit: Setting<Int>
    public var maxNativelyRemovedPercent: Setting<Int>

    /// The effective policy of `resource` in `deployment`.
    public init(resource: ResourceDefinition, deployment: Deployment) {
        let chain = [deployment.policies[.global], deployment.policies[.resourceType(resource.type.rawValue)],
                     deployment.policies[.resource(resource.name)]].compactMap { $0 }
        func pick<T>(_ builtIn: T, _ field: (ReconcilePolicyDefinition) -> Sourced<T>?) -> Setting<T> {
            var setting = Setting(value: builtIn, source: .builtIn)
            for policy in chain {
                if let sourced = field(policy) {
                    setting = Setting(value: sourced.value, source: .policy(name: policy.name, level: policy.level, location: sourced.location))
                }
            }
            return setting
        }
        /// A rule name where "" and CONFIRMATION_RULE_NONE mean none.
        func rule(_ field: (ReconcilePolicyDefinition) -> Sourced<String>?) -> Setting<String?> {
            let setting = pick(String?.none) { policy in field(policy).map { Sourced(value: Optional($0.value), location: $0.location) } }
            let name = setting.value.flatMap { $0.isEmpty || $0 == "CONFIRMATION_RULE_NONE" ? nil : $0 }
            return Setting(value: name, source: setting.source)
        }
        server = rule { $0.server }
        buckets = pick(1) { $0.buckets }
        modes = pick(.none) { $0.modes }
        fullSchedule = pick(nil) { $0.fullSchedule.map { Sourced(value: Optional($0.value), location: $0.location) } }
        incrementalSchedule = pick(nil) { $0.incrementalSchedule.map { Sourced(value: Optional($0.value), location: $0.location) } }
        let correlation = rule { $0.correlationRule }
        correlationRule = Setting(value: correlation.value ?? "USER_NAME_MATCHES_ACCOUNT_ID", source: correlation.source)
        confirmationRule = rule { $0.confirmationRule }
        proxyAdministrator = rule { $0.proxyAdministrator }
        preReconciliationWorkflow = rule { $0.preReconciliationWorkflow }
        perAccountWorkflow = rule { $0.perAccountWorkflow }
        postReconciliationWorkflow = rule { $0.postReconciliationWorkflow }
        var responses: [Situation: Setting<Response>] = [:]
        for situation in Situation.allCases {
            responses[situation] = pick(.doNothing) { $0.responses[situation] }
        }
        self.responses = responses
        attributeReconciliation = pick(false) { $0.attributeReconciliation }
        reconciledAttributes = pick([]) { $0.reconciledAttributes }
        explainSituation = pick(false) { $0.explainSituation }
        errorLimit = pick(0) { $0.errorLimit }
        maxNativelyRemovedPercent = pick(0) { $0.maxNativelyRemovedPercent }
    }

    public func response(_ situation: Situation) -> Response { responses[situation]?.value ?? .doNothing }

    /// Every setting as (name, value, source), for display.
    public var lines: [(String, String, Source)] {
        func show(_ value: String?) -> String { value ?? "(none)" }
        var result: [(String, String, Source)] = [
            ("server", show(server.value), server.source),
            ("buckets", String(buckets.value), buckets.source),
            ("modes", modes.value.rawValue, modes.source),
            ("fullSchedule", fullSchedule.value.map(describe) ?? "(none)", fullSchedule.source),
            ("incrementalSchedule", incrementalSchedule.value.map(describe) ?? "(none)", incrementalSchedule.source),
            ("correlationRule", correlationRule.value, correlationRule.source),
            ("confirmationRule", show(confirmationRule.value), confirmationRule.source),
            ("proxyAdministrator", show(proxyAdministrator.value), proxyAdministrator.source),
            ("preReconciliation", show(preReconciliationWorkflow.value), preReconciliationWorkflow.source),
            ("perAccount", show(perAccountWorkflow.value), perAccountWorkflow.source),
            ("postReconciliation", show(postReconciliationWorkflow.value), postReconciliationWorkflow.source),
        ]
        for situation in Situation.allCases {
            let setting = responses[situation]!
            result.append(("response \(situation.rawValue)", setting.value.rawValue, setting.source))
        }
        result += [
            ("attributeReconciliation", String(attributeReconciliation.value), attributeReconciliation.source),
            ("reconciledAttributes", reconciledAttributes.value.joined(separator: ", "), reconciledAttributes.source),
            ("explainSituation", String(explainSituation.value), explainSituation.source),
            ("errorLimit", String(errorLimit.value), errorLimit.source),
            ("maxNativelyRemovedPercent", String(maxNativelyRemovedPercent.value), maxNativelyRemovedPercent.source),
        ]
        return result
    }

    private func describe(_ schedule: ScheduleDefinition) -> String {
        "every \(schedule.every) \(schedule.unit.rawValue) from \(CivilTime.isoString(millis: schedule.startMillis)) \(schedule.timeZone.identifier)"
            + (schedule.repetitionRule.map { ", repetitionRule \($0)" } ?? "")
    }
}

extension EffectivePolicy {
    /// Whether `server` may run this resource's reconciliations: the policy names it, or no server.
    public func allows(server name: String) -> Bool {
        guard let listed = server.value else { return true }
        return listed.split(whereSeparator: { $0 == "," || $0 == " " }).contains { $0 == name }
    }
}
