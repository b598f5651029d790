import Foundation
import XMLSource

/// The only classes `<new>` and `<invoke>` can reach. Nothing here touches files, processes,
/// the network or reflection. `Docs/HOST-CLASSES.md` documents each method.
public enum HostClass: String, CaseIterable, Sendable {
    case date = "java.util.Date"
    case arrayList = "java.util.ArrayList"
    case hashMap = "java.util.HashMap"
    case string = "java.lang.String"
    case integer = "java.lang.Integer"
    case attributeCondition = "com.waveset.object.AttributeCondition"
    case wsAttribute = "com.waveset.object.WSAttribute"

    /// The class of a qualified or unqualified name (`java.util.Date`, `Date`).
    public init?(named name: String) {
        let trimmed = name.trimmingXMLWhitespace
        if let exact = HostClass(rawValue: trimmed) { self = exact; return }
        guard let match = HostClass.allCases.first(where: { $0.shortName == trimmed }) else { return nil }
        self = match
    }

    public var shortName: String { String(rawValue.split(separator: ".").last!) }

    /// Instance methods (called with a target).
    public var instanceMethods: Set<String> {
        switch self {
        case .date:
            ["getDay", "getDate", "getMonth", "getFullYear", "getYear", "getHours", "getMinutes", "getSeconds",
             "getTime", "setDate", "setMonth", "setFullYear", "setYear", "setHours", "setMinutes", "setSeconds",
             "setTime", "before", "after", "compareTo", "equals", "toString"]
        case .arrayList:
            ["add", "addAll", "get", "set", "size", "isEmpty", "contains", "indexOf", "remove", "clear", "equals", "toString"]
        case .hashMap:
            ["put", "get", "containsKey", "remove", "size", "isEmpty", "keySet", "values", "clear", "equals", "toString"]
        case .string:
            ["toUpperCase", "toLowerCase", "startsWith", "endsWith", "substring", "indexOf", "length", "trim",
             "replace", "equals", "equalsIgnoreCase", "toString"]
        case .integer:
            ["intValue", "longValue", "equals", "toString"]
        case .attributeCondition:
            ["getAttrName", "getOperator", "getOperand", "setAttrName", "setOperator", "setOperand", "equals", "toString"]
        case .wsAttribute:
            ["getName", "getValue", "setName", "setValue", "equals", "toString"]
        }
    }

    /// Static methods (called with `class=`).
    public var staticMethods: Set<String> {
        switch self {
        case .integer: ["parseInt", "valueOf", "toString"]
        case .string: ["valueOf"]
        default: []
        }
    }

    /// True when some registered class has an instance or static method of that name.
    public static func anyClassHasMethod(_ name: String) -> Bool {
        allCases.contains { $0.instanceMethods.contains(name) || $0.staticMethods.contains(name) }
    }

    /// The class a value is an instance of, for method dispatch.
    static func of(_ value: Value) -> HostClass? {
        switch value {
        case .date: .date
        case .list: .arrayList
        case .map: .hashMap
        case .string: .string
        case .int: .integer
        case .object(let o): o is AttributeCondition ? .attributeCondition : o is WSAttribute ? .wsAttribute : nil
        case .null, .bool: nil
        }
    }
}

/// Construction, method calls and type tests on host classes.
enum HostClassRegistry {
    /// Whether `value` is an instance of `typeName` (`String`, `Integer`, `List`, `Map`, `Date`,
    /// `Boolean`, or a registered class, short or qualified).
    static func isInstance(_ value: Value, of typeName: String) -> Bool {
        let short = String(typeName.split(separator: ".").last ?? "")
        switch (short, value) {
        case ("String", .string), ("Integer", .int), ("Long", .int), ("Number", .int), ("Boolean", .bool),
             ("List", .list), ("ArrayList", .list), ("Collection", .list), ("Map", .map), ("HashMap", .map),
             ("Date", .date), ("Object", _):
            return !value.isNull
        case ("AttributeCondition", .object(let o)): return o is AttributeCondition
        case ("WSAttribute", .object(let o)): return o is WSAttribute
        default: return false
        }
    }

