import Foundation
import Repository
import Testing
import TestSupport
@testable import Reconciler

/// A full run takes the situation correlation gave an unchanged account from the Account Index
/// (`CorrelationReuse`) only while nothing it rests on changed: rules, users, the index itself.
@Suite struct CorrelationReuseTests {
    /// HR over ten accounts: two linked (CONFIRMED), three correlating by employee id to users
    /// without HR (UNASSIGNED), one to a user with HR assigned (FOUND), four unowned (UNMATCHED).
    private static let rows = (1...10).map { "a\($0),a\($0)@x,\($0 <= 2 ? "" : $0 <= 6 ? "E\($0)" : "none\($0)")," }
    private static let users = [user("u1", linked: ["a1"]), user("u2", linked: ["a2"])]
        + (3...5).map { user("u\($0)", empId: "E\($0)") } + [user("u6", empId: "E6", assigned: ["HR"])]
    private static let correlated = 8

    private func deploy(_ backend: Backend, rule: String = "By Employee Id", options: String = "", extra: String = "",
                        repositoryURL: String? = nil, users: [User] = users) throws -> Deployed {
        let policy = "<ReconcilePolicy name='P' resource='HR'><Correlation correlationRule='\(rule)'/>\(options)</ReconcilePolicy>"
        let deployed = try Deployed(backend: backend, repositoryURL: repositoryURL,
                                    ["config.xml": hrConfiguration(policy: policy, extra: extra),
                                     "hr.csv": "uid,email,empId,disabled\n\(Self.rows.joined(separator: "\n"))\n"], users: users)
        waitOutClockMargin(backend)
        return deployed
    }

    /// On PostgreSQL a run counts users changed up to `SQLRepository.clockMargin` before it
    /// started as changed after (servers' clocks differ): the tests let that pass.
    private func waitOutClockMargin(_ backend: Backend) {
        if backend == .postgres { usleep(UInt32(SQLRepository.clockMargin + 100) * 1000) }
    }

    /// How many accounts the run's summary says kept their correlation; 0 when it says nothing.
    private func kept(_ summary: RunSummary) -> Int {
        let line = summary.details.first { $0.contains("unchanged accounts kept the situation correlation gave them") }
        return line.flatMap { Int($0.prefix { $0.isNumber }) } ?? 0
    }

    private func situations(_ deployed: Deployed) throws -> [String: String] {
        try deployed.index("HR").mapValues { "\($0.situation) \($0.owner ?? "-")" }
    }

    @Test(arguments: Backend.allCases) func anUnchangedRunKeepsWhatCorrelationGave(_ backend: Backend) throws {
        let deployed = try deploy(backend)
        let first = try deployed.run("HR")
        #expect(kept(first) == 0)
        #expect(first.situations[.confirmed] == 2 && first.situations[.unassigned] == 3 && first.situations[.found] == 1
                && first.situations[.unmatched] == 4, "\(first.situations)")
        let index = try situations(deployed)
        #expect(index["a6"] == "FOUND u6" && index["a3"] == "UNASSIGNED u3" && index["a9"] == "UNMATCHED -")
        #expect(try deployed.repository.correlationBasis(resource: "HR").basis != nil)

