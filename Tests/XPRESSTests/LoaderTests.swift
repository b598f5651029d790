import Foundation
import Testing
import XMLSource
@testable import XPRESS

@Suite struct LoaderTests {
    @Test func everyStructuralProblemOfAFileIsReportedWithItsPosition() {
        let problems = compileProblems("""
        <block>
          <frobnicate/>
          <add><i> 1</i></add>
          <cond><i>1</i></cond>
          <defvar/>
          <map><s>odd</s></map>
          <new class='java.lang.Runtime'/>
          <invoke name='exec'><ref>x</ref></invoke>
          <invoke name='getX'><new class='java.util.Date'/></invoke>
          <break name='nowhere'/>
          <List><ref>x</ref></List>
        </block>
        """)
        let found = problems.map { "\($0.location.line):\($0.location.column) \($0.id)" }
        #expect(found == ["2:3 XP0101", "3:8 XP0104", "4:3 XP0102", "5:3 XP0103", "6:3 XP0104", "7:3 XP0401",
                          "8:3 XP0402", "9:3 XP0402", "10:3 XP0105", "11:9 XP0101"])
    }

    @Test func ruleFilesReportDuplicatesAndUnknownRulesAcrossFiles() {
        let a = RuleLoader.load(Array("<Waveset><Rule name='A'><rule name='Missing'/></Rule></Waveset>".utf8), file: "a.xml")
        let b = RuleLoader.load(Array("<Rule name='A'><s>again</s></Rule>".utf8), file: "b.xml")
        let (_, problems) = RuleLoader.link([a, b])
        #expect(problems.map(\.id).sorted() == ["XP0202", "XP0204"])
        let duplicate = problems.first { $0.id == "XP0204" }
        #expect(duplicate?.location.file == "b.xml")
        #expect(duplicate?.notes.first?.location?.file == "a.xml")
    }

    @Test func ruleObjectsNeedANameAndExactlyOneBody() {
        let document = RuleLoader.load(Array("<Waveset><Rule><s>a</s></Rule><Rule name='Two'><s>a</s><s>b</s></Rule></Waveset>".utf8), file: "r.xml")
        #expect(document.diagnostics.map(\.id) == ["XP0103", "XP0102"])
        #expect(document.rules.isEmpty)
    }

    @Test func libraryRulesAreNamedByTheirConfiguration() throws {
        let lib = try library("<Configuration name='Ids'><Extension><Library><Rule name='R'><s>r</s></Rule></Library></Extension></Configuration>")
        #expect(lib.rule(named: "Ids:R") != nil)
        #expect(lib.rule(named: "R") == nil)
    }

    @Test func theStandardLibraryIsBuiltInAndClean() {
        #expect(RuleLoader.standardLibrary.diagnostics.isEmpty)
        #expect(RuleLoader.standardLibrary.rules.map(\.name) == [
            "USER_NAME_MATCHES_ACCOUNT_ID", "USER_OWNS_MATCHING_ACCOUNT_ID", "USER_EMAIL_MATCHES_ACCOUNT_EMAIL_CORR",
            "USER_EMAIL_MATCHES_ACCOUNT_EMAIL_CONF", "USER_FIRST_AND_LAST_NAMES_MATCH_ACCOUNT", "SCHEDULING_RULE_ACCEPT_ALL_DATES",
        ])
    }

    @Test func theBuiltInCopyIsTheRulesDirectoryFile() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let onDisk = try Data(contentsOf: root.appendingPathComponent("rules/ReconRules.xml"))
        #expect([UInt8](onDisk) == PackageResources.ReconRules_xml)
    }

    @Test func unknownObjectsAreKeptAndTheirEmbeddedXPRESSIsChecked() {
        let document = RuleLoader.load(Array("""
        <Waveset>
          <Form name='F'>
            <Field name='global.email'><Expansion><ref>account.mail</ref></Expansion><Disable><nonsense/></Disable></Field>
          </Form>
          <TaskDefinition name='T'><Action><Argument name='a' value='$(x)'/></Action></TaskDefinition>
        </Waveset>
        """.utf8), file: "f.xml")
        #expect(document.root?.elements.map(\.name) == ["Form", "TaskDefinition"])
        #expect(document.diagnostics.map(\.id) == ["XP0101"])
        #expect(document.diagnostics.first?.location.line == 3)
    }

    /// Every file of the public Waveset corpus loads: no crash, and any problem is a real
    /// finding with a position in that file.
    @Test(.enabled(if: sharedDirectory != nil, "needs ../shared beside the checkout"))
    func theWavesetCorpusLoads() throws {
        let corpus = try #require(sharedDirectory?.appendingPathComponent("corpus/waveset-public"))
        let files = try RuleLoader.files(in: [corpus.path])
        #expect(files.count >= 30)
        var loadedRoots = 0
        for file in files {
            let document = RuleLoader.load(path: file)
            if document.root != nil { loadedRoots += 1 }
            for diagnostic in document.diagnostics {
                #expect(diagnostic.location.file == file)
                #expect(diagnostic.location.line >= 1)
                // The corpus calls Waveset server classes our sandbox deliberately lacks.
                #expect(["XP0401", "XP0402"].contains(diagnostic.id), "\(diagnostic)")
            }
        }
        #expect(loadedRoots == files.count)
    }
}
