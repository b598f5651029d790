import Foundation
import XMLSource
import XPRESS

/// A reconciliation schedule: the series start + k x (every x unit).
public struct ScheduleDefinition: Sendable {
    public enum Unit: String, CaseIterable, Sendable { case minutes, hours, days, weeks, months }
    public let every: Int
    public let unit: Unit
    /// The first run, as an instant.
    public let startMillis: Int64
    public let timeZone: TimeZone
    public let repetitionRule: String?

    public init(every: Int, unit: Unit, startMillis: Int64, timeZone: TimeZone, repetitionRule: String?) {
        self.every = every
        self.unit = unit
        self.startMillis = startMillis
        self.timeZone = timeZone
        self.repetitionRule = repetitionRule
    }
}

/// Everything a deployment's configuration directory defines, validated.
public struct Deployment: Sendable {
    public let resources: [String: ResourceDefinition]
    public let administrators: [String: AdministratorDefinition]
    public let forms: [String: FormDefinition]
    public let policies: [PolicyLevel: ReconcilePolicyDefinition]
    public let reverseSyncPolicies: [String: ReverseSyncPolicyDefinition]
    public let library: RuleLibrary

    /// A deployment that defines nothing.
    public static let empty = Deployment(resources: [:], administrators: [:], forms: [:], policies: [:],
                                         reverseSyncPolicies: [:], library: .empty)
}

/// Stable id of configuration problems (rulecheck's RC0001).
public enum DeploymentDiagnosticID {
    public static let policyInvalid = "RC0001"
}

/// Reads `Resource`, `ReconcilePolicy`, `ReverseSyncPolicy`, `Administrator` and `Form`
/// objects from loaded documents and checks them against each other and the rule library.
/// The engine rejects a configuration with any error; `rulecheck` reports the same problems.
public struct DeploymentLoader {
    private var diagnostics: [Diagnostic] = []
    private var resources: [String: ResourceDefinition] = [:]
    private var administrators: [String: AdministratorDefinition] = [:]
    private var forms: [String: FormDefinition] = [:]
    private var policies: [PolicyLevel: ReconcilePolicyDefinition] = [:]
    private var reverseSync: [String: ReverseSyncPolicyDefinition] = [:]
    private let library: RuleLibrary

    /// Loads `documents` (checked and reported) against `library`; objects of `context`
    /// documents resolve references but are not themselves reported.
    public static func load(_ documents: [LoadedDocument], library: RuleLibrary,
                            context: [LoadedDocument] = []) -> (Deployment, [Diagnostic]) {
        var loader = DeploymentLoader(library: library)
        var contextLoader = DeploymentLoader(library: library)
        for document in context { contextLoader.read(document) }
        for document in documents { loader.read(document) }
        loader.validate(against: contextLoader)
        let deployment = Deployment(resources: contextLoader.resources.merging(loader.resources) { $1 },
                                    administrators: contextLoader.administrators.merging(loader.administrators) { $1 },
                                    forms: contextLoader.forms.merging(loader.forms) { $1 },
                                    policies: contextLoader.policies.merging(loader.policies) { $1 },
                                    reverseSyncPolicies: contextLoader.reverseSync.merging(loader.reverseSync) { $1 },
                                    library: library)
        return (deployment, loader.diagnostics)
    }

    private init(library: RuleLibrary) {
        self.library = library
    }

    private mutating func problem(_ message: String, at location: SourcePosition, id: String = DeploymentDiagnosticID.policyInvalid) {
        diagnostics.append(Diagnostic(id: id, message: message, location: location))
    }

    // MARK: Reading

    /// The names of the objects `read` loads.
    private static let objectNames: Set<String> = ["Resource", "Administrator", "Form", "ReconcilePolicy", "ReverseSyncPolicy"]

    /// Whether `document` holds an object the loader reads (a resource, administrator, form or
    /// policy): the others load with `LoadedDocument.withoutTree`.
    public static func readsObjects(in document: LoadedDocument) -> Bool {
        guard let root = document.root else { return false }
        return RuleLoader.objects(in: root).contains { objectNames.contains($0.name) }
    }

