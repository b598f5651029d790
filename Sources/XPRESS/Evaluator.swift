import Synchronization
import XMLSource

/// A compiled XPRESS expression, ready to evaluate any number of times on any thread.
public struct CompiledExpression: Sendable {
    let node: Node
    public var location: SourcePosition { node.location }

    /// Compiles `element` (the expression's root element). Every structural problem is
    /// reported, with positions; literal `<rule name=...>` calls must name a rule of `library`.
    public static func compile(_ element: XMLElement, file: String, library: RuleLibrary) -> Result<CompiledExpression, CompileFailure> {
        var lowering = Lowering(file: file)
        let node = lowering.expression(element)
        var diagnostics = lowering.diagnostics
        for reference in lowering.ruleReferences where library.rule(named: reference.name) == nil {
            diagnostics.append(Diagnostic(id: XPRESSDiagnosticID.unknownRule,
                                          message: "no loaded file defines a rule named '\(reference.name)'",
                                          location: reference.location))
        }
        if diagnostics.isEmpty { return .success(CompiledExpression(node: node)) }
        return .failure(CompileFailure(diagnostics: diagnostics))
    }
}

/// The problems that kept an expression from compiling.
public struct CompileFailure: Error, Sendable {
    public let diagnostics: [Diagnostic]
}

/// Evaluates expressions and rules against a rule library. Reentrant: share one evaluator
/// between threads; each evaluation keeps its own state.
public struct Evaluator: Sendable {
    public let library: RuleLibrary
    public var options: EvaluationOptions

    public init(library: RuleLibrary, options: EvaluationOptions = EvaluationOptions()) {
        self.library = library
        self.options = options
    }

    /// Evaluates `expression` with `variables` bound in the host scope.
    public func evaluate(_ expression: CompiledExpression, variables: [(String, Value)] = []) throws(RuntimeError) -> Value {
        let (evaluation, scope) = start(variables)
        do {
            return try expression.node.run(evaluation, scope)
        } catch .breakOut {
            return evaluation.breakValue  // a top-level break ends the evaluation with its value
        } catch {
            throw runtimeError(error, evaluation, at: expression.location)
        }
    }

    /// Evaluates the rule `name` with `arguments` passed as `<argument>`s would be, and
    /// `variables` bound in the host scope (visible to a rule that is not `localScope`).
    public func call(rule name: String, arguments: [(String, Value)] = [],
                     variables: [(String, Value)] = []) throws(RuntimeError) -> Value {
        guard let rule = library.rule(named: name) else {
            throw RuntimeError(message: "no rule named '\(name)' is loaded",
                               location: SourcePosition(file: "<command line>", line: 1, column: 1), ruleName: nil, frames: [])
        }
        let (evaluation, scope) = start(variables)
        do {
            return try rule.invoke(evaluation, symbols: arguments.map { Symbol($0.0) }, values: arguments.map(\.1), caller: scope, callSite: nil)
        } catch {
            throw runtimeError(error, evaluation, at: rule.location)
        }
    }

    /// Prepares repeated calls of the rule `name` with arguments named `argumentNames`, so that
    /// each call does no name lookups: what the engine uses for millions of accounts.
    public func prepare(rule name: String, argumentNames: [String]) -> PreparedRuleCall? {
        library.rule(named: name).map {
            PreparedRuleCall(settings: EvaluationSettings(library: library, options: options), rule: $0,
                             symbols: argumentNames.map(Symbol.init))
        }
    }

    fileprivate func start(_ variables: [(String, Value)]) -> (Evaluation, Scope) {
        let host = Scope(parent: nil)
        for (name, value) in variables { host.bind(Symbol(name), value) }
        let evaluation = Evaluation(settings: EvaluationSettings(library: library, options: options), host: host)
        let top = Scope(parent: host)
        evaluation.ruleScope = top
        return (evaluation, top)
    }

