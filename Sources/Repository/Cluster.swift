import Foundation

/// A reconciliation server (a `recon` process) known to the repository.
public struct ServerRecord: Sendable, Hashable {
    public var name: String
    public var host: String
    public var pid: Int64
    public var started: Int64
    /// When the server last said it was alive.
    public var heartbeat: Int64
    /// When it stopped cleanly; nil while it runs (or if it died).
    public var stopped: Int64?
    /// The tasks it is running: (task id, resource, mode).
    public var running: [RunningTask]

    public struct RunningTask: Sendable, Hashable {
        public var task: Int64
        public var resource: String
        public var mode: String
    }
}

/// One bucket of a bucketed run that a server took: which, out of how many. The bucket
/// `Bucket.finish` is the run's last step, taken once every other bucket is done.
public struct BucketClaim: Sendable, Hashable {
    public var task: Int64
    public var resource: String
    public var mode: String
    public var bucket: Int
    public var buckets: Int
    public static let finish = -1
}

/// Coordination of servers sharing one repository, through the database only.
///
/// A running task is its resource's lease: the unique index `tasks_one_running` lets at most one
/// task of a resource run, whichever server starts it. A lease lives while its server's
/// heartbeat is fresh; once a server is silent for `serverTimeout`, any server that starts a
/// task marks the silent server's running tasks failed, and the resource is free again. A dead
/// server's bucket is taken again the same way.
extension SQLRepository {
    /// Records that `server` (this process) is alive now.
    public func heartbeat(server: String) throws {
        let now = currentMillis()
        try database.write { db in
            try db.execute("""
                INSERT INTO servers (name, host, pid, started, heartbeat, stopped) VALUES (?, ?, ?, ?, ?, NULL)
                ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid, heartbeat = excluded.heartbeat, stopped = NULL,
                  started = CASE WHEN servers.pid = excluded.pid AND servers.stopped IS NULL THEN servers.started ELSE excluded.started END
                """, .text(server), .text(ProcessInfo.processInfo.hostName), .int(Int64(getpid())), .int(now), .int(now))
        }
    }

    /// Records that `server` stopped cleanly.
    public func serverStopped(server: String) throws {
        try database.write { db in
            try db.execute("UPDATE servers SET stopped = ? WHERE name = ? AND pid = ?", .int(currentMillis()), .text(server), .int(Int64(getpid())))
        }
    }

    /// Every server known, by name, with the tasks each runs.
    public func servers() throws -> [ServerRecord] {
        try database.read { db in
            var running: [String: [ServerRecord.RunningTask]] = [:]
            for row in try db.rows("SELECT server, id, resource, mode FROM tasks WHERE status = 'running' ORDER BY id") {
                running[row.text(0), default: []].append(.init(task: row.int(1), resource: row.text(2), mode: row.text(3)))
            }
            return try db.rows("SELECT name, host, pid, started, heartbeat, stopped FROM servers ORDER BY name").map { row in
                ServerRecord(name: row.text(0), host: row.text(1), pid: row.int(2), started: row.int(3), heartbeat: row.int(4),
                             stopped: row.optionalInt(5), running: running[row.text(0)] ?? [])
            }
        }
    }

    /// Marks failed the running tasks of servers silent for longer than `serverTimeout`
    /// (stopped without finishing them, or dead); returns their ids. A bucketed run does not
    /// fail with the server that started it: its buckets go to the servers still alive.
    @discardableResult
    public func failTasksOfSilentServers() throws -> [Int64] {
        let limit = currentMillis() - serverTimeout
        return try database.write { db in
            let rows = try db.rows("""
                SELECT t.id, t.resource, t.server FROM tasks t JOIN servers s ON s.name = t.server
                WHERE t.status = 'running' AND (s.heartbeat < ? OR s.stopped IS NOT NULL)
                AND NOT EXISTS (SELECT 1 FROM run_buckets b WHERE b.task = t.id)
                """, .int(limit))
            for row in rows {
                try Self.failTask(db, id: row.int(0), resource: row.text(1),
                                  reason: "interrupted: server \(row.text(2)) stopped answering (no heartbeat for \(serverTimeout / 1000) s)")
            }
            return rows.map { $0.int(0) }
        }
    }

