import ArgumentParser
import Foundation
import Testing
import TestSupport
@testable import recon

/// The `recon` command as operators run it: the samples end to end, JSON shapes, exit codes,
/// and a run killed with SIGKILL.
@Suite(.serialized) struct ReconCommandTests {
    static let binary = BuiltExecutable.find("recon")

    static let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Samples")

    /// A copy of the samples in a temporary folder (runs change their data files).
    func copySamples() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("recon-samples-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: Self.samples, to: directory)
        return directory
    }

    @discardableResult
    func recon(_ arguments: [String], in directory: URL) throws -> (status: Int32, output: String, errors: String) {
        let process = Process()
        process.executableURL = try BuiltExecutable.require(Self.binary)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile(), errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: errors, as: UTF8.self))
    }

    func json(_ text: String) throws -> Any { try JSONSerialization.jsonObject(with: Data(text.utf8)) }

    /// A command without a `commandName` has it derived from its type's name through
    /// reflection on every start: for recon's 25 commands that was 37 million instructions, 40%
    /// of a `recon tasks`. Each names itself, and the names are the documented ones.
    @Test func everyCommandNamesItself() {
        func names(_ command: any ParsableCommand.Type, _ path: String) -> [String] {
            let configuration = command.configuration
            guard let name = configuration.commandName else { return ["\(path) \(command) (unnamed)"] }
            let full = path.isEmpty ? name : "\(path) \(name)"
            return [full] + configuration.subcommands.flatMap { names($0, full) }
        }
        let all = names(ReconCommand.self, "")
        #expect(!all.contains { $0.hasSuffix("(unnamed)") }, "\(all.filter { $0.hasSuffix("(unnamed)") })")
        #expect(Set(all).isSuperset(of: ["recon users import", "recon run", "recon index show", "recon policy show", "recon serve", "recon reject"]))
    }

    @Test(.enabled(if: binary != nil)) func theSamplesReconcileWithEverySituation() throws {
        let directory = try copySamples()
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(try recon(["users", "import", "users.csv"], in: directory).status == 0)
        let run = try recon(["run", "--all", "--json"], in: directory)
        #expect(run.status == 0, "\(run.errors)")
        let summaries = try #require(try json(run.output) as? [[String: Any]])
        #expect(summaries.map { $0["resource"] as? String } == ["Directory", "HR"])
        let hr = try #require(summaries.last)
        #expect(hr["status"] as? String == "success")
        let situations = try #require(hr["situations"] as? [String: Int])
        #expect(situations == ["CONFIRMED": 13, "COLLISION": 1, "DELETED": 1, "FOUND": 1, "MISSING": 1, "UNASSIGNED": 1, "UNMATCHED": 1, "DISPUTED": 1])
        #expect(hr["responses"] as? [String: Int] == ["CREATE_NEW_USER": 1, "LINK_ACCOUNT": 2])
        let directorySituations = try #require(summaries.first?["situations"] as? [String: Int])
        #expect(directorySituations["CONFIRMED"] == 4 && directorySituations["FOUND"] == 1 && directorySituations["UNASSIGNED"] == 1
                && directorySituations["UNMATCHED"] == 1)

        let search = try recon(["index", "search", "--situation", "DISPUTED", "--json"], in: directory)
        let rows = try #require(try json(search.output) as? [[String: Any]])
        try #require(rows.count == 1)
        #expect(rows[0]["accountId"] as? String == "tw1" && rows[0]["owner"] is NSNull)
        #expect(Set(rows[0].keys) == ["resource", "accountId", "owner", "situation", "lastReconciled", "explanation"])

        let user = try #require(try json(try recon(["users", "show", "newhire1", "--json"], in: directory).output) as? [String: Any])
        #expect((user["attributes"] as? [String: Any])?["email"] as? String == "wanda.maximoff@example.com")
        #expect(Set(user.keys) == ["name", "attributes", "assignedResources", "accounts"])

        let tasks = try #require(try json(try recon(["tasks", "--json"], in: directory).output) as? [[String: Any]])
        #expect(tasks.count == 2 && Set(tasks[0].keys) == ["taskId", "name", "resource", "status", "started", "finished", "details"])

        let policy = try recon(["policy", "show", "HR"], in: directory)
        #expect(policy.output.contains("Correlate HR Account") && policy.output.contains("policy 'HR' (resource=HR)"))

        // Explore and Correlate on the directory: every account is known from the reconciliation
        // (none is new); a group added natively becomes an item.
        #expect(try recon(["explore", "Directory"], in: directory).status == 0)
        let csv = directory.appendingPathComponent("data/directory.csv")
        let text = try String(contentsOf: csv, encoding: .utf8).replacingOccurrences(of: "ckent,clark.kent@example.com,staff,", with: "ckent,clark.kent@example.com,staff|admins,")
        try Data(text.utf8).write(to: csv)
        #expect(try recon(["explore", "Directory"], in: directory).status == 0)
        let items = try #require(try json(try recon(["worklist", "--approver", "helpdesk", "--json"], in: directory).output) as? [[String: Any]])
        try #require(items.map { $0["kind"] as? String } == ["CAPABILITY"])
        #expect(Set(items[0].keys) == ["id", "resource", "accountId", "kind", "suggestedUser", "changes"])
        #expect((items[0]["changes"] as? [[String: Any]])?.first?["new"] as? String == "admins")
        #expect(try recon(["approve", try #require(items[0]["id"] as? String)], in: directory).status == 0)
        #expect(try recon(["worklist", "--json"], in: directory).output.trimmingCharacters(in: .whitespacesAndNewlines) == "[]")

        // The second run finds what the first one fixed.
        let again = try #require(try json(try recon(["run", "HR", "--json"], in: directory).output) as? [String: Any])
        #expect((again["situations"] as? [String: Int])?["CONFIRMED"] == 16)
        // Once nothing changes, Directory's unmatched account keeps its situation, unless asked.
        func detailsOfRun(_ arguments: [String]) throws -> String {
            #expect(try recon(["run", "Directory"] + arguments, in: directory).status == 0)
            let tasks = try #require(try json(try recon(["tasks", "--json"], in: directory).output) as? [[String: Any]])
            return tasks.first?["details"] as? String ?? ""
        }
        _ = try detailsOfRun([])
        #expect(try detailsOfRun([]).contains("1 unchanged accounts kept the situation correlation gave them"))
        #expect(try !detailsOfRun(["--correlate-all"]).contains("unchanged accounts kept"))
    }

    @Test(.enabled(if: binary != nil)) func exitCodesAndConfigurationErrors() throws {
        let directory = try copySamples()
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(try recon(["run"], in: directory).status == 2, "no resource named")
        #expect(try recon(["run", "Nope"], in: directory).status == 2)
        try Data("<ReconcilePolicy name='Broken' resource='Ghost'/>".utf8).write(to: directory.appendingPathComponent("Broken.xml"))
        let broken = try recon(["run", "HR"], in: directory)
        #expect(broken.status == 2)
        #expect(broken.errors.contains("Broken.xml:1:1: error: policy 'Broken' names resource 'Ghost'"))
    }

    /// `users import` reads its files a batch at a time (5,000 users) in one transaction: a
    /// file that fails after the first batch leaves the repository as it was; a second import
    /// replaces users whole, in CSV and in XML.
    @Test(.enabled(if: binary != nil)) func aUsersImportIsAllOrNothingAndReplacesUsers() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("recon-import-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        func users() throws -> [[String: Any]] {
            try #require(try json(try recon(["users", "list", "--json"], in: directory).output) as? [[String: Any]])
        }
        var csv = "name,email,assignedResources,accounts\n"
        for index in 0..<6_000 { csv += "u\(index),u\(index)@example.com,,HR:e\(index)\n" }
        try Data((csv + "u17,again@example.com,,\n").utf8).write(to: directory.appendingPathComponent("bad.csv"))
        let bad = try recon(["users", "import", "bad.csv"], in: directory)
        #expect(bad.status == 2)
        #expect(bad.errors.contains("bad.csv:6002:1: error: user 'u17' appears twice"), "\(bad.errors)")
        #expect(try users().isEmpty)

        try Data(csv.utf8).write(to: directory.appendingPathComponent("users.csv"))
        #expect(try recon(["users", "import", "users.csv"], in: directory).output == "imported 6000 users\n")
        #expect(try users().count == 6_000)
        try Data("""
            <Users>
              <User name='u17'><Attribute name='email' value='new@example.com'/><AssignedResource name='LDAP'/></User>
              <User name='new'><Account resource='HR' accountId='n1'/></User>
            </Users>
            """.utf8).write(to: directory.appendingPathComponent("users.xml"))
        #expect(try recon(["users", "import", "users.xml"], in: directory).status == 0)
        let u17 = try #require(try json(try recon(["users", "show", "u17", "--json"], in: directory).output) as? [String: Any])
        #expect((u17["attributes"] as? [String: String]) == ["email": "new@example.com"])
        #expect((u17["assignedResources"] as? [String]) == ["LDAP"])
        #expect((u17["accounts"] as? [Any])?.isEmpty == true)
        let u18 = try #require(try json(try recon(["users", "show", "u18", "--json"], in: directory).output) as? [String: Any])
        #expect((u18["accounts"] as? [[String: String]]) == [["resource": "HR", "accountId": "e18"]])
        #expect(try users().count == 6_001)
    }

    /// A run killed with SIGKILL leaves a consistent repository; the next start marks the
    /// interrupted task failed and a new run completes.
    @Test(.enabled(if: binary != nil)) func aKilledRunLeavesAConsistentRepository() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("recon-kill-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let count = 60_000
        var csv = "uid,email\n"
        csv.reserveCapacity(count * 24)
        for index in 0..<count { csv += "user\(index),user\(index)@example.com\n" }
        try Data(csv.utf8).write(to: directory.appendingPathComponent("big.csv"))
        try Data("""
        <Waveset><Resource name='Big' type='FlatFile'><ResourceAttribute name='file' value='big.csv'/>
        <ResourceAttribute name='accountId' value='uid'/></Resource></Waveset>
        """.utf8).write(to: directory.appendingPathComponent("config.xml"))

        let process = Process()
        process.executableURL = try BuiltExecutable.require(Self.binary)
        process.arguments = ["run", "Big"]
        process.currentDirectoryURL = directory
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Kill it once some batches are committed (a loaded machine may take a while to start it).
        let deadline = Date().addingTimeInterval(90)
        var committed = false
        while !committed && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
            let search = try recon(["index", "search", "--limit", "600", "--json"], in: directory)
            committed = ((try? json(search.output) as? [Any])?.count ?? 0) >= 500
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try #require(committed, "the run committed no batch in 90 s")

        let rerun = try recon(["run", "Big", "--json"], in: directory)
        #expect(rerun.status == 0, "\(rerun.errors)")
        let summary = try #require(try json(rerun.output) as? [String: Any])
        #expect((summary["situations"] as? [String: Int])?["UNMATCHED"] == count)
        let tasks = try #require(try json(try recon(["tasks", "--json"], in: directory).output) as? [[String: Any]])
        try #require(tasks.map { $0["status"] as? String } == ["success", "failed"])
        #expect((tasks[1]["details"] as? String)?.contains("interrupted") == true)
        let all = try #require(try json(try recon(["index", "search", "--limit", "100000", "--json"], in: directory).output) as? [Any])
        #expect(all.count == count)
    }
}

