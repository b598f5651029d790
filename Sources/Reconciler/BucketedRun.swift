import Foundation
import Deployment
import Repository

/// A full run of one large resource split into buckets (ranges of a hash of the account id)
/// that any eligible server sharing the repository takes. Each bucket classifies and responds
/// for its accounts and commits its index rows with its result in one transaction; a dead
/// server's bucket is taken again. The situations that need the whole resource (DELETED,
/// MISSING, the natively-removed safeguard) are decided by the finishing step once all buckets
/// are in, so the result equals a single-server run.

/// Which accounts a bucket covers, and the run-wide facts it needs.
struct BucketPart {
    var bucket: Int
    var buckets: Int
    var server: String
    /// The accounts the repository expected when the run started (users assigned the resource
    /// without a link), by account id: fixed for the whole run, whatever buckets link meanwhile.
    var expected: [String: [String]]

    func contains(_ accountID: String) -> Bool { Self.bucket(of: accountID, among: buckets) == bucket }

    /// A stable hash (FNV-1a of the UTF-8 bytes) of the account id, modulo the bucket count.
    static func bucket(of accountID: String, among buckets: Int) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in accountID.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return Int(hash % UInt64(max(1, buckets)))
    }
}

/// A DELETED or MISSING outcome a bucket leaves to the finishing step.
struct DeferredOutcome: Codable {
    var accountID: String
    var situation: String
    var owner: String?
    var explanation: String?
}

/// What a bucket reports when it completes (stored with the bucket, as JSON).
struct BucketResult: Codable {
    struct Counts: Codable {
        var situations: [String: Int]
        var responses: [String: Int]
        var errors: [TaskError]
        var details: [String]
        var cancelled: Bool

        func add(to summary: inout RunSummary) {
            for (name, count) in situations { if let situation = Situation(rawValue: name) { summary.situations[situation, default: 0] += count } }
            for (name, count) in responses { if let response = Response(rawValue: name) { summary.responses[response, default: 0] += count } }
            summary.errors += errors.prefix(max(0, 1000 - summary.errors.count))
            summary.details += details
            summary.cancelled = summary.cancelled || cancelled
        }
    }

    var summary: Counts
    var linked: Int
    var examined: Int
    var stopped: String?
    var deferred: [DeferredOutcome]
    var foundUsers: [String]

    init(summary: RunSummary, linked: Int, examined: Int, stopped: String?, deferred: [DeferredOutcome], foundUsers: [String]) {
        self.summary = Counts(situations: summary.situationCounts, responses: summary.responseCounts,
                              errors: summary.errors, details: summary.details, cancelled: summary.cancelled)
        self.linked = linked
        self.examined = examined
        self.stopped = stopped
        self.deferred = deferred
        self.foundUsers = foundUsers
    }

    func encoded() throws -> String { String(decoding: try JSONEncoder().encode(self), as: UTF8.self) }
    static func decode(_ text: String) throws -> BucketResult { try JSONDecoder().decode(BucketResult.self, from: Data(text.utf8)) }
}

/// The run-wide plan a bucketed run starts with, kept with its finishing step.
private struct BucketPlan: Codable {
    var expected: [String: [String]]
}

extension Engine {
    /// Starts a bucketed full run of `resourceName` split into `buckets`: its task (the
    /// resource's lease), the pre-reconciliation workflow, and the buckets any server may take.
    public func startBucketedRun(_ resourceName: String, buckets: Int, options: RunOptions) throws -> Int64 {
        guard buckets >= 1 else { throw EngineError("--buckets must be at least 1") }
        guard options.mode == .full, !options.dryRun, options.accounts == nil else {
            throw EngineError("only a full run that is not a dry run can be split into buckets")
        }
        let (resource, policy, adapter) = try prepare(resourceName)
        let taskID = try repository.startTask(name: "Reconcile", resource: resourceName, mode: options.mode.rawValue, server: options.server,
                                              slot: options.slot)
        do {
            let run = ReconciliationRun(engine: self, resource: resource, policy: policy, adapter: adapter, taskID: taskID, options: options)
            try run.preReconciliation()
            let plan = BucketPlan(expected: try run.expectedAccounts())
            try repository.createBuckets(task: taskID, count: buckets, plan: String(decoding: try JSONEncoder().encode(plan), as: UTF8.self))
        } catch {
            var failed = RunSummary(taskID: taskID, resource: resourceName, mode: options.mode, status: "failed", dryRun: false)
            failed.errors.append(TaskError(accountID: nil, message: "\(error)"))
            try? finish(taskID, failed)
            throw EngineError("reconciliation of '\(resourceName)' failed: \(error)", summary: failed)
        }
        return taskID
    }