    private mutating func read(_ document: LoadedDocument) {
        guard let root = document.root else { return }
        for object in RuleLoader.objects(in: root) where Self.objectNames.contains(object.name) {
            switch object.name {
            case "Resource": readResource(object)
            case "Administrator": readAdministrator(object)
            case "Form": readForm(object, file: document.file)
            case "ReconcilePolicy":
                checkAttributes(object)
                readPolicy(object)
            case "ReverseSyncPolicy":
                checkAttributes(object)
                readReverseSync(object)
            default: break
            }
        }
    }

    private mutating func readResource(_ element: XMLElement) {
        guard let name = named(element) else { return }
        if element.attribute("type") == nil, let adapter = element.attribute("class") {
            // A resource exported from Waveset itself: a Java adapter this engine does not have.
            diagnostics.append(Diagnostic(
                id: DeploymentDiagnosticID.policyInvalid, severity: .warning,
                message: "resource '\(name)' is a Waveset adapter resource (class='\(adapter)'); the engine reconciles only type='FlatFile', 'DatabaseTable' or 'LDAP' resources and ignores this one",
                location: element.location))
            return
        }
        guard let typeName = element.attribute("type"), let type = ResourceType(rawValue: typeName) else {
            problem("resource '\(name)' needs type='FlatFile', 'DatabaseTable' or 'LDAP' (found '\(element.attribute("type") ?? "")')", at: element.location)
            return
        }
        var attributes: [String: String] = [:]
        let declarations = element.elements.flatMap { $0.name == "ResourceAttributes" ? Array($0.elements) : [$0] }
        for attribute in declarations where attribute.name == "ResourceAttribute" {
            guard let key = attribute.attribute("name") else {
                problem("<ResourceAttribute> needs a 'name'", at: attribute.location)
                continue
            }
            attributes[key] = attribute.attribute("value") ?? attribute.text.trimmingWhitespace
        }
        for required in type.requiredAttributes where (attributes[required] ?? "").isEmpty {
            problem("\(type.rawValue) resource '\(name)' needs <ResourceAttribute name='\(required)' value='...'/>", at: element.location)
        }
        if let rule = attributes["accountIdRule"], !rule.isEmpty, library.rule(named: rule) == nil {
            problem("resource '\(name)' names accountIdRule '\(rule)', which no loaded file defines", at: element.location, id: "XP0202")
        }
        if resources[name] != nil { problem("resource '\(name)' is defined twice", at: element.location) }
        resources[name] = ResourceDefinition(name: name, type: type, attributes: attributes, location: element.location)
    }

    private mutating func readAdministrator(_ element: XMLElement) {
        guard let name = named(element) else { return }
        var capabilities: Set<Capability> = []
        for capability in element.elements where capability.name == "Capability" {
            guard let value = capability.attribute("name"), let known = Capability(rawValue: value) else {
                problem("unknown capability '\(capability.attribute("name") ?? "")'; use \(Capability.allCases.map(\.rawValue).joined(separator: ", "))", at: capability.location)
                continue
            }
            capabilities.insert(known)
        }
        administrators[name] = AdministratorDefinition(name: name, userForm: element.attribute("userForm").flatMap { $0.isEmpty ? nil : $0 },
                                                       capabilities: capabilities, location: element.location)
    }

    private mutating func readForm(_ element: XMLElement, file: String) {
        guard let name = named(element) else { return }
        var fields: [FormDefinition.Field] = []
        func compile(_ holder: XMLElement?) -> CompiledExpression? {
            guard let expression = holder?.elements.first else { return nil }
            return try? CompiledExpression.compile(expression, file: file, library: library).get()
        }
        func collect(_ parent: XMLElement) {
            for field in parent.elements where field.name == "Field" {
                if let fieldName = field.attribute("name") {
                    let value = compile(field.firstElement(named: "Expansion") ?? field.firstElement(named: "Derivation")
                                        ?? field.firstElement(named: "Default"))
                    fields.append(.init(name: fieldName, value: value, disable: compile(field.firstElement(named: "Disable")),
                                        location: field.location))
                }
                collect(field)
            }
        }
        collect(element)
        forms[name] = FormDefinition(name: name, fields: fields, location: element.location)
    }

