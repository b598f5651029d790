import Foundation
import Testing
import TestSupport
@testable import Repository

/// Coordination of servers through the repository, on both back ends.
@Suite struct ServerCoordinationTests {
    /// Makes `server`'s last heartbeat `seconds` old.
    func age(_ repository: SQLRepository, _ server: String, by seconds: Int64) throws {
        try repository.database.write { db in
            try db.execute("UPDATE servers SET heartbeat = heartbeat - ? WHERE name = ?", [.int(seconds * 1000), .text(server)])
        }
    }

    @Test(arguments: Backend.allCases) func aSilentServersTasksFailAndFreeTheResource(_ backend: Backend) throws {
        let repository = try makeRepository(backend, serverTimeout: 5_000)
        try repository.heartbeat(server: "a")
        try repository.heartbeat(server: "b")
        let task = try repository.startTask(name: "Reconcile", resource: "HR", mode: "FULL", server: "a")
        let servers = try repository.servers()
        #expect(servers.map(\.name) == ["a", "b"])
        #expect(servers[0].running == [ServerRecord.RunningTask(task: task, resource: "HR", mode: "FULL")] && servers[1].running.isEmpty)
        // While a's heartbeat is fresh, its run holds the resource.
        #expect(try repository.failTasksOfSilentServers().isEmpty)
        #expect(throws: RepositoryError.self) { try repository.startTask(name: "Reconcile", resource: "HR", mode: "FULL", server: "b") }
        try age(repository, "a", by: 6)
        let next = try repository.startTask(name: "Reconcile", resource: "HR", mode: "FULL", server: "b")
        let failed = try #require(try repository.task(id: task))
        #expect(failed.status == "failed" && failed.details?.contains("server a stopped answering") == true)
        #expect(try repository.task(id: next)?.status == "running")
        try repository.serverStopped(server: "b")
        #expect(try repository.servers().first { $0.name == "b" }?.stopped != nil)
        #expect(try repository.failTasksOfSilentServers() == [next])
    }

    @Test(arguments: Backend.allCases) func bucketsAreTakenOnceThenTheFinishingStep(_ backend: Backend) throws {
        let repository = try makeRepository(backend, serverTimeout: 5_000)
        try repository.heartbeat(server: "a")
        try repository.heartbeat(server: "b")
        let task = try repository.startTask(name: "Reconcile", resource: "HR", mode: "FULL", server: "a")
        try repository.createBuckets(task: task, count: 2, plan: "{\"expected\":{}}")
        #expect(try repository.bucketPlan(task: task) == "{\"expected\":{}}")
        #expect(try repository.takeBucket(server: "a", task: nil, resources: ["LDAP"]) == nil)
        let first = try #require(try repository.takeBucket(server: "a", task: nil, resources: ["HR"]))
        let second = try #require(try repository.takeBucket(server: "b", task: task, resources: nil))
        #expect(Set([first.bucket, second.bucket]) == [0, 1] && first.buckets == 2 && first.resource == "HR")
        // The finishing step waits for every bucket.
        #expect(try repository.takeBucket(server: "b", task: task, resources: nil) == nil)
        try repository.write { try $0.completeBucket(task: task, bucket: first.bucket, server: "a", result: "one") }
        #expect(try repository.takeBucket(server: "a", task: task, resources: nil) == nil)
        // b goes silent: its bucket is taken again, and b can no longer complete it.
        try age(repository, "b", by: 6)
        let again = try #require(try repository.takeBucket(server: "a", task: task, resources: nil))
        #expect(again.bucket == second.bucket)
        #expect(throws: RepositoryError.self) {
            try repository.write { try $0.completeBucket(task: task, bucket: second.bucket, server: "b", result: "late") }
        }
        try repository.write { try $0.completeBucket(task: task, bucket: again.bucket, server: "a", result: "two") }
        let finish = try #require(try repository.takeBucket(server: "a", task: task, resources: nil))
        #expect(finish.bucket == BucketClaim.finish)
        #expect(try repository.bucketResults(task: task) == [first.bucket: "one", again.bucket: "two"])
        #expect(try repository.takeBucket(server: "a", task: task, resources: nil) == nil)
    }

    /// Servers starting the same run at the same moment: the database lets exactly one win.
    @Test(arguments: Backend.allCases) func concurrentStartsOfOneResourceLetOneWin(_ backend: Backend) throws {
        let url = try backend.newRepositoryURL(in: Scratch.directory)
        let repositories = try (0..<6).map { _ in try openRepository(url) }
        let wins = NSLock()
        nonisolated(unsafe) var started: [Int64] = []
        DispatchQueue.concurrentPerform(iterations: repositories.count) { index in
            if let id = try? repositories[index].startTask(name: "Reconcile", resource: "HR", mode: "FULL", server: "s\(index)") {
                wins.lock()
                started.append(id)
                wins.unlock()
            }
        }
        #expect(started.count == 1)
        #expect(try repositories[0].tasks(resource: "HR", name: "Reconcile", limit: 10).count == 1)
    }
}

/// The PostgreSQL connection survives the server going away for a few seconds.
@Suite struct PostgresOutageTests {
    @Test func callsWaitForTheServerToComeBack() throws {
        let server = try PostgresServer()
        let repository = try openRepository(server.url)
        try repository.saveUsers([User(name: "ann")])
        try server.stop()
        let restart = DispatchSemaphore(value: 0)
        Thread.detachNewThread {  // not a Dispatch worker: this test blocks one until it is done
            Thread.sleep(forTimeInterval: 2)
            try? server.start()
            restart.signal()
        }
        // Issued while the server is down: retried on a new connection once it is back.
        try repository.saveUsers([User(name: "bob")])
        restart.wait()
        #expect(try repository.allUsers().map(\.name) == ["ann", "bob"])
    }

    @Test func anUnreachableServerIsReportedClearly() throws {
        let port = try Slapd.freePort()
        let error = #expect(throws: RepositoryError.self) {
            try SQLRepository(database: PostgresDatabase(url: "postgres://recon@127.0.0.1:\(port)/recon", environment: [:], reconnectWindow: 1),
                              serverTimeout: 30_000)
        }
        #expect(error?.description.contains("cannot be reached") == true)
    }
}
