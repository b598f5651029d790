import Connectors
import Deployment
import Foundation
import Repository
import Testing
import TestSupport
@testable import Reconciler
@testable import recon

/// One account in each of the eight situations.
let everySituationCSV = """
uid,email,empId,disabled
alice,alice@example.com,E1,
shared,s@example.com,,
dave,dave@example.com,E4,
x9,x9@example.com,E5,
nobody,n@example.com,E99,
twin,t@example.com,E7,

"""

let everySituationUsers = [
    user("alice", empId: "E1", linked: ["alice"]),
    user("bob", linked: ["shared"]), user("carol", linked: ["shared"]),
    user("dan", linked: ["gone"]),
    user("dave", empId: "E4", assigned: ["HR"]),
    user("hank", assigned: ["HR"]),
    user("erin", empId: "E5"),
    user("frank", empId: "E7"), user("gina", empId: "E7"),
]

@Suite struct SituationTests {
    @Test(arguments: Backend.allCases) func everySituationIsClassifiedAndIndexed(_ backend: Backend) throws {
        let deployed = try Deployed(backend: backend, [
            "config.xml": hrConfiguration(policy: "<ReconcilePolicy name='P' resource='HR'><Correlation correlationRule='By Employee Id'/><Responses><Response situation='UNMATCHED' action='CREATE_NEW_USER'/></Responses></ReconcilePolicy>"),
            "hr.csv": everySituationCSV,
        ], users: everySituationUsers)
        let summary = try deployed.run("HR")
        #expect(summary.status == "success")
        #expect(Situation.allCases.allSatisfy { summary.situations[$0] == 1 }, "\(summary.situations)")
        #expect(summary.responses.isEmpty, "no proxy administrator: results only")
        let index = try deployed.index("HR")
        let expected: [String: (String, String?)] = [
            "alice": ("CONFIRMED", "alice"), "shared": ("COLLISION", nil), "gone": ("DELETED", "dan"), "dave": ("FOUND", "dave"),
            "hank": ("MISSING", "hank"), "x9": ("UNASSIGNED", "erin"), "nobody": ("UNMATCHED", nil), "twin": ("DISPUTED", nil),
        ]
        #expect(Set(index.keys) == Set(expected.keys))
        for (id, (situation, owner)) in expected {
            #expect(index[id]?.situation == situation, "\(id)")
            #expect(index[id]?.owner == owner, "\(id)")
        }
        #expect(index["shared"]?.explanation?.contains("bob") == true && index["shared"]?.explanation?.contains("carol") == true)
        let taskID = try #require(summary.taskID)
        let task = try #require(try deployed.repository.task(id: taskID))
        #expect(task.status == "success" && task.situations["DISPUTED"] == 1)
    }

    /// A run ends with its writes copied from SQLite's log into the database file: a copy of
    /// the file alone (what a backup of it holds) has the run's Account Index.
    @Test func aRunLeavesItsIndexInTheDatabaseFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("settled-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("recon.db").path, copy = directory.appendingPathComponent("copy.db").path
        let deployed = try Deployed(repositoryURL: "sqlite:" + path, [
            "config.xml": hrConfiguration(policy: "<ReconcilePolicy name='P' resource='HR'><Correlation correlationRule='By Employee Id'/></ReconcilePolicy>"),
            "hr.csv": everySituationCSV,
        ], users: everySituationUsers)
        #expect(try deployed.run("HR").status == "success")
        try FileManager.default.copyItem(atPath: path, toPath: copy)
        #expect(try openRepository("sqlite:" + copy).indexEntries(resource: "HR", attributes: false).count == 8)
    }

