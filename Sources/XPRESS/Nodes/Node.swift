import XMLSource

/// A compiled XPRESS element. Nodes are built once by `Lowering`, never change afterwards, and
/// are shared by every evaluation on every thread; all per-evaluation state lives in
/// `Evaluation` and `Scope`.
class Node: @unchecked Sendable {
    /// The element name, for traces and messages.
    let element: String
    let location: SourcePosition

    init(_ element: String, _ location: SourcePosition) {
        self.element = element
        self.location = location
    }

    /// The element's own semantics. Call `run`, which also counts steps and traces.
    func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value { .null }

    /// Evaluates the element: one step of the budget, tracing when on.
    @inline(__always)
    final func run(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        e.steps &+= 1
        if e.steps > e.stepLimit || e.tracing { return try slowRun(e, scope) }
        return try evaluate(e, scope)
    }

    private final func slowRun(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        if e.steps > e.stepLimit { throw e.stepLimitExceeded(location) }
        let value = try evaluate(e, scope)
        if e.tracing {
            e.trace("\(location): trace: <\(element)> -> \(ValueJSON.encode(value))")
        }
        return value
    }

    /// A runtime error at this element.
    final func failure(_ e: Evaluation, _ message: String) -> Interrupt {
        e.failure("<\(element)>: \(message)", at: location)
    }

    /// Integer coercion with this element's location on failure; nil for null.
    @inline(__always)
    final func integer(_ value: Value, _ e: Evaluation) throws(Interrupt) -> Int64? {
        if case .int(let n) = value { return n }
        do throws(CoercionFailure) { return try value.integerValue() } catch { throw failure(e, error.message) }
    }

    /// Integer coercion where null is 0.
    @inline(__always)
    final func integerOrZero(_ value: Value, _ e: Evaluation) throws(Interrupt) -> Int64 {
        try integer(value, e) ?? 0
    }
}

extension Array where Element == Node {
    /// Evaluates every node in order and returns their values.
    @inline(__always)
    func values(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> [Value] {
        var result: [Value] = []
        result.reserveCapacity(count)
        for node in self { result.append(try node.run(e, scope)) }
        return result
    }

    /// Evaluates every node in order and returns the last value (null when empty).
    @inline(__always)
    func sequence(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        var last = Value.null
        for node in self { last = try node.run(e, scope) }
        return last
    }
}

/// A function of evaluated arguments: most of the catalogue (strings, lists, comparisons).
final class BuiltinNode: Node, @unchecked Sendable {
    typealias Implementation = @Sendable (BuiltinNode, Evaluation, [Value]) throws(Interrupt) -> Value
    let arguments: [Node]
    let implementation: Implementation

    init(_ element: String, _ location: SourcePosition, _ arguments: [Node], _ implementation: @escaping Implementation) {
        self.arguments = arguments
        self.implementation = implementation
        super.init(element, location)
    }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        try implementation(self, e, try arguments.values(e, scope))
    }
}

/// A function of one evaluated argument that cannot fail (`notnull`, `not`, ...): the hot
/// tests of confirmation rules, evaluated without building an argument array.
final class UnaryBuiltinNode: Node, @unchecked Sendable {
    typealias Implementation = @Sendable (Value) -> Value
    let argument: Node
    let implementation: Implementation

    init(_ element: String, _ location: SourcePosition, _ argument: Node, _ implementation: @escaping Implementation) {
        self.argument = argument
        self.implementation = implementation
        super.init(element, location)
    }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        implementation(try argument.run(e, scope))
    }
}

/// A scalar constant: `<s>`, `<i>`, `<null/>`, `<String>`, `<Integer>`, `<Boolean>`.
final class ConstantNode: Node, @unchecked Sendable {
    /// Only scalars (null, integer, string, boolean), never a shared reference value.
    let value: Value

    init(_ element: String, _ location: SourcePosition, _ value: Value) {
        self.value = value
        super.init(element, location)
    }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value { value }
}

/// An immutable description of an XML object value (`<List>`, `<Map>`, `<Date>`, ...), turned
/// into a fresh value at each evaluation, since lists, maps and dates are mutable.
indirect enum Literal: Sendable {
    case scalar(ScalarLiteral)
    case list([Literal])
    case map([(String, Literal)])
    case date(String)
    case condition(Literal, Literal, Literal)
    case attribute(Literal, Literal)

    enum ScalarLiteral: Sendable {
        case null, int(Int64), string(String), bool(Bool)
    }

    func make(_ e: Evaluation, at location: SourcePosition) throws(Interrupt) -> Value {
        switch self {
        case .scalar(let s):
            switch s {
            case .null: return .null
            case .int(let n): return .int(n)
            case .string(let t): return .string(t)
            case .bool(let b): return .bool(b)
            }
        case .list(let items):
            var values: [Value] = []
            for item in items { values.append(try item.make(e, at: location)) }
            return .list(values)
        case .map(let entries):
            let map = MapBox()
            for (key, item) in entries { map[key] = try item.make(e, at: location) }
            return .map(map)
        case .date(let text):
            guard let millis = CivilTime.parse(text, zone: e.options.timeZone) else {
                throw e.failure("<Date>: '\(text)' is not a date", at: location)
            }
            return .date(millis: millis)
        case .condition(let a, let o, let v):
            return .object(AttributeCondition(attrName: try a.make(e, at: location), operatorName: try o.make(e, at: location),
                                              operand: try v.make(e, at: location)))
        case .attribute(let n, let v):
            return .object(WSAttribute(name: try n.make(e, at: location), value: try v.make(e, at: location)))
        }
    }
}

/// An XML object value that is rebuilt at each evaluation.
final class LiteralNode: Node, @unchecked Sendable {
    let literal: Literal

    init(_ element: String, _ location: SourcePosition, _ literal: Literal) {
        self.literal = literal
        super.init(element, location)
    }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        try literal.make(e, at: location)
    }
}