    /// `<new class=...>`.
    static func construct(_ hostClass: HostClass, _ args: [Value], _ node: Node, _ e: Evaluation) throws(Interrupt) -> Value {
        func arity(_ allowed: ClosedRange<Int>) throws(Interrupt) {
            guard allowed.contains(args.count) else {
                throw node.failure(e, "\(hostClass.shortName) has no constructor taking \(args.count) argument(s)")
            }
        }
        switch hostClass {
        case .date:
            try arity(0...1)
            guard let first = args.first else { return .date(millis: Int64(Date().timeIntervalSince1970 * 1000)) }
            if case .date(let d) = first { return .date(millis: d.millis) }
            if case .string(let s) = first, let millis = CivilTime.parse(s, zone: e.options.timeZone) { return try date(millis, node, e) }
            return try date(try node.integerOrZero(first, e), node, e)
        case .arrayList:
            try arity(0...1)
            return .list(args.first.map { Functions.elements($0) } ?? [])
        case .hashMap:
            try arity(0...1)
            guard case .map(let m)? = args.first else { return .map(MapBox()) }
            return .map(MapBox(Array(m.entries)))
        case .string:
            try arity(0...1)
            return .string(args.first?.stringValue ?? "")
        case .integer:
            try arity(1...1)
            return .int(try parseInt(args[0], node, e))
        case .attributeCondition:
            try arity(0...3)
            return .object(AttributeCondition(attrName: args.count > 0 ? args[0] : .null,
                                              operatorName: args.count > 1 ? args[1] : .null,
                                              operand: args.count > 2 ? args[2] : .null))
        case .wsAttribute:
            try arity(0...2)
            return .object(WSAttribute(name: args.count > 0 ? args[0] : .null, value: args.count > 1 ? args[1] : .null))
        }
    }

    /// Java `Integer.parseInt`: no padding, 32-bit range, else NumberFormatException.
    private static func parseInt(_ value: Value, _ node: Node, _ e: Evaluation) throws(Interrupt) -> Int64 {
        if case .int(let n) = value { return n }
        let text = value.stringValue
        guard !text.unicodeScalars.contains(where: { $0.value <= 0x20 }), let n = Value.parseJavaInteger(text),
              n >= Int64(Int32.min), n <= Int64(Int32.max) else {
            throw node.failure(e, "'\(text)' is not a 32-bit integer (NumberFormatException)")
        }
        return n
    }

    /// A date at `millis`, refused outside the range Java and JavaScript dates can hold.
    static func date(_ millis: Int64, _ node: Node, _ e: Evaluation) throws(Interrupt) -> Value {
        guard DateBox.range.contains(millis) else { throw node.failure(e, "\(millis) ms is outside the range of dates") }
        return .date(millis: millis)
    }

    /// `<invoke class=... name=...>`: a static method.
    static func invokeStatic(_ hostClass: HostClass, _ method: String, _ args: [Value], _ node: Node, _ e: Evaluation) throws(Interrupt) -> Value {
        guard hostClass.staticMethods.contains(method) else {
            throw node.failure(e, "\(hostClass.rawValue) has no static method '\(method)'")
        }
        switch (hostClass, method) {
        case (.integer, "parseInt"), (.integer, "valueOf"):
            guard args.count == 1 else { throw node.failure(e, "\(method) takes 1 argument") }
            return .int(try parseInt(args[0], node, e))
        case (.integer, "toString"), (.string, "valueOf"):
            return .string(args.first?.stringValue ?? "null")
        default:
            throw node.failure(e, "\(hostClass.rawValue) has no static method '\(method)'")
        }
    }

