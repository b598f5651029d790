/// A value of the XPRESS language (spec section 1).
///
/// Lists, maps, dates and host objects are shared by reference, as in the original Java
/// implementation: binding, passing as an argument and `set` do not copy. A value belongs to the
/// evaluation that made it and is not shared between threads.
public enum Value {
    case null
    case int(Int64)
    case string(String)
    case bool(Bool)
    case list(ListBox)
    case map(MapBox)
    case date(DateBox)
    case object(HostObject)

    /// A new list value holding `items`.
    public static func list(_ items: [Value]) -> Value { .list(ListBox(items)) }
    /// A new map value holding `entries` in order.
    public static func map(_ entries: [(String, Value)]) -> Value { .map(MapBox(entries)) }
    /// A new date value at `millis` milliseconds since 1970-01-01T00:00:00Z.
    public static func date(millis: Int64) -> Value { .date(DateBox(millis: millis)) }

    public var isNull: Bool { if case .null = self { true } else { false } }
}

/// A mutable list shared by reference.
public final class ListBox {
    public var items: [Value]
    public init(_ items: [Value] = []) { self.items = items }
}

/// A mutable map with string keys that keeps insertion order, shared by reference.
public final class MapBox {
    // Read for every `a.b` step of a path. The storage is only touched inside this class's own
    // members, which never call out while accessing it, so the run-time exclusivity check (a
    // cost on every access of a class's stored `var`) is switched off.
    @exclusivity(unchecked) public private(set) var keys: [String] = []
    @exclusivity(unchecked) public private(set) var values: [Value] = []
    /// Key positions, kept only for maps larger than `scannedUpTo`: smaller maps (an account's
    /// attributes, a user view's level) are searched key by key, which beats hashing the key.
    @exclusivity(unchecked) private var positions: [ExactKey: Int] = [:]
    private static let scannedUpTo = 8

    public init() {}

    public init(_ entries: [(String, Value)]) {
        keys.reserveCapacity(entries.count)
        values.reserveCapacity(entries.count)
        for (key, value) in entries { self[key] = value }
    }

    public var count: Int { keys.count }

    @inline(__always)
    private func position(of key: String) -> Int? {
        if keys.count > Self.scannedUpTo { return positions[ExactKey(key)] }
        for index in keys.indices where JavaString.equals(keys[index], key) { return index }
        return nil
    }

    /// The value at `key`; assigning replaces in place or appends a new key at the end.
    /// Assigning nil removes the key.
    public subscript(key: String) -> Value? {
        get { position(of: key).map { values[$0] } }
        set {
            if let newValue {
                if let position = position(of: key) {
                    values[position] = newValue
                    return
                }
                keys.append(key)
                values.append(newValue)
                if keys.count == Self.scannedUpTo + 1 {
                    for (index, key) in keys.enumerated() { positions[ExactKey(key)] = index }
                } else if keys.count > Self.scannedUpTo {
                    positions[ExactKey(key)] = keys.count - 1
                }
            } else if let position = position(of: key) {
                keys.remove(at: position)
                values.remove(at: position)
                positions.removeAll(keepingCapacity: keys.count > Self.scannedUpTo)
                if keys.count > Self.scannedUpTo {
                    for (index, key) in keys.enumerated() { positions[ExactKey(key)] = index }
                }
            }
        }
    }

    /// The entries in insertion order.
    public var entries: Zip2Sequence<[String], [Value]> { zip(keys, values) }
}

/// A map key compared unit by unit, as Java's `String.equals` and `hashCode` do (not by Swift's
/// canonical equivalence).
struct ExactKey: Hashable {
    let text: String
    init(_ text: String) { self.text = text }
    static func == (a: ExactKey, b: ExactKey) -> Bool { JavaString.equals(a.text, b.text) }
    func hash(into hasher: inout Hasher) {
        var text = text
        text.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}

/// A mutable instant with millisecond precision (Java `java.util.Date`), shared by reference.
public final class DateBox {
    public var millis: Int64
    public init(millis: Int64) { self.millis = millis }

    /// The range of instants a date may hold (Java's and JavaScript's: ±100,000,000 days).
    public static let range: ClosedRange<Int64> = -8_640_000_000_000_000...8_640_000_000_000_000
}

/// An object of one of the registered host classes (see `HostClassRegistry`).
public protocol HostObject: AnyObject {
    /// The unqualified class name (`AttributeCondition`), used as `$class` in JSON.
    var className: String { get }
    /// The properties in constructor order, as JSON and string forms show them.
    var properties: [(String, Value)] { get }
    /// The property `name`, or nil when the class has no such property.
    func property(_ name: String) -> Value?
    /// Sets the property `name`; returns false when the class has no such property.
    func setProperty(_ name: String, _ value: Value) -> Bool
}

/// `com.waveset.object.AttributeCondition`: a condition on a user attribute that correlation
/// rules return (`attrName operator operand`).
public final class AttributeCondition: HostObject {
    public var attrName: Value
    public var operatorName: Value
    public var operand: Value

    public init(attrName: Value, operatorName: Value, operand: Value) {
        self.attrName = attrName
        self.operatorName = operatorName
        self.operand = operand
    }

    public var className: String { "AttributeCondition" }
    public var properties: [(String, Value)] {
        [("attrName", attrName), ("operator", operatorName), ("operand", operand)]
    }

    public func property(_ name: String) -> Value? {
        switch name {
        case "attrName", "attributeName": attrName
        case "operator": operatorName
        case "operand", "value": operand
        default: nil
        }
    }

    public func setProperty(_ name: String, _ value: Value) -> Bool {
        switch name {
        case "attrName", "attributeName": attrName = value
        case "operator": operatorName = value
        case "operand", "value": operand = value
        default: return false
        }
        return true
    }
}

/// `com.waveset.object.WSAttribute`: a named attribute value.
public final class WSAttribute: HostObject {
    public var name: Value
    public var value: Value

    public init(name: Value, value: Value) {
        self.name = name
        self.value = value
    }

    public var className: String { "WSAttribute" }
    public var properties: [(String, Value)] { [("name", name), ("value", value)] }

    public func property(_ key: String) -> Value? {
        switch key {
        case "name": name
        case "value": value
        default: nil
        }
    }

    public func setProperty(_ key: String, _ newValue: Value) -> Bool {
        switch key {
        case "name": name = newValue
        case "value": value = newValue
        default: return false
        }
        return true
    }
}