    private mutating func readPolicy(_ element: XMLElement) {
        let level: PolicyLevel
        if let resource = element.attribute("resource") {
            level = .resource(resource)
        } else if let type = element.attribute("resourceType") {
            level = .resourceType(type)
        } else {
            level = .global
        }
        if let existing = policies[level] {
            problem("a second ReconcilePolicy for \(level) (the first is '\(existing.name)' at \(existing.location))", at: element.location)
            return
        }
        var policy = ReconcilePolicyDefinition(name: element.attribute("name") ?? level.description, level: level, location: element.location)
        for child in element.elements {
            switch child.name {
            case "Scheduling":
                policy.server = sourced(child, "server")
                policy.buckets = integer(child, "buckets", 1...1024)
                if let modes = child.attribute("modes") {
                    if let value = ReconcileModes(rawValue: modes) {
                        policy.modes = Sourced(value: value, location: child.location)
                    } else {
                        problem("modes='\(modes)' is not one of FULL, INCREMENTAL, BOTH, NONE", at: child.location)
                    }
                }
                for schedule in child.elements {
                    let parsed = readSchedule(schedule).map { Sourced(value: $0, location: schedule.location) }
                    switch schedule.name {
                    case "FullSchedule": policy.fullSchedule = parsed
                    case "IncrementalSchedule": policy.incrementalSchedule = parsed
                    default: problem("<Scheduling> holds <FullSchedule> and <IncrementalSchedule>, not <\(schedule.name)>", at: schedule.location)
                    }
                }
            case "Correlation":
                policy.correlationRule = sourced(child, "correlationRule")
                policy.confirmationRule = sourced(child, "confirmationRule")
            case "Workflow":
                policy.proxyAdministrator = sourced(child, "proxyAdministrator")
                policy.preReconciliationWorkflow = sourced(child, "preReconciliation")
                policy.perAccountWorkflow = sourced(child, "perAccount")
                policy.postReconciliationWorkflow = sourced(child, "postReconciliation")
            case "Responses":
                for response in child.elements where response.name == "Response" { readResponse(response, into: &policy) }
            case "AttributeReconciliation":
                if let enabled = child.attribute("enabled") { policy.attributeReconciliation = Sourced(value: enabled.lowercased() == "true", location: child.location) }
                let attributes = child.elements.filter { $0.name == "Attribute" }.compactMap { $0.attribute("name") }
                if !attributes.isEmpty { policy.reconciledAttributes = Sourced(value: attributes, location: child.location) }
            case "Options":
                if let explain = child.attribute("explainSituation") { policy.explainSituation = Sourced(value: explain.lowercased() == "true", location: child.location) }
                policy.errorLimit = integer(child, "errorLimit", 0...Int.max)
                policy.maxNativelyRemovedPercent = integer(child, "maxNativelyRemovedPercent", 0...100)
            case "Description", "Comments": break
            default: problem("<ReconcilePolicy> does not take <\(child.name)>", at: child.location)
            }
        }
        policies[level] = policy
    }

    private mutating func readResponse(_ element: XMLElement, into policy: inout ReconcilePolicyDefinition) {
        guard let situationName = element.attribute("situation"), let situation = Situation(rawValue: situationName) else {
            problem("unknown situation '\(element.attribute("situation") ?? "")'; use \(Situation.allCases.map(\.rawValue).joined(separator: ", "))", at: element.location)
            return
        }
        guard let actionName = element.attribute("action"), let action = Response(rawValue: actionName) else {
            problem("unknown response '\(element.attribute("action") ?? "")' for \(situationName)", at: element.location)
            return
        }
        guard situation.allows(action) else {
            let allowed = ["DO_NOTHING"] + situation.allowedResponses.map(\.rawValue)
            problem("\(action.rawValue) is not allowed for \(situation.rawValue); allowed: \(allowed.joined(separator: ", "))", at: element.location)
            return
        }
        policy.responses[situation] = Sourced(value: action, location: element.location)
    }