        let second = try deployed.run("HR")
        #expect(kept(second) == Self.correlated, "\(second.details)")
        #expect(second.situations == first.situations && second.status == "success")
        #expect(try situations(deployed) == index)
        // A dry run may keep them too; it records nothing.
        let version = try deployed.repository.correlationBasis(resource: "HR").version
        #expect(kept(try deployed.run("HR", dryRun: true)) == Self.correlated)
        #expect(try deployed.repository.correlationBasis(resource: "HR").version == version)
        // Asked to, a run correlates them all; it records its basis all the same.
        var everything = RunOptions()
        everything.server = "test"
        everything.correlatesAll = true
        #expect(kept(try deployed.engine.reconcile("HR", options: everything)) == 0)
        #expect(kept(try deployed.run("HR")) == Self.correlated)
    }

    @Test(arguments: Backend.allCases) func aChangedUserOrAccountIsCorrelatedAgain(_ backend: Backend) throws {
        let deployed = try deploy(backend)
        _ = try deployed.run("HR")
        // Any user changed since: every account is correlated again, and a9 now finds u9.
        try deployed.repository.saveUsers([user("u9", empId: "none9")])
        let afterUser = try deployed.run("HR")
        #expect(kept(afterUser) == 0)
        #expect(try situations(deployed)["a9"] == "UNASSIGNED u9")
        waitOutClockMargin(backend)
        _ = try deployed.run("HR")  // records a basis after the change
        #expect(kept(try deployed.run("HR")) == Self.correlated)

        // A changed account is correlated; the others keep theirs.
        let changed = Self.rows.map { $0.hasPrefix("a10,") ? "a10,a10@x,E3," : $0 }
        try Data("uid,email,empId,disabled\n\(changed.joined(separator: "\n"))\n".utf8).write(to: deployed.directory.appendingPathComponent("hr.csv"))
        let afterAccount = try deployed.run("HR")
        #expect(kept(afterAccount) == Self.correlated - 1)
        #expect(try situations(deployed)["a10"] == "UNASSIGNED u3")
    }

    /// Other rules (another deployment on the same repository) drop the basis before they write;
    /// the first rules then find nothing to keep either.
    @Test(arguments: Backend.allCases) func otherRulesCorrelateAgain(_ backend: Backend) throws {
        let url = try backend.newRepositoryURL(in: Scratch.directory)
        let first = try deploy(backend, repositoryURL: url)
        _ = try first.run("HR")
        let byEmail = """
            <Rule name='By Email'><RuleArgument name='account'/>
              <list><new class='AttributeCondition'><s>email</s><s>equals</s><ref>account.email</ref></new></list>
            </Rule>
            """
        let other = try deploy(backend, rule: "By Email", extra: byEmail, repositoryURL: url, users: [])
        let run = try other.run("HR")
        #expect(kept(run) == 0)
        #expect(run.situations[.unmatched] == 8, "\(run.situations)")
        #expect(kept(try other.run("HR")) == 8)
        #expect(kept(try first.run("HR")) == 0)
        #expect(try situations(first)["a3"] == "UNASSIGNED u3")
    }

    @Test(arguments: Backend.allCases) func unrepeatableRulesCorrelateEveryTimeAndExplanationsAreKept(_ backend: Backend) throws {
        let printing = """
            <Rule name='Printing'><RuleArgument name='account'/>
              <block><print><ref>account.accountId</ref></print>
                <list><new class='AttributeCondition'><s>empId</s><s>equals</s><ref>account.empId</ref></new></list></block>
            </Rule>
            """
        let unrepeatable = try deploy(backend, rule: "Printing", extra: printing)
        _ = try unrepeatable.run("HR")
        let again = try unrepeatable.run("HR")
        #expect(kept(again) == 0)
        #expect(again.details.contains { $0.hasPrefix("the 8 accounts correlated will be correlated again by the next full run") && $0.contains("<print>") },
                "\(again.details)")
        #expect(try unrepeatable.repository.correlationBasis(resource: "HR").basis == nil)

        // A kept situation keeps the explanation the rules gave, but only a row that has one:
        // rows written without (the same rules, not explaining) are correlated again.
        let url = try backend.newRepositoryURL(in: Scratch.directory)
        _ = try deploy(backend, repositoryURL: url).run("HR")
        let explaining = try deploy(backend, options: "<Options explainSituation='true'/>", repositoryURL: url, users: [])
        #expect(kept(try explaining.run("HR")) == 0)
        let explanations = try explaining.index("HR").mapValues(\.explanation)
        #expect(explanations["a9"]??.contains("correlation rule 'By Employee Id' returned") == true)
        #expect(kept(try explaining.run("HR")) == Self.correlated)
        #expect(try explaining.index("HR").mapValues(\.explanation) == explanations)
    }

    /// An index row written outside a run (here as `recon explore --no-correlate` records a new
    /// account) drops the basis, and a run with errors records none.
    @Test(arguments: Backend.allCases) func theIndexWrittenElsewhereOrARunWithErrorsRecordsNothing(_ backend: Backend) throws {
        let deployed = try deploy(backend)
        _ = try deployed.run("HR")
        try deployed.repository.write { writer in
            try writer.upsertIndex(IndexEntry(resource: "HR", accountID: "a3", owner: nil, situation: "UNMATCHED", attributes: [],
                                              digest: try #require(deployed.index("HR")["a3"]?.digest), lastSeen: 1, lastReconciled: 1, explanation: nil))
        }
        let afterWrite = try deployed.run("HR")
        #expect(kept(afterWrite) == 0)
        #expect(try situations(deployed)["a3"] == "UNASSIGNED u3")
        #expect(kept(try deployed.run("HR")) == Self.correlated)

        let failing = """
            <Rule name='Failing'><RuleArgument name='account'/>
              <cond><eq><ref>account.accountId</ref><s>a7</s></eq><div><i>1</i><i>0</i></div>
                <list><new class='AttributeCondition'><s>empId</s><s>equals</s><ref>account.empId</ref></new></list></cond>
            </Rule>
            """
        let withErrors = try deploy(backend, rule: "Failing", extra: failing)
        let run = try withErrors.run("HR")
        #expect(run.errors.map(\.accountID) == ["a7"])
        #expect(try withErrors.repository.correlationBasis(resource: "HR").basis == nil)
        #expect(kept(try withErrors.run("HR")) == 0)
    }
}
