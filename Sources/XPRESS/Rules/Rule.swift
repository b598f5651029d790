import XMLSource

/// A `<Rule>` object compiled for evaluation.
public final class Rule: Sendable {
    /// A declared `<RuleArgument>`.
    public struct Argument: Sendable {
        public let name: String
        let symbol: Symbol
        /// The default: a literal `value`, or an expression child.
        let defaultValue: Node?
        public let locked: Bool
        public var hasDefault: Bool { defaultValue != nil }
    }

    /// The name rules call it by: `Name`, or `Library:Name` for a rule inside a
    /// Configuration's `<Library>`.
    public let name: String
    public let subtype: String?
    public let localScope: Bool
    public let arguments: [Argument]
    public let location: SourcePosition
    let body: Node
    /// The rules it calls by a literal name.
    let calledRules: [String]
    /// The first of its elements whose evaluation may differ from one call to the next with
    /// the same arguments, or leave something behind; nil when every element is a function of
    /// the arguments alone. The rules it calls are not looked at (`RuleLibrary.repeatability`).
    let unrepeatableElement: Unrepeatable?
    /// A digest of the `<Rule>` element as written (`XMLElement.sourceDigest`).
    let sourceDigest: UInt64

    /// An element that makes a rule unrepeatable, and why.
    struct Unrepeatable: Sendable {
        let element: String
        let why: String
        let location: SourcePosition
    }

    /// The arguments with a default, and the locked ones: both usually empty, looked at on
    /// every call.
    private let defaults: [(Symbol, Node)]
    private let locked: [Symbol]

    init(name: String, subtype: String?, localScope: Bool, arguments: [Argument], body: Node, location: SourcePosition,
         calledRules: [String], unrepeatableElement: Unrepeatable?, sourceDigest: UInt64) {
        self.name = name
        self.subtype = subtype
        self.localScope = localScope
        self.arguments = arguments
        self.body = body
        self.location = location
        self.calledRules = calledRules
        self.unrepeatableElement = unrepeatableElement
        self.sourceDigest = sourceDigest
        defaults = arguments.compactMap { argument in argument.defaultValue.map { (argument.symbol, $0) } }
        locked = arguments.filter(\.locked).map(\.symbol)
    }

    /// Evaluates the rule: a new scope (whose parent is the caller's, unless `localScope`),
    /// defaults first, then every passed argument that is not locked: `values[i]` under
    /// `symbols[i]` (extra names without a value are left unbound).
    /// `callSite` nil: the evaluation starts here (no caller frame to show in errors).
    func invoke(_ e: Evaluation, symbols: [Symbol], values: [Value], caller: Scope,
                callSite: SourcePosition?) throws(Interrupt) -> Value {
        if let callSite { try e.push("rule", name, at: callSite) }
        defer { if callSite != nil { e.pop() } }
        return try run(e, in: Scope(parent: localScope ? nil : caller)) { bind(symbols, values, in: $0) }
    }

    /// Evaluates the rule in `scope`, an empty scope with the parent the rule should have:
    /// defaults first, then `bindArguments` binds the passed arguments (through
    /// `bind(_:_:in:)`), so that a caller with one or two values needs no array.
    @inline(__always)
    func run(_ e: Evaluation, in scope: Scope, bindArguments: (Scope) -> Void) throws(Interrupt) -> Value {
        // Kept unretained, as the evaluation keeps them: the caller's frame holds both.
        unowned(unsafe) let outerScope = e.ruleScope
        unowned(unsafe) let outerRule = e.currentRule
        e.ruleScope = scope
        e.currentRule = self
        defer { (e.ruleScope, e.currentRule) = (outerScope, outerRule) }
        do {
            if !defaults.isEmpty {
                for (symbol, defaultValue) in defaults { scope.bind(symbol, try defaultValue.run(e, scope)) }
            }
            bindArguments(scope)
            return try body.run(e, scope)
        } catch .breakOut {
            return e.breakValue  // a break never crosses a rule
        }
    }

    /// Binds `values[i]` under `symbols[i]` in the rule's `scope` (extra names without a value
    /// are left unbound), except the locked arguments.
    func bind(_ symbols: [Symbol], _ values: [Value], in scope: Scope) {
        for index in 0..<min(symbols.count, values.count) { bind(symbols[index], values[index], in: scope) }
    }

    /// Binds a passed argument in the rule's `scope`, unless the argument is locked.
    @inline(__always)
    func bind(_ symbol: Symbol, _ value: Value, in scope: Scope) {
        if locked.isEmpty || !locked.contains(symbol) { scope.bind(symbol, value) }
    }
}

/// The rules available to an evaluation, by name. Immutable; share it between threads.
public final class RuleLibrary: Sendable {
    private let rules: [String: Rule]

    /// The rules by name, as `RuleLoader.link` makes them (reporting duplicates).
    init(byName: [String: Rule]) { rules = byName }

    /// An empty library.
    public static let empty = RuleLibrary(byName: [:])

    public func rule(named name: String) -> Rule? { rules[name] }

    /// All rule names, sorted.
    public var names: [String] { rules.keys.sorted() }

    /// Whether a call of the rule `name` is bound to give the same result as an earlier call
    /// with the same arguments and to leave nothing behind, so that its caller may keep the
    /// result instead of calling again. It is not when the rule, or a rule it calls, runs a
    /// `<script>`, reads the clock (`<new class='Date'/>` without an argument), writes to the
    /// log (`<print>`, `<trace>`, `<breakpoint>`) or calls a rule or makes a class whose name it
    /// computes; nor when a rule it calls is not loaded.
    public func repeatability(ofRule name: String) -> Repeatability {
        var fingerprint = StableHasher()
        var visited: Set<String> = []
        var next = [name]
        while let current = next.popLast() {
            guard visited.insert(current).inserted else { continue }
            guard let rule = rules[current] else { return .unrepeatable(reason: "rule '\(current)' is not loaded") }
            if let element = rule.unrepeatableElement {
                return .unrepeatable(reason: "<\(element.element)> at \(element.location) in rule '\(rule.name)': \(element.why)")
            }
            fingerprint.combine(rule.name)
            fingerprint.combine(rule.sourceDigest)
            next.append(contentsOf: rule.calledRules.reversed())
        }
        return .repeatable(fingerprint: fingerprint.value)
    }
}

/// Whether a rule's result may be kept and reused (`RuleLibrary.repeatability(ofRule:)`).
public enum Repeatability: Sendable, Equatable {
    /// Its fingerprint: a digest of the source of the rule and of every rule it calls, the
    /// same in every process and version. A different fingerprint means the rules changed.
    case repeatable(fingerprint: UInt64)
    /// Why not: the element, where it is, and what it does.
    case unrepeatable(reason: String)
}