    // MARK: Buckets

    /// Splits the running task `task` into `count` buckets and its finishing step, which keeps
    /// the run's `plan` (what every bucket needs to know of the run as a whole).
    public func createBuckets(task: Int64, count: Int, plan: String) throws {
        try database.write { db in
            try db.execute("INSERT INTO run_buckets (task, bucket, state, result) VALUES (?, ?, 'open', ?)",
                           .int(task), .int(Int64(BucketClaim.finish)), .text(plan))
            try db.insertMany(into: "run_buckets", columns: ["task", "bucket", "state"],
                              rows: (0..<count).map { [.int(task), .int(Int64($0)), .text("open")] }, onConflict: "")
        }
    }

    /// The plan `createBuckets` kept for `task`.
    public func bucketPlan(task: Int64) throws -> String? {
        try database.read { db in try db.row("SELECT result FROM run_buckets WHERE task = ? AND bucket = ?", .int(task), .int(Int64(BucketClaim.finish)))?.optionalText(0) }
    }

    /// Takes a bucket of a running bucketed task for `server`: an open one, or one whose server
    /// went silent; the finishing step once every other bucket is done. Only of `task` when
    /// given, and only of `resources` when given. Nil when none is left.
    public func takeBucket(server: String, task onlyTask: Int64?, resources: [String]?) throws -> BucketClaim? {
        let silent = currentMillis() - serverTimeout
        var arguments: [SQLValue] = [.int(onlyTask ?? -1), .int(onlyTask ?? -1), .int(silent)]
        var resourceClause = ""
        if let resources {
            guard !resources.isEmpty else { return nil }
            resourceClause = "AND t.resource IN (" + resources.map { _ in "?" }.joined(separator: ", ") + ")"
            arguments += resources.map { .text($0) }
        }
        return try database.write { db in
            let row = try db.rows("""
                SELECT b.task, b.bucket, t.resource, t.mode, (SELECT count(*) FROM run_buckets n WHERE n.task = b.task AND n.bucket >= 0)
                FROM run_buckets b JOIN tasks t ON t.id = b.task
                WHERE t.status = 'running' AND (? < 0 OR b.task = ?)
                AND (b.state = 'open' OR (b.state = 'taken' AND NOT EXISTS (
                    SELECT 1 FROM servers s WHERE s.name = b.server AND s.heartbeat >= ? AND s.stopped IS NULL)))
                AND (b.bucket >= 0 OR NOT EXISTS (SELECT 1 FROM run_buckets o WHERE o.task = b.task AND o.bucket >= 0 AND o.state <> 'done'))
                \(resourceClause)
                ORDER BY b.task, b.bucket < 0, b.bucket LIMIT 1 {lockbucket}
                """, arguments).first
            guard let row else { return nil }
            try db.execute("UPDATE run_buckets SET state = 'taken', server = ?, taken = ? WHERE task = ? AND bucket = ?",
                           .text(server), .int(currentMillis()), .int(row.int(0)), .int(row.int(1)))
            return BucketClaim(task: row.int(0), resource: row.text(2), mode: row.text(3), bucket: Int(row.int(1)), buckets: Int(row.int(4)))
        }
    }

    /// The results the buckets of `task` recorded when they completed, by bucket.
    public func bucketResults(task: Int64) throws -> [Int: String] {
        try database.read { db in
            var results: [Int: String] = [:]
            for row in try db.rows("SELECT bucket, result FROM run_buckets WHERE task = ? AND state = 'done'", .int(task)) {
                results[Int(row.int(0))] = row.text(1)
            }
            return results
        }
    }
}
