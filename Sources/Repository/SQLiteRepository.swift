import Connectors
import Foundation
import GRDB

/// The identity repository and Account Index in an SQLite file (WAL mode), through GRDB.
/// Every change happens inside a transaction: a process killed at any moment leaves the file
/// consistent, and an interrupted task is marked failed by the next process that opens it.
public final class SQLiteRepository: IdentityRepository, @unchecked Sendable {
    private let pool: DatabasePool
    public let path: String

    /// Opens (creating and migrating as needed) the repository at `path`.
    public init(path: String) throws {
        self.path = path
        var configuration = Configuration()
        configuration.busyMode = .timeout(30)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
        } catch {
            throw RepositoryError("cannot open the repository \(path): \(error)")
        }
    }

    /// The schema, one migration per version.
    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("1: users, links, index, tasks") { db in
            try db.execute(sql: """
            CREATE TABLE users (name TEXT PRIMARY KEY NOT NULL, modified INTEGER NOT NULL);
            CREATE TABLE user_attributes (user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
                name TEXT NOT NULL, position INTEGER NOT NULL, value TEXT NOT NULL, multi INTEGER NOT NULL,
                PRIMARY KEY (user, name, position));
            CREATE INDEX user_attributes_by_value ON user_attributes(name, value);
            CREATE TABLE assignments (user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
                resource TEXT NOT NULL, PRIMARY KEY (user, resource));
            CREATE INDEX assignments_by_resource ON assignments(resource);
            CREATE TABLE links (user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
                resource TEXT NOT NULL, account_id TEXT NOT NULL, PRIMARY KEY (user, resource, account_id));
            CREATE INDEX links_by_account ON links(resource, account_id);
            CREATE INDEX links_by_account_id ON links(account_id);
            CREATE TABLE account_index (resource TEXT NOT NULL, account_id TEXT NOT NULL, owner TEXT,
                situation TEXT NOT NULL, attributes TEXT NOT NULL, digest TEXT NOT NULL, last_seen INTEGER,
                last_reconciled INTEGER NOT NULL, explanation TEXT, PRIMARY KEY (resource, account_id));
            CREATE INDEX account_index_by_owner ON account_index(owner);
            CREATE TABLE index_history (resource TEXT NOT NULL, account_id TEXT NOT NULL, at INTEGER NOT NULL,
                task INTEGER, situation TEXT NOT NULL, owner TEXT, action TEXT);
            CREATE INDEX index_history_by_account ON index_history(resource, account_id);
            CREATE TABLE tasks (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, resource TEXT NOT NULL,
                mode TEXT NOT NULL, server TEXT NOT NULL, pid INTEGER NOT NULL, started INTEGER NOT NULL,
                finished INTEGER, status TEXT NOT NULL, cancelled INTEGER NOT NULL DEFAULT 0,
                cancel_requested INTEGER NOT NULL DEFAULT 0, situations TEXT NOT NULL DEFAULT '{}',
                responses TEXT NOT NULL DEFAULT '{}', details TEXT);
            CREATE INDEX tasks_by_resource ON tasks(resource, status);
            CREATE TABLE task_errors (task INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
                account_id TEXT, message TEXT NOT NULL);
            CREATE TABLE resource_status (resource TEXT PRIMARY KEY NOT NULL, status TEXT NOT NULL, task INTEGER);
            """)
        }
        migrator.registerMigration("2: work items") { db in
            try db.execute(sql: """
            CREATE TABLE work_items (seq INTEGER PRIMARY KEY AUTOINCREMENT, resource TEXT NOT NULL, account_id TEXT NOT NULL,
                kind TEXT NOT NULL, suggested_user TEXT, approver TEXT, changes TEXT NOT NULL, status TEXT NOT NULL,
                message TEXT, created INTEGER NOT NULL, decided INTEGER);
            CREATE INDEX work_items_by_status ON work_items(status);
            """)
        }
        return migrator
    }

    // MARK: Users

    public func saveUsers(_ users: [User]) throws {
        try write { writer in for user in users { try writer.saveUser(user) } }
    }

    public func allUsers() throws -> [User] {
        try pool.read { db in
            let names = try String.fetchAll(db, sql: "SELECT name FROM users ORDER BY name")
            return try names.compactMap { try Self.loadUser($0, db) }
        }
    }

    public func user(named name: String) throws -> User? {
        try pool.read { db in try Self.loadUser(name, db) }
    }

    public func userWithAccounts(named name: String) throws -> (User, [IndexEntry])? {
        try pool.read { db in
            guard let user = try Self.loadUser(name, db) else { return nil }
            let owned = try Row.fetchAll(db, sql: "SELECT * FROM account_index WHERE owner = ? ORDER BY resource, account_id",
                                         arguments: [name]).map(Self.entry)
            return (user, owned)
        }
    }

    static func loadUser(_ name: String, _ db: Database) throws -> User? {
        guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM users WHERE name = ?"), arguments: [name]) != nil else { return nil }
        var attributes: [String: AttributeValue] = [:]
        for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT name, value, multi FROM user_attributes WHERE user = ? ORDER BY name, position"),
                                    arguments: [name]) {
            let key: String = row["name"], value: String = row["value"], multi: Bool = row["multi"]
            if multi {
                attributes[key] = .multi((attributes[key]?.values ?? []) + [value])
            } else {
                attributes[key] = .single(value)
            }
        }
        let assigned = try String.fetchAll(db.cachedStatement(sql: "SELECT resource FROM assignments WHERE user = ?"), arguments: [name])
        let links = try Row.fetchAll(db.cachedStatement(sql: "SELECT resource, account_id FROM links WHERE user = ?"), arguments: [name])
            .map { AccountLink(resource: $0["resource"], accountID: $0["account_id"]) }
        return User(name: name, attributes: attributes, assignedResources: Set(assigned), accounts: Set(links))
    }

    public func existingUsers(_ names: [String]) throws -> [String] {
        guard !names.isEmpty else { return [] }
        return try pool.read { db in
            try names.filter { try Bool.fetchOne(db, sql: "SELECT 1 FROM users WHERE name = ?", arguments: [$0]) != nil }
        }
    }

    /// Users matching every condition, sorted by name.
    public func findUsers(_ conditions: [UserCondition]) throws -> [String] {
        guard !conditions.isEmpty else { return [] }
        var clauses: [String] = []
        var arguments: [DatabaseValueConvertible] = []
        for condition in conditions {
            let (clause, values) = Self.clause(condition)
            clauses.append(clause)
            arguments += values
        }
        let sql = "SELECT name FROM users u WHERE " + clauses.joined(separator: " AND ") + " ORDER BY name LIMIT 1000"
        return try pool.read { db in try String.fetchAll(db.cachedStatement(sql: sql), arguments: StatementArguments(arguments)) }
    }

    /// One condition as SQL over `users u`. Equality and prefixes go through the indexes
    /// (`u.name IN (...)`), so correlating one account is a few index lookups, not a scan.
    private static func clause(_ condition: UserCondition) -> (String, [DatabaseValueConvertible]) {
        let operand = condition.operand
        switch (condition.attribute, condition.op) {
        case ("name", .equals): return ("u.name = ?", [operand])
        case ("linkedAccountId", .equals): return ("u.name IN (SELECT user FROM links WHERE account_id = ?)", [operand])
        case ("name", _), ("linkedAccountId", _): break
        case (let attribute, .equals):
            return ("u.name IN (SELECT user FROM user_attributes WHERE name = ? AND value = ?)", [attribute, operand])
        case (let attribute, .startsWith):
            return ("u.name IN (SELECT user FROM user_attributes WHERE name = ? AND value >= ? AND value < ?)",
                    [attribute, operand, operand + "\u{10FFFF}"])
        case (let attribute, .isPresent):
            return ("u.name IN (SELECT user FROM user_attributes WHERE name = ?)", [attribute])
        default: break
        }
        let value: String, source: String, extra: [DatabaseValueConvertible]
        switch condition.attribute {
        case "name":
            source = "SELECT u.name AS v"
            extra = []
        case "linkedAccountId":
            source = "SELECT account_id AS v FROM links WHERE user = u.name"
            extra = []
        default:
            source = "SELECT value AS v FROM user_attributes WHERE user = u.name AND name = ?"
            extra = [condition.attribute]
        }
        switch condition.op {
        case .equals: value = "v = ?"
        case .notEquals: return ("NOT EXISTS (SELECT 1 FROM (\(source)) WHERE v = ?)", extra + [operand])
        case .startsWith: value = "substr(v, 1, length(?)) = ?"
        case .endsWith: value = "length(v) >= length(?) AND substr(v, -length(?)) = ?"
        case .contains: value = "instr(v, ?) > 0"
        case .isPresent: return ("EXISTS (\(source))", extra)
        case .notPresent: return ("NOT EXISTS (\(source))", extra)
        }
        let operandCount = value.filter { $0 == "?" }.count
        return ("EXISTS (SELECT 1 FROM (\(source)) WHERE \(value))", extra + Array(repeating: operand, count: operandCount))
    }

    /// (account id, user) for every link to an account on `resource`.
    public func links(on resource: String) throws -> [(accountID: String, user: String)] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT account_id, user FROM links WHERE resource = ? ORDER BY account_id, user", arguments: [resource])
                .map { ($0["account_id"], $0["user"]) }
        }
    }

    /// Users that have `resource` assigned but no link to it.
    public func assignedWithoutLink(on resource: String) throws -> [String] {
        try pool.read { db in
            try String.fetchAll(db, sql: """
                SELECT a.user FROM assignments a WHERE a.resource = ?
                AND NOT EXISTS (SELECT 1 FROM links l WHERE l.user = a.user AND l.resource = a.resource) ORDER BY a.user
                """, arguments: [resource])
        }
    }

    /// Users changed (imported, linked, unlinked, assigned) since `millis`.
    public func usersModified(since millis: Int64) throws -> Set<String> {
        try pool.read { db in Set(try String.fetchAll(db, sql: "SELECT name FROM users WHERE modified >= ?", arguments: [millis])) }
    }

    // MARK: Account Index

    public func indexEntries(resource: String, attributes: Bool) throws -> [String: IndexEntry] {
        let columns = attributes ? "*" : "resource, account_id, owner, situation, '[]' AS attributes, digest, last_seen, last_reconciled, explanation"
        return try pool.read { db in
            var result: [String: IndexEntry] = [:]
            let cursor = try Row.fetchCursor(db, sql: "SELECT \(columns) FROM account_index WHERE resource = ?", arguments: [resource])
            while let row = try cursor.next() {
                let entry = Self.entry(row)
                result[entry.accountID] = entry
            }
            return result
        }
    }

    public func touchIndex(resource: String, at millis: Int64) throws {
        try pool.write { db in
            try db.execute(sql: "UPDATE account_index SET last_reconciled = ? WHERE resource = ?", arguments: [millis, resource])
            try db.execute(sql: "UPDATE account_index SET last_seen = ? WHERE resource = ? AND situation NOT IN ('DELETED', 'MISSING')",
                           arguments: [millis, resource])
        }
    }

    public func indexEntry(resource: String, accountID: String) throws -> IndexEntry? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM account_index WHERE resource = ? AND account_id = ?", arguments: [resource, accountID]).map(Self.entry)
        }
    }

    public func indexEntries(owner: String) throws -> [IndexEntry] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM account_index WHERE owner = ? ORDER BY resource, account_id", arguments: [owner]).map(Self.entry)
        }
    }

    public func searchIndex(_ query: IndexQuery) throws -> [IndexEntry] {
        var clauses: [String] = []
        var arguments: [DatabaseValueConvertible] = []
        func match(_ column: String, _ match: IndexQuery.Match?) {
            switch match {
            case .isEqual(let v)?: clauses.append("\(column) = ?"); arguments.append(v)
            case .startsWith(let v)?: clauses.append("substr(\(column), 1, length(?)) = ?"); arguments += [v, v]
            case .contains(let v)?: clauses.append("instr(\(column), ?) > 0"); arguments.append(v)
            case nil: break
            }
        }
        match("account_id", query.accountID)
        match("owner", query.owner)
        if !query.resources.isEmpty {
            clauses.append("resource IN (\(query.resources.map { _ in "?" }.joined(separator: ",")))")
            arguments += query.resources
        }
        if !query.situations.isEmpty {
            clauses.append("situation IN (\(query.situations.map { _ in "?" }.joined(separator: ",")))")
            arguments += query.situations
        }
        let sql = "SELECT * FROM account_index" + (clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND "))
            + " ORDER BY resource, account_id LIMIT \(max(0, query.limit))"
        return try pool.read { db in try Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments)).map(Self.entry) }
    }

    /// The history of one account: (time, task, situation, owner, action), oldest first.
    public func history(resource: String, accountID: String) throws -> [(at: Int64, task: Int64?, situation: String, owner: String?, action: String?)] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM index_history WHERE resource = ? AND account_id = ? ORDER BY at, rowid",
                             arguments: [resource, accountID]).map { ($0["at"], $0["task"], $0["situation"], $0["owner"], $0["action"]) }
        }
    }

    static func entry(_ row: Row) -> IndexEntry {
        let attributes = AttributeCoding.decode(row["attributes"])
        return IndexEntry(resource: row["resource"], accountID: row["account_id"], owner: row["owner"], situation: row["situation"],
                          attributes: attributes, digest: row["digest"], lastSeen: row["last_seen"],
                          lastReconciled: row["last_reconciled"], explanation: row["explanation"])
    }

    // MARK: Tasks

    /// Starts a task: refused (naming the running task) while another task of the same
    /// resource and name runs, in this process or any other.
    public func startTask(name: String, resource: String, mode: String, server: String) throws -> Int64 {
        try recoverInterruptedTasks(server: server)
        return try pool.write { db in
            if let running = try Row.fetchOne(db, sql: "SELECT id, server, pid FROM tasks WHERE resource = ? AND name = ? AND status = 'running'",
                                              arguments: [resource, name]) {
                let id: Int64 = running["id"], runningServer: String = running["server"], pid: Int64 = running["pid"]
                throw RepositoryError("resource '\(resource)' is already being reconciled by task \(id) (server \(runningServer), process \(pid)); wait for it or run 'recon cancel \(resource)'")
            }
            try db.execute(sql: "INSERT INTO tasks (name, resource, mode, server, pid, started, status) VALUES (?, ?, ?, ?, ?, ?, 'running')",
                           arguments: [name, resource, mode, server, Int64(getpid()), currentMillis()])
            return db.lastInsertedRowID
        }
    }

    /// Marks failed the running tasks of `server` whose process no longer exists (killed).
    public func recoverInterruptedTasks(server: String) throws {
        try pool.write { db in
            let rows = try Row.fetchAll(db, sql: "SELECT id, pid FROM tasks WHERE status = 'running' AND server = ?", arguments: [server])
            for row in rows {
                let pid: Int64 = row["pid"], id: Int64 = row["id"]
                if pid == Int64(getpid()) { continue }
                if kill(pid_t(pid), 0) == 0 || errno == EPERM { continue }
                try db.execute(sql: "UPDATE tasks SET status = 'failed', finished = ?, details = coalesce(details, '') || 'interrupted: the process running it ended' WHERE id = ?",
                               arguments: [currentMillis(), id])
                let resource = try String.fetchOne(db, sql: "SELECT resource FROM tasks WHERE id = ?", arguments: [id]) ?? ""
                try db.execute(sql: "INSERT OR REPLACE INTO resource_status (resource, status, task) VALUES (?, 'failed', ?)", arguments: [resource, id])
            }
        }
    }

    /// Ends a task with its results; a reconciliation also sets the resource's status.
    public func finishTask(_ id: Int64, status: String, cancelled: Bool, situations: [String: Int], responses: [String: Int],
                           errors: [TaskError], details: String?, setsResourceStatus: Bool) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let situationsJSON = String(decoding: try encoder.encode(situations), as: UTF8.self)
        let responsesJSON = String(decoding: try encoder.encode(responses), as: UTF8.self)
        try pool.write { db in
            try db.execute(sql: "UPDATE tasks SET status = ?, cancelled = ?, finished = ?, situations = ?, responses = ?, details = ? WHERE id = ?",
                           arguments: [status, cancelled, currentMillis(), situationsJSON, responsesJSON, details, id])
            for error in errors.prefix(1000) {
                try db.execute(sql: "INSERT INTO task_errors (task, account_id, message) VALUES (?, ?, ?)", arguments: [id, error.accountID, error.message])
            }
            if setsResourceStatus {
                let resource = try String.fetchOne(db, sql: "SELECT resource FROM tasks WHERE id = ?", arguments: [id]) ?? ""
                try db.execute(sql: "INSERT OR REPLACE INTO resource_status (resource, status, task) VALUES (?, ?, ?)", arguments: [resource, status, id])
            }
        }
    }

    /// Asks the running reconciliation of `resource` to stop; the id of that task, or nil.
    public func requestCancel(resource: String) throws -> Int64? {
        try pool.write { db in
            guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM tasks WHERE resource = ? AND status = 'running' ORDER BY id DESC LIMIT 1",
                                               arguments: [resource]) else { return nil }
            try db.execute(sql: "UPDATE tasks SET cancel_requested = 1 WHERE id = ?", arguments: [id])
            return id
        }
    }

    public func cancelRequested(task: Int64) throws -> Bool {
        try pool.read { db in try Bool.fetchOne(db, sql: "SELECT cancel_requested FROM tasks WHERE id = ?", arguments: [task]) ?? false }
    }

    public func tasks(resource: String? = nil, name: String? = nil, limit: Int = 100) throws -> [TaskRecord] {
        var clauses: [String] = [], arguments: [DatabaseValueConvertible] = []
        if let resource { clauses.append("resource = ?"); arguments.append(resource) }
        if let name { clauses.append("name = ?"); arguments.append(name) }
        let sql = "SELECT * FROM tasks" + (clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")) + " ORDER BY id DESC LIMIT \(limit)"
        return try pool.read { db in
            try Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments)).map { row in try Self.task(row, db) }
        }
    }

    public func task(id: Int64) throws -> TaskRecord? {
        try pool.read { db in try Row.fetchOne(db, sql: "SELECT * FROM tasks WHERE id = ?", arguments: [id]).map { try Self.task($0, db) } }
    }

    private static func task(_ row: Row, _ db: Database) throws -> TaskRecord {
        let id: Int64 = row["id"]
        let decoder = JSONDecoder()
        let situations = (try? decoder.decode([String: Int].self, from: Data((row["situations"] as String).utf8))) ?? [:]
        let responses = (try? decoder.decode([String: Int].self, from: Data((row["responses"] as String).utf8))) ?? [:]
        let errors = try Row.fetchAll(db, sql: "SELECT account_id, message FROM task_errors WHERE task = ? ORDER BY rowid", arguments: [id])
            .map { TaskError(accountID: $0["account_id"], message: $0["message"]) }
        return TaskRecord(id: id, name: row["name"], resource: row["resource"], mode: row["mode"], server: row["server"],
                          started: row["started"], finished: row["finished"], status: row["status"], cancelled: row["cancelled"],
                          situations: situations, responses: responses, errors: errors, details: row["details"])
    }

    /// The last reconciliation status of each resource that has one.
    public func resourceStatuses() throws -> [String: (status: String, task: Int64?)] {
        try pool.read { db in
            var result: [String: (String, Int64?)] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT * FROM resource_status") { result[row["resource"]] = (row["status"], row["task"]) }
            return result
        }
    }

    // MARK: Work items

    public func addWorkItem(_ item: WorkItem) throws -> String {
        let changes = String(decoding: try JSONEncoder().encode(item.changes), as: UTF8.self)
        return try pool.write { db in
            try db.execute(sql: "INSERT INTO work_items (resource, account_id, kind, suggested_user, approver, changes, status, message, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           arguments: [item.resource, item.accountID, item.kind.rawValue, item.suggestedUser, item.approver, changes, item.status, item.message, item.created])
            return "W\(db.lastInsertedRowID)"
        }
    }

    public func workItems(includeDecided: Bool) throws -> [WorkItem] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM work_items" + (includeDecided ? "" : " WHERE status = 'open'") + " ORDER BY seq").map(Self.workItem)
        }
    }

    public func workItem(id: String) throws -> WorkItem? {
        guard id.hasPrefix("W"), let seq = Int64(id.dropFirst()) else { return nil }
        return try pool.read { db in try Row.fetchOne(db, sql: "SELECT * FROM work_items WHERE seq = ?", arguments: [seq]).map(Self.workItem) }
    }

    public func decideWorkItem(id: String, status: String, message: String?) throws {
        guard id.hasPrefix("W"), let seq = Int64(id.dropFirst()) else { throw RepositoryError("no work item '\(id)'") }
        try pool.write { db in
            try db.execute(sql: "UPDATE work_items SET status = ?, message = ?, decided = ? WHERE seq = ?", arguments: [status, message, currentMillis(), seq])
        }
    }

    private static func workItem(_ row: Row) -> WorkItem {
        let seq: Int64 = row["seq"]
        let changes = (try? JSONDecoder().decode([WorkItem.Change].self, from: Data((row["changes"] as String).utf8))) ?? []
        return WorkItem(id: "W\(seq)", resource: row["resource"], accountID: row["account_id"],
                        kind: WorkItem.Kind(rawValue: row["kind"]) ?? .newAccount, suggestedUser: row["suggested_user"],
                        approver: row["approver"], changes: changes, status: row["status"], message: row["message"], created: row["created"])
    }

    public func recordTask(name: String, resource: String, status: String, details: String, server: String) throws -> Int64 {
        try pool.write { db in
            let now = currentMillis()
            try db.execute(sql: "INSERT INTO tasks (name, resource, mode, server, pid, started, finished, status, details) VALUES (?, ?, 'ONCE', ?, ?, ?, ?, ?, ?)",
                           arguments: [name, resource, server, Int64(getpid()), now, now, status, details])
            return db.lastInsertedRowID
        }
    }

    // MARK: Writing

    /// Runs `body` in one transaction: all its changes, or none.
    public func write<T>(_ body: (RepositoryWriter) throws -> T) throws -> T {
        try pool.write { db in try body(SQLiteWriter(db: db)) }
    }
}