    private mutating func readSchedule(_ element: XMLElement) -> ScheduleDefinition? {
        let everyText = element.attribute("every") ?? "1"
        guard let every = Int(everyText), every > 0 else {
            problem("every='\(everyText)' must be a whole number above 0", at: element.location)
            return nil
        }
        guard let unit = ScheduleDefinition.Unit(rawValue: element.attribute("unit") ?? "") else {
            problem("unit='\(element.attribute("unit") ?? "")' must be minutes, hours, days, weeks or months", at: element.location)
            return nil
        }
        let zoneName = element.attribute("timeZone") ?? "UTC"
        guard let zone = TimeZone(identifier: zoneName) else {
            problem("unknown timeZone '\(zoneName)'", at: element.location)
            return nil
        }
        guard let startText = element.attribute("start"), let start = CivilTime.parse(startText, zone: zone) else {
            problem("start='\(element.attribute("start") ?? "")' must be a local date and time like 2026-11-21T02:00:00", at: element.location)
            return nil
        }
        let rule = element.attribute("repetitionRule").flatMap { $0.isEmpty ? nil : $0 }
        return ScheduleDefinition(every: every, unit: unit, startMillis: start, timeZone: zone, repetitionRule: rule)
    }

    private mutating func readReverseSync(_ element: XMLElement) {
        guard let resource = element.attribute("resource"), !resource.isEmpty else {
            problem("<ReverseSyncPolicy> needs resource='...'", at: element.location)
            return
        }
        var newAction = NewAccountAction.approve, modifiedAction = ModifiedAccountAction.approve
        var capabilities: [String] = []
        for child in element.elements {
            let action = child.attribute("action") ?? ""
            switch child.name {
            case "NewAccounts":
                if let parsed = NewAccountAction(rawValue: action) { newAction = parsed } else {
                    problem("<NewAccounts action='\(action)'> must be ACCEPT, APPROVE, DELETE or SUSPEND", at: child.location)
                }
            case "ModifiedAccounts":
                if let parsed = ModifiedAccountAction(rawValue: action) { modifiedAction = parsed } else {
                    problem("<ModifiedAccounts action='\(action)'> must be ACCEPT, APPROVE or REVERT", at: child.location)
                }
            case "CapabilityAttribute":
                if let name = child.attribute("name") { capabilities.append(name) }
            case "Description", "Comments": break
            default: problem("<ReverseSyncPolicy> does not take <\(child.name)>", at: child.location)
            }
        }
        if reverseSync[resource] != nil { problem("a second ReverseSyncPolicy for resource '\(resource)'", at: element.location) }
        reverseSync[resource] = ReverseSyncPolicyDefinition(
            resource: resource, defaultUser: element.attribute("defaultUser"), approver: element.attribute("approver"),
            newAccounts: newAction, modifiedAccounts: modifiedAction, capabilityAttributes: capabilities, location: element.location)
    }

    /// The attributes each element of a policy takes. A policy's values all have defaults, so a
    /// misspelt attribute (`correlationRul=`) would be ignored without a word: it is a problem.
    private static let policyAttributes: [String: Set<String>] = [
        "ReconcilePolicy": ["name", "resource", "resourceType"],
        "Scheduling": ["server", "buckets", "modes"],
        "FullSchedule": ["every", "unit", "start", "timeZone", "repetitionRule"],
        "IncrementalSchedule": ["every", "unit", "start", "timeZone", "repetitionRule"],
        "Correlation": ["correlationRule", "confirmationRule"],
        "Workflow": ["proxyAdministrator", "preReconciliation", "perAccount", "postReconciliation"],
        "Responses": [],
        "Response": ["situation", "action"],
        "AttributeReconciliation": ["enabled"],
        "Attribute": ["name"],
        "Options": ["explainSituation", "errorLimit", "maxNativelyRemovedPercent"],
        "ReverseSyncPolicy": ["resource", "defaultUser", "approver"],
        "NewAccounts": ["action"],
        "ModifiedAccounts": ["action"],
        "CapabilityAttribute": ["name"],
    ]

    /// Reports the attributes of `element` and of the policy elements inside it that they do
    /// not take (elements they do not take are reported where they are read).
    private mutating func checkAttributes(_ element: XMLElement) {
        guard let allowed = Self.policyAttributes[element.name] else { return }
        for attribute in element.attributes where !allowed.contains(attribute.name) {
            let takes = allowed.isEmpty ? "it takes none" : "it takes \(allowed.sorted().joined(separator: ", "))"
            problem("<\(element.name)> does not take the attribute '\(attribute.name)'; \(takes)", at: element.location)
        }
        for child in element.elements { checkAttributes(child) }
    }