    @Test(arguments: Backend.allCases) func responsesChangeTheRepositoryAndTheResource(_ backend: Backend) throws {
        let deployed = try Deployed(backend: backend, ["config.xml": hrConfiguration(policy: respondingPolicy()), "hr.csv": everySituationCSV], users: everySituationUsers)
        let summary = try deployed.run("HR")
        #expect(summary.status == "success", "\(summary.errors)")
        #expect(summary.responses == [.createNewUser: 1, .linkAccount: 2, .deleteAccount: 1, .createAccount: 1, .unlinkAccount: 1])
        let index = try deployed.index("HR")
        #expect(index["nobody"]?.situation == "CONFIRMED" && index["nobody"]?.owner == "nobody")
        #expect(index["dave"]?.situation == "CONFIRMED")
        #expect(index["x9"]?.situation == "CONFIRMED" && index["x9"]?.owner == "erin")
        #expect(index["hank"]?.situation == "CONFIRMED")
        #expect(index["twin"] == nil && index["gone"] == nil)
        let created = try #require(try deployed.repository.user(named: "nobody"))
        #expect(created.attributes["email"] == .single("n@example.com"))
        #expect(created.accounts == [AccountLink(resource: "HR", accountID: "nobody")])
        #expect(try deployed.repository.user(named: "erin")?.assignedResources == ["HR"])
        #expect(try deployed.repository.user(named: "dan")?.accounts.isEmpty == true)
        let csv = try deployed.file("hr.csv")
        #expect(!csv.contains("twin,"))
        #expect(csv.contains("hank,hank@example.com"))
        // A second run finds everything in order.
        let second = try deployed.run("HR")
        #expect(second.situations[.confirmed] == 5 && second.situations[.collision] == 1, "\(second.situations)")
        #expect(second.responses.isEmpty)
    }

    @Test(arguments: Backend.allCases) func aMissingCapabilityIsAnErrorForThatAccountOnly(_ backend: Backend) throws {
        let policy = """
        <ReconcilePolicy name='P' resource='HR'><Workflow proxyAdministrator='Reader'/>
          <Responses><Response situation='UNMATCHED' action='DISABLE_ACCOUNT'/></Responses></ReconcilePolicy>
        """
        let deployed = try Deployed(backend: backend, ["config.xml": hrConfiguration(policy: policy), "hr.csv": "uid,email,empId,disabled\na,a@x,,\nb,b@x,,\n"],
                                    users: [user("a", linked: ["a"])])
        let summary = try deployed.run("HR")
        #expect(summary.status == "completed with errors")
        #expect(summary.errors.map(\.accountID) == ["b"])
        #expect(summary.errors[0].message.contains("lacks the capability DisableAccount"))
        #expect(try deployed.index("HR")["a"]?.situation == "CONFIRMED")
    }

    @Test(arguments: Backend.allCases) func disableMarksTheAccountDisabled(_ backend: Backend) throws {
        let policy = """
        <ReconcilePolicy name='P' resource='HR'><Workflow proxyAdministrator='Admin'/>
          <Responses><Response situation='UNMATCHED' action='DISABLE_ACCOUNT'/></Responses></ReconcilePolicy>
        """
        let deployed = try Deployed(backend: backend, ["config.xml": hrConfiguration(policy: policy), "hr.csv": "uid,email,empId,disabled\nb,b@x,,\n"])
        let summary = try deployed.run("HR")
        #expect(summary.responses == [.disableAccount: 1])
        #expect(try deployed.file("hr.csv").contains("b,b@x,,true"))
        #expect(try deployed.index("HR")["b"]?.situation == "UNMATCHED")
    }

    @Test(arguments: Backend.allCases) func aDryRunReportsTheResponsesAndWritesNothing(_ backend: Backend) throws {
        let policy = """
        <ReconcilePolicy name='P' resource='HR'><Correlation correlationRule='By Employee Id'/><Workflow proxyAdministrator='Admin'/>
          <Responses><Response situation='UNMATCHED' action='DELETE_ACCOUNT'/><Response situation='FOUND' action='LINK_ACCOUNT'/></Responses></ReconcilePolicy>
        """
        let deployed = try Deployed(backend: backend, ["config.xml": hrConfiguration(policy: policy), "hr.csv": everySituationCSV], users: everySituationUsers)
        let before = try deployed.file("hr.csv")
        let summary = try deployed.run("HR", dryRun: true)
        #expect(summary.taskID == nil && summary.dryRun)
        #expect(summary.responses == [.deleteAccount: 1, .linkAccount: 1])
        #expect(Situation.allCases.allSatisfy { summary.situations[$0] == 1 })
        #expect(try deployed.file("hr.csv") == before)
        #expect(try deployed.index("HR").isEmpty)
        #expect(try deployed.repository.tasks(resource: nil, name: nil, limit: 10).isEmpty)
        #expect(try deployed.repository.user(named: "dave")?.accounts.isEmpty == true)
    }