/// `recon serve` as a process: SIGHUP with a bad configuration keeps the old one; SIGTERM
/// stops it cleanly.
@Suite struct ServeCommandTests {
    /// Collects a pipe's text on a background thread.
    final class Collected: @unchecked Sendable {
        private let lock = NSLock()
        private var text = ""
        func append(_ data: Data) { lock.lock(); text += String(decoding: data, as: UTF8.self); lock.unlock() }
        var value: String { lock.lock(); defer { lock.unlock() }; return text }

        /// Waits (polling, bounded) until the text holds `needle`.
        func waitFor(_ needle: String, seconds: Double = 30) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if value.contains(needle) { return true }
                Thread.sleep(forTimeInterval: 0.05)
            }
            return false
        }
    }

    @Test(.enabled(if: ReconCommandTests.binary != nil)) func hangupKeepsAGoodConfigurationAndTermStops() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("recon-serve-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data("uid,email\na,a@x\n".utf8).write(to: directory.appendingPathComponent("hr.csv"))
        try Data("""
        <Waveset><Resource name='HR' type='FlatFile'><ResourceAttribute name='file' value='hr.csv'/><ResourceAttribute name='accountId' value='uid'/></Resource>
        <ReconcilePolicy name='Default'><Scheduling modes='FULL'><FullSchedule every='1' unit='days' start='2020-01-01T00:00:00'/></Scheduling></ReconcilePolicy></Waveset>
        """.utf8).write(to: directory.appendingPathComponent("config.xml"))

        let process = Process()
        process.executableURL = try BuiltExecutable.require(ReconCommandTests.binary)
        process.arguments = ["serve", "--server", "test", "--interval", "0.2"]
        process.currentDirectoryURL = directory
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        let log = Collected()
        errors.fileHandleForReading.readabilityHandler = { handle in log.append(handle.availableData) }
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        #expect(log.waitFor("recon serve: HR FULL success"), "missed run at start: \(log.value)")
        try Data("<ReconcilePolicy name='Broken' resource='Ghost'/>".utf8).write(to: directory.appendingPathComponent("broken.xml"))
        kill(process.processIdentifier, SIGHUP)
        #expect(log.waitFor("keeping the old one"), "\(log.value)")
        try FileManager.default.removeItem(at: directory.appendingPathComponent("broken.xml"))
        kill(process.processIdentifier, SIGHUP)
        #expect(log.waitFor("configuration reloaded"), "\(log.value)")
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(log.value.components(separatedBy: "HR FULL success").count == 2, "the missed slots ran once: \(log.value)")
    }
}
