import Foundation
import Testing
import TestSupport

/// The `xpress` command as a deployer runs it (spec section 6).
@Suite struct XpressCommandTests {
    static let binary = BuiltExecutable.find("xpress")

    func xpress(_ arguments: [String], input: String? = nil, in directory: URL) throws -> (status: Int32, output: String, errors: String) {
        let process = Process()
        process.executableURL = try BuiltExecutable.require(Self.binary)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let out = Pipe(), err = Pipe(), stdin = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try stdin.fileHandleForWriting.close()
        let output = out.fileHandleForReading.readDataToEndOfFile(), errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: errors, as: UTF8.self))
    }

    @Test(.enabled(if: binary != nil)) func evalRunErrorsAndExitCodes() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xpress-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data("""
        <Waveset>
          <Rule name='Greet'><RuleArgument name='who' value='world'/><concat><s>hello </s><ref>who</ref></concat></Rule>
          <Rule name='Outer'><rule name='Inner'/></Rule>
          <Rule name='Inner'><div><i>1</i><i>0</i></div></Rule>
        </Waveset>
        """.utf8).write(to: directory.appendingPathComponent("rules.xml"))

        let eval = try xpress(["eval", "--arg-json", "d={\"$date\": \"2026-11-21T02:00:00Z\"}", "--time-zone", "Europe/Paris", "-"],
                              input: "<list><invoke name='getHours'><ref>d</ref></invoke><ref>d</ref></list>", in: directory)
        #expect(eval.status == 0)
        #expect(eval.output == "[3, {\"$date\": \"2026-11-21T02:00:00.000Z\"}]\n")

        let run = try xpress(["run", "--rules", "rules.xml", "--rule", "Greet", "--arg", "who=Ada"], in: directory)
        #expect(run.status == 0 && run.output == "\"hello Ada\"\n")

        let failure = try xpress(["run", "--rules", "rules.xml", "--rule", "Outer"], in: directory)
        #expect(failure.status == 1)
        #expect(failure.errors.hasPrefix("rules.xml:4:22: error: <div>: division by zero (in rule 'Inner')"), "\(failure.errors)")
        #expect(failure.errors.contains("rules.xml:3:22: note: in rule 'Inner' called from here"))

        let load = try xpress(["eval", "-"], input: "<block>\n  <frob/>\n</block>", in: directory)
        #expect(load.status == 1 && load.errors.contains("<stdin>:2:3: error: unknown element <frob>"))

        #expect(try xpress(["eval", "--time-zone", "Mars/Olympus", "-"], input: "<null/>", in: directory).status == 64)
        #expect(try xpress(["eval", "--arg-json", "x={", "-"], input: "<null/>", in: directory).status == 64)
        #expect(try xpress(["frobnicate"], in: directory).status == 64)
    }
}