    @Test(arguments: Backend.allCases) func tooManyNativelyRemovedAccountsBlockDeletedResponses(_ backend: Backend) throws {
        let policy = """
        <ReconcilePolicy name='P' resource='HR'><Workflow proxyAdministrator='Admin'/>
          <Responses><Response situation='DELETED' action='UNLINK_ACCOUNT'/></Responses>
          <Options maxNativelyRemovedPercent='25'/></ReconcilePolicy>
        """
        let deployed = try Deployed(backend: backend, ["config.xml": hrConfiguration(policy: policy), "hr.csv": "uid,email,empId,disabled\na,a@x,,\nb,b@x,,\n"],
                                    users: ["a", "b", "c", "d"].map { user($0, linked: [$0]) })
        let summary = try deployed.run("HR")
        #expect(summary.status == "completed with errors")
        #expect(summary.situations[.deleted] == 2)
        #expect(summary.responses.isEmpty)
        #expect(summary.details.contains { $0.contains("maxNativelyRemovedPercent 25%") })
        #expect(try deployed.repository.user(named: "c")?.accounts.count == 1, "no link was removed")
        #expect(try deployed.index("HR")["c"]?.situation == "DELETED")
    }

    /// A run the resource stops (a duplicate account id halfway through the file) throws,
    /// and its task is recorded failed with the reason; what it wrote before stays.
    @Test func aRunTheResourceStopsIsRecordedFailed() throws {
        let policy = "<ReconcilePolicy name='P' resource='HR'><Correlation correlationRule='By Employee Id'/></ReconcilePolicy>"
        let rows = (1...6000).map { "u\($0),u\($0)@x,," } + ["u7,again@x,,"]
        let deployed = try Deployed(["config.xml": hrConfiguration(policy: policy), "hr.csv": "uid,email,empId,disabled\n" + rows.joined(separator: "\n") + "\n"])
        do {
            _ = try deployed.run("HR")
            Issue.record("the run should have failed")
        } catch let error as EngineError {
            #expect(error.description.contains("duplicate account id: lines 8 and 6002"), "\(error)")
            let summary = try #require(error.summary)
            #expect(summary.status == "failed")
            let taskID = try #require(summary.taskID)
            let task = try #require(try deployed.repository.task(id: taskID))
            #expect(task.status == "failed" && task.errors.contains { $0.message.contains("duplicate account id") })
            let kept = try deployed.index("HR").count
            #expect(kept >= 4000, "batches written before the error stay: \(kept)")
        }
    }

    @Test(arguments: Backend.allCases) func theErrorLimitStopsTheRun(_ backend: Backend) throws {
        let rules = "<Rule name='Broken' subtype='SUBTYPE_ACCOUNT_CORRELATION_RULE'><RuleArgument name='account'/><div><length><ref>account.accountId</ref></length><i>0</i></div></Rule>"
        let policy = "<ReconcilePolicy name='P' resource='HR'><Correlation correlationRule='Broken'/><Options errorLimit='2'/></ReconcilePolicy>"
        let rows = (1...10).map { "u\($0),u\($0)@x,," }.joined(separator: "\n")
        let deployed = try Deployed(backend: backend, ["config.xml": hrConfiguration(policy: policy, extra: rules), "hr.csv": "uid,email,empId,disabled\n\(rows)\n"])
        let summary = try deployed.run("HR")
        #expect(summary.status == "failed")
        #expect(summary.errors.count >= 2 && summary.errors.count < 10)
        #expect(summary.errors[0].message.contains("division by zero"))
        #expect(summary.details.contains { $0.contains("errorLimit 2") })
    }

