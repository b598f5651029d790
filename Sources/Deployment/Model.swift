import XMLSource
import XPRESS

/// The reconciliation situations (engine spec section 3).
public enum Situation: String, CaseIterable, Sendable, Codable {
    case confirmed = "CONFIRMED", collision = "COLLISION", deleted = "DELETED", found = "FOUND"
    case missing = "MISSING", unassigned = "UNASSIGNED", unmatched = "UNMATCHED", disputed = "DISPUTED"

    /// The situation `rawValue` names. Its length and one letter pick the only candidate,
    /// which is then compared once: the synthesized initializer compared the text with each
    /// name in turn, 250 instructions for every row of the Account Index a run loads.
    public init?(rawValue: String) {
        let utf8 = rawValue.utf8
        let candidate: Situation
        switch (utf8.first, utf8.count) {
        case (UInt8(ascii: "C"), 9): candidate = utf8.dropFirst(2).first == UInt8(ascii: "N") ? .confirmed : .collision
        case (UInt8(ascii: "D"), 7): candidate = .deleted
        case (UInt8(ascii: "D"), 8): candidate = .disputed
        case (UInt8(ascii: "F"), 5): candidate = .found
        case (UInt8(ascii: "M"), 7): candidate = .missing
        case (UInt8(ascii: "U"), 10): candidate = .unassigned
        case (UInt8(ascii: "U"), 9): candidate = .unmatched
        default: return nil
        }
        guard rawValue == candidate.rawValue else { return nil }
        self = candidate
    }

    /// The responses allowed besides DO_NOTHING.
    public var allowedResponses: [Response] {
        switch self {
        case .confirmed, .collision: []
        case .deleted: [.createAccount, .unlinkAccount]
        case .missing: [.createAccount]
        case .found: [.linkAccount]
        case .unassigned: [.linkAccount, .deleteAccount, .disableAccount]
        case .unmatched: [.createNewUser, .deleteAccount, .disableAccount]
        case .disputed: [.deleteAccount, .disableAccount]
        }
    }

    public func allows(_ response: Response) -> Bool { response == .doNothing || allowedResponses.contains(response) }

    /// The situation's position in `allCases`, for tables a run reads for every account.
    public var position: Int {
        switch self {
        case .confirmed: 0
        case .collision: 1
        case .deleted: 2
        case .found: 3
        case .missing: 4
        case .unassigned: 5
        case .unmatched: 6
        case .disputed: 7
        }
    }

    /// By position: the synthesized hash of a raw-valued enum hashes its name, and a run
    /// counts a situation per account in a dictionary keyed by situation.
    public func hash(into hasher: inout Hasher) { hasher.combine(position) }
}

/// What reconciliation does about a situation.
public enum Response: String, CaseIterable, Sendable, Codable {
    case doNothing = "DO_NOTHING", createNewUser = "CREATE_NEW_USER", createAccount = "CREATE_ACCOUNT"
    case deleteAccount = "DELETE_ACCOUNT", disableAccount = "DISABLE_ACCOUNT", linkAccount = "LINK_ACCOUNT"
    case unlinkAccount = "UNLINK_ACCOUNT"

    /// The administrator capability a response needs (none for DO_NOTHING).
    public var capability: Capability? {
        switch self {
        case .doNothing: nil
        case .createNewUser: .createUser
        case .createAccount: .createAccount
        case .deleteAccount: .deleteAccount
        case .disableAccount: .disableAccount
        case .linkAccount: .linkAccount
        case .unlinkAccount: .unlinkAccount
        }
    }
}

/// What an administrator may do.
public enum Capability: String, CaseIterable, Sendable, Codable {
    case createUser = "CreateUser", createAccount = "CreateAccount", deleteAccount = "DeleteAccount"
    case disableAccount = "DisableAccount", linkAccount = "LinkAccount", unlinkAccount = "UnlinkAccount"
}

/// The kinds of resource adapters.
public enum ResourceType: String, CaseIterable, Sendable {
    case flatFile = "FlatFile", databaseTable = "DatabaseTable", ldap = "LDAP"

    /// Attributes a resource of this type must give.
    var requiredAttributes: [String] {
        switch self {
        case .flatFile: ["file"]
        case .databaseTable: ["file", "table"]
        case .ldap: ["url", "baseDN"]
        }
    }
}

/// A `<Resource>`: where accounts live and how to read them.
public struct ResourceDefinition: Sendable {
    public let name: String
    public let type: ResourceType
    /// `<ResourceAttribute name= value=>` pairs, in order.
    public let attributes: [String: String]
    public let location: SourcePosition

    public func attribute(_ name: String) -> String? { attributes[name] }

    /// The column / attribute that holds the account id.
    public var accountIdAttribute: String { attributes["accountId"] ?? "accountId" }

