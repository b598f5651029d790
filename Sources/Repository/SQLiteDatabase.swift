import Foundation
import GRDB
import GRDBSQLite
import CSQLiteConfig

/// Process-wide settings of the SQLite library.
public enum SQLiteLibrary {
    /// Switches SQLite's memory statistics off. With them on (Debian's build), SQLite takes a
    /// process-wide mutex on every allocation and free, which the classifying and writing
    /// threads of a run contend for. Effective only before the first SQLite connection of the
    /// process (GRDB's included): a program calls it first thing; the repository calls it too.
    public static func configure() { _ = configured }

    private static let configured: Bool = recon_sqlite3_disable_memstatus() == SQLITE_OK
}

/// An SQLite file in WAL mode: one writer connection and a pool of read-only connections, each
/// compiling a statement once and then binding, stepping and reading it through SQLite's C API.
/// A correlated account costs a few short reads, and a run writes an index row per account, so
/// per-statement overhead is what a run is made of. GRDB applies the schema migrations (its
/// `grdb_migrations` table records them); the running repository does not go through it.
final class SQLiteDatabase: SQLDatabase, @unchecked Sendable {
    let location: String
    var dialect: SQLDialect { .sqlite }
    private let writer: SQLiteConnection
    /// Writes in this process take turns; other processes wait on SQLite's own lock.
    private let writerLock = NSLock()
    private let readersLock = NSLock()
    private var idleReaders: [SQLiteConnection] = []

    /// Opens (or creates) the file at `path`; `checkpoints` says when its log is copied back.
    init(path: String, checkpoints: WALCheckpointer.Pages = .standard) throws {
        SQLiteLibrary.configure()
        location = path
        do {
            writer = try SQLiteConnection(path: path, readOnly: false)
        } catch {
            throw RepositoryError("cannot open the repository \(path): \(error)")
        }
        writer.checkpoint(with: WALCheckpointer(path: path, pages: checkpoints))
    }

    func read<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        let reader = try takeReader()
        defer { giveBack(reader) }
        return try reader.transaction("BEGIN DEFERRED TRANSACTION", body)
    }

    func write<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        writerLock.lock()
        defer { writerLock.unlock() }
        return try writer.transaction("BEGIN IMMEDIATE TRANSACTION", body)
    }

    private func takeReader() throws -> SQLiteConnection {
        readersLock.lock()
        let idle = idleReaders.popLast()
        readersLock.unlock()
        return try idle ?? SQLiteConnection(path: location, readOnly: true)
    }

    private func giveBack(_ reader: SQLiteConnection) {
        readersLock.lock()
        idleReaders.append(reader)
        readersLock.unlock()
    }

    func settle() { writer.settleLog() }

    /// GRDB's migrator: it records applied identifiers in `grdb_migrations` and serialises
    /// concurrent openers through SQLite's write lock.
    func migrate(_ migrations: [Migration]) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(30)
        let queue = try DatabaseQueue(path: location, configuration: configuration)
        var migrator = DatabaseMigrator()
        for migration in migrations {
            migrator.registerMigration(migration.identifier) { db in
                try db.execute(sql: SQLDialect.sqlite.translate(migration.statements))
            }
        }
        try migrator.migrate(queue)
    }
}

/// One SQLite connection and its compiled statements. Used by one thread at a time (the
/// database hands it out under a lock).
private final class SQLiteConnection: SQLConnection {
    private let handle: OpaquePointer
    private var statements: [StatementKey: OpaquePointer] = [:]
    /// Statements kept compiled at most; past it the cache starts again (statements built with
    /// a varying number of `?` would otherwise accumulate in a long-running server).
    private static let cacheLimit = 256
    /// Statements being stepped now: a `forEachRow` body may run others on this connection.
    /// The cache is emptied only when none is, since finalizing a statement between two of
    /// its steps would free it under its caller.
    private var running = 0
    /// The writer's checkpointer, told of each commit by SQLite's log hook (which it outlives).
    private var checkpointer: WALCheckpointer?

