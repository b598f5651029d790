/// A value of an account attribute: one string, or a list of strings for multi-valued
/// attributes (a CSV cell split on the separator, an LDAP attribute with several values).
public enum AttributeValue: Sendable, Hashable {
    case single(String)
    case multi([String])

    /// The values as a list (a single value is a list of one).
    public var values: [String] {
        switch self {
        case .single(let value): [value]
        case .multi(let values): values
        }
    }
}

/// One account as a resource holds it. Attributes keep the resource's order; an absent
/// attribute (an empty CSV cell) is simply not there.
public struct Account: Sendable, Hashable {
    public var id: String
    public var attributes: [(name: String, value: AttributeValue)]
    /// True when the resource marks the account disabled (`disabledAttribute`).
    public var disabled: Bool

    public init(id: String, attributes: [(name: String, value: AttributeValue)], disabled: Bool = false) {
        self.id = id
        self.attributes = attributes
        self.disabled = disabled
    }

    public func attribute(_ name: String) -> AttributeValue? {
        for attribute in attributes where attribute.name == name { return attribute.value }
        return nil
    }

    public static func == (a: Account, b: Account) -> Bool {
        a.id == b.id && a.disabled == b.disabled && a.attributes.count == b.attributes.count
            && zip(a.attributes, b.attributes).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(id)
        hasher.combine(disabled)
        for attribute in attributes {
            hasher.combine(attribute.name)
            hasher.combine(attribute.value)
        }
    }
}

/// A change reconciliation (or reverse synchronization) makes on a resource.
public enum AccountChange: Sendable, Hashable {
    /// A new account with these attributes (the id attribute is added by the adapter).
    case create(id: String, attributes: [(name: String, value: AttributeValue)])
    /// Replaces the named attributes of an existing account (others are kept; a nil value
    /// removes the attribute).
    case update(id: String, attributes: [(name: String, value: AttributeValue?)])
    case delete(id: String)
    /// Marks the account disabled (`disabledAttribute` = `true`).
    case disable(id: String)
    /// Marks the account enabled again.
    case enable(id: String)

    public var accountID: String {
        switch self {
        case .create(let id, _), .update(let id, _), .delete(let id), .disable(let id), .enable(let id): id
        }
    }

    public static func == (a: AccountChange, b: AccountChange) -> Bool {
        switch (a, b) {
        case (.create(let i, let x), .create(let j, let y)):
            i == j && x.count == y.count && zip(x, y).allSatisfy { $0.name == $1.name && $0.value == $1.value }
        case (.update(let i, let x), .update(let j, let y)):
            i == j && x.count == y.count && zip(x, y).allSatisfy { $0.name == $1.name && $0.value == $1.value }
        case (.delete(let i), .delete(let j)), (.disable(let i), .disable(let j)), (.enable(let i), .enable(let j)): i == j
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(accountID) }
}

/// What an adapter can do beyond listing and reading.
public struct AdapterCapabilities: Sendable, Hashable {
    public var incremental: Bool
    public var disable: Bool
    public init(incremental: Bool, disable: Bool) {
        self.incremental = incremental
        self.disable = disable
    }
}

/// An error of a resource: unreadable, malformed, or a change it refused. `line` is set for
/// problems at a place in a file (a CSV row).
public struct AdapterError: Error, Sendable, CustomStringConvertible {
    public let resource: String
    public let message: String
    public let accountID: String?
    public let line: Int?

    public init(resource: String, message: String, accountID: String? = nil, line: Int? = nil) {
        self.resource = resource
        self.message = message
        self.accountID = accountID
        self.line = line
    }

    public var description: String {
        var text = "resource '\(resource)'"
        if let line { text += " line \(line)" }
        if let accountID { text += " account '\(accountID)'" }
        return text + ": " + message
    }
}

/// A stream of accounts: the resource is never held in memory whole.
public protocol AccountStream {
    /// The next account, or nil at the end.
    mutating func next() throws -> Account?
    /// The next account as a run compares it (by default, `next()`'s account).
    mutating func nextStreamed() throws -> StreamedAccount?
}

extension AccountStream {
    public mutating func nextStreamed() throws -> StreamedAccount? { try next().map(StreamedAccount.init) }
}

/// One resource's accounts: stream them, read one, change them.
public protocol ResourceAdapter: Sendable {
    var name: String { get }
    var capabilities: AdapterCapabilities { get }
    /// Streams every account.
    func accounts() throws -> any AccountStream
    /// One account, or nil when it does not exist.
    func account(id: String) throws -> Account?
    /// Applies `changes` as one unit: all of them, or (on error) none.
    func apply(_ changes: [AccountChange]) throws
}