    /// Attributes that are always lists.
    public var multiValuedAttributes: Set<String> {
        Set((attributes["multiValuedAttributes"] ?? "").split(separator: ",").map { $0.trimmingWhitespace })
    }

    /// Whether incremental reconciliation is possible on this resource.
    public var supportsIncremental: Bool { attributes["incremental"]?.lowercased() != "false" }
}

/// An `<Administrator>`: the capabilities and user form reconciliation acts with.
public struct AdministratorDefinition: Sendable {
    public let name: String
    public let userForm: String?
    public let capabilities: Set<Capability>
    public let location: SourcePosition
}

/// A `<Form>`: fields that map an account to a user and a user to an account.
public struct FormDefinition: Sendable {
    public struct Field: Sendable {
        public let name: String
        /// The `Expansion`, else `Derivation`, else `Default` expression.
        public let value: CompiledExpression?
        public let disable: CompiledExpression?
        public let location: SourcePosition
    }
    public let name: String
    public let fields: [Field]
    public let location: SourcePosition
}

/// A value of a policy together with where it was written (for `recon policy show`).
public struct Sourced<Value: Sendable>: Sendable {
    public let value: Value
    public let location: SourcePosition

    public init(value: Value, location: SourcePosition) {
        self.value = value
        self.location = location
    }
}

/// Which resources a `<ReconcilePolicy>` applies to.
public enum PolicyLevel: Hashable, Sendable, CustomStringConvertible {
    case global
    case resourceType(String)
    case resource(String)

    public var description: String {
        switch self {
        case .global: "Default"
        case .resourceType(let type): "resourceType=\(type)"
        case .resource(let name): "resource=\(name)"
        }
    }
}

/// Reconciliation modes a schedule governs.
public enum ReconcileModes: String, CaseIterable, Sendable {
    case full = "FULL", incremental = "INCREMENTAL", both = "BOTH", none = "NONE"

    public var includesIncremental: Bool { self == .incremental || self == .both }
    public var includesFull: Bool { self == .full || self == .both }
}

/// A `<ReconcilePolicy>` as written: every element may be absent and is then inherited.
public struct ReconcilePolicyDefinition: Sendable {
    public let name: String
    public let level: PolicyLevel
    public let location: SourcePosition
    /// The servers that may run this resource's reconciliations (names separated by commas
    /// or spaces); none named means any.
    public var server: Sourced<String>?
    /// Into how many buckets a scheduled full run is split, for the servers to share.
    public var buckets: Sourced<Int>?
    public var modes: Sourced<ReconcileModes>?
    public var fullSchedule: Sourced<ScheduleDefinition>?
    public var incrementalSchedule: Sourced<ScheduleDefinition>?
    public var correlationRule: Sourced<String>?
    public var confirmationRule: Sourced<String>?
    public var proxyAdministrator: Sourced<String>?
    public var preReconciliationWorkflow: Sourced<String>?
    public var perAccountWorkflow: Sourced<String>?
    public var postReconciliationWorkflow: Sourced<String>?
    public var responses: [Situation: Sourced<Response>] = [:]
    public var attributeReconciliation: Sourced<Bool>?
    public var reconciledAttributes: Sourced<[String]>?
    public var explainSituation: Sourced<Bool>?
    public var errorLimit: Sourced<Int>?
    public var maxNativelyRemovedPercent: Sourced<Int>?
}

/// Actions of a `<ReverseSyncPolicy>`.
public enum NewAccountAction: String, CaseIterable, Sendable { case accept = "ACCEPT", approve = "APPROVE", delete = "DELETE", suspend = "SUSPEND" }
public enum ModifiedAccountAction: String, CaseIterable, Sendable { case accept = "ACCEPT", approve = "APPROVE", revert = "REVERT" }

/// A `<ReverseSyncPolicy>` (engine spec section 7).
public struct ReverseSyncPolicyDefinition: Sendable {
    public let resource: String
    public let defaultUser: String?
    public let approver: String?
    public let newAccounts: NewAccountAction
    public let modifiedAccounts: ModifiedAccountAction
    public let capabilityAttributes: [String]
    public let location: SourcePosition

    public init(resource: String, defaultUser: String?, approver: String?, newAccounts: NewAccountAction,
                modifiedAccounts: ModifiedAccountAction, capabilityAttributes: [String], location: SourcePosition) {
        self.resource = resource
        self.defaultUser = defaultUser
        self.approver = approver
        self.newAccounts = newAccounts
        self.modifiedAccounts = modifiedAccounts
        self.capabilityAttributes = capabilityAttributes
        self.location = location
    }
}

extension Substring {
    var trimmingWhitespace: String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}

extension String {
    var trimmingWhitespace: String { Substring(self).trimmingWhitespace }
}