/// The changes reconciliation makes, inside one transaction (`IdentityRepository.write`).
public protocol RepositoryWriter {
    func saveUser(_ user: User) throws
    func link(user: String, resource: String, accountID: String) throws
    func unlink(user: String, resource: String, accountID: String) throws
    func setUserAttributes(_ user: String, _ attributes: [String: AttributeValue]) throws
    func upsertIndex(_ entry: IndexEntry) throws
    func removeIndex(resource: String, accountID: String) throws
    func recordHistory(resource: String, accountID: String, task: Int64?, situation: String, owner: String?, action: String?) throws
}

private struct SQLiteWriter: RepositoryWriter {
    let db: Database

    /// Runs a statement compiled once per connection (GRDB's statement cache).
    private func run(_ sql: String, arguments: StatementArguments = StatementArguments()) throws {
        try db.cachedStatement(sql: sql).execute(arguments: arguments)
    }

    func saveUser(_ user: User) throws {
        try run( "INSERT INTO users (name, modified) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET modified = excluded.modified",
                       arguments: [user.name, currentMillis()])
        try run( "DELETE FROM user_attributes WHERE user = ?", arguments: [user.name])
        try writeAttributes(user.name, user.attributes)
        try run( "DELETE FROM assignments WHERE user = ?", arguments: [user.name])
        for resource in user.assignedResources.union(user.accounts.map(\.resource)).sorted() {
            try run( "INSERT INTO assignments (user, resource) VALUES (?, ?)", arguments: [user.name, resource])
        }
        try run( "DELETE FROM links WHERE user = ?", arguments: [user.name])
        for link in user.accounts.sorted() {
            try run( "INSERT INTO links (user, resource, account_id) VALUES (?, ?, ?)", arguments: [user.name, link.resource, link.accountID])
        }
    }