    /// `<invoke name=...>` with a target: an instance method of the target's class.
    static func invoke(_ target: Value, _ method: String, _ args: [Value], _ node: Node, _ e: Evaluation) throws(Interrupt) -> Value {
        guard let hostClass = HostClass.of(target) else {
            throw node.failure(e, "cannot call '\(method)' on a \(target.kindName)")
        }
        guard hostClass.instanceMethods.contains(method) else {
            throw node.failure(e, "\(hostClass.rawValue) has no method '\(method)'")
        }
        func argument(_ index: Int) throws(Interrupt) -> Value {
            guard index < args.count else { throw node.failure(e, "\(method) needs \(index + 1) argument(s), \(args.count) given") }
            return args[index]
        }
        func int(_ index: Int) throws(Interrupt) -> Int64 { try node.integerOrZero(try argument(index), e) }
        switch method {
        case "equals": return .bool(target.strictlyEquals(try argument(0)))
        case "toString": return .string(target.stringValue)
        default: break
        }
        switch target {
        case .date(let date): return try invokeDate(date, method, int, argument, node, e)
        case .list(let list):
            switch method {
            case "add":
                if args.count >= 2 {
                    let position = Int(try int(0))
                    guard position >= 0 && position <= list.items.count else { throw node.failure(e, "index \(position) out of range") }
                    list.items.insert(args[1], at: position)
                    return .null
                }
                list.items.append(try argument(0)); return .bool(true)
            case "addAll": list.items.append(contentsOf: Functions.elements(try argument(0))); return .bool(true)
            case "remove" where args.first.map({ if case .int = $0 { false } else { true } }) ?? true:  // remove(Object)
                let item = try argument(0)
                guard let position = list.items.firstIndex(where: { $0.strictlyEquals(item) }) else { return .bool(false) }
                list.items.remove(at: position)
                return .bool(true)
            case "get", "set", "remove":  // by index
                let position = Int(try int(0))
                guard position >= 0 && position < list.items.count else { throw node.failure(e, "index \(position) out of range (size \(list.items.count))") }
                let old = list.items[position]
                if method == "set" { list.items[position] = try argument(1) }
                if method == "remove" { list.items.remove(at: position) }
                return old
            case "size": return .int(Int64(list.items.count))
            case "isEmpty": return .bool(list.items.isEmpty)
            case "contains": return .bool(Functions.contains(list.items, try argument(0)))
            case "indexOf":
                let item = try argument(0)
                return .int(Int64(list.items.firstIndex { $0.strictlyEquals(item) } ?? -1))
            case "clear": list.items.removeAll(); return .null
            default: break
            }
        case .map(let map):
            switch method {
            case "put": let key = try argument(0).stringValue; let old = map[key] ?? .null; map[key] = try argument(1); return old
            case "get": return map[try argument(0).stringValue] ?? .null
            case "containsKey": return .bool(map[try argument(0).stringValue] != nil)
            case "remove": let key = try argument(0).stringValue; let old = map[key] ?? .null; map[key] = nil; return old
            case "size": return .int(Int64(map.count))
            case "isEmpty": return .bool(map.count == 0)
            case "keySet": return .list(map.keys.map { .string($0) })
            case "values": return .list(map.values)
            case "clear": for key in map.keys { map[key] = nil }; return .null
            default: break
            }
        case .string(let s):
            switch method {
            case "toUpperCase": return .string(s.uppercased())
            case "toLowerCase": return .string(s.lowercased())
            case "startsWith": return .bool(JavaString.hasPrefix(s, try argument(0).stringValue))
            case "endsWith": return .bool(JavaString.hasSuffix(s, try argument(0).stringValue))
            case "substring":
                let start = try int(0)
                let units = Int64(s.utf16.count)
                let end = args.count > 1 ? try int(1) : units
                guard start >= 0, end <= units, start <= end else {
                    throw node.failure(e, "substring(\(start), \(end)) out of range for a string of length \(units)")
                }
                return .string(JavaString.substring(s, start: start, length: end - start))
            case "indexOf": return .int(JavaString.indexOf(s, try argument(0).stringValue, from: args.count > 1 ? try int(1) : 0))
            case "length": return .int(Int64(s.utf16.count))
            case "trim": return .string(JavaString.trim(s))
            case "replace": return .string(JavaString.replace(s, try argument(0).stringValue, try argument(1).stringValue))
            case "equalsIgnoreCase": return .bool(JavaString.compareIgnoringCase(s, try argument(0).stringValue) == 0)
            default: break
            }
        case .int(let n):
            if method == "intValue" || method == "longValue" { return .int(n) }
        case .object(let object):
            let property = String(method.dropFirst(3)).prefix(1).lowercased() + String(method.dropFirst(4))
            if method.hasPrefix("get") { return object.property(property) ?? .null }
            if method.hasPrefix("set") { _ = object.setProperty(property, try argument(0)); return .null }
        default: break
        }
        throw node.failure(e, "\(hostClass.rawValue) has no method '\(method)'")
    }