    init(path: String, readOnly: Bool) throws {
        var opened: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        let code = sqlite3_open_v2(path, &opened, flags, nil)
        guard code == SQLITE_OK, let opened else {
            let message = opened.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) } ?? "error \(code)"
            sqlite3_close(opened)
            throw RepositoryError(message)
        }
        handle = opened
        sqlite3_busy_timeout(handle, 30_000)
        try execute("PRAGMA foreign_keys = ON", [])
        // Pages cached per connection (SQLite's default is 2 MB): 16 MB for the writer, whose
        // batches revisit the same index pages (a 64 MB writer cache saved 3% of a
        // 1,000,000-account run for 50 MB more memory); 4 MB for each reader. A run correlates
        // on several readers at once, and at a million users their lookups land at random on
        // far more leaf pages than any cache holds, so a larger reader cache bought almost no
        // hits: at 16 MB, four busy readers took a run's peak from 255 to 313 MB.
        try execute(readOnly ? "PRAGMA cache_size = -4096" : "PRAGMA cache_size = -16384", [])
        if !readOnly {
            try execute("PRAGMA journal_mode = WAL", [])
            try execute("PRAGMA synchronous = NORMAL", [])
            // A statement inserting many rows inside a transaction keeps a statement journal (the
            // pages it changes, to undo it alone); in a temporary file, as Debian's SQLite does by
            // default, that was 570 MB of the 1.4 GB a 1,000,000-account first run wrote, and
            // 0.7 s. In memory it holds one statement's pages. Only this, the writing connection.
            try execute("PRAGMA temp_store = MEMORY", [])
        }
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(handle)
    }

    /// Hands the log's checkpoints to `checkpointer`: SQLite's automatic checkpoint is a log
    /// hook too, which this one replaces.
    func checkpoint(with checkpointer: WALCheckpointer) {
        self.checkpointer = checkpointer
        sqlite3_wal_hook(handle, { context, handle, _, pages in
            Unmanaged<WALCheckpointer>.fromOpaque(context!).takeUnretainedValue().committed(logPages: pages, on: handle!)
            return SQLITE_OK
        }, Unmanaged.passUnretained(checkpointer).toOpaque())
    }

    /// Copies the log back into the database file now (`WALCheckpointer.settle()`).
    func settleLog() { checkpointer?.settle() }

    /// Runs `body` between `begin` and COMMIT, rolling back when it throws.
    func transaction<T>(_ begin: String, _ body: (any SQLConnection) throws -> T) throws -> T {
        try execute(begin, [])
        do {
            let result = try body(self)
            try execute("COMMIT TRANSACTION", [])
            return result
        } catch {
            if sqlite3_get_autocommit(handle) == 0 { try? execute("ROLLBACK TRANSACTION", []) }
            throw error
        }
    }

    func execute(_ sql: String, _ arguments: [SQLValue]) throws {
        try run(statement(sql), arguments) { _ in }
    }

    func forEachRow(_ sql: String, _ arguments: [SQLValue], _ body: (SQLRow) throws -> Void) throws {
        try run(statement(sql), arguments) { statement in try body(SQLRow(current: statement)) }
    }

    /// SQLite's write transactions already exclude each other.
    func lock(_ key: String) throws {}

    /// Rows per INSERT statement: fewer statements to run, within SQLite's parameter limit.
    private static let insertParameters = 900

    /// Many rows per INSERT: each statement run has a fixed cost (binding, halting, resetting)
    /// that a reconciliation would otherwise pay twice per account.
    func insertMany(into table: String, columns: [String], values: [SQLValue], onConflict: String) throws {
        precondition(values.count % columns.count == 0, "\(values.count) values do not make rows of \(columns.count) columns")
        let perStatement = max(1, Self.insertParameters / columns.count) * columns.count
        var start = 0
        while start < values.count {
            let chunk = values[start..<min(values.count, start + perStatement)]
            let shape = InsertShape(table: table, columns: columns, rows: chunk.count / columns.count, onConflict: onConflict)
            try run(statement(.insert(shape)), chunk) { _ in }
            start += chunk.count
        }
    }

    /// The compiled statement of `key`. Statements are cached by their text before translation
    /// (a cached statement costs one lookup, not a scan of its text for dialect tokens), and
    /// multi-row inserts by their shape: their text, a few kilobytes, is built only once.
    private func statement(_ key: StatementKey) throws -> OpaquePointer {
        if let statement = statements[key] { return statement }
        if statements.count >= Self.cacheLimit && running == 0 {
            for statement in statements.values { sqlite3_finalize(statement) }
            statements.removeAll()
        }
        var compiled: OpaquePointer?
        let translated = SQLDialect.sqlite.translate(key.sql)
        let code = sqlite3_prepare_v2(handle, translated, -1, &compiled, nil)
        guard code == SQLITE_OK, let compiled else { throw error(code, translated) }
        statements[key] = compiled
        return compiled
    }

    private func statement(_ sql: String) throws -> OpaquePointer { try statement(.text(sql)) }

    /// Binds `arguments`, steps `statement` to its end handing each row to `row`, and resets
    /// it. The text of all arguments is copied into one buffer that outlives the steps, so
    /// SQLite binds it without copying each string again.
    private func run(_ statement: OpaquePointer, _ arguments: some Collection<SQLValue>, row: (OpaquePointer) throws -> Void) throws {
        guard sqlite3_bind_parameter_count(statement) == Int32(arguments.count) else {
            throw RepositoryError("SQLite statement `\(String(cString: sqlite3_sql(statement)))` takes \(sqlite3_bind_parameter_count(statement)) arguments, given \(arguments.count)")
        }
        var length = 1  // a terminating zero: a valid address even when every string is empty
        for case .text(let value) in arguments { length += value.utf8.count }
        var text: [UInt8] = []
        text.reserveCapacity(length)  // not grown a dozen times through a multi-row insert's 10 KB
        for case .text(var value) in arguments {
            value.withUTF8 { text.append(contentsOf: $0) }  // the bytes at once, not one by one
        }
        text.append(0)
        running += 1
        defer {
            sqlite3_reset(statement)
            running -= 1
        }
        try text.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
            var offset = 0
            var index: Int32 = 0
            for argument in arguments {
                index += 1
                let code: Int32
                switch argument {
                case .null: code = sqlite3_bind_null(statement, index)
                case .int(let int): code = sqlite3_bind_int64(statement, index, int)
                case .text(let value):
                    let count = value.utf8.count
                    code = sqlite3_bind_text(statement, index, base + offset, Int32(count), nil)  // nil: SQLITE_STATIC
                    offset += count
                }
                guard code == SQLITE_OK else { throw error(code, String(cString: sqlite3_sql(statement))) }
            }
            while true {
                let code = sqlite3_step(statement)
                switch code {
                case SQLITE_ROW: try row(statement)
                case SQLITE_DONE: return
                default: throw error(code, String(cString: sqlite3_sql(statement)))
                }
            }
        }
    }

    /// SQLite's message for `code`, with the statement.
    private func error(_ code: Int32, _ sql: String) -> RepositoryError {
        RepositoryError("SQLite error \(code): \(String(cString: sqlite3_errmsg(handle))) - while executing `\(sql)`")
    }
}

