import Connectors
import Repository
import XPRESS

/// Conversions between resource accounts, repository users and XPRESS values.
enum Values {
    /// An account as rules see it: its attributes, plus `accountId` whatever the resource
    /// calls its id.
    static func account(_ account: Account) -> Value {
        let map = MapBox()
        for attribute in account.attributes { map[attribute.name] = value(attribute.value) }
        map["accountId"] = .string(account.id)
        return .map(map)
    }

    static func value(_ attribute: AttributeValue) -> Value {
        switch attribute {
        case .single(let text): .string(text)
        case .multi(let texts): .list(texts.map { .string($0) })
        }
    }

    /// An XPRESS value stored as an attribute; nil for null (the attribute is removed).
    static func attribute(_ value: Value) -> AttributeValue? {
        switch value {
        case .null: nil
        case .list(let list): .multi(list.items.filter { !$0.isNull }.map(\.stringValue))
        default: .single(value.stringValue)
        }
    }

    /// The user view (`userview` of confirmation rules, the scope of forms): `global` (the
    /// attributes), `waveset` (`accountId`, `resources`) and `accounts` (one map per linked
    /// account: `name` = the resource, plus its last known attributes).
    static func userView(_ user: User, accounts: [IndexEntry]) -> Value {
        let global = MapBox()
        for (name, attribute) in user.attributes.sorted(by: { $0.key < $1.key }) { global[name] = value(attribute) }
        let waveset = MapBox([("accountId", .string(user.name)),
                              ("resources", .list(user.assignedResources.sorted().map { .string($0) }))])
        var linked: [Value] = []
        for link in user.accounts.sorted() {
            let map = MapBox([("name", .string(link.resource)), ("accountId", .string(link.accountID))])
            if let entry = accounts.first(where: { $0.resource == link.resource && $0.accountID == link.accountID }) {
                for attribute in entry.attributes { map[attribute.name] = value(attribute.value) }
            }
            linked.append(.map(map))
        }
        return .map([("global", .map(global)), ("waveset", .map(waveset)), ("accounts", .list(linked))])
    }

    /// A rule's verdict: true for boolean true, a non-zero integer, "true" or "1".
    static func verdict(_ value: Value) -> Bool {
        switch value {
        case .bool(let b): b
        case .int(let n): n != 0
        case .string(let s): s.lowercased() == "true" || s == "1"
        default: false
        }
    }
}
