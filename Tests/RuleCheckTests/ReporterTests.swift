import Foundation
import Testing
import TestSupport
import XMLSource
@testable import RuleCheck

/// Golden output of every format for one small report.
@Suite struct ReporterTests {
    static let report = LintReport(findings: [
        Diagnostic(id: "XP0101", message: "unknown element <frob>", location: SourcePosition(file: "rules/a.xml", line: 3, column: 5)),
        Diagnostic(id: "XP0204", message: "rule 'R' is defined twice, \"again\": 100%", location: SourcePosition(file: "rules/b,c.xml", line: 1, column: 1),
                   notes: [.init(location: SourcePosition(file: "rules/a.xml", line: 1, column: 1), message: "first defined here")]),
        Diagnostic(id: "XP0205", severity: .warning, message: "RuleArgument 'x' of rule 'R' is never referenced\nin its body",
                   location: SourcePosition(file: "rules/b,c.xml", line: 2, column: 3)),
    ], fileCount: 2)

    @Test func text() {
        #expect(ReportFormat.text.render(Self.report) == """
        rules/a.xml:3:5: error: unknown element <frob> [XP0101]
        rules/b,c.xml:1:1: error: rule 'R' is defined twice, "again": 100% [XP0204]
        rules/a.xml:1:1: note: first defined here
        rules/b,c.xml:2:3: warning: RuleArgument 'x' of rule 'R' is never referenced
        in its body [XP0205]
        2 errors, 1 warning in 2 files

        """)
    }

    @Test func github() {
        #expect(ReportFormat.github.render(Self.report) == """
        ::error file=rules/a.xml,line=3,col=5,title=XP0101::unknown element <frob>
        ::error file=rules/b%2Cc.xml,line=1,col=1,title=XP0204::rule 'R' is defined twice, "again": 100%25
        ::warning file=rules/b%2Cc.xml,line=2,col=3,title=XP0205::RuleArgument 'x' of rule 'R' is never referenced%0Ain its body

        """)
    }

    @Test func checkstyle() {
        #expect(ReportFormat.checkstyle.render(Self.report) == """
        <?xml version="1.0" encoding="UTF-8"?>
        <checkstyle version="4.3">
          <file name="rules/a.xml">
            <error line="3" column="5" severity="error" message="unknown element &lt;frob&gt;" source="rulecheck.XP0101"/>
          </file>
          <file name="rules/b,c.xml">
            <error line="1" column="1" severity="error" message="rule 'R' is defined twice, &quot;again&quot;: 100%" source="rulecheck.XP0204"/>
            <error line="2" column="3" severity="warning" message="RuleArgument 'x' of rule 'R' is never referenced&#10;in its body" source="rulecheck.XP0205"/>
          </file>
        </checkstyle>

        """)
    }

    @Test func json() throws {
        let rendered = ReportFormat.json.render(Self.report)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(rendered.utf8)) as? [String: Any])
        let findings = try #require(object["findings"] as? [[String: Any]])
        #expect(findings.count == 3)
        #expect(Set(findings[0].keys) == ["id", "name", "severity", "message", "file", "line", "column", "endLine", "endColumn"])
        #expect(findings[0]["name"] as? String == "unknown-element")
        #expect(findings[2]["severity"] as? String == "warning")
        #expect(object["summary"] as? [String: Int] == ["errors": 2, "warnings": 1, "files": 2])
        #expect(rendered.hasPrefix("{\n  \"findings\": [\n    {\n      \"id\": \"XP0101\","))
    }

    /// The fields GitHub code scanning requires of an uploaded SARIF file.
    @Test func sarifHasWhatGitHubCodeScanningRequires() throws {
        let rendered = ReportFormat.sarif.render(Self.report)
        let sarif = try #require(try JSONSerialization.jsonObject(with: Data(rendered.utf8)) as? [String: Any])
        #expect(sarif["version"] as? String == "2.1.0")
        #expect((sarif["$schema"] as? String)?.contains("sarif") == true)
        let run = try #require((sarif["runs"] as? [[String: Any]])?.first)
        let driver = try #require((run["tool"] as? [String: Any])?["driver"] as? [String: Any])
        #expect(driver["name"] as? String == "rulecheck")
        let rules = try #require(driver["rules"] as? [[String: Any]])
        #expect(rules.count == LintCatalogue.all.count)
        for rule in rules {
            #expect(rule["id"] is String && rule["name"] is String)
            #expect((rule["shortDescription"] as? [String: Any])?["text"] is String)
            #expect((rule["fullDescription"] as? [String: Any])?["text"] is String)
            #expect((rule["help"] as? [String: Any])?["text"] is String)
            let level = (rule["defaultConfiguration"] as? [String: Any])?["level"] as? String
            #expect(["error", "warning", "note"].contains(level ?? ""))
        }
        let results = try #require(run["results"] as? [[String: Any]])
        #expect(results.count == 3)
        for result in results {
            let ruleID = try #require(result["ruleId"] as? String)
            let index = try #require(result["ruleIndex"] as? Int)
            #expect(rules[index]["id"] as? String == ruleID)
            #expect(["error", "warning", "note"].contains(result["level"] as? String ?? ""))
            #expect((result["message"] as? [String: Any])?["text"] is String)
            let physical = try #require(((result["locations"] as? [[String: Any]])?.first?["physicalLocation"]) as? [String: Any])
            let uri = try #require((physical["artifactLocation"] as? [String: Any])?["uri"] as? String)
            #expect(!uri.hasPrefix("/") && !uri.contains("://"))
            let region = try #require(physical["region"] as? [String: Any])
            #expect((region["startLine"] as? Int ?? 0) >= 1)
            #expect((region["startColumn"] as? Int ?? 0) >= 1)
        }
        #expect(((results[1]["locations"] as? [[String: Any]])?.first?["physicalLocation"] as? [String: Any])
            .flatMap { ($0["artifactLocation"] as? [String: Any])?["uri"] as? String } == "rules/b,c.xml")
    }
}

/// The command itself: exit codes and output options.
@Suite struct CommandTests {
    static let binary = BuiltExecutable.find("rulecheck")

    func run(_ arguments: [String], in directory: String) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = try BuiltExecutable.require(Self.binary)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    @Test(.enabled(if: binary != nil, "needs the built rulecheck beside the tests"))
    func exitCodes() throws {
        let fixture = try Fixture([
            "clean/r.xml": "<Rule name='R'><s>x</s></Rule>",
            "warn/r.xml": "<Rule name='W'><ref>fromCaller</ref></Rule>",
            "bad/r.xml": "<Rule name='B'><frob/></Rule>",
            "broken/.rulecheck.yml": "rules: {NOPE: off}",
            "broken/r.xml": "<Rule name='R2'><s>x</s></Rule>",
        ])
        let root = fixture.path()
        #expect(try run(["clean"], in: root).0 == 0)
        #expect(try run(["warn"], in: root).0 == 0)
        #expect(try run(["--strict", "warn"], in: root).0 == 1)
        #expect(try run(["bad"], in: root).0 == 1)
        #expect(try run(["no-such-dir"], in: root).0 == 2)
        #expect(try run(["r.xml"], in: fixture.path("broken")).0 == 2)
        #expect(try run(["--format", "yaml", "clean"], in: root).0 == 64)
        #expect(try run([], in: root).0 == 64)
        let (code, output) = try run(["--format", "json", "--output", "report.json", "bad"], in: root)
        #expect(code == 1 && output.isEmpty)
        #expect(FileManager.default.contents(atPath: fixture.path("report.json")).map { String(decoding: $0, as: UTF8.self) }?.contains("\"XP0101\"") == true)
        #expect(try run(["--explain", "XP0201"], in: root).1.contains("Fails:"))
        #expect(try run(["--list-rules"], in: root).1.split(separator: "\n").count == LintCatalogue.all.count)
    }

    /// JavaScriptCore is loaded when a file holds a `<script>` to check, not at start-up, which
    /// it slowed by about 11 ms. glibc's loader names each library it loads under `LD_DEBUG`.
    @Test(.enabled(if: binary != nil, "needs the built rulecheck beside the tests"))
    func javaScriptCoreIsLoadedOnlyForAScript() throws {
        let fixture = try Fixture([
            "plain/r.xml": "<Rule name='R'><s>x</s></Rule>",
            "script/r.xml": "<Rule name='S'><script>1 +</script></Rule>",
        ])
        func loadedLibraries(linting folder: String) throws -> (status: Int32, log: String) {
            let process = Process()
            process.executableURL = try BuiltExecutable.require(Self.binary)
            process.arguments = [folder]
            process.currentDirectoryURL = URL(fileURLWithPath: fixture.path())
            process.environment = ProcessInfo.processInfo.environment.merging(["LD_DEBUG": "libs"]) { $1 }
            let errors = Pipe()
            process.standardOutput = FileHandle.nullDevice
            process.standardError = errors
            try process.run()
            let log = errors.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: log, as: UTF8.self))
        }
        let plain = try loadedLibraries(linting: "plain")
        #expect(plain.status == 0)
        #expect(plain.log.contains("libxml2"), "LD_DEBUG=libs names the libraries loaded")
        #expect(!plain.log.contains("javascriptcoregtk"))
        let script = try loadedLibraries(linting: "script")
        #expect(script.status == 1, "the script's syntax error is found, so JavaScriptCore ran")
        #expect(script.log.contains("javascriptcoregtk"))
    }

    /// `--output /dev/null` (as CI scripts write) must not replace the device with a file: a
    /// named pipe stands in for it here.
    @Test(.enabled(if: binary != nil, "needs the built rulecheck beside the tests"))
    func outputIntoAPipeKeepsThePipe() throws {
        let fixture = try Fixture(["clean/r.xml": "<Rule name='R'><s>x</s></Rule>"])
        let pipe = fixture.path("report.pipe")
        #expect(mkfifo(pipe, 0o600) == 0)
        let received = Received()
        let reader = Thread {
            let handle = FileHandle(forReadingAtPath: pipe)
            received.set(handle?.readDataToEndOfFile() ?? Data())
        }
        reader.start()
        #expect(try run(["--format", "json", "--output", pipe, "clean"], in: fixture.path()).0 == 0)
        #expect(received.wait().map { String(decoding: $0, as: UTF8.self) }?.contains("\"files\"") == true)
        let type = try FileManager.default.attributesOfItem(atPath: pipe)[.type] as? FileAttributeType
        #expect(type != nil && type != .typeRegular)
    }

    /// `--output` through a link (`/dev/stdout`, or a link to a report kept elsewhere) writes
    /// the file the link points to, and leaves the link a link.
    @Test(.enabled(if: binary != nil, "needs the built rulecheck beside the tests"))
    func outputThroughALinkKeepsTheLink() throws {
        let fixture = try Fixture(["clean/r.xml": "<Rule name='R'><s>x</s></Rule>", "kept/report.json": "an older, longer report than this one will be"])
        let link = fixture.path("report.json")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "kept/report.json")
        #expect(try run(["--format", "json", "--output", link, "clean"], in: fixture.path()).0 == 0)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == "kept/report.json")
        let written = FileManager.default.contents(atPath: fixture.path("kept/report.json")).map { String(decoding: $0, as: UTF8.self) }
        #expect(written?.contains("\"files\"") == true)
        #expect(written?.contains("older") == false)
    }

    final class Received: @unchecked Sendable {
        private let done = DispatchSemaphore(value: 0)
        private var data: Data?
        func set(_ value: Data) { data = value; done.signal() }
        func wait() -> Data? { done.wait(timeout: .now() + 10) == .success ? data : nil }
    }
}