import Connectors
import Foundation

/// A user of the identity repository.
public struct User: Sendable, Hashable {
    public var name: String
    /// Attribute values in order; multi-valued attributes are `.multi`.
    public var attributes: [String: AttributeValue]
    /// Resources the repository expects this user may have an account on.
    public var assignedResources: Set<String>
    /// Accounts the repository expects to exist (a link implies the resource is assigned).
    public var accounts: Set<AccountLink>

    public init(name: String, attributes: [String: AttributeValue] = [:], assignedResources: Set<String> = [],
                accounts: Set<AccountLink> = []) {
        self.name = name
        self.attributes = attributes
        self.assignedResources = assignedResources.union(accounts.map(\.resource))
        self.accounts = accounts
    }

    public func accountIDs(on resource: String) -> [String] {
        accounts.filter { $0.resource == resource }.map(\.accountID).sorted()
    }
}

/// A user's claim on an account: resource and account id.
public struct AccountLink: Sendable, Hashable, Comparable {
    public var resource: String
    public var accountID: String

    public init(resource: String, accountID: String) {
        self.resource = resource
        self.accountID = accountID
    }

    public static func < (a: AccountLink, b: AccountLink) -> Bool { (a.resource, a.accountID) < (b.resource, b.accountID) }
}

/// A condition on users, from a correlation rule's AttributeConditions (case-sensitive).
public struct UserCondition: Sendable, Hashable {
    public enum Operator: String, Sendable, CaseIterable {
        case equals, notEquals, startsWith, endsWith, contains, isPresent, notPresent
    }
    /// A user attribute, or `name` (the user's name), or `linkedAccountId` (any linked account).
    public var attribute: String
    public var op: Operator
    public var operand: String

    public init(attribute: String, op: Operator, operand: String) {
        self.attribute = attribute
        self.op = op
        self.operand = operand
    }
}

/// What the situations correlation gave a resource's accounts (UNMATCHED, UNASSIGNED, FOUND
/// through the correlation rule) rest on: every such Account Index row of the resource was
/// written by a reconciliation whose rules, resource definition and engine have `fingerprint`,
/// against the users as they were at `since` or later. While no user changes after `since`, a
/// run with the same fingerprint gets the same situation for an unchanged account, and may take
/// it from the row instead of correlating again.
public struct CorrelationBasis: Sendable, Equatable {
    public let fingerprint: String
    /// Milliseconds since 1970 (`IdentityRepository.userChangesSettled()`).
    public let since: Int64

    public init(fingerprint: String, since: Int64) {
        self.fingerprint = fingerprint
        self.since = since
    }
}

/// A resource's correlation basis as a run reads it at its start: the basis (nil when none is
/// known) and its version, which every change of it moves on. A run records its own basis only
/// if the version is still the one it read (`RepositoryWriter.recordCorrelationBasis`).
public struct CorrelationBasisState: Sendable, Equatable {
    public let basis: CorrelationBasis?
    /// 0 when nothing was ever recorded for the resource.
    public let version: Int64

    public init(basis: CorrelationBasis?, version: Int64) {
        self.basis = basis
        self.version = version
    }
}

/// What a correlation rule asked of the repository for one account: users by name, users
/// matching conditions, or both.
public struct CorrelationRequest: Sendable, Hashable {
    public var names: [String]
    public var conditions: [UserCondition]

    public init(names: [String], conditions: [UserCondition]) {
        self.names = names
        self.conditions = conditions
    }

    /// Whether the request names no user and sets no condition: it finds no candidate.
    public var isEmpty: Bool { names.isEmpty && conditions.isEmpty }
}

/// What a reconciliation run compares of an Account Index row: its owner, situation, digest
/// and explanation, without the attributes and times.
public struct IndexState: Sendable, Hashable {
    public var accountID: String
    public var owner: String?
    public var situation: String
    public var digest: StoredDigest
    public var explanation: String?

    public init(accountID: String, owner: String?, situation: String, digest: StoredDigest, explanation: String?) {
        self.accountID = accountID
        self.owner = owner
        self.situation = situation
        self.digest = digest
        self.explanation = explanation
    }
}

/// An account digest as stored in the index: the number the engine writes in hexadecimal, or
/// any other text as it is.
public enum StoredDigest: Sendable, Hashable {
    case number(UInt64)
    case text(String)

    public init(_ text: String) {
        var text = text
        self = text.withUTF8 { Self(utf8: $0) } ?? .text(text)
    }

    /// The number that `bytes` spell in hexadecimal; nil when they are anything else (text to
    /// keep as it is). Read in place, one table lookup per digit and no branch: a run reads a
    /// digest per index row, a million at a time, and digits and letters come at random.
    init?(utf8 bytes: UnsafeBufferPointer<UInt8>) {
        guard !bytes.isEmpty, bytes.count <= 16 else { return nil }  // more than 64 bits
        var value: UInt64 = 0
        var invalid: UInt8 = 0
        Self.digitValues.withUnsafeBufferPointer { digits in
            for byte in bytes {
                let digit = digits[Int(byte)]
                invalid |= digit
                value = value << 4 | UInt64(digit & 0x0f)
            }
        }
        guard invalid & 0x10 == 0 else { return nil }
        self = .number(value)
    }

