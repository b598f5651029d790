import Deployment
import Dispatch
import Foundation
import XMLSource
import XPRESS

/// The outcome of linting: findings sorted by file, line and column, and how many files.
public struct LintReport: Sendable {
    public let findings: [Diagnostic]
    public let fileCount: Int
    /// The configuration the linted files define, as the engine loads it (with the errors
    /// among `findings`, the engine rejects it).
    public let deployment: Deployment

    public init(findings: [Diagnostic], fileCount: Int, deployment: Deployment = .empty) {
        self.findings = findings
        self.fileCount = fileCount
        self.deployment = deployment
    }
    public var errorCount: Int { findings.filter { $0.severity == .error }.count }
    public var warningCount: Int { findings.filter { $0.severity == .warning }.count }
}

/// Why linting could not run at all (exit code 2).
public struct LintFailure: Error, CustomStringConvertible {
    public let description: String
}

/// Lints rule, form and configuration files with the engine's own loaders; never evaluates.
public enum Linter {
    /// Lints `paths` (files, or folders searched for `*.xml`). Objects in `contextDirectory`
    /// that are not linted themselves resolve references without being reported.
    public static func lint(paths: [String], configuration: LintConfiguration = LintConfiguration(),
                            contextDirectory: String? = nil) throws -> LintReport {
        let files: [String]
        do { files = try RuleLoader.files(in: paths).filter { !configuration.ignores($0) } } catch {
            throw LintFailure(description: "\(error)")
        }
        let linted = loadAll(files, analyse: true)
        var contextFiles: [String] = []
        if let contextDirectory, FileManager.default.fileExists(atPath: contextDirectory) {
            let lintedPaths = Set(files.map(canonical))
            contextFiles = ((try? RuleLoader.files(in: [contextDirectory])) ?? []).filter { !lintedPaths.contains(canonical($0)) }
        }
        let context = loadAll(contextFiles, analyse: false)

        let knownFunctions = Set((linted + context).flatMap(\.functions))
        let includesStandardLibrary = (linted + context).contains(where: \.isStandardLibrary)
        let (library, linkProblems) = RuleLoader.link(linted.map(\.loaded) + context.map(\.loaded),
                                                      includeStandardLibrary: !includesStandardLibrary)
        let (deployment, deploymentProblems) = DeploymentLoader.load(linted.map(\.loaded), library: library, context: context.map(\.loaded))
        var crossFile: [String: [Diagnostic]] = [:]
        for problem in linkProblems + deploymentProblems { crossFile[problem.location.file, default: []].append(problem) }

        var findings: [Diagnostic] = []
        for file in linted {
            var suppressions = file.suppressions
            let calls = file.unresolvedCalls.map { $0.finding(knownFunctions: knownFunctions) }
            let raw = file.loaded.diagnostics + file.findings + calls + (crossFile[file.path] ?? [])
            for finding in raw {
                guard let adjusted = apply(configuration, to: finding), !suppressions.suppresses(adjusted) else { continue }
                findings.append(adjusted)
            }
            findings += suppressions.problems().compactMap { apply(configuration, to: $0) }
        }
        findings.sort { ($0.location.file, $0.location.line, $0.location.column, $0.id, $0.message)
            < ($1.location.file, $1.location.line, $1.location.column, $1.id, $1.message) }
        releaseInBackground((linted, context))
        return LintReport(findings: unique(findings), fileCount: files.count, deployment: deployment)
    }

    /// Frees `value` on another thread. Freeing thousands of parsed documents and compiled rules
    /// object by object takes a good part of a large lint; the caller need not wait for it.
    private static func releaseInBackground<T: Sendable>(_ value: T) {
        DispatchQueue.global(qos: .utility).async { withExtendedLifetime(value) {} }
    }

    private static func unique(_ findings: [Diagnostic]) -> [Diagnostic] {
        var seen = Set<Diagnostic>()
        return findings.filter { seen.insert($0).inserted }
    }

    /// The configured level of a finding's rule: nil when switched off.
    private static func apply(_ configuration: LintConfiguration, to finding: Diagnostic) -> Diagnostic? {
        var adjusted = finding
        switch configuration.levels[finding.id] {
        case .off?: return nil
        case .error?: adjusted.severity = .error
        case .warning?: adjusted.severity = .warning
        case nil: break
        }
        return adjusted
    }

    private static func canonical(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path }

    /// A file read, parsed, loaded and (when linted) analysed.
    struct LoadedFile: Sendable {
        let path: String
        /// Without its XML tree unless the deployment loader reads objects from it.
        let loaded: LoadedDocument
        let suppressions: Suppressions
        let functions: [String]
        let isStandardLibrary: Bool
        /// The document analysis' findings and the calls it left to the cross-file step.
        let findings: [Diagnostic]
        let unresolvedCalls: [UnresolvedCall]
    }

    /// Loads `files` on all cores, analysing each when `analyse`. Each file is done with in one
    /// pass and its tree freed, so memory stays near the size of the compiled rules rather than
    /// of every parsed tree at once (and a large lint spends less time faulting pages in).
    private static func loadAll(_ files: [String], analyse: Bool) -> [LoadedFile] {
        parallelMap(files) { path in
            let document: XMLDocument
            var isStandardLibrary = false
            if let data = FileManager.default.contents(atPath: path) {
                let bytes = [UInt8](data)
                isStandardLibrary = RuleLoader.isStandardLibrary(bytes)
                document = XMLParser.parse(bytes, file: path)
            } else {
                document = XMLDocument(file: path, root: nil, diagnostics: [Diagnostic(
                    id: XMLDiagnosticID.malformed, message: "cannot read the file", location: SourcePosition(file: path, line: 1, column: 1))])
            }
            var functions: [String] = []
            func visit(_ element: XMLElement) {
                if element.name == "defun", let name = element.attribute("name") { functions.append(name) }
                element.elements.forEach(visit)
            }
            if let root = document.root, root.documentMayHaveElement(named: "defun") { visit(root) }
            var analysis = DocumentAnalysis()
            if analyse, let root = document.root { analysis.analyse(root) }
            let loaded = RuleLoader.load(document)
            return LoadedFile(path: path, loaded: DeploymentLoader.readsObjects(in: loaded) ? loaded : loaded.withoutTree,
                              suppressions: Suppressions(document: document), functions: functions, isStandardLibrary: isStandardLibrary,
                              findings: analysis.findings, unresolvedCalls: analysis.unresolvedCalls)
        }
    }

    /// `transform` applied to every element on all cores; results in input order.
    static func parallelMap<T: Sendable, R: Sendable>(_ items: [T], _ transform: @Sendable (T) -> R) -> [R] {
        let slots = ParallelSlots<R>(items.count)
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: items.count) { index in
            let value = transform(items[index])
            lock.lock()
            slots.values[index] = value
            lock.unlock()
        }
        return slots.values.map { $0! }
    }
}

/// Result slots filled from several threads, each slot by one thread under a lock.
private final class ParallelSlots<R>: @unchecked Sendable {
    var values: [R?]
    init(_ count: Int) { values = Array(repeating: nil, count: count) }
}