    private func writeAttributes(_ user: String, _ attributes: [String: AttributeValue]) throws {
        for (name, value) in attributes.sorted(by: { $0.key < $1.key }) {
            let multi: Bool
            if case .multi = value { multi = true } else { multi = false }
            for (position, item) in value.values.enumerated() {
                try run( "INSERT INTO user_attributes (user, name, position, value, multi) VALUES (?, ?, ?, ?, ?)",
                               arguments: [user, name, position, item, multi])
            }
        }
    }

    func setUserAttributes(_ user: String, _ attributes: [String: AttributeValue]) throws {
        for name in attributes.keys {
            try run( "DELETE FROM user_attributes WHERE user = ? AND name = ?", arguments: [user, name])
        }
        try writeAttributes(user, attributes)
        try touch(user)
    }

    private func touch(_ user: String) throws {
        try run( "UPDATE users SET modified = ? WHERE name = ?", arguments: [currentMillis(), user])
    }

    func link(user: String, resource: String, accountID: String) throws {
        try run( "INSERT OR IGNORE INTO assignments (user, resource) VALUES (?, ?)", arguments: [user, resource])
        try run( "INSERT OR IGNORE INTO links (user, resource, account_id) VALUES (?, ?, ?)", arguments: [user, resource, accountID])
        try touch(user)
    }

