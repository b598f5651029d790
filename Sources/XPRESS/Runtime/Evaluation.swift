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
    public var location: SourceLocation
    /// The rule being evaluated when the error happened, if any.
    public var ruleName: String?
    public var frames: [Diagnostic.Note]

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

/// The state of one top-level evaluation: counters, frames, the host scope. Not shared between
/// threads; every thread evaluates with its own.
final class Evaluation {
    struct Frame {
        let kind: String
        let name: String
        let callSite: SourceLocation
    }

    let library: RuleLibrary
    let options: EvaluationOptions
    let host: Scope
    /// The top scope of the rule being evaluated: where `set` binds an unbound plain name.
    var ruleScope: Scope
    var currentRule: String?
    var steps = 0
    let stepLimit: Int
    var frames: [Frame] = []
    var breakValue: Value = .null
    var tracing: Bool
    private var scripts: ScriptEngine?

    init(library: RuleLibrary, options: EvaluationOptions, host: Scope) {
        self.library = library
        self.options = options
        self.host = host
        self.ruleScope = host
        self.stepLimit = options.stepLimit
        self.tracing = options.trace
    }

    /// The script engine of this thread, made on first use.
    var scriptEngine: ScriptEngine {
        if let scripts { return scripts }
        let engine = ScriptEngine.forCurrentThread(timeLimit: options.scriptTimeLimit)
        scripts = engine
        return engine
    }

    /// A runtime error at `node` with the current frames.
    func failure(_ message: String, at location: SourceLocation) -> Interrupt {
        .failure(error(message, at: location))
    }

    func error(_ message: String, at location: SourceLocation) -> RuntimeError {
        RuntimeError(message: message, location: location, ruleName: currentRule, frames: frameNotes())
    }

    private func frameNotes() -> [Diagnostic.Note] {
        let shown = 12
        var notes: [Diagnostic.Note] = []
        for (depth, frame) in frames.reversed().enumerated() {
            if depth == shown && frames.count > shown + 2 {
                notes.append(.init(location: nil, message: "... \(frames.count - shown - 1) more frames ..."))
                continue
            }
            if depth > shown && depth < frames.count - 1 { continue }
            notes.append(.init(location: frame.callSite, message: "in \(frame.kind) '\(frame.name)' called from here"))
        }
        return notes
    }

    /// Enters a `rule` or `call` frame, enforcing the depth limit.
    func push(_ kind: String, _ name: String, at location: SourceLocation) throws(Interrupt) {
        if frames.count >= options.callDepthLimit {
            throw failure("call depth limit of \(options.callDepthLimit) nested rule/function calls exceeded calling \(kind) '\(name)' (runaway recursion?)", at: location)
        }
        frames.append(Frame(kind: kind, name: name, callSite: location))
    }

    func pop() { frames.removeLast() }

    func stepLimitExceeded(_ location: SourceLocation) -> Interrupt {
        failure("step limit of \(stepLimit) element evaluations exceeded (runaway loop?)", at: location)
    }

    func trace(_ text: String) { options.traceSink(text) }
}