    /// Works on a bucket (or the finishing step) that `server` took. A failing bucket fails
    /// the whole run, which other servers then stop taking.
    public func work(on claim: BucketClaim, server: String) throws {
        var options = RunOptions()
        options.mode = RunOptions.Mode(rawValue: claim.mode) ?? .full
        options.server = server
        do {
            let (resource, policy, adapter) = try prepare(claim.resource)
            guard let planText = try repository.bucketPlan(task: claim.task) else { throw EngineError("task \(claim.task) has no bucket plan") }
            let plan = try JSONDecoder().decode(BucketPlan.self, from: Data(planText.utf8))
            var run = ReconciliationRun(engine: self, resource: resource, policy: policy, adapter: adapter, taskID: claim.task, options: options)
            if claim.bucket == BucketClaim.finish {
                let results = try repository.bucketResults(task: claim.task).filter { $0.key >= 0 }.sorted { $0.key < $1.key }
                    .map { try BucketResult.decode($0.value) }
                var summary = try run.finishBuckets(results, server: server)
                summary.details.append("reconciled in \(claim.buckets) buckets")
                try finish(claim.task, summary)
            } else {
                run.part = BucketPart(bucket: claim.bucket, buckets: claim.buckets, server: server, expected: plan.expected)
                _ = try run.execute()
            }
        } catch {
            var failed = RunSummary(taskID: claim.task, resource: claim.resource, mode: options.mode, status: "failed", dryRun: false)
            failed.errors.append(TaskError(accountID: nil, message: "bucket \(claim.bucket) on server \(server): \(error)"))
            try? finish(claim.task, failed)
            throw EngineError("bucket \(claim.bucket) of the reconciliation of '\(claim.resource)' failed: \(error)", summary: failed)
        }
    }

    /// Starts a bucketed run and works on its buckets, with whatever other servers help,
    /// until it ends; its summary.
    public func reconcileBucketed(_ resourceName: String, buckets: Int, options: RunOptions) throws -> RunSummary {
        let heartbeat = Heartbeat(repository: repository, server: options.server)
        defer { heartbeat.stop() }
        let taskID = try startBucketedRun(resourceName, buckets: buckets, options: options)
        while true {
            if let claim = try repository.takeBucket(server: options.server, task: taskID, resources: nil) {
                try work(on: claim, server: options.server)
                continue
            }
            guard let task = try repository.task(id: taskID) else { throw EngineError("task \(taskID) vanished") }
            if task.status != "running" { return RunSummary(task) }
            Thread.sleep(forTimeInterval: 0.2)
        }
    }
}

extension RunSummary {
    /// A finished task's summary.
    init(_ task: TaskRecord) {
        self.init(taskID: task.id, resource: task.resource, mode: RunOptions.Mode(rawValue: task.mode) ?? .full, status: task.status, dryRun: false)
        cancelled = task.cancelled
        for (name, count) in task.situations { if let situation = Situation(rawValue: name) { situations[situation] = count } }
        for (name, count) in task.responses { if let response = Response(rawValue: name) { responses[response] = count } }
        errors = task.errors
        details = task.details.map { $0.components(separatedBy: "\n") } ?? []
    }
}

/// Tells the repository every so often that this server is alive, on its own thread, until
/// stopped: the lease on the tasks it runs (`Cluster.swift`).
public final class Heartbeat: @unchecked Sendable {
    private let queue = DispatchQueue(label: "recon.heartbeat")
    private let timer: DispatchSourceTimer

    public init(repository: any IdentityRepository, server: String) {
        let interval = max(0.1, Double(repository.serverTimeout) / 5000)
        timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now(), repeating: interval)
        timer.setEventHandler { try? repository.heartbeat(server: server) }
        timer.resume()
    }

    /// Stops beating and waits for a beat in flight, so that none lands after this returns
    /// (a late beat would mark a server that has just recorded its stop as alive again).
    public func stop() {
        timer.cancel()
        queue.sync {}
    }

    deinit { timer.cancel() }
}
