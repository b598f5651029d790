import Foundation
import XMLSource

/// Settings of an evaluation. The defaults are the spec's.
public struct EvaluationOptions: Sendable {
    /// Element evaluations allowed per top-level evaluation (a runaway loop ends here).
    public var stepLimit: Int = 10_000_000
    /// Nested `rule` and `call` frames allowed (runaway recursion ends here).
    public var callDepthLimit: Int = 256
    /// Seconds one `<script>` may run.
    public var scriptTimeLimit: Double = 1.0
    /// The zone of the Date host class's local-time methods and of JavaScript's local time.
    public var timeZone: TimeZone = TimeZone(identifier: "UTC")!
    /// Trace every element evaluated (`--trace`) to `traceSink`.
    public var trace: Bool = false
    /// Where `print` and tracing write; the CLI uses standard error.
    public var traceSink: @Sendable (String) -> Void = { line in
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
    /// The message catalogue used by `<message>`: name -> text with `{0}`, `{1}` ... slots.
    public var messageCatalog: [String: String] = [:]

    public init() {}
}

/// A failure while evaluating: what went wrong, at which element, and the chain of `rule` and
/// `call` frames that led there (innermost first).
public struct RuntimeError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var location: SourcePosition
    /// The rule being evaluated when the error happened, if any.
    public var ruleName: String?
    public var frames: [Diagnostic.Note]

    public init(message: String, location: SourcePosition, ruleName: String?, frames: [Diagnostic.Note]) {
        self.message = message
        self.location = location
        self.ruleName = ruleName
        self.frames = frames
    }

    /// The error as a diagnostic (`file:line:col: error: message` plus a note per frame).
    public var diagnostic: Diagnostic {
        let where_ = ruleName.map { " (in rule '\($0)')" } ?? ""
        return Diagnostic(id: "runtime", message: message + where_, location: location, notes: frames)
    }

    public var description: String { diagnostic.description }
}

/// Control flow that leaves an element early: an error, or a `break` travelling to the
/// construct that catches it (its value waits in `Evaluation.breakValue`).
enum Interrupt: Error {
    case failure(RuntimeError)
    case breakOut(label: String?)
}

/// The library and options of evaluations, shared by reference: making an evaluation then
/// retains one object instead of copying the options.
final class EvaluationSettings: Sendable {
    let library: RuleLibrary
    let options: EvaluationOptions

    init(library: RuleLibrary, options: EvaluationOptions) {
        self.library = library
        self.options = options
    }
}

/// The state of one top-level evaluation: counters, frames, the host scope. Not shared between
/// threads; every thread evaluates with its own.
final class Evaluation {
    struct Frame {
        let kind: String
        let name: String
        let callSite: SourcePosition
    }

    let settings: EvaluationSettings
    var library: RuleLibrary { settings.library }
    var options: EvaluationOptions { settings.options }
    let host: Scope
    let stepLimit: Int
    // Every element evaluation or rule call reads and writes the state below. A class's stored
    // `var` costs a run-time exclusivity check on each access; these are only loaded, stored or
    // appended to, never held inout across a call, so the check is switched off.
    /// The top scope of the rule being evaluated: where `set` binds an unbound plain name.
    /// Neither it nor `currentRule` is retained (they are set and restored around every rule
    /// call): each points at the scope or rule of a call still running, or at `host`.
    @exclusivity(unchecked) unowned(unsafe) var ruleScope: Scope
    @exclusivity(unchecked) unowned(unsafe) var currentRule: Rule?
    @exclusivity(unchecked) var frames: [Frame] = []
    @exclusivity(unchecked) var breakValue: Value = .null
    /// Element evaluations so far.
    @exclusivity(unchecked) var steps = 0
    /// Whether every element evaluated is traced.
    @exclusivity(unchecked) var tracing: Bool
    @exclusivity(unchecked) private var scripts: ScriptEngine?

    init(settings: EvaluationSettings, host: Scope) {
        self.settings = settings
        self.host = host
        self.top = Scope(parent: host)
        self.ruleScope = host
        self.stepLimit = settings.options.stepLimit
        self.tracing = settings.options.trace
    }

    /// Runs `rule` called at the top, in the empty scope kept for that between calls of a
    /// reused evaluation (parent: the host scope, or none for a `localScope` rule). Choosing
    /// the scope here, where both are this object's constants, passes it without a retain.
    @inline(__always)
    func runAtTop(_ rule: Rule, bindArguments: (Scope) -> Void) throws(Interrupt) -> Value {
        if rule.localScope { return try rule.run(self, in: isolatedTop, bindArguments: bindArguments) }
        return try rule.run(self, in: top, bindArguments: bindArguments)
    }
    private let top: Scope
    private let isolatedTop = Scope(parent: nil)

    /// Back to the state of a new evaluation, for another call (possibly on another thread).
    func clear() {
        host.reset()
        top.reset()
        isolatedTop.reset()
        ruleScope = host
        currentRule = nil
        steps = 0
        tracing = settings.options.trace
        // Each store below releases what it replaces, which costs even when that is nothing.
        if !frames.isEmpty { frames.removeAll(keepingCapacity: true) }
        if !breakValue.isNull { breakValue = .null }
        if scripts != nil { scripts = nil }
    }

    /// The script engine of this thread, made on first use.
    func scriptEngine() throws(ScriptFailure) -> ScriptEngine {
        if let scripts { return scripts }
        let engine = try ScriptEngine.forCurrentThread(timeLimit: options.scriptTimeLimit)
        scripts = engine
        return engine
    }

    /// A runtime error at `node` with the current frames.
    func failure(_ message: String, at location: SourcePosition) -> Interrupt {
        .failure(error(message, at: location))
    }

    func error(_ message: String, at location: SourcePosition) -> RuntimeError {
        RuntimeError(message: message, location: location, ruleName: currentRule?.name, frames: frameNotes())
    }

    /// The frames as notes, innermost first; a run of identical frames (recursion) is one note.
    private func frameNotes() -> [Diagnostic.Note] {
        var groups: [(frame: Frame, count: Int)] = []
        for frame in frames.reversed() {
            if let last = groups.last, last.frame.kind == frame.kind, last.frame.name == frame.name,
               last.frame.callSite == frame.callSite {
                groups[groups.count - 1].count += 1
            } else {
                groups.append((frame, 1))
            }
        }
        let shown = 20
        var notes = groups.prefix(shown).map { group in
            Diagnostic.Note(location: group.frame.callSite,
                            message: "in \(group.frame.kind) '\(group.frame.name)' called from here"
                                + (group.count > 1 ? " (\(group.count) times)" : ""))
        }
        if groups.count > shown {
            notes.append(.init(location: nil, message: "... \(groups.count - shown) more frames"))
        }
        return notes
    }

    /// Enters a `rule` or `call` frame, enforcing the depth limit.
    func push(_ kind: String, _ name: String, at location: SourcePosition) throws(Interrupt) {
        if frames.count >= settings.options.callDepthLimit {
            throw failure("call depth limit of \(options.callDepthLimit) nested rule/function calls exceeded calling \(kind) '\(name)' (runaway recursion?)", at: location)
        }
        frames.append(Frame(kind: kind, name: name, callSite: location))
    }

    func pop() { frames.removeLast() }

    func stepLimitExceeded(_ location: SourcePosition) -> Interrupt {
        failure("step limit of \(stepLimit) element evaluations exceeded (runaway loop?)", at: location)
    }

    func trace(_ text: String) { options.traceSink(text) }
}
