import ArgumentParser
import Foundation
import XMLSource
import XPRESS

/// `xpress`: evaluate XPRESS expressions and rules from the command line (spec section 6).
@main
struct XpressCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xpress",
        abstract: "Evaluate XPRESS expressions and rules.",
        discussion: "Results are printed as JSON on stdout. Errors go to stderr as file:line:col: error: message. Exit codes: 0 success, 1 load or runtime error, 64 usage.",
        subcommands: [Eval.self, Run.self])
}

/// Options shared by `eval` and `run`.
struct EvaluationArguments: ParsableArguments {
    @Option(name: .customLong("rules"), help: "Rule files or directories to load (repeatable). The standard library is always loaded.")
    var rulePaths: [String] = []

    @Option(name: .customLong("arg"), help: ArgumentHelp("Bind NAME to the string TEXT (repeatable).", valueName: "NAME=TEXT"))
    var textArguments: [String] = []

    @Option(name: .customLong("arg-json"), help: ArgumentHelp("Bind NAME to a JSON value (repeatable).", valueName: "NAME=JSON"))
    var jsonArguments: [String] = []

    @Option(name: .customLong("time-zone"), help: "Zone for date methods (default UTC).")
    var timeZone: String = "UTC"

    @Flag(name: .customLong("trace"), help: "Trace evaluation to stderr.")
    var trace = false

    @Option(name: .customLong("step-limit"), help: "Element evaluations allowed (default 10000000).")
    var stepLimit: Int?

    @Option(name: .customLong("script-time-limit"), help: "Seconds a <script> may run (default 1).")
    var scriptTimeLimit: Double?

    func validate() throws {
        guard TimeZone(identifier: timeZone) != nil else { throw ValidationError("unknown time zone '\(timeZone)'") }
        _ = try bindings()
    }

    /// The `--arg` and `--arg-json` bindings, in the order given.
    func bindings() throws -> [(String, Value)] {
        var result: [(String, Value)] = []
        for text in textArguments {
            let (name, value) = try split(text, "--arg")
            result.append((name, .string(value)))
        }
        for text in jsonArguments {
            let (name, json) = try split(text, "--arg-json")
            do {
                result.append((name, try ValueJSON.decode(json)))
            } catch {
                throw ValidationError("--arg-json \(name): \(error)")
            }
        }
        return result
    }

    private func split(_ text: String, _ option: String) throws -> (String, String) {
        guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
            throw ValidationError("\(option) takes NAME=VALUE, got '\(text)'")
        }
        return (String(text[..<equals]), String(text[text.index(after: equals)...]))
    }

    var options: EvaluationOptions {
        var options = EvaluationOptions()
        options.timeZone = TimeZone(identifier: timeZone)!
        options.trace = trace
        if let stepLimit { options.stepLimit = stepLimit }
        if let scriptTimeLimit { options.scriptTimeLimit = scriptTimeLimit }
        return options
    }

    /// Loads the rule files; prints every load problem and fails when there is an error.
    func loadLibrary() throws -> RuleLibrary {
        let files: [String]
        do { files = try RuleLoader.files(in: rulePaths) } catch { throw fail(["error: \(error)"]) }
        let documents = files.map { RuleLoader.load(path: $0) }
        let (library, linkProblems) = RuleLoader.link(documents)
        let problems = (documents.flatMap(\.diagnostics) + linkProblems)
        report(problems)
        if problems.contains(where: { $0.severity == .error }) { throw ExitCode(1) }
        return library
    }

    func prepare() {
        JavaScriptTimeZone.use(options.timeZone)
    }
}

/// Writes diagnostics to standard error, sorted by position.
func report(_ diagnostics: [Diagnostic]) {
    for diagnostic in diagnostics.sorted(by: { ($0.location, $0.id) < ($1.location, $1.id) }) {
        writeError(diagnostic.description)
    }
}

func writeError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// Prints `lines` to standard error and gives the exit code for a load or runtime error.
func fail(_ lines: [String]) -> ExitCode {
    lines.forEach(writeError)
    return ExitCode(1)
}

func printResult(_ value: Value) {
    print(ValueJSON.encode(value))
}

extension XpressCommand {
    struct Eval: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "eval", abstract: "Evaluate one expression (the file's root element) and print its JSON value.")

        @OptionGroup var common: EvaluationArguments

        @Argument(help: "The expression file, or - for standard input.")
        var file: String

        func run() throws {
            common.prepare()
            let library = try common.loadLibrary()
            let name = file == "-" ? "<stdin>" : file
            let bytes: [UInt8]
            if file == "-" {
                bytes = [UInt8](FileHandle.standardInput.readDataToEndOfFile())
            } else {
                guard let data = FileManager.default.contents(atPath: file) else { throw fail(["\(file):1:1: error: cannot read the file"]) }
                bytes = [UInt8](data)
            }
            let document = XMLParser.parse(bytes, file: name)
            report(document.diagnostics)
            guard let root = document.root else { throw ExitCode(1) }
            let expression: CompiledExpression
            switch CompiledExpression.compile(root, file: name, library: library) {
            case .success(let compiled): expression = compiled
            case .failure(let failure):
                report(failure.diagnostics)
                throw ExitCode(1)
            }
            let evaluator = Evaluator(library: library, options: common.options)
            let variables = try common.bindings()
            do throws(RuntimeError) {
                printResult(try evaluator.evaluate(expression, variables: variables))
            } catch {
                throw fail([error.description])
            }
        }
    }

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run", abstract: "Evaluate a rule with --arg/--arg-json as its arguments and print its JSON result.")

        @OptionGroup var common: EvaluationArguments

        @Option(name: .customLong("rule"), help: "The rule to evaluate (Library:Rule for a library rule).")
        var rule: String

        func run() throws {
            common.prepare()
            let library = try common.loadLibrary()
            guard library.rule(named: rule) != nil else {
                throw fail(["error: no rule named '\(rule)' is loaded (loaded: \(library.names.count) rules; check --rules)"])
            }
            let evaluator = Evaluator(library: library, options: common.options)
            let arguments = try common.bindings()
            do throws(RuntimeError) {
                printResult(try evaluator.call(rule: rule, arguments: arguments))
            } catch {
                throw fail([error.description])
            }
        }
    }
}
