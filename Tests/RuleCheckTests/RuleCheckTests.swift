import Foundation
import Testing
import XMLSource
@testable import RuleCheck

/// A temporary folder with files, removed afterwards.
final class Fixture {
    let directory: URL

    init(_ files: [String: String]) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("rulecheck-\(UUID().uuidString)")
        for (name, content) in files {
            let url = directory.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(content.utf8).write(to: url)
        }
    }

    func path(_ name: String = "") -> String { name.isEmpty ? directory.path : directory.appendingPathComponent(name).path }

    deinit { try? FileManager.default.removeItem(at: directory) }
}

func lint(_ files: [String: String], configuration: LintConfiguration = LintConfiguration()) throws -> (LintReport, Fixture) {
    let fixture = try Fixture(files)
    return (try Linter.lint(paths: [fixture.path()], configuration: configuration), fixture)
}

@Suite struct CatalogueExampleTests {
    /// Each rule's failing example produces that rule's finding; its passing example does not.
    @Test(arguments: LintCatalogue.all.map(\.id))
    func examplesBehaveAsDocumented(_ id: String) throws {
        let rule = try #require(LintCatalogue.rule(id))
        let (bad, _) = try lint(["example.xml": rule.badExample])
        #expect(bad.findings.contains { $0.id == id }, "\(id) bad example: \(bad.findings)")
        let (good, _) = try lint(["example.xml": rule.goodExample])
        #expect(!good.findings.contains { $0.id == id }, "\(id) good example: \(good.findings)")
        #expect(good.findings.isEmpty, "\(id) good example should be clean: \(good.findings)")
    }

    @Test func everyRequiredRuleIsCatalogued() {
        let required = ["XML0001", "XML0002", "XP0101", "XP0102", "XP0103", "XP0104", "XP0201", "XP0202", "XP0203", "XP0204",
                        "XP0205", "XP0301", "XP0302", "XP0401", "XP0402", "XP0501", "XP0601", "XP0602", "RC0001", "RC0002"]
        #expect(required.allSatisfy { LintCatalogue.rule($0) != nil })
        #expect(Set(LintCatalogue.all.map(\.id)).count == LintCatalogue.all.count)
    }
}

@Suite struct AnalysisTests {
    @Test func scopesBindWhereTheSpecSays() throws {
        let (report, _) = try lint(["r.xml": """
        <Waveset>
          <Rule name='Scoped' localScope='true'>
            <RuleArgument name='items'/>
            <block>
              <defvar name='total'><i>0</i></defvar>
              <dolist name='item'><ref>items</ref>
                <set name='total'><add><ref>total</ref><ref>item.size</ref></add></set>
              </dolist>
              <defun name='f'><defarg name='p'/><ref>p</ref></defun>
              <call name='f'><ref>total</ref></call>
              <set name='later'><i>1</i></set>
              <ref>later</ref>
              <ref>item</ref>
              <script>env.get('total') + env.get('ghost')</script>
            </block>
          </Rule>
        </Waveset>
        """])
        let undefined = report.findings.filter { $0.id == "XP0201" }
        #expect(undefined.map(\.location.line) == [13, 14])
        #expect(undefined[0].message.contains("'item'"))
        #expect(undefined[1].message.contains("'ghost'"))
        #expect(undefined[0].message.contains("localScope"))
    }

    @Test func nonLocalRulesAreWarnedThatTheCallerMustProvide() throws {
        let (report, _) = try lint(["r.xml": "<Rule name='R'><ref>fromCaller</ref></Rule>"])
        let finding = try #require(report.findings.first { $0.id == "XP0201" })
        #expect(finding.severity == .warning)
        #expect(finding.message.contains("caller's scope"))
    }

    /// Each file is analysed alone, its calls settled once every file's functions are known:
    /// a function another file defines is a warning where a caller could provide it, an error
    /// in a localScope rule or when no file defines it.
    @Test func callsOfFunctionsDefinedInAnotherFileAreSettledAcrossFiles() throws {
        let (report, _) = try lint([
            "a.xml": """
            <Waveset>
              <Rule name='Open'><call name='helper'><i>1</i></call></Rule>
              <Rule name='Closed' localScope='true'><call name='helper'><i>1</i></call></Rule>
              <Rule name='Lost'><call name='nowhere'><i>1</i></call></Rule>
            </Waveset>
            """,
            "b.xml": "<Rule name='Lib'><block><defun name='helper'><defarg name='n'/><ref>n</ref></defun><call name='helper'><i>2</i></call></block></Rule>",
        ])
        let calls = report.findings.filter { $0.id == "XP0203" }.map { ($0.location.line, $0.severity, $0.message.contains("another file defines one")) }
        #expect(calls.count == 3)
        #expect(calls.contains { $0 == (2, .warning, true) })
        #expect(calls.contains { $0 == (3, .error, false) })
        #expect(calls.contains { $0 == (4, .error, false) })
    }

