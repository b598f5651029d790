import Foundation

/// rulecheck over generated rule files against `xmllint --noout` over the same files, both as
/// processes, timed in the same run.
struct LintBenchmark {
    let fileCount: Int
    let corpus: String?
    /// Runs of each program; each keeps its fastest.
    static let rounds = 5

    struct Row {
        let name: String
        let files: Int
        let rulecheckSeconds: Double
        let xmllintSeconds: Double
        var ratio: Double { rulecheckSeconds / xmllintSeconds }
    }

    func run() throws -> [Row] {
        let rulecheck = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("rulecheck").path
        guard FileManager.default.isExecutableFile(atPath: rulecheck) else {
            throw BenchmarkError("build rulecheck first (swift build -c release --product rulecheck)")
        }
        guard let xmllint = ["/usr/bin/xmllint", "/usr/local/bin/xmllint"].first(where: FileManager.default.isExecutableFile) else {
            throw BenchmarkError("xmllint is missing: apt-get install libxml2-utils")
        }
        var rows: [Row] = []
        if let corpus {
            let files = try FileManager.default.contentsOfDirectory(atPath: corpus).filter { $0.hasSuffix(".xml") }.sorted().map { corpus + "/" + $0 }
            rows.append(try measure("public Waveset corpus", files, rulecheck, xmllint))
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("recon-bench-lint-\(getpid())")
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let files = try (0..<fileCount).map { index -> String in
            let url = directory.appendingPathComponent("rule-\(index).xml")
            try Data(Self.ruleFile(index).utf8).write(to: url)
            return url.path
        }
        rows.append(try measure("\(fileCount) generated rule files", files, rulecheck, xmllint))
        return rows
    }

    private func measure(_ name: String, _ files: [String], _ rulecheck: String, _ xmllint: String) throws -> Row {
        // Warm the page cache once, then alternate the two five times and keep each one's
        // fastest run: on a busy machine, a slow spell then costs both alike.
        try timed(xmllint, ["--noout"] + files, succeeding: [0])
        var rulecheckSeconds = Double.infinity, xmllintSeconds = Double.infinity
        for _ in 0..<Self.rounds {
            rulecheckSeconds = min(rulecheckSeconds, try timed(rulecheck, ["--format", "json", "--output", "/dev/null"] + files,
                                                               succeeding: [0, 1]))  // 1: errors found
            xmllintSeconds = min(xmllintSeconds, try timed(xmllint, ["--noout"] + files, succeeding: [0]))
        }
        return Row(name: name, files: files.count, rulecheckSeconds: rulecheckSeconds, xmllintSeconds: xmllintSeconds)
    }

    /// Seconds `program` took; throws when it exits otherwise than `succeeding` (a crash would
    /// otherwise pass for a fast run).
    @discardableResult
    private func timed(_ program: String, _ arguments: [String], succeeding: Set<Int32>) throws -> Double {
        var status: Int32 = 0
        let seconds = try time { status = try ChildProcess.run(program, arguments).status }
        guard succeeding.contains(status) else {
            throw BenchmarkError("\(URL(fileURLWithPath: program).lastPathComponent) exited with status \(status)")
        }
        return seconds
    }

    /// A realistic rule file: a correlation rule, a confirmation rule and a library rule.
    static func ruleFile(_ index: Int) -> String {
        """
        <?xml version='1.0' encoding='UTF-8'?>
        <!DOCTYPE Waveset PUBLIC 'waveset.dtd' 'waveset.dtd'>
        <Waveset>
          <Rule name='Correlate \(index)' subtype='SUBTYPE_ACCOUNT_CORRELATION_RULE'>
            <Description>Correlation by employee id or email, generated.</Description>
            <RuleArgument name='account'/>
            <cond>
              <notnull><ref>account.employeeId</ref></notnull>
              <list><new class='com.waveset.object.AttributeCondition'><s>employeeId</s><s>equals</s><ref>account.employeeId</ref></new></list>
              <list><new class='com.waveset.object.AttributeCondition'><s>email</s><s>equals</s><downcase><ref>account.email</ref></downcase></new></list>
            </cond>
          </Rule>
          <Rule name='Confirm \(index)' subtype='SUBTYPE_ACCOUNT_CONFIRMATION_RULE'>
            <RuleArgument name='userview'/>
            <RuleArgument name='account'/>
            <block>
              <defvar name='first'><ref>userview.global.firstname</ref></defvar>
              <and>
                <eq><ref>first</ref><ref>account.firstname</ref></eq>
                <eq><ref>userview.global.lastname</ref><ref>account.lastname</ref></eq>
              </and>
            </block>
          </Rule>
          <Configuration name='Library \(index)'><Extension><Library>
            <Rule name='Full Name'>
              <RuleArgument name='firstname'/><RuleArgument name='lastname'/>
              <concat><ref>firstname</ref><s> </s><ref>lastname</ref></concat>
            </Rule>
          </Library></Extension></Configuration>
        </Waveset>

        """
    }
}