    /// More accounts than a window, a third of them correlated on every core: each outcome is
    /// its own account's, and errors come in the accounts' order; with an error limit the run
    /// stops at the limit's account, in stream order.
    @Test(arguments: Backend.allCases) func correlationsSharedAmongCoresKeepTheAccountsOrder(_ backend: Backend) throws {
        let rules = """
            <Rule name='Checked' subtype='SUBTYPE_ACCOUNT_CORRELATION_RULE'><RuleArgument name='account'/>
              <cond><eq><ref>account.empId</ref><s>bad</s></eq><div><i>1</i><i>0</i></div>
                <list><new class='com.waveset.object.AttributeCondition'><s>empId</s><s>equals</s><ref>account.empId</ref></new></list>
              </cond>
            </Rule>
            """
        let count = 3000
        func empId(_ i: Int) -> String { i % 3 == 1 ? "E\(i)" : i % 3 == 2 && i % 7 == 0 ? "bad" : "none\(i)" }
        let rows = (1...count).map { "a\($0),a\($0)@x,\(empId($0))," }.joined(separator: "\n")
        let users = (1...count).filter { $0 % 3 != 2 }.map { i in
            i % 3 == 0 ? user("u\(i)", linked: ["a\(i)"]) : user("u\(i)", empId: "E\(i)")
        }
        func deploy(_ options: String) throws -> Deployed {
            let policy = "<ReconcilePolicy name='P' resource='HR'><Correlation correlationRule='Checked'/>\(options)</ReconcilePolicy>"
            return try Deployed(backend: backend, ["config.xml": hrConfiguration(policy: policy, extra: rules),
                                                   "hr.csv": "uid,email,empId,disabled\n\(rows)\n"], users: users)
        }
        let failing: [String?] = (1...count).filter { empId($0) == "bad" }.map { "a\($0)" }

        let deployed = try deploy("")
        let summary = try deployed.run("HR")
        #expect(summary.errors.map(\.accountID) == failing)
        #expect(summary.situations[.confirmed] == count / 3 && summary.situations[.unassigned] == count / 3)
        #expect(summary.situations[.unmatched] == count / 3 - failing.count)
        let index = try deployed.index("HR")
        for i in 1...count where empId(i) != "bad" {
            let (situation, owner) = i % 3 == 0 ? ("CONFIRMED", "u\(i)") : i % 3 == 1 ? ("UNASSIGNED", "u\(i)") : ("UNMATCHED", nil)
            #expect(index["a\(i)"]?.situation == situation && index["a\(i)"]?.owner == owner, "a\(i)")
        }

        let limited = try deploy("<Options errorLimit='5'/>").run("HR")
        #expect(limited.status == "failed" && limited.errors.map(\.accountID) == Array(failing.prefix(5)))
    }

    @Test(arguments: Backend.allCases) func incrementalRunsExamineOnlyWhatChanged(_ backend: Backend) throws {
        let policy = "<ReconcilePolicy name='P' resource='HR'><Correlation correlationRule='By Employee Id'/></ReconcilePolicy>"
        let rows = (1...50).map { "u\($0),u\($0)@x,E\($0)," }.joined(separator: "\n")
        let deployed = try Deployed(backend: backend, ["config.xml": hrConfiguration(policy: policy), "hr.csv": "uid,email,empId,disabled\n\(rows)\n"],
                                    users: (1...50).map { user("u\($0)", linked: ["u\($0)"]) })
        #expect(try deployed.run("HR").situations[.confirmed] == 50)
        let changed = (1...50).map { $0 == 7 ? "u7,new@x,E7," : "u\($0),u\($0)@x,E\($0)," }.joined(separator: "\n")
        try Data("uid,email,empId,disabled\n\(changed)\nu51,u51@x,E51,\n".utf8).write(to: deployed.directory.appendingPathComponent("hr.csv"))
        let incremental = try deployed.run("HR", mode: .incremental)
        #expect(incremental.situations[.confirmed] == 1 && incremental.situations[.unmatched] == 1, "\(incremental.situations)")
        #expect(try deployed.index("HR")["u7"]?.attributes.first { $0.name == "email" }?.values == ["new@x"])
        let unchanged = try deployed.run("HR", mode: .incremental)
        #expect(unchanged.situations.values.reduce(0, +) == 0)
    }

