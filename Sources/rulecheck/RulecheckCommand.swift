import ArgumentParser
import CMalloc
import Foundation
import RuleCheck
import XMLSource

/// `rulecheck`: lints rule, form and configuration XML (see `../shared/spec/RULECHECK.md`).
/// Exit codes: 0 nothing at error level, 1 errors found, 2 could not lint, 64 usage.
@main
struct RulecheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rulecheck",
        abstract: "Lint XPRESS rules, forms and reconciliation configuration.",
        discussion: "Exit codes: 0 no errors, 1 errors (or warnings with --strict), 2 could not lint, 64 usage.",
        version: RuleCheckVersion.current)

    @Argument(help: "Files, or directories searched recursively for *.xml.")
    var paths: [String] = []

    @Option(help: "text, json, sarif, github or checkstyle.")
    var format: String = "text"

    @Option(help: "Write the report to this file instead of standard output.")
    var output: String?

    @Option(name: .customLong("config"), help: "The configuration file (default: .rulecheck.yml here or in a parent).")
    var configPath: String?

    @Flag(help: "Warnings count as errors for the exit code.")
    var strict = false

    @Option(name: .customLong("config-dir"), help: "A configuration tree whose objects resolve references without being reported (default: the folder holding .rulecheck.yml).")
    var configDirectory: String?

    @Flag(name: .customLong("list-rules"), help: "List the rules and exit.")
    var listRules = false

    @Option(name: .customLong("explain"), help: "Explain one rule, with a failing and a passing example.")
    var explain: String?

    /// Options that take a value; everything else not starting with `-` is a path.
    static let valueOptions: Set<String> = ["--format", "--output", "--config", "--config-dir", "--explain"]

    /// Paths are split off before argument parsing: swift-argument-parser takes time quadratic
    /// in the number of positional values, and a commit hook may pass thousands of files.
    static func main() {
        // A lint allocates millions of small objects on every core: malloc growing its heaps
        // 16 MB at a time instead of as little as each allocation needs saves about 7% of the
        // CPU time of a large lint (perf stat over recon-bench lint's files).
        _ = mallopt(M_TOP_PAD, 16 << 20)
        var options: [String] = [], paths: [String] = []
        var arguments = CommandLine.arguments.dropFirst()[...]
        while let argument = arguments.popFirst() {
            if argument == "--" { paths += arguments; break }
            if valueOptions.contains(argument) {
                options.append(argument)
                if let value = arguments.popFirst() { options.append(value) }
            } else if argument.hasPrefix("-") && argument != "-" {
                options.append(argument)
            } else {
                paths.append(argument)
            }
        }
        do {
            var parsed = try parseAsRoot(options)
            guard var command = parsed as? RulecheckCommand else {
                try parsed.run()
                return
            }
            command.paths = paths
            if paths.isEmpty && !command.listRules && command.explain == nil {
                throw ValidationError("give at least one file or directory to lint")
            }
            try command.run()
        } catch {
            exit(withError: error)
        }
    }

    func validate() throws {
        guard ReportFormat(rawValue: format) != nil else {
            throw ValidationError("unknown format '\(format)'; use \(ReportFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() throws {
        if listRules {
            for rule in LintCatalogue.all {
                print("\(rule.id)  \(rule.name.padding(toLength: 22, withPad: " ", startingAt: 0)) \(rule.severity.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \(rule.summary)")
            }
            return
        }
        if let explain {
            guard let rule = LintCatalogue.rule(explain.uppercased()) else {
                throw ValidationError("no rule '\(explain)'; rulecheck --list-rules lists them")
            }
            print("\(rule.id) \(rule.name) (\(rule.severity.rawValue))\n\n\(rule.summary)\n\n\(rule.rationale)\n\nFails:\n\(rule.badExample)\nPasses:\n\(rule.goodExample)", terminator: "")
            return
        }
        let configFile = configPath ?? LintConfiguration.find(from: FileManager.default.currentDirectoryPath)
        let configuration: LintConfiguration
        do {
            configuration = try configFile.map { try LintConfiguration.load(path: $0) } ?? LintConfiguration()
        } catch {
            FileHandle.standardError.write(Data("rulecheck: bad configuration: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let report: LintReport
        do {
            report = try Linter.lint(paths: paths, configuration: configuration,
                                     contextDirectory: configDirectory ?? configuration.directory)
        } catch {
            FileHandle.standardError.write(Data("rulecheck: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let rendered = ReportFormat(rawValue: format)!.render(report)
        if let output {
            do { try Self.write(rendered, to: output) } catch {
                FileHandle.standardError.write(Data("rulecheck: cannot write \(output): \(error.localizedDescription)\n".utf8))
                throw ExitCode(2)
            }
        } else {
            FileHandle.standardOutput.write(Data(rendered.utf8))
        }
        let failed = report.errorCount > 0 || (strict && report.warningCount > 0)
        // The report is written (unbuffered): end the process now instead of freeing every
        // element, rule and node of the report one by one on the way out.
        withExtendedLifetime(report) { Foundation.exit(failed ? 1 : 0) }
    }

    /// Writes the report to a regular file (or a new one) atomically: a temporary file renamed
    /// over it, so that a reader never sees half a report. Anything else already there is written
    /// through in place, so that it stays what it is: a device (`/dev/null`), a pipe, or a link
    /// (`/dev/stdout`, or a link to a report kept elsewhere), which a rename would replace with a
    /// regular file.
    static func write(_ report: String, to path: String) throws {
        let type = (try? FileManager.default.attributesOfItem(atPath: path))?[.type] as? FileAttributeType
        guard let type, type != .typeRegular else {
            try report.write(toFile: path, atomically: true, encoding: .utf8)
            return
        }
        let descriptor = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path,
                                                               NSUnderlyingErrorKey: POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)])
        }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        try handle.write(contentsOf: Data(report.utf8))
        try handle.close()
    }
}
