import Deployment
import Foundation
import Repository
import Testing
import TestSupport
@testable import Reconciler

/// A HR resource of `count` users and accounts in every situation, with responses, for
/// comparing a bucketed run with a single-server one.
private func mixedDeployment(count: Int) -> (files: [String: String], users: [User]) {
    var users: [User] = []
    var csv = "uid,email,empId,disabled\n"
    for i in 0..<count {
        let name = "u\(i)"
        switch i % 6 {
        case 0: users.append(user(name, empId: "E\(i)", linked: [name]))                       // CONFIRMED or DELETED
        case 1: users.append(user(name, empId: "E\(i)", assigned: ["HR"]))                     // FOUND or MISSING
        case 2: users.append(user("owner\(i)", empId: "E\(i)"))                                 // UNASSIGNED
        case 3: users += [user("a\(i)", empId: "E\(i)"), user("b\(i)", empId: "E\(i)")]         // DISPUTED
        case 4: users += [user(name, linked: [name]), user("other\(i)", linked: [name])]        // COLLISION
        default: break                                                                          // UNMATCHED
        }
        if i % 5 != 0 { csv += "\(name),\(name)@example.com,E\(i),\n" }
    }
    let policy = respondingPolicy(options: "<Options maxNativelyRemovedPercent='10'/>")
    return (["config.xml": hrConfiguration(policy: policy), "hr.csv": csv], users)
}

/// Everything a run leaves behind, without times: the index, the users, the history, the file.
private func outcome(_ deployed: Deployed) throws -> [String] {
    var lines: [String] = []
    for (id, entry) in try deployed.index("HR").sorted(by: { $0.key < $1.key }) {
        lines.append("index \(id) \(entry.situation) \(entry.owner ?? "-") \(entry.digest) \(entry.explanation ?? "-") \(entry.attributes.map(\.values))")
        let history = try deployed.repository.history(resource: "HR", accountID: id)
        lines.append("history \(id) " + history.map { "\($0.situation)/\($0.owner ?? "-")/\($0.action ?? "-")" }.joined(separator: " "))
    }
    for user in try deployed.repository.allUsers() {
        lines.append("user \(user.name) \(user.attributes.sorted { $0.key < $1.key }) \(user.assignedResources.sorted()) \(user.accounts.sorted())")
    }
    lines += try deployed.file("hr.csv").split(separator: "\n").map { "file " + $0 }.sorted()
    return lines
}

@Suite struct BucketedRunTests {
    /// The result of a run split into buckets equals that of a single-server run: situations,
    /// responses (the natively-removed safeguard over the whole resource), index, users, file.
    @Test(arguments: Backend.allCases) func aBucketedRunEqualsASingleServerRun(_ backend: Backend) throws {
        let (files, users) = mixedDeployment(count: 180)
        let single = try Deployed(backend: backend, files, users: users)
        let bucketed = try Deployed(backend: backend, files, users: users)
        let expected = try single.run("HR")
        var options = RunOptions()
        options.server = "test"
        let actual = try bucketed.engine.reconcileBucketed("HR", buckets: 4, options: options)
        #expect(expected.status == "completed with errors", "the safeguard holds back the DELETED responses: \(expected.details)")
        #expect(actual.status == expected.status)
        #expect(actual.situations == expected.situations)
        #expect(actual.responses == expected.responses)
        #expect(Situation.allCases.allSatisfy { (expected.situations[$0] ?? 0) > 0 }, "\(expected.situations)")
        #expect(actual.details.contains { $0.hasPrefix("safeguard:") } && actual.details.contains("reconciled in 4 buckets"))
        let singleOutcome = try outcome(single), bucketedOutcome = try outcome(bucketed)
        #expect(singleOutcome == bucketedOutcome, "first difference: \(zip(singleOutcome, bucketedOutcome).first { $0 != $1 }.map { "\($0)" } ?? "length")")
        // A second run of each agrees too.
        let second = try single.run("HR")
        let secondBucketed = try bucketed.engine.reconcileBucketed("HR", buckets: 3, options: options)
        #expect(second.situations == secondBucketed.situations && second.responses == secondBucketed.responses)
        #expect(try outcome(single) == (try outcome(bucketed)))
    }