    /// An unchanged account is examined again when a user it involves changed: its owner in
    /// the index (here found by correlation), a user linking it (a COLLISION has no owner), a
    /// user it is assigned to.
    @Test(arguments: Backend.allCases) func incrementalRunsExamineTheAccountsOfChangedUsers(_ backend: Backend) throws {
        let policy = "<ReconcilePolicy name='P' resource='HR'><Correlation correlationRule='By Employee Id'/></ReconcilePolicy>"
        let rows = ((1...6).map { "u\($0),u\($0)@x,," } + ["ann,ann@x,,", "x9,x9@x,E9,", "shared,s@x,,"]).joined(separator: "\n")
        let users = (1...6).map { user("u\($0)", linked: ["u\($0)"]) }
            + [user("ann", assigned: ["HR"]), user("carol", empId: "E9"), user("p1", linked: ["shared"]), user("p2", linked: ["shared"])]
        let deployed = try Deployed(backend: backend, ["config.xml": hrConfiguration(policy: policy), "hr.csv": "uid,email,empId,disabled\n\(rows)\n"],
                                    users: users)
        let full = try deployed.run("HR")
        #expect(full.situations[.confirmed] == 6 && full.situations[.found] == 1 && full.situations[.unassigned] == 1
                && full.situations[.collision] == 1, "\(full.situations)")
        #expect(try deployed.run("HR", mode: .incremental).situations.values.reduce(0, +) == 0)

        var changed = users.filter { ["u3", "ann", "carol", "p2"].contains($0.name) }
        for index in changed.indices { changed[index].attributes["title"] = .single("changed") }
        try deployed.repository.saveUsers(changed)
        let incremental = try deployed.run("HR", mode: .incremental)
        #expect(incremental.situations[.confirmed] == 1 && incremental.situations[.found] == 1 && incremental.situations[.unassigned] == 1
                && incremental.situations[.collision] == 1, "\(incremental.situations)")
        #expect(incremental.situations.values.reduce(0, +) == 4)
    }

    /// With attribute-level reconciliation on, a run compares each listed attribute with the
    /// value the index kept (the index loaded with its attributes) and records native changes;
    /// the situations read back with those rows are the ones compared, so an unchanged
    /// account's row is not written again.
    @Test(arguments: Backend.allCases) func attributeReconciliationRecordsNativeChanges(_ backend: Backend) throws {
        let policy = """
            <ReconcilePolicy name='P' resource='HR'><Correlation correlationRule='By Employee Id'/>
              <AttributeReconciliation enabled='true'><Attribute name='email'/></AttributeReconciliation></ReconcilePolicy>
            """
        let rows = (1...3).map { "u\($0),u\($0)@x,E\($0)," }.joined(separator: "\n")
        let deployed = try Deployed(backend: backend, ["config.xml": hrConfiguration(policy: policy), "hr.csv": "uid,email,empId,disabled\n\(rows)\n"],
                                    users: (1...3).map { user("u\($0)", linked: ["u\($0)"]) })
        let first = try deployed.run("HR")
        #expect(first.situations[.confirmed] == 3 && !first.details.contains { $0.hasPrefix("native change") }, "\(first.details)")

        let changed = (1...3).map { $0 == 2 ? "u2,new@x,E2," : "u\($0),u\($0)@x,E\($0)," }.joined(separator: "\n")
        try Data("uid,email,empId,disabled\n\(changed)\n".utf8).write(to: deployed.directory.appendingPathComponent("hr.csv"))
        let second = try deployed.run("HR")
        #expect(second.situations[.confirmed] == 3)
        #expect(second.details.filter { $0.hasPrefix("native change") } == ["native change: u2.email: u2@x -> new@x"], "\(second.details)")
        let index = try deployed.index("HR")
        #expect(index["u2"]?.attributes.first { $0.name == "email" }?.values == ["new@x"])
        #expect(try deployed.repository.history(resource: "HR", accountID: "u1").count == 1, "an unchanged account gets no history row")
    }

    @Test(arguments: Backend.allCases) func aSecondRunOfTheSameResourceIsRefused(_ backend: Backend) throws {
        let deployed = try Deployed(backend: backend, ["config.xml": hrConfiguration(policy: ""), "hr.csv": "uid,email,empId,disabled\n"])
        let running = try deployed.repository.startTask(name: "Reconcile", resource: "HR", mode: "FULL", server: "test")
        #expect(throws: RepositoryError.self) { try deployed.run("HR") }
        do { _ = try deployed.run("HR") } catch { #expect("\(error)".contains("task \(running)")) }
    }

    @Test(arguments: Backend.allCases) func cancelStopsAtAnAccountBoundary(_ backend: Backend) throws {
        let rows = (1...2000).map { "u\($0),u\($0)@x,," }.joined(separator: "\n")
        let deployed = try Deployed(backend: backend, ["config.xml": hrConfiguration(policy: ""), "hr.csv": "uid,email,empId,disabled\n\(rows)\n"])
        var options = RunOptions()
        options.server = "test"
        let repository = deployed.repository
        options.progress = { _ in _ = try? repository.requestCancel(resource: "HR") }
        let summary = try deployed.engine.reconcile("HR", options: options)
        #expect(summary.cancelled && summary.status == "failed")
        let indexed = try deployed.index("HR").count
        #expect(indexed >= 500 && indexed < 2000)
        let taskID = try #require(summary.taskID)
        let task = try #require(try repository.task(id: taskID))
        #expect(task.cancelled && task.status == "failed")
    }
}

