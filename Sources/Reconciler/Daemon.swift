import Foundation
import Repository

/// `recon serve`: runs the due full and incremental reconciliations of the resources whose
/// policy names this server (or no server). At most one run per resource at a time and at most
/// `parallelism` at once; a missed slot (the daemon was down) runs once, not once per slot.
/// Time comes from `clock`, so tests drive the daemon on a fake clock with `tick()`.
///
/// Several daemons may share one repository (a cluster): each heartbeats, a slot that another
/// server already ran is not run again, the running task is the resource's lease
/// (`Cluster.swift`), the tasks of a server that went silent are failed so that the next due
/// run goes to a live server, and every daemon helps with the buckets of bucketed runs of the
/// resources it may run.
public final class Daemon: @unchecked Sendable {
    public typealias Clock = @Sendable () -> Int64

    private let lock = NSLock()
    private var engine: Engine
    private let server: String
    private let parallelism: Int
    private let clock: Clock
    private let log: @Sendable (String) -> Void
    /// The last slot handled per resource and mode: a slot runs once.
    private var handled: [String: Int64] = [:]
    private var running: Set<String> = []
    private var stopping = false
    private let group = DispatchGroup()
    private var heartbeat: Heartbeat?

    public init(engine: Engine, server: String, parallelism: Int = 2, clock: @escaping Clock = { currentMillis() },
                log: @escaping @Sendable (String) -> Void) throws {
        self.engine = engine
        self.server = server
        self.parallelism = max(1, parallelism)
        self.clock = clock
        self.log = log
        try engine.repository.heartbeat(server: server)
        heartbeat = Heartbeat(repository: engine.repository, server: server)
        try engine.repository.recoverInterruptedTasks(server: server)
        try noteRunsInRepository(engine)
    }

    /// A slot is handled when a run started for it (or, without a slot, at or after it) on any
    /// server: missed slots run once at start, and a slot another server ran is not run
    /// again. A slot whose latest run was interrupted (its server died) is due again, for
    /// whichever live server comes first.
    private func noteRunsInRepository(_ engine: Engine) throws {
        var latest: [String: TaskRecord] = [:]
        var ran: [String: Int64] = [:]
        for task in try engine.repository.tasks(resource: nil, name: "Reconcile", limit: 1000) {  // newest first
            let key = Self.key(task.resource, task.mode)
            if latest[key] == nil { latest[key] = task }
            if !task.interrupted { ran[key] = max(ran[key] ?? 0, task.slot ?? task.started) }
        }
        for (key, time) in ran { handled[key] = max(handled[key] ?? 0, time) }
        for (key, task) in latest where task.interrupted {
            let slot = task.slot ?? task.started
            if (handled[key] ?? 0) >= slot && (ran[key] ?? 0) < slot { handled[key] = slot - 1 }
        }
    }

    private static func key(_ resource: String, _ mode: String) -> String { resource + "\u{0}" + mode }

    /// The resources this server reconciles.
    private func resources(_ engine: Engine) -> [String] {
        engine.deployment.resources.keys.sorted().filter { name in
            guard let policy = try? engine.policy(for: name) else { return false }
            return policy.allows(server: server) && policy.modes.value != .none
        }
    }

    /// Starts every due run that a free slot allows, then takes buckets of bucketed runs while
    /// slots remain; returns the (resource, mode) of the runs started.
    @discardableResult
    public func tick() -> [(String, RunOptions.Mode)] {
        let now = clock()
        lock.lock()
        defer { lock.unlock() }
        guard !stopping else { return [] }
        let repository = engine.repository
        do {
            try repository.failTasksOfSilentServers()
            try noteRunsInRepository(engine)
        } catch {
            log("recon serve: the repository cannot be read: \(error)")
            return []
        }
        let scheduler = Scheduler(engine: engine)
        let eligible = resources(engine)
        var started: [(String, RunOptions.Mode)] = []
        for resource in eligible where !running.contains(resource) && running.count < parallelism {
            // The due job of each mode; a full run wins when both are due and covers the other.
            let fullKey = Self.key(resource, RunOptions.Mode.full.rawValue), incrementalKey = Self.key(resource, RunOptions.Mode.incremental.rawValue)
            let full = try? scheduler.dueJob(resource, mode: .full, now: now, after: handled[fullKey] ?? 0)
            let incremental = try? scheduler.dueJob(resource, mode: .incremental, now: now, after: handled[incrementalKey] ?? 0)
            guard let job = full ?? incremental else { continue }
            let mode = job.mode
            if let full { handled[fullKey] = full.computed }
            if let incremental { handled[incrementalKey] = incremental.computed }
            started.append((resource, mode))
            let buckets = mode == .full ? (try? engine.policy(for: resource).buckets.value) ?? 1 : 1
            launch(resource) { [server, log] engine in
                var options = RunOptions()
                options.mode = mode
                options.server = server
                options.slot = job.computed
                let summary = buckets > 1 ? try engine.reconcileBucketed(resource, buckets: buckets, options: options)
                    : try engine.reconcile(resource, options: options)
                log("recon serve: \(resource) \(mode.rawValue) \(summary.status), task \(summary.taskID.map(String.init) ?? "-")")
            }
        }
        while running.count < parallelism {
            guard let claim = try? repository.takeBucket(server: server, task: nil, resources: eligible) else { break }
            launch("bucket \(claim.task)/\(claim.bucket)") { [server] engine in try engine.work(on: claim, server: server) }
        }
        return started
    }

    /// Runs `work` alongside the caller (`runAlongside`), counted against `parallelism` under `key`.
    private func launch(_ key: String, _ work: @escaping @Sendable (Engine) throws -> Void) {
        running.insert(key)
        group.enter()
        let engine = self.engine
        runAlongside(named: "recon.run") { [self] in
            defer {
                lock.lock()
                running.remove(key)
                lock.unlock()
                group.leave()
            }
            do {
                try work(engine)
            } catch {
                log("recon serve: \(key) failed: \(error)")
            }
        }
    }

    /// Replaces the configuration (SIGHUP); runs in progress finish with the old one.
    public func reload(_ newEngine: Engine) {
        lock.lock()
        engine = newEngine
        lock.unlock()
        log("recon serve: configuration reloaded")
    }

    /// Stops starting runs, asks running ones to stop at the next account boundary (SIGTERM),
    /// and waits for them.
    public func stop() {
        lock.lock()
        stopping = true
        let active = running
        let repository = engine.repository
        lock.unlock()
        for resource in active { _ = try? repository.requestCancel(resource: resource) }
        group.wait()
        heartbeat?.stop()
        try? repository.serverStopped(server: server)
    }

    /// Waits for the runs in progress (tests).
    public func waitForRuns() { group.wait() }
}