    @Test func subtypeInputsAndWorkflowArgumentsAreBound() throws {
        let (report, _) = try lint(["r.xml": """
        <Waveset>
          <Rule name='C' subtype='SUBTYPE_ACCOUNT_CONFIRMATION_RULE'><eq><ref>userview.global.email</ref><ref>account.mail</ref></eq></Rule>
          <Rule name='W' subtype='SUBTYPE_RECONCILE_WORKFLOW'><concat><ref>resourceName</ref><ref>accountId</ref><ref>finalSituation</ref></concat></Rule>
          <Rule name='S' subtype='SUBTYPE_TASKSCHEDULE_REPETITION_RULE'><RuleArgument name='calculatedNextDate'/><ref>calculatedNextDate</ref></Rule>
        </Waveset>
        """])
        #expect(report.findings.isEmpty, "\(report.findings)")
    }

    @Test func subtypeContracts() throws {
        let (report, _) = try lint(["r.xml": """
        <Waveset>
          <Rule name='NoDate' subtype='SUBTYPE_TASKSCHEDULE_REPETITION_RULE'><Date>2026-01-01T00:00:00Z</Date></Rule>
          <Rule name='Bool' subtype='SUBTYPE_ACCOUNT_CORRELATION_RULE'><RuleArgument name='account'/><Boolean>true</Boolean></Rule>
          <Rule name='Blind' subtype='SUBTYPE_ACCOUNT_CONFIRMATION_RULE'><Boolean>true</Boolean></Rule>
        </Waveset>
        """])
        let contract = report.findings.filter { $0.id == "XP0301" }.map(\.message)
        #expect(contract.count == 4, "\(contract)")
        #expect(contract.contains { $0.contains("needs <RuleArgument name='calculatedNextDate'/>") })
        #expect(contract.contains { $0.contains("returns a literal <Boolean>") })
        #expect(contract.contains { $0.contains("never reads 'account'") })
        #expect(contract.contains { $0.contains("reads neither") })
    }

    @Test func scriptErrorsPointAtTheScriptsLine() throws {
        let (report, _) = try lint(["r.xml": "<Waveset>\n<Rule name='R'>\n<script>\nvar a = 1;\nvar b = ;\n</script>\n</Rule>\n</Waveset>"])
        let finding = try #require(report.findings.first { $0.id == "XP0501" })
        #expect(finding.location.line == 5)
    }

    @Test func rulesResolveAcrossFilesAndTheStandardLibrary() throws {
        let (report, _) = try lint([
            "a.xml": "<Rule name='A'><rule name='B'/></Rule>",
            "sub/b.xml": "<Rule name='B'><rule name='USER_NAME_MATCHES_ACCOUNT_ID'><argument name='account' value='$(acct)'/></rule></Rule>",
        ])
        #expect(report.findings.map(\.id) == ["XP0201"])
    }

    @Test func formsAndWorkflowsDoNotDrownInUndefinedVariables() throws {
        let (report, _) = try lint(["f.xml": """
        <Waveset>
          <Form name='F'><Field name='global.email'><Expansion><ref>account.mail</ref></Expansion><Disable><isnull><ref>waveset.accountId</ref></isnull></Disable></Field></Form>
          <TaskDefinition name='T'><Action><Argument name='a' value='$(x)'/></Action><Transition to='end'><ref>view.ok</ref></Transition></TaskDefinition>
        </Waveset>
        """])
        #expect(report.findings.isEmpty, "\(report.findings)")
    }

