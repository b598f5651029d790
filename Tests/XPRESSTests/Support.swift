import Foundation
import Testing
import XMLSource
@testable import XPRESS

/// Loads `rules` (a `<Waveset>` body) plus the standard library.
func library(_ rules: String = "") throws -> RuleLibrary {
    let document = RuleLoader.load(Array("<Waveset>\(rules)</Waveset>".utf8), file: "rules.xml")
    let (library, problems) = RuleLoader.link([document])
    let all = document.diagnostics + problems
    guard all.isEmpty else { throw CompileFailure(diagnostics: all) }
    return library
}

/// Compiles `xml` (one expression) against `library`.
func compile(_ xml: String, library: RuleLibrary = .empty, file: String = "expr.xml") throws -> CompiledExpression {
    let document = XMLParser.parse(Array(xml.utf8), file: file)
    guard let root = document.root else { throw CompileFailure(diagnostics: document.diagnostics) }
    return try CompiledExpression.compile(root, file: file, library: library).get()
}

/// The load-time problems of `xml` (one expression).
func compileProblems(_ xml: String, library: RuleLibrary = .empty) -> [Diagnostic] {
    do {
        _ = try compile(xml, library: library)
        return []
    } catch let failure as CompileFailure {
        return failure.diagnostics
    } catch {
        return []
    }
}

/// Evaluates `xml` and returns its JSON form (spec section 5).
func eval(_ xml: String, rules: String = "", variables: [(String, String)] = [],
          options: EvaluationOptions = EvaluationOptions()) throws -> String {
    let lib = try library(rules)
    let bound = try variables.map { ($0.0, try ValueJSON.decode($0.1)) }
    return ValueJSON.encode(try Evaluator(library: lib, options: options).evaluate(try compile(xml, library: lib), variables: bound))
}

/// The runtime error of evaluating `xml`, or nil when it succeeds.
func runtimeError(_ xml: String, rules: String = "", variables: [(String, String)] = [],
                  options: EvaluationOptions = EvaluationOptions()) throws -> RuntimeError? {
    let lib = try library(rules)
    let bound = try variables.map { ($0.0, try ValueJSON.decode($0.1)) }
    do {
        _ = try Evaluator(library: lib, options: options).evaluate(try compile(xml, library: lib), variables: bound)
        return nil
    } catch let error as RuntimeError {
        return error
    }
}

/// `../shared` beside the checkout (or `$RECON_SHARED`), when present: CI has it; a bare clone
/// may not, and then the tests that need it are skipped.
let sharedDirectory: URL? = {
    if let path = ProcessInfo.processInfo.environment["RECON_SHARED"] { return URL(fileURLWithPath: path) }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let shared = root.deletingLastPathComponent().appendingPathComponent("shared")
    return FileManager.default.fileExists(atPath: shared.path) ? shared : nil
}()

/// A table case: an expression and the JSON it must evaluate to.
struct Case: CustomTestStringConvertible, Sendable {
    let xml: String
    let expected: String
    var variables: [(String, String)] = []
    init(_ xml: String, _ expected: String, _ variables: [(String, String)] = []) {
        self.xml = xml
        self.expected = expected
        self.variables = variables
    }
    var testDescription: String { xml }
}