@Suite struct PolicyTests {
    @Test func valuesInheritFromDefaultThroughTypeToResource() throws {
        let policies = """
        <ReconcilePolicy name='Default'><Options errorLimit='5' explainSituation='true'/>
          <Responses><Response situation='UNMATCHED' action='DISABLE_ACCOUNT'/></Responses></ReconcilePolicy>
        <ReconcilePolicy name='Files' resourceType='FlatFile'><Options errorLimit='7'/><Scheduling modes='FULL'/></ReconcilePolicy>
        <ReconcilePolicy name='HR only' resource='HR'><Correlation correlationRule='By Employee Id'/>
          <Responses><Response situation='FOUND' action='LINK_ACCOUNT'/></Responses></ReconcilePolicy>
        """
        let deployed = try Deployed(["config.xml": hrConfiguration(policy: policies), "hr.csv": "uid,email,empId,disabled\n"])
        let policy = try deployed.engine.policy(for: "HR")
        #expect(policy.errorLimit.value == 7 && "\(policy.errorLimit.source)".contains("Files"))
        #expect(policy.explainSituation.value && "\(policy.explainSituation.source)".contains("Default"))
        #expect(policy.correlationRule.value == "By Employee Id" && "\(policy.correlationRule.source)".contains("HR only"))
        #expect(policy.response(.unmatched) == .disableAccount && policy.response(.found) == .linkAccount)
        #expect(policy.response(.deleted) == .doNothing && "\(policy.responses[.deleted]!.source)" == "built-in default")
        #expect(policy.modes.value == .full)
        #expect(policy.buckets.value == 1 && policy.allows(server: "anyone"))
    }