/// What identifies a compiled statement: its text, or the shape of a multi-row insert.
private enum StatementKey: Hashable {
    case text(String)
    case insert(InsertShape)

    var sql: String {
        switch self {
        case .text(let sql): return sql
        case .insert(let shape):
            let tuple = "(" + parameterList(shape.columns.count) + ")"
            return insertHead(into: shape.table, columns: shape.columns)
                + Array(repeating: tuple, count: shape.rows).joined(separator: ", ") + " " + shape.onConflict
        }
    }
}

/// A statement inserting `rows` rows into `table`.
private struct InsertShape: Hashable {
    let table: String
    let columns: [String]
    let rows: Int
    let onConflict: String
}

/// Copies the pages committed to the write-ahead log back into the database file, on a queue
/// of its own. SQLite's automatic checkpoint runs inside the COMMIT that crosses its
/// threshold, on the committing thread, and with `synchronous = NORMAL` it is where the fsyncs
/// happen (the log's, then the file's). In a 1,000,000-account first run the writing thread was
/// busy 8-9 s, 5.9 s with checkpoints switched off, and the classifying thread waited 3.2-3.9 s
/// for it; with this checkpointer, 1.6-2.7 s.
///
/// Here a commit past `pages.asked` only asks. The checkpoint is PASSIVE: it copies what no
/// reader still needs, waiting for no one, so the writer goes on appending meanwhile. SQLite
/// starts the log over only when a write begins with every page copied back, so under a steady
/// stream of writes it can grow to `pages.forced` (a 1,000,000-account first run reached 83 MB);
/// there the committing thread checkpoints itself, as SQLite's own checkpoint would, and the
/// next write starts the log over. A reader holding an old snapshot still keeps the log growing,
/// as it would with SQLite's checkpoint.
final class WALCheckpointer: @unchecked Sendable {
    /// Log sizes, in pages (4 KB), at which a checkpoint is asked for and forced.
    struct Pages {
        var asked: Int32
        var forced: Int32
        /// 32 MB (SQLite's default is 4 MB: a run writes a row or two per account), and 256 MB.
        static let standard = Pages(asked: 8192, forced: 65536)
    }