    func unlink(user: String, resource: String, accountID: String) throws {
        try run( "DELETE FROM links WHERE user = ? AND resource = ? AND account_id = ?", arguments: [user, resource, accountID])
        if try Bool.fetchOne(db, sql: "SELECT 1 FROM links WHERE user = ? AND resource = ?", arguments: [user, resource]) == nil {
            try run( "DELETE FROM assignments WHERE user = ? AND resource = ?", arguments: [user, resource])
        }
        try touch(user)
    }

    func upsertIndex(_ entry: IndexEntry) throws {
        let attributes = AttributeCoding.encode(entry.attributes)
        try run( """
            INSERT INTO account_index (resource, account_id, owner, situation, attributes, digest, last_seen, last_reconciled, explanation)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(resource, account_id) DO UPDATE SET owner = excluded.owner, situation = excluded.situation,
              attributes = excluded.attributes, digest = excluded.digest, last_seen = coalesce(excluded.last_seen, account_index.last_seen),
              last_reconciled = excluded.last_reconciled, explanation = excluded.explanation
            """, arguments: [entry.resource, entry.accountID, entry.owner, entry.situation, attributes, entry.digest,
                             entry.lastSeen, entry.lastReconciled, entry.explanation])
    }

    func removeIndex(resource: String, accountID: String) throws {
        try run( "DELETE FROM account_index WHERE resource = ? AND account_id = ?", arguments: [resource, accountID])
    }

    func recordHistory(resource: String, accountID: String, task: Int64?, situation: String, owner: String?, action: String?) throws {
        try run( "INSERT INTO index_history (resource, account_id, at, task, situation, owner, action) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       arguments: [resource, accountID, currentMillis(), task, situation, owner, action])
    }
}

/// Last known attribute values as JSON text in the Account Index:
/// `[{"name":"mail","values":["a@b"],"multi":false}, ...]`, written without JSONEncoder's
/// per-call cost (one row per account per run).
enum AttributeCoding {
    static func encode(_ attributes: [AccountAttribute]) -> String {
        var out = "["
        for (index, attribute) in attributes.enumerated() {
            if index > 0 { out += "," }
            out += "{\"name\":"
            quote(attribute.name, into: &out)
            out += ",\"values\":["
            for (position, value) in attribute.values.enumerated() {
                if position > 0 { out += "," }
                quote(value, into: &out)
            }
            out += "],\"multi\":" + (attribute.multi ? "true" : "false") + "}"
        }
        return out + "]"
    }

    private static func quote(_ text: String, into out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    static func decode(_ text: String) -> [AccountAttribute] {
        (try? JSONDecoder().decode([AccountAttribute].self, from: Data(text.utf8))) ?? []
    }
}