    /// The connection to PostgreSQL drops for a few seconds in the middle of a run: the run
    /// waits for the server and completes with a complete, consistent index.
    @Test func aRunSurvivesTheDatabaseGoingAwayForAFewSeconds() throws {
        let server = try PostgresServer()
        let count = 8_000
        var csv = "uid,email,empId,disabled\n"
        for i in 0..<count { csv += "acct\(i),a\(i)@x,,\n" }
        let deployed = try Deployed(repositoryURL: server.url, ["config.xml": hrConfiguration(policy: ""), "hr.csv": csv])
        let outage = DispatchSemaphore(value: 0)
        Thread.detachNewThread {  // not a Dispatch worker: this test blocks one until it is done
            // Once the run has written some index rows, stop the server for three seconds.
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline, (try? server.execute("SELECT count(*) FROM account_index")).flatMap(Int.init) ?? 0 < 500 {
                Thread.sleep(forTimeInterval: 0.02)
            }
            try? server.stop()
            Thread.sleep(forTimeInterval: 3)
            try? server.start()
            outage.signal()
        }
        let summary = try deployed.run("HR")
        outage.wait()
        #expect(summary.status == "success", "\(summary.errors)")
        #expect(summary.situations[.unmatched] == count)
        let index = try deployed.index("HR")
        #expect(index.count == count && index.values.allSatisfy { $0.situation == "UNMATCHED" })
        #expect(try deployed.repository.history(resource: "HR", accountID: "acct0").count == 1)
    }
}

/// `recon serve` processes sharing one PostgreSQL repository.
@Suite(.serialized) struct ClusterCommandTests {
    typealias Collected = ServeCommandTests.Collected

    /// A `recon serve` process of one server, its log collected.
    final class Server {
        let name: String
        let process = Process()
        let log = Collected()

        init(_ name: String, directory: URL, repository: String, timeout: Int = 2, parallel: Int = 2) throws {
            self.name = name
            process.executableURL = try BuiltExecutable.require(ReconCommandTests.binary)
            process.arguments = ["serve", "--server", name, "--repository", repository, "--interval", "0.2",
                                 "--server-timeout", String(timeout), "--parallel", String(parallel)]
            process.currentDirectoryURL = directory
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            errors.fileHandleForReading.readabilityHandler = { [log] handle in log.append(handle.availableData) }
            try process.run()
        }

        func stop() {
            guard process.isRunning else { return }
            process.terminate()
            process.waitUntilExit()
        }

        func kill() {
            Glibc.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }

        deinit { stop() }
    }

    func folder(_ files: [String: String]) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("recon-cluster-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for (name, text) in files { try writeFile(directory.appendingPathComponent(name).path, text) }
        return directory
    }

    func flatFile(_ name: String, file: String) -> String {
        "<Resource name='\(name)' type='FlatFile'><ResourceAttribute name='file' value='\(file)'/><ResourceAttribute name='accountId' value='uid'/></Resource>"
    }

    /// A daily full run whose last slot was missed: due as soon as a server starts.
    func policy(_ resource: String, servers: String? = nil, buckets: Int? = nil) -> String {
        "<ReconcilePolicy name='\(resource) policy' resource='\(resource)'><Scheduling modes='FULL'"
            + (servers.map { " server='\($0)'" } ?? "") + (buckets.map { " buckets='\($0)'" } ?? "")
            + "><FullSchedule every='1' unit='days' start='2020-01-01T00:00:00'/></Scheduling></ReconcilePolicy>"
    }

    func accounts(_ count: Int, prefix: String = "acct") -> String {
        var csv = "uid,email\n"
        csv.reserveCapacity(count * 24)
        for i in 0..<count { csv += "\(prefix)\(i),\(prefix)\(i)@example.com\n" }
        return csv
    }

    func tasks(_ repository: any IdentityRepository, _ resource: String) throws -> [TaskRecord] {
        try repository.tasks(resource: resource, name: "Reconcile", limit: 100)
    }

    /// Waits (polling, bounded) until `condition` holds.
    func eventually(seconds: Double = 60, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return false
    }