    @Test func schedulingNamesServersAndBuckets() throws {
        let deployed = try Deployed(["config.xml": hrConfiguration(policy: """
            <ReconcilePolicy name='P' resource='HR'><Scheduling modes='FULL' server='recon-1, recon-2 recon-3' buckets='8'/></ReconcilePolicy>
            """), "hr.csv": "uid,email,empId,disabled\n"])
        let policy = try deployed.engine.policy(for: "HR")
        #expect(policy.buckets.value == 8 && "\(policy.buckets.source)".contains("P"))
        #expect(["recon-1", "recon-2", "recon-3"].allSatisfy(policy.allows(server:)) && !policy.allows(server: "recon-4"))
        #expect(policy.lines.contains { $0.0 == "buckets" && $0.1 == "8" })
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("recon-buckets-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data(hrConfiguration(policy: "<ReconcilePolicy name='P' resource='HR'><Scheduling buckets='0'/></ReconcilePolicy>").utf8)
            .write(to: directory.appendingPathComponent("config.xml"))
        let (_, problems) = ConfigurationLoader.load(directory: directory.path)
        #expect(problems.map(\.message) == ["buckets='0' must be a whole number between 1 and 1024"], "\(problems)")
    }

    @Test func aBadConfigurationIsRejectedWholeWithPositions() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("recon-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data(hrConfiguration(policy: """
        <ReconcilePolicy name='P' resource='HR'><Correlation correlationRule='Nope'/>
          <Responses><Response situation='CONFIRMED' action='DELETE_ACCOUNT'/></Responses><Options explainSituaton='true'/></ReconcilePolicy>
        """, extra: "<Rule name='Odd'><map><s>k</s></map></Rule>").utf8).write(to: directory.appendingPathComponent("config.xml"))
        let (_, problems) = ConfigurationLoader.load(directory: directory.path)
        #expect(Set(problems.map(\.id)) == ["XP0202", "RC0001", "XP0104"], "\(problems)")
        // A misspelt attribute would leave its value at the default without a word.
        #expect(problems.contains { $0.message.hasPrefix("<Options> does not take the attribute 'explainSituaton'") })
        #expect(problems.allSatisfy { $0.location.line > 1 && $0.location.file.hasSuffix("config.xml") })
    }
}

@Suite struct WorkflowTests {
    @Test func workflowsRunBeforeEachAccountAndAfter() throws {
        let rules = """
        <Rule name='Pre' subtype='SUBTYPE_RECONCILE_WORKFLOW'><print><concat><s>pre </s><ref>resourceName</ref><s> </s><ref>mode</ref></concat></print></Rule>
        <Rule name='Post' subtype='SUBTYPE_RECONCILE_WORKFLOW'><print><concat><s>post task </s><ref>taskId</ref></concat></print></Rule>
        <Rule name='Each' subtype='SUBTYPE_RECONCILE_WORKFLOW'>
          <block>
            <print><concat><ref>accountId</ref><s> </s><ref>initialSituation</ref><s>-></s><ref>finalSituation</ref><s> by </s><ref>response</ref></concat></print>
            <cond><notnull><ref>userName</ref></notnull><map><s>global.lastSituation</s><ref>finalSituation</ref></map></cond>
          </block>
        </Rule>
        """
        let policy = """
        <ReconcilePolicy name='P' resource='HR'>
          <Workflow proxyAdministrator='Admin' preReconciliation='Pre' perAccount='Each' postReconciliation='Post'/>
          <Responses><Response situation='FOUND' action='LINK_ACCOUNT'/></Responses>
        </ReconcilePolicy>
        """
        let deployed = try Deployed(["config.xml": hrConfiguration(policy: policy, extra: rules), "hr.csv": "uid,email,empId,disabled\ndave,d@x,,\n"],
                                    users: [user("dave", assigned: ["HR"])])
        let summary = try deployed.run("HR")
        #expect(summary.status == "success", "\(summary.errors)")
        #expect(summary.details.first == "pre HR FULL")
        #expect(summary.details.contains("dave FOUND->CONFIRMED by LINK_ACCOUNT"))
        #expect(summary.details.last == "post task \(summary.taskID!)")
        #expect(try deployed.repository.user(named: "dave")?.attributes["lastSituation"] == .single("CONFIRMED"))
    }
}