    /// java.util.Date's methods; local-time fields are read and written in the configured zone.
    private static func invokeDate(_ date: DateBox, _ method: String, _ int: (Int) throws(Interrupt) -> Int64,
                                   _ argument: (Int) throws(Interrupt) -> Value, _ node: Node, _ e: Evaluation) throws(Interrupt) -> Value {
        /// Java's setters take an `int`.
        func field(_ index: Int) throws(Interrupt) -> Int64 {
            let value = try int(index)
            guard value >= Int64(Int32.min), value <= Int64(Int32.max) else { throw node.failure(e, "\(method)(\(value)): not a 32-bit integer") }
            return value
        }
        let zone = e.options.timeZone
        var f = CivilTime.fields(millis: date.millis, in: zone)
        switch method {
        case "getTime": return .int(date.millis)
        case "getDay": return .int(f.weekday)
        case "getDate": return .int(f.day)
        case "getMonth": return .int(f.month - 1)
        case "getYear": return .int(f.year - 1900)
        case "getFullYear": return .int(f.year)
        case "getHours": return .int(f.hour)
        case "getMinutes": return .int(f.minute)
        case "getSeconds": return .int(f.second)
        case "before", "after", "compareTo":
            guard case .date(let other) = try argument(0) else { return .bool(false) }
            switch method {
            case "before": return .bool(date.millis < other.millis)
            case "after": return .bool(date.millis > other.millis)
            default: return .int(date.millis < other.millis ? -1 : date.millis == other.millis ? 0 : 1)
            }
        case "setTime":
            let millis = try int(0)
            guard DateBox.range.contains(millis) else { throw node.failure(e, "setTime(\(millis)): outside the range of dates") }
            date.millis = millis
            return .null
        case "setDate": f.day = try field(0)
        case "setMonth": f.month = try field(0) + 1
        case "setYear": f.year = try field(0) + 1900
        case "setFullYear": f.year = try field(0)
        case "setHours": f.hour = try field(0)
        case "setMinutes": f.minute = try field(0)
        case "setSeconds": f.second = try field(0)
        default: return .null
        }
        let millis = CivilTime.millis(local: f, in: zone)
        guard DateBox.range.contains(millis) else { throw node.failure(e, "\(method) moves the date outside the range of dates") }
        date.millis = millis
        return .null
    }
}

/// `<new class='...'>`.
final class NewNode: Node, @unchecked Sendable {
    enum ClassName: Sendable {
        case known(HostClass)
        case computed(Node)
    }
    let className: ClassName
    let arguments: [Node]

    init(_ location: SourcePosition, className: ClassName, arguments: [Node]) {
        self.className = className
        self.arguments = arguments
        super.init("new", location)
    }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        let hostClass: HostClass
        switch className {
        case .known(.attributeCondition) where arguments.count == 3:
            // What every correlation rule builds per account: no argument array.
            return .object(AttributeCondition(attrName: try arguments[0].run(e, scope), operatorName: try arguments[1].run(e, scope),
                                              operand: try arguments[2].run(e, scope)))
        case .known(let c): hostClass = c
        case .computed(let node):
            let name = try node.run(e, scope).stringValue
            guard let c = HostClass(named: name) else { throw failure(e, "class '\(name)' is not available to rules") }
            hostClass = c
        }
        return try HostClassRegistry.construct(hostClass, try arguments.values(e, scope), self, e)
    }
}

/// `<invoke name='m'>`: a static call with `class=`, else a call on the first child's value.
final class InvokeNode: Node, @unchecked Sendable {
    let staticClass: HostClass?
    let method: String
    let target: Node?
    let arguments: [Node]

    init(_ location: SourcePosition, staticClass: HostClass?, method: String, target: Node?, arguments: [Node]) {
        self.staticClass = staticClass
        self.method = method
        self.target = target
        self.arguments = arguments
        super.init("invoke", location)
    }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        if let staticClass {
            return try HostClassRegistry.invokeStatic(staticClass, method, try arguments.values(e, scope), self, e)
        }
        let targetValue = try target?.run(e, scope) ?? .null
        return try HostClassRegistry.invoke(targetValue, method, try arguments.values(e, scope), self, e)
    }
}