    private func runtimeError(_ interrupt: Interrupt, _ evaluation: Evaluation, at location: SourcePosition) -> RuntimeError {
        switch interrupt {
        case .failure(let error): return error
        case .breakOut(let label):
            return evaluation.error("<break\(label.map { " name='\($0)'" } ?? "")> outside any construct it can leave", at: location)
        }
    }
}

/// A rule and its argument names resolved once; `call` passes values in the same order.
/// Calls may run on any number of threads at once.
public struct PreparedRuleCall: Sendable {
    let rule: Rule
    let symbols: [Symbol]
    let spares: SpareEvaluations

    init(settings: EvaluationSettings, rule: Rule, symbols: [Symbol]) {
        self.rule = rule
        self.symbols = symbols
        self.spares = SpareEvaluations(settings: settings)
    }

    /// Evaluates the rule with `values` for the prepared argument names.
    public func call(_ values: [Value]) throws(RuntimeError) -> Value {
        try call(binding: { rule.bind(symbols, values, in: $0) })
    }

    /// Evaluates the rule with `value` for the first prepared argument name, without the
    /// array the general call takes.
    public func call(_ value: Value) throws(RuntimeError) -> Value {
        try call(binding: { scope in
            if let symbol = symbols.first { rule.bind(symbol, value, in: scope) }
        })
    }

    /// Evaluates the rule with `first` and `second` for the first two prepared argument names.
    public func call(_ first: Value, _ second: Value) throws(RuntimeError) -> Value {
        try call(binding: { scope in
            if symbols.count > 0 { rule.bind(symbols[0], first, in: scope) }
            if symbols.count > 1 { rule.bind(symbols[1], second, in: scope) }
        })
    }

    @inline(__always)
    private func call(binding bindArguments: (Scope) -> Void) throws(RuntimeError) -> Value {
        let held = spares.take()
        defer { spares.give(held) }
        // The evaluation is borrowed from `held` for the call, not retained and released again.
        let outcome = held._withUnsafeGuaranteedRef { evaluation in
            Result { () throws(RuntimeError) -> Value in
                do throws(Interrupt) {
                    return try evaluation.runAtTop(rule, bindArguments: bindArguments)
                } catch {
                    switch error {
                    case .failure(let failure): throw failure
                    case .breakOut: throw evaluation.error("<break> outside any construct it can leave", at: rule.location)
                    }
                }
            }
        }
        return try outcome.get()
    }
}

/// The finished evaluation kept for the next call of a prepared rule: a call then starts from
/// a cleared evaluation instead of allocating one and its scopes. A call takes it with one
/// atomic exchange; a call that finds it taken (another thread is calling) makes its own.
final class SpareEvaluations: Sendable {
    private let settings: EvaluationSettings
    /// The address of a retained `Evaluation`, or 0 while a call has it.
    private let spare = Atomic<UInt>(0)

    init(settings: EvaluationSettings) { self.settings = settings }

    deinit {
        if let raw = UnsafeRawPointer(bitPattern: spare.load(ordering: .acquiring)) { Unmanaged<Evaluation>.fromOpaque(raw).release() }
    }

    /// The spare, or a new evaluation; either way the caller owns one reference to it, which
    /// `give` takes back.
    func take() -> Unmanaged<Evaluation> {
        if let raw = UnsafeRawPointer(bitPattern: spare.exchange(0, ordering: .acquiring)) {
            return Unmanaged<Evaluation>.fromOpaque(raw)
        }
        return Unmanaged.passRetained(Evaluation(settings: settings, host: Scope(parent: nil)))
    }

    /// Clears `evaluation` and keeps it as the spare, or frees it when another is kept.
    func give(_ evaluation: Unmanaged<Evaluation>) {
        evaluation._withUnsafeGuaranteedRef { $0.clear() }
        if !spare.compareExchange(expected: 0, desired: UInt(bitPattern: evaluation.toOpaque()), ordering: .releasing).exchanged {
            evaluation.release()
        }
    }
}