    private mutating func named(_ element: XMLElement) -> String? {
        guard let name = element.attribute("name"), !name.isEmpty else {
            problem("<\(element.name)> needs a 'name'", at: element.location)
            return nil
        }
        return name
    }

    private func sourced(_ element: XMLElement, _ attribute: String) -> Sourced<String>? {
        element.attribute(attribute).map { Sourced(value: $0, location: element.location) }
    }

    private mutating func integer(_ element: XMLElement, _ attribute: String, _ range: ClosedRange<Int>) -> Sourced<Int>? {
        guard let text = element.attribute(attribute) else { return nil }
        guard let value = Int(text), range.contains(value) else {
            let bounds = range.upperBound == Int.max ? "0 or more" : "between \(range.lowerBound) and \(range.upperBound)"
            problem("\(attribute)='\(text)' must be a whole number \(bounds)", at: element.location)
            return nil
        }
        return Sourced(value: value, location: element.location)
    }

    // MARK: Cross-checks

    private mutating func validate(against context: DeploymentLoader) {
        let allResources = context.resources.merging(resources) { $1 }
        let allAdministrators = context.administrators.merging(administrators) { $1 }
        let allForms = context.forms.merging(forms) { $1 }
        for administrator in administrators.values {
            if let form = administrator.userForm, allForms[form] == nil {
                problem("administrator '\(administrator.name)' names userForm '\(form)', which no loaded file defines", at: administrator.location)
            }
        }
        for policy in policies.values.sorted(by: { $0.location < $1.location }) {
            switch policy.level {
            case .resource(let name) where allResources[name] == nil:
                problem("policy '\(policy.name)' names resource '\(name)', which no loaded file defines", at: policy.location)
            case .resourceType(let type) where ResourceType(rawValue: type) == nil:
                problem("policy '\(policy.name)' names resourceType '\(type)'; use FlatFile, DatabaseTable or LDAP", at: policy.location)
            default: break
            }
            for rule in [policy.correlationRule, policy.confirmationRule, policy.preReconciliationWorkflow,
                         policy.perAccountWorkflow, policy.postReconciliationWorkflow].compactMap({ $0 }) {
                checkRule(rule.value, at: rule.location)
            }
            for schedule in [policy.fullSchedule, policy.incrementalSchedule].compactMap({ $0 }) {
                if let rule = schedule.value.repetitionRule { checkRule(rule, at: schedule.location) }
            }
            if let admin = policy.proxyAdministrator, !admin.value.isEmpty, allAdministrators[admin.value] == nil {
                problem("proxyAdministrator '\(admin.value)' is not an Administrator any loaded file defines", at: admin.location)
            }
        }
        // Incremental where the resource cannot: check each resource's effective modes.
        let allPolicies = context.policies.merging(policies) { $1 }
        for resource in resources.values.sorted(by: { $0.location < $1.location }) where !resource.supportsIncremental {
            let chain = [allPolicies[.resource(resource.name)], allPolicies[.resourceType(resource.type.rawValue)], allPolicies[.global]]
            if let modes = chain.compactMap({ $0?.modes }).first, modes.value.includesIncremental,
               policies.values.contains(where: { $0.modes?.location == modes.location }) {
                problem("modes='\(modes.value.rawValue)' asks for incremental reconciliation of resource '\(resource.name)', which does not support it (incremental='false')",
                        at: modes.location)
            }
        }
        for policy in reverseSync.values where allResources[policy.resource] == nil {
            problem("ReverseSyncPolicy names resource '\(policy.resource)', which no loaded file defines", at: policy.location)
        }
    }

    private mutating func checkRule(_ name: String, at location: SourcePosition) {
        if name.isEmpty || name == "CONFIRMATION_RULE_NONE" { return }
        if library.rule(named: name) == nil {
            problem("no loaded file defines a rule named '\(name)'", at: location, id: "XP0202")
        }
    }
}