    /// Per byte, its value as a hexadecimal digit, or 0x10 when it is none.
    private static let digitValues: [UInt8] = (0...255).map { (byte: Int) -> UInt8 in
        switch UInt8(byte) {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt8(byte) - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt8(byte) - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt8(byte) - UInt8(ascii: "A") + 10
        default: 0x10
        }
    }

    /// The text written to the index.
    public var text: String {
        switch self {
        case .number(let number): String(number, radix: 16)
        case .text(let text): text
        }
    }
}

/// One row of the Account Index: what reconciliation last knew of an account.
public struct IndexEntry: Sendable, Hashable {
    /// What a run compares of this row.
    public var state: IndexState {
        IndexState(accountID: accountID, owner: owner, situation: situation, digest: StoredDigest(digest), explanation: explanation)
    }

    public var resource: String
    public var accountID: String
    public var owner: String?
    public var situation: String
    /// Last known attribute values.
    public var attributes: [AccountAttribute]
    /// A digest of the attributes, for incremental runs.
    public var digest: String
    /// Milliseconds since 1970.
    public var lastSeen: Int64?
    public var lastReconciled: Int64
    public var explanation: String?

    public init(resource: String, accountID: String, owner: String?, situation: String, attributes: [AccountAttribute],
                digest: String, lastSeen: Int64?, lastReconciled: Int64, explanation: String?) {
        self.resource = resource
        self.accountID = accountID
        self.owner = owner
        self.situation = situation
        self.attributes = attributes
        self.digest = digest
        self.lastSeen = lastSeen
        self.lastReconciled = lastReconciled
        self.explanation = explanation
    }
}

/// An attribute value as the Account Index stores it.
public struct AccountAttribute: Sendable, Hashable, Codable {
    public var name: String
    public var values: [String]
    public var multi: Bool

    public init(name: String, value: AttributeValue) {
        self.name = name
        switch value {
        case .single(let v): values = [v]; multi = false
        case .multi(let v): values = v; multi = true
        }
    }

    public var value: AttributeValue { multi ? .multi(values) : .single(values.first ?? "") }
}

/// A reconciliation run (or another submitted task) and its results.
public struct TaskRecord: Sendable, Hashable {
    public var id: Int64
    public var name: String
    public var resource: String
    public var mode: String
    public var server: String
    public var started: Int64
    public var finished: Int64?
    public var status: String
    public var cancelled: Bool
    public var situations: [String: Int]
    public var responses: [String: Int]
    public var errors: [TaskError]
    public var details: String?
    /// The schedule slot a scheduled run was started for (its computed time), if any.
    public var slot: Int64?
    /// Whether the task failed because the process or server running it went away.
    public var interrupted: Bool { status == "failed" && details?.contains("interrupted:") == true }
}

public struct TaskError: Sendable, Hashable, Codable {
    public var accountID: String?
    public var message: String
    public init(accountID: String?, message: String) {
        self.accountID = accountID
        self.message = message
    }
}

/// A search of the Account Index (all parts optional, AND-ed).
public struct IndexQuery: Sendable {
    public enum Match: Sendable {
        case isEqual(String), startsWith(String), contains(String)
    }
    public var accountID: Match?
    public var resources: [String] = []
    public var owner: Match?
    public var situations: [String] = []
    public var limit = 1000
    public init() {}
}

/// An approval work item of reverse synchronization (engine spec section 7).
public struct WorkItem: Sendable, Hashable {
    public enum Kind: String, Sendable { case newAccount = "NEW_ACCOUNT", modifiedAccount = "MODIFIED_ACCOUNT", capability = "CAPABILITY" }
    /// One attribute's change: values as lists (a single value is a list of one); nil when absent.
    public struct Change: Sendable, Hashable, Codable {
        public var attribute: String
        public var old: [String]?
        public var new: [String]?
        public var multi: Bool
        public init(attribute: String, old: [String]?, new: [String]?, multi: Bool) {
            self.attribute = attribute
            self.old = old
            self.new = new
            self.multi = multi
        }
    }
    public var id: String
    public var resource: String
    public var accountID: String
    public var kind: Kind
    public var suggestedUser: String?
    public var approver: String?
    public var changes: [Change]
    /// open, approved, rejected or failed.
    public var status: String
    public var message: String?
    public var created: Int64

    public init(id: String, resource: String, accountID: String, kind: Kind, suggestedUser: String?, approver: String?,
                changes: [Change], status: String = "open", message: String? = nil, created: Int64 = currentMillis()) {
        self.id = id
        self.resource = resource
        self.accountID = accountID
        self.kind = kind
        self.suggestedUser = suggestedUser
        self.approver = approver
        self.changes = changes
        self.status = status
        self.message = message
        self.created = created
    }
}

/// Repository problems: what went wrong, said for an operator.
public struct RepositoryError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Milliseconds since 1970, now.
public func currentMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

/// A user a correlation found, with what confirming it needs when asked for.
public struct Candidate: Sendable, Hashable {
    public var name: String
    /// Nil unless asked for (or when the user vanished meanwhile).
    public var user: User?
    /// The Account Index rows of the accounts the user links, when the user is given.
    public var accounts: [IndexEntry]

    public init(name: String, user: User? = nil, accounts: [IndexEntry] = []) {
        self.name = name
        self.user = user
        self.accounts = accounts
    }
}