    @Test(.enabled(if: ReconCommandTests.binary != nil)) func threeServersShareSeveralResources() throws {
        let url = try SharedPostgres.newDatabase()
        let resources = ["R1", "R2", "R3", "R4"]
        var files = ["config.xml": "<Waveset>" + resources.map { flatFile($0, file: "\($0).csv") }.joined()
                     + policy("R1", servers: "s1") + policy("R2", servers: "s2, s3") + policy("R3") + policy("R4") + "</Waveset>"]
        for resource in resources { files["\(resource).csv"] = accounts(50, prefix: resource) }
        let directory = try folder(files)
        defer { try? FileManager.default.removeItem(at: directory) }
        let repository = try openRepository(url, serverTimeout: 2000)
        let servers = try ["s1", "s2", "s3"].map { try Server($0, directory: directory, repository: url) }
        #expect(try eventually { try resources.allSatisfy { try tasks(repository, $0).first?.status == "success" } },
                "\(servers.map(\.log.value))")
        Thread.sleep(forTimeInterval: 1)  // time for any server that would run a slot twice
        for resource in resources { #expect(try tasks(repository, resource).count == 1, "\(resource) ran once") }
        #expect(try tasks(repository, "R1").first?.server == "s1")
        #expect(["s2", "s3"].contains(try tasks(repository, "R2").first?.server ?? ""))
        let status = try ReconCommandTests().recon(["status", "--servers", "--json", "--repository", url, "--server-timeout", "2"], in: directory)
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [[String: Any]])
        #expect(rows.map { $0["server"] as? String } == ["s1", "s2", "s3"] && rows.allSatisfy { $0["state"] as? String == "alive" })
        for server in servers { server.stop() }
        #expect(try repository.servers().allSatisfy { $0.stopped != nil })
    }

    /// A server killed mid-run loses its lease once silent for the server timeout: its task is
    /// marked failed and the run goes to the other eligible server, which completes it.
    @Test(.enabled(if: ReconCommandTests.binary != nil)) func aKilledServersRunGoesToALiveServer() throws {
        let url = try SharedPostgres.newDatabase()
        let count = 12_000
        let directory = try folder(["config.xml": "<Waveset>" + flatFile("Big", file: "big.csv") + policy("Big", servers: "s1 s2") + "</Waveset>",
                                    "big.csv": accounts(count)])
        defer { try? FileManager.default.removeItem(at: directory) }
        let repository = try openRepository(url, serverTimeout: 2000)
        let first = try Server("s1", directory: directory, repository: url)
        #expect(try eventually { try repository.searchIndex(IndexQuery()).count >= 500 }, "\(first.log.value)")
        first.kill()
        let second = try Server("s2", directory: directory, repository: url)
        defer { second.stop() }
        #expect(try eventually { try tasks(repository, "Big").first?.status == "success" }, "\(second.log.value)")
        let runs = try tasks(repository, "Big")
        #expect(runs.map(\.status) == ["success", "failed"] && runs.map(\.server) == ["s2", "s1"])
        #expect(runs[1].details?.contains("server s1 stopped answering") == true)
        let index = try repository.indexEntries(resource: "Big", attributes: false)
        #expect(index.count == count && index.values.allSatisfy { $0.situation == "UNMATCHED" })
    }

    /// A bucketed run of one large resource shared by two servers; one is killed holding a
    /// bucket, which the other takes again; the run completes with a consistent index.
    @Test(.enabled(if: ReconCommandTests.binary != nil)) func aKilledServersBucketIsTakenAgain() throws {
        let url = try SharedPostgres.newDatabase()
        let count = 9_000
        let directory = try folder(["config.xml": "<Waveset>" + flatFile("Big", file: "big.csv") + policy("Big", buckets: 4) + "</Waveset>",
                                    "big.csv": accounts(count)])
        defer { try? FileManager.default.removeItem(at: directory) }
        let repository = try openRepository(url, serverTimeout: 2000)
        let first = try Server("s1", directory: directory, repository: url, parallel: 1)
        let second = try Server("s2", directory: directory, repository: url, parallel: 1)
        defer { second.stop() }
        let server = try PostgresURLServer(url)
        #expect(try eventually { try server.count("SELECT count(*) FROM run_buckets WHERE state = 'taken' AND server = 's1' AND bucket >= 0") > 0 },
                "\(first.log.value)")
        first.kill()
        #expect(try eventually { try tasks(repository, "Big").first?.status == "success" }, "\(second.log.value)")
        let runs = try tasks(repository, "Big")
        #expect(runs.count == 1 && runs[0].situations["UNMATCHED"] == count, "\(runs)")
        #expect(runs[0].details?.contains("reconciled in 4 buckets") == true)
        #expect(try server.count("SELECT count(*) FROM run_buckets WHERE task = \(runs[0].id) AND state = 'done'") == 5)
        let index = try repository.indexEntries(resource: "Big", attributes: false)
        #expect(index.count == count && index.values.allSatisfy { $0.situation == "UNMATCHED" })
        #expect(try server.count("SELECT count(*) FROM index_history") == count, "each account's history once: a bucket commits all or nothing")
    }
}

/// Counting queries on the shared test server's database named by a repository address.
private struct PostgresURLServer {
    let database: String
    init(_ url: String) throws { database = String(url.split(separator: "/").last ?? "") }

    func count(_ sql: String) throws -> Int {
        let server = try SharedPostgres.shared()
        return Int(try server.execute(sql, database: database)) ?? -1
    }
}