    @Test func policiesAreCheckedAgainstResourcesAdministratorsAndRules() throws {
        let (report, _) = try lint(["config.xml": """
        <Waveset>
          <Resource name='HR' type='FlatFile'><ResourceAttribute name='file' value='hr.csv'/><ResourceAttribute name='incremental' value='false'/></Resource>
          <Resource name='Bad' type='Mainframe'/>
          <Administrator name='Configurator'><Capability name='CreateUser'/><Capability name='Teleport'/></Administrator>
          <ReconcilePolicy name='Default'>
            <Scheduling modes='BOTH'><FullSchedule every='0' unit='weeks' start='2026-11-21T02:00:00'/><IncrementalSchedule every='4' unit='fortnights' start='2026-11-21T00:00:00'/></Scheduling>
            <Correlation correlationRule='No Such Rule' confirmationRule='CONFIRMATION_RULE_NONE'/>
            <Workflow proxyAdministrator='Nobody'/>
            <Options maxNativelyRemovedPercent='150' errorLimit='-1'/>
          </ReconcilePolicy>
          <ReconcilePolicy name='Ghost' resource='Ghost'/>
          <ReverseSyncPolicy resource='HR'><NewAccounts action='EXPLODE'/></ReverseSyncPolicy>
          <ReconcilePolicy name='Typos' resourceTyp='FlatFile'><Correlation correlationRul='USER_NAME_MATCHES_ACCOUNT_ID'/>
            <Responses situation='UNMATCHED'/></ReconcilePolicy>
          <ReverseSyncPolicy resource='Other' aprover='x'><NewAccount action='ACCEPT'/></ReverseSyncPolicy>
        </Waveset>
        """])
        let messages = report.findings.map { "\($0.location.line) \($0.id) \($0.message)" }
        for expected in ["3 RC0001 resource 'Bad' needs type=", "4 RC0001 unknown capability 'Teleport'",
                         "6 RC0001 every='0'", "6 RC0001 unit='fortnights'", "6 RC0001 modes='BOTH' asks for incremental",
                         "7 XP0202 no loaded file defines a rule named 'No Such Rule'", "8 RC0001 proxyAdministrator 'Nobody'",
                         "9 RC0001 maxNativelyRemovedPercent='150'", "9 RC0001 errorLimit='-1'",
                         "11 RC0001 policy 'Ghost' names resource 'Ghost'", "12 RC0001 <NewAccounts action='EXPLODE'>",
                         "13 RC0001 <ReconcilePolicy> does not take the attribute 'resourceTyp'; it takes name, resource, resourceType",
                         "13 RC0001 <Correlation> does not take the attribute 'correlationRul'; it takes confirmationRule, correlationRule",
                         "14 RC0001 <Responses> does not take the attribute 'situation'; it takes none",
                         "15 RC0001 <ReverseSyncPolicy> does not take the attribute 'aprover'",
                         "15 RC0001 <ReverseSyncPolicy> does not take <NewAccount>"] {
            #expect(messages.contains { $0.hasPrefix(expected) || $0.contains(expected) }, "missing \(expected) in \(messages)")
        }
    }

    @Test(.enabled(if: sharedCorpus != nil, "needs ../shared beside the checkout (or RECON_SHARED)"))
    func theWavesetCorpusLintsWithoutPlainlyWrongFindings() throws {
        let corpus = try #require(sharedCorpus)
        let report = try Linter.lint(paths: [corpus])
        #expect(report.fileCount >= 30)
        // Only real problems: Waveset server classes outside our registry, and Waveset's own
        // adapter resources, which this engine does not run.
        #expect(Set(report.findings.map(\.id)).isSubset(of: ["XP0401", "XP0402", "RC0001"]), "\(report.findings)")
        #expect(report.findings.filter { $0.id == "RC0001" }.allSatisfy { $0.severity == .warning })
    }
}

/// The public Waveset corpus beside the checkout, when present.
let sharedCorpus: String? = {
    if let path = ProcessInfo.processInfo.environment["RECON_SHARED"] { return path + "/corpus/waveset-public" }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let corpus = root.deletingLastPathComponent().appendingPathComponent("shared/corpus/waveset-public").path
    return FileManager.default.fileExists(atPath: corpus) ? corpus : nil
}()