    private let path: String
    private let pages: Pages
    private let queue = DispatchQueue(label: "recon.wal-checkpoint")
    private let lock = NSLock()
    /// A checkpoint is queued and has not started: commits until then need not ask again.
    private var queued = false
    /// The checkpointing connection, opened by the first checkpoint and used only on `queue`.
    private var connection: OpaquePointer?

    init(path: String, pages: Pages) {
        self.path = path
        self.pages = pages
    }

    deinit { sqlite3_close_v2(connection) }

    /// Called by the writer after each commit with the pages its log now holds.
    func committed(logPages: Int32, on writer: OpaquePointer) {
        if logPages >= pages.forced {
            sqlite3_wal_checkpoint_v2(writer, nil, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
            return
        }
        guard logPages >= pages.asked else { return }
        lock.lock()
        defer { lock.unlock() }
        guard !queued else { return }
        queued = true
        queue.async { [self] in
            lock.withLock { queued = false }
            checkpoint()
        }
    }

    /// Copies the log back now, after the checkpoint already asked for if any, and returns when
    /// done. A run ends with this (0.1-0.2 s after a first run of a million accounts): the
    /// checkpoints it asked for otherwise went on during the next run, whose reads meanwhile
    /// looked for their pages in a log of 70-110 MB, and a copy of the database file alone
    /// lacked the run. Readers that start once every page is copied back read the file alone;
    /// the next write starts the log over.
    func settle() {
        queue.sync { checkpoint() }
    }

    /// A failed checkpoint is left for the next commit to ask again (or to force).
    private func checkpoint() {
        if connection == nil {
            var opened: OpaquePointer?
            guard sqlite3_open_v2(path, &opened, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK,
                  // A connection finds the log when it first reads; until then it has none to copy.
                  sqlite3_exec(opened, "SELECT count(*) FROM sqlite_master", nil, nil, nil) == SQLITE_OK else {
                sqlite3_close_v2(opened)
                return
            }
            connection = opened
        }
        sqlite3_wal_checkpoint_v2(connection, nil, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
    }
}

/// Reading the columns of an SQLite statement's current row (`SQLRow`).
enum SQLiteColumns {
    static func value(_ statement: OpaquePointer, _ column: Int32) -> SQLValue {
        switch sqlite3_column_type(statement, column) {
        case SQLITE_NULL: return .null
        case SQLITE_INTEGER: return .int(sqlite3_column_int64(statement, column))
        case SQLITE_FLOAT: return .int(Int64(sqlite3_column_double(statement, column)))
        default: return .text(String(decoding: bytes(statement, column), as: UTF8.self))  // text, and blobs read as UTF-8 text
        }
    }

    static func all(_ statement: OpaquePointer) -> [SQLValue] {
        (0..<sqlite3_column_count(statement)).map { value(statement, $0) }
    }

    /// The column as text, nil when it is NULL. Without asking the column's type first (a
    /// run reads four text columns of a million rows): SQLite spells a number the way
    /// `SQLValue.string` does, and this schema stores no floating-point values.
    static func text(_ statement: OpaquePointer, _ column: Int32) -> String? {
        guard let text = sqlite3_column_text(statement, column) else { return nil }
        return String(decoding: UnsafeBufferPointer(start: text, count: Int(sqlite3_column_bytes(statement, column))), as: UTF8.self)
    }

    /// The column as text, `previous` itself when the column spells it: no string is made for
    /// a column that most rows repeat (an index row's situation). "" for NULL, as `text` reads.
    static func text(_ statement: OpaquePointer, _ column: Int32, reusing previous: String) -> String {
        let column = bytes(statement, column)
        var previous = previous
        let same = previous.withUTF8 { $0.count == column.count && ($0.count == 0 || memcmp($0.baseAddress!, column.baseAddress!, $0.count) == 0) }
        return same ? previous : String(decoding: column, as: UTF8.self)
    }

    /// The column as a digest number when it is text spelling one; nil otherwise.
    static func digest(_ statement: OpaquePointer, _ column: Int32) -> StoredDigest? {
        guard sqlite3_column_type(statement, column) == SQLITE_TEXT else { return nil }
        return StoredDigest(utf8: bytes(statement, column))
    }

    /// The column's text, valid until the statement steps on.
    private static func bytes(_ statement: OpaquePointer, _ column: Int32) -> UnsafeBufferPointer<UInt8> {
        guard let bytes = sqlite3_column_text(statement, column) else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: bytes, count: Int(sqlite3_column_bytes(statement, column)))
    }
}
