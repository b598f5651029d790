import Foundation
import Repository

/// `recon serve`: runs the due full and incremental reconciliations of the resources whose
/// policy names this server (or no server). At most one run per resource at a time and at most
/// `parallelism` at once; a missed slot (the daemon was down) runs once, not once per slot.
/// Time comes from `clock`, so tests drive the daemon on a fake clock with `tick()`.
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

    public init(engine: Engine, server: String, parallelism: Int = 2, clock: @escaping Clock = { currentMillis() },
                log: @escaping @Sendable (String) -> Void) throws {
        self.engine = engine
        self.server = server
        self.parallelism = max(1, parallelism)
        self.clock = clock
        self.log = log
        try engine.repository.recoverInterruptedTasks(server: server)
        // A slot is handled when a run started at or after it: missed slots run once at start.
        for task in try engine.repository.tasks(resource: nil, name: "Reconcile", limit: 1000) {
            let key = Self.key(task.resource, task.mode)
            handled[key] = max(handled[key] ?? 0, task.started)
        }
    }

    private static func key(_ resource: String, _ mode: String) -> String { resource + "\u{0}" + mode }

    /// The resources this server reconciles.
    private func resources(_ engine: Engine) -> [String] {
        engine.deployment.resources.keys.sorted().filter { name in
            guard let policy = try? engine.policy(for: name) else { return false }
            return (policy.server.value == nil || policy.server.value == server) && policy.modes.value != .none
        }
    }

    /// Starts every due run that a free slot allows; returns the (resource, mode) started.
    @discardableResult
    public func tick() -> [(String, RunOptions.Mode)] {
        let now = clock()
        lock.lock()
        defer { lock.unlock() }
        guard !stopping else { return [] }
        let scheduler = Scheduler(engine: engine)
        var started: [(String, RunOptions.Mode)] = []
        for resource in resources(engine) where !running.contains(resource) && running.count < parallelism {
            // The due job of each mode; a full run wins when both are due and covers the other.
            let fullKey = Self.key(resource, RunOptions.Mode.full.rawValue), incrementalKey = Self.key(resource, RunOptions.Mode.incremental.rawValue)
            let full = try? scheduler.dueJob(resource, mode: .full, now: now, after: handled[fullKey] ?? 0)
            let incremental = try? scheduler.dueJob(resource, mode: .incremental, now: now, after: handled[incrementalKey] ?? 0)
            guard let job = full ?? incremental else { continue }
            let mode = job.mode
            if let full { handled[fullKey] = full.computed }
            if let incremental { handled[incrementalKey] = incremental.computed }
            running.insert(resource)
            started.append((resource, mode))
            launch(resource, mode, engine)
        }
        return started
    }

    private func launch(_ resource: String, _ mode: RunOptions.Mode, _ engine: Engine) {
        group.enter()
        DispatchQueue.global().async { [self] in
            defer {
                lock.lock()
                running.remove(resource)
                lock.unlock()
                group.leave()
            }
            var options = RunOptions()
            options.mode = mode
            options.server = server
            do {
                let summary = try engine.reconcile(resource, options: options)
                log("recon serve: \(resource) \(mode.rawValue) \(summary.status), task \(summary.taskID.map(String.init) ?? "-")")
            } catch {
                log("recon serve: \(resource) \(mode.rawValue) failed: \(error)")
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
    }

    /// Waits for the runs in progress (tests).
    public func waitForRuns() { group.wait() }
}