@Suite struct SuppressionAndConfigurationTests {
    @Test func suppressionsNeedAReasonAndMustSuppressSomething() throws {
        let (report, _) = try lint(["r.xml": """
        <!-- rulecheck-disable-file XP0601 -- legacy file kept until the migration -->
        <Waveset>
          <!-- rulecheck-disable-next-line XP0602 -- deliberate -->
          <Rule name='A'><cond><i>1</i><match><s>ab</s><s>a</s></match></cond></Rule>
          <!-- rulecheck-disable-next-line XP0602 -->
          <Rule name='B'><cond><i>1</i><s>x</s></cond></Rule>
          <!-- rulecheck-disable-next-line XP0104 -- nothing to hide here -->
          <Rule name='C'><cond><i>1</i><s>x</s></cond></Rule>
        </Waveset>
        """])
        let found = report.findings.map { "\($0.location.line) \($0.id)" }
        #expect(found == ["5 RC0002", "7 RC0002", "8 XP0602"], "\(report.findings)")
        #expect(report.findings[0].message.contains("needs a reason"))
        #expect(report.findings[1].message.contains("suppresses nothing"))
    }

    /// A suppression may be written over several lines, and other comments (a licence text)
    /// are not suppressions however long.
    @Test func suppressionsAreFoundWhateverTheWhiteSpaceAroundThem() throws {
        let licence = String(repeating: "Licensed under the terms below; see the notice. ", count: 400)
        let (report, _) = try lint(["r.xml": """
        <!-- \(licence) -->
        <Waveset>
          <!--
              rulecheck-disable-next-line XP0602 -- deliberate
          -->
          <Rule name='A'><cond><i>1</i><s>a</s></cond></Rule>
          <!--\trulecheck-disable-next-line XP0602 --  \n  -->
          <Rule name='B'><cond><i>1</i><s>x</s></cond></Rule>
        </Waveset>
        """])
        let found = report.findings.map { "\($0.location.line) \($0.id)" }
        #expect(found == ["7 RC0002"], "\(report.findings)")
        #expect(report.findings.first?.message.contains("needs a reason") == true)
    }

    @Test func configurationChangesLevelsAndIgnoresPaths() throws {
        let configuration = try LintConfiguration.parse("""
        # project settings
        rules:
          XP0602: off
          XP0601: error   # deprecated elements block the build
        ignore:
          - "generated/**"
        """)
        var located = configuration
        let fixture = try Fixture([
            "r.xml": "<Rule name='R'><cond><i>1</i><match><s>a</s><s>a</s></match></cond></Rule>",
            "generated/deep/g.xml": "<Rule name='G'><frobnicate/></Rule>",
        ])
        located.directory = fixture.path()
        let report = try Linter.lint(paths: [fixture.path()], configuration: located)
        #expect(report.fileCount == 1)
        #expect(report.findings.map(\.id) == ["XP0601"])
        #expect(report.findings[0].severity == .error)
    }

    @Test func flowStyleConfigurationAndItsErrors() throws {
        let flow = try LintConfiguration.parse("rules: {XP0201: warning, 'XP0205': off}\nignore: [a/*.xml, \"b/**\"]")
        #expect(flow.levels == ["XP0201": .warning, "XP0205": .off])
        #expect(flow.ignore == ["a/*.xml", "b/**"])
        #expect(throws: LintConfiguration.ParseError.self) { try LintConfiguration.parse("rules:\n  XP9999: off") }
        #expect(throws: LintConfiguration.ParseError.self) { try LintConfiguration.parse("rules:\n  XP0201: loud") }
        #expect(throws: LintConfiguration.ParseError.self) { try LintConfiguration.parse("colours: red") }
    }

    @Test(arguments: [("*.xml", "a.xml", true), ("*.xml", "d/a.xml", false), ("**/a.xml", "a.xml", true),
                      ("**/a.xml", "x/y/a.xml", true), ("gen/**", "gen/x/y.xml", true), ("a?.xml", "ab.xml", true)])
    func globs(_ pattern: String, _ path: String, _ matches: Bool) {
        #expect(Glob.matches(pattern, path) == matches)
    }

    @Test func configDirResolvesReferencesWithoutReportingThem() throws {
        let fixture = try Fixture([
            "lib/library.xml": "<Rule name='Shared'><frobnicate/></Rule>",
            "changed/r.xml": "<Rule name='R'><rule name='Shared'/></Rule>",
        ])
        let withContext = try Linter.lint(paths: [fixture.path("changed")], contextDirectory: fixture.path())
        #expect(withContext.findings.isEmpty, "\(withContext.findings)")
        let alone = try Linter.lint(paths: [fixture.path("changed")])
        #expect(alone.findings.map(\.id) == ["XP0202"])
    }

    @Test func aMissingPathCannotBeLinted() {
        #expect(throws: LintFailure.self) { try Linter.lint(paths: ["/no/such/place"]) }
    }
}
