import Connectors
import Deployment
import Foundation
import Repository
import XPRESS

/// Correlations a run takes from the Account Index instead of running the rules again.
///
/// An index row records the situation correlation gave an account: UNMATCHED, or UNASSIGNED or
/// FOUND with the user it found. Correlating that account again is bound to give the same
/// situation when the account is unchanged (the row's digest), when the rules are repeatable
/// (`RuleLibrary.repeatability`) and have, with the resource's definition, the evaluation
/// options and this engine's correlation, the fingerprint the resource's `CorrelationBasis`
/// records, and when no user changed since the basis's time: the rules are handed the same
/// account and find the same users. A full run that examined every account without an error
/// records its basis at its end; a run under other rules drops the basis before it writes.
/// At a million accounts with 5% correlated, an unchanged run spends half its processor time
/// on those correlations.
struct CorrelationReuse {
    /// What this run's correlations rest on; nil when its rules are not repeatable.
    let fingerprint: String?
    /// Why the rules' situations are never kept (the element that makes them unrepeatable);
    /// nil when they are repeatable.
    let unrepeatable: String?
    /// Whether the run may take situations from the index when the basis holds: not when it
    /// traces the rules or was asked to correlate every account.
    private let allowed: Bool
    /// Whether outcomes carry how they were reached (explainSituation): a kept situation then
    /// keeps the row's explanation, which the same rules, account and users gave.
    private let explaining: Bool
    /// The basis as the run found it (or as its own drop left it).
    private var found = CorrelationBasisState(basis: nil, version: 0)
    /// When the run will record its basis: the time users had settled at its start.
    private var settled: Int64?
    /// When the basis this run reuses was taken; nil when unchanged accounts do not take their
    /// situation from the index in this run.
    private(set) var basisTime: Int64?

    /// Changes whenever what correlation does with the same rules, account and users changes
    /// (the candidates' search, the user view): every basis recorded before is then dropped.
    private static let engineCorrelationVersion = "1"

    /// `forced`: the run was asked to correlate every account (`RunOptions.correlatesAll`).
    init(resource: ResourceDefinition, policy: EffectivePolicy, options: EvaluationOptions, library: RuleLibrary, explaining: Bool,
         forced: Bool) {
        var hasher = StableHasher()
        hasher.combine(Self.engineCorrelationVersion)
        var unrepeatableElement: String?
        for rule in [policy.correlationRule.value, policy.confirmationRule.value] {
            hasher.combine(rule ?? "")
            guard let rule else { continue }
            switch library.repeatability(ofRule: rule) {
            case .repeatable(let fingerprint): hasher.combine(fingerprint)
            case .unrepeatable(let reason): unrepeatableElement = unrepeatableElement ?? reason
            }
        }
        hasher.combine(resource.name)
        hasher.combine(resource.type.rawValue)
        for (name, value) in resource.attributes.sorted(by: { $0.key < $1.key }) {
            hasher.combine(name)
            hasher.combine(value)
        }
        hasher.combine(UInt64(options.stepLimit))
        hasher.combine(UInt64(options.callDepthLimit))
        hasher.combine(options.timeZone.identifier)
        for (name, text) in options.messageCatalog.sorted(by: { $0.key < $1.key }) {
            hasher.combine(name)
            hasher.combine(text)
        }
        fingerprint = unrepeatableElement == nil ? String(hasher.value, radix: 16) : nil
        unrepeatable = unrepeatableElement
        allowed = unrepeatableElement == nil && !forced && !options.trace
        self.explaining = explaining
    }

    /// At the start of a run, before it reads any user. `recording`: the run will record its
    /// basis if it ends well (a full run of every account, not a dry run nor a bucket), so the
    /// time users settled is taken now. `writing`: the run writes the index, so a basis under
    /// other rules is dropped now.
    mutating func start(_ repository: any IdentityRepository, resource: String, recording: Bool, writing: Bool) throws {
        if recording && fingerprint != nil { settled = try repository.userChangesSettled() }
        found = try repository.correlationBasis(resource: resource)
        guard let basis = found.basis else { return }
        if basis.fingerprint == fingerprint {
            guard allowed else { return }
            if try !repository.anyUserModified(since: basis.since) { basisTime = basis.since }
        } else if writing {
            let version = try repository.write { try $0.dropCorrelationBasis(resource: resource) }
            found = CorrelationBasisState(basis: nil, version: version)
        }
    }

    /// The outcome the index row `known` records for `account`, when correlation gave it and
    /// reuse is on; nil when the account must be correlated.
    func outcome(for account: StreamedAccount, known: KnownEntry?) -> ReconciliationRun.Outcome? {
        guard basisTime != nil, let known, let situation = known.situation, known.digest == .number(account.digest),
              !explaining || known.explanation != nil else { return nil }
        switch situation {
        case .unmatched where known.owner == nil: break
        case .unassigned where known.owner != nil, .found where known.owner != nil: break
        default: return nil
        }
        return ReconciliationRun.Outcome(accountID: account.id, streamed: account, situation: situation, owner: known.owner,
                                         explanation: explaining ? known.explanation : nil)
    }

    /// At the end of a run that `start` was told records, once every account was examined
    /// without an error and the index is written: records the run's basis, unless the basis
    /// changed meanwhile (an index row written outside a run).
    func finish(_ repository: any IdentityRepository, resource: String) throws {
        guard let fingerprint, let settled else { return }
        _ = try repository.write {
            try $0.recordCorrelationBasis(CorrelationBasis(fingerprint: fingerprint, since: settled), resource: resource, ifVersion: found.version)
        }
    }
}
