import Foundation
import Logging
import NIOCore
import PostgresNIO

/// A PostgreSQL database through PostgresNIO, used from the engine's threads: each call takes
/// an idle connection (or opens one), waits for its queries, and gives it back.
///
/// Losing the server is survived: a call that fails because the connection dropped (or the
/// server is restarting) is retried on a new connection for up to `reconnectWindow`; a
/// transaction cut off that way was rolled back by the server, so running it again is safe.
final class PostgresDatabase: SQLDatabase, @unchecked Sendable {
    let location: String
    var dialect: SQLDialect { .postgres }
    /// How long a call keeps retrying while the server cannot be reached.
    let reconnectWindow: TimeInterval
    private let configuration: PostgresConnection.Configuration
    private let logger = Logger(label: "recon.repository.postgres", factory: { _ in SwiftLogNoOpLogHandler() })
    private let lock = NSLock()
    private var idle: [PostgresConnection] = []
    private var nextConnectionID = 0

    /// `url` is `postgres://user@host:port/database`; the password comes from `PGPASSWORD`, or
    /// the `.pgpass`-format file `PGPASSFILE` names, never from the URL.
    init(url: String, environment: [String: String], reconnectWindow: TimeInterval = 30) throws {
        let target = try PostgresURL(url)
        location = target.description
        self.reconnectWindow = reconnectWindow
        let password = try environment["PGPASSWORD"] ?? environment["PGPASSFILE"].flatMap {
            try PostgresURL.password(inFile: $0, for: target)
        }
        var configuration = PostgresConnection.Configuration(host: target.host, port: target.port, username: target.user,
                                                             password: password, database: target.database, tls: .disable)
        configuration.options.connectTimeout = .seconds(10)
        self.configuration = configuration
        // Fail now, clearly, when the server cannot be reached or refuses us.
        try read { db in _ = try db.rows("SELECT 1", []) }
    }

    deinit {
        for connection in idle { try? connection.close().wait() }
    }

    func read<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try withConnection { connection in try body(PostgresSQLConnection(connection: connection, logger: logger)) }
    }

    func write<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try withConnection { connection in
            let db = PostgresSQLConnection(connection: connection, logger: logger)
            try db.execute("BEGIN", [])
            do {
                let result = try body(db)
                try db.execute("COMMIT", [])
                return result
            } catch {
                try? db.execute("ROLLBACK", [])
                throw error
            }
        }
    }

    /// The server keeps its own log.
    func settle() {}

    /// Each migration in a transaction holding an advisory lock, so that servers starting
    /// together apply it once.
    func migrate(_ migrations: [Migration]) throws {
        try write { db in
            try db.execute("SELECT pg_advisory_xact_lock(7235001)", [])
            try db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (identifier TEXT PRIMARY KEY NOT NULL, applied BIGINT NOT NULL)", [])
            let applied = Set(try db.rows("SELECT identifier FROM schema_migrations", []).map { $0.text(0) })
            for migration in migrations where !applied.contains(migration.identifier) {
                // One statement per query (the extended protocol takes no more); the schema's
                // statements hold no semicolons of their own.
                for statement in migration.statements.split(separator: ";") where !statement.allSatisfy(\.isWhitespace) {
                    try db.execute(String(statement), [])
                }
                try db.execute("INSERT INTO schema_migrations (identifier, applied) VALUES (?, ?)",
                               [.text(migration.identifier), .int(currentMillis())])
            }
        }
    }

    /// Runs `body` on a pooled connection, retrying on a new one while the server is unreachable.
    private func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        let deadline = Date().addingTimeInterval(reconnectWindow)
        while true {
            var connection: PostgresConnection?
            do {
                let current = try take()
                connection = current
                let result = try body(current)
                give(current)
                return result
            } catch let error where Self.isConnectionLoss(error) {
                if let connection { let closing: EventLoopFuture<Void> = connection.close(); _ = closing }
                guard Date() < deadline else {
                    throw RepositoryError("the PostgreSQL repository \(location) cannot be reached: \(Self.describe(error))")
                }
                Thread.sleep(forTimeInterval: 0.5)
            } catch let error as RepositoryError {
                if let connection { give(connection) }
                throw error
            } catch {
                if let connection { give(connection) }
                throw RepositoryError(Self.describe(error))
            }
        }
    }

    private func take() throws -> PostgresConnection {
        lock.lock()
        if let connection = idle.popLast() {
            lock.unlock()
            if !connection.isClosed { return connection }
            return try take()
        }
        nextConnectionID += 1
        let id = nextConnectionID
        lock.unlock()
        return try PostgresConnection.connect(on: PostgresConnection.defaultEventLoopGroup.any(), configuration: configuration,
                                              id: id, logger: logger).wait()
    }

    private func give(_ connection: PostgresConnection) {
        guard !connection.isClosed else { return }
        lock.lock()
        idle.append(connection)
        lock.unlock()
    }

    /// Whether `error` means the server went away (retry), rather than a refused statement.
    static func isConnectionLoss(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError else { return error is IOError || error is ChannelError }
        switch error.code {
        case .server:
            // 08: connection exceptions; 57P01-57P03: the server is shutting down or starting up;
            // 40001/40P01: a serialization failure or deadlock, which a new attempt resolves.
            let state = error.serverInfo?[.sqlState] ?? ""
            return state.hasPrefix("08") || ["57P01", "57P02", "57P03", "40001", "40P01"].contains(state)
        case .connectionError, .serverClosedConnection, .uncleanShutdown, .clientClosedConnection:
            return true
        default:
            return false
        }
    }

    /// What went wrong, for an operator (PSQLError's own description hides the server's message).
    static func describe(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        if let info = error.serverInfo {
            var text = "PostgreSQL: " + (info[.message] ?? "error")
            if let state = info[.sqlState] { text += " (SQLSTATE \(state))" }
            if let detail = info[.detail] { text += "; " + detail }
            return text
        }
        if let underlying = error.underlying { return "PostgreSQL connection: \(underlying)" }
        return "PostgreSQL: \(error.code)"
    }
}

/// The result of a query, handed from the event loop to the thread waiting for it.
private final class QueryOutcome<T>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    /// Set once, before `done` is signalled; read only after waiting for it.
    private(set) var result: Result<T, any Error>?

    func finish(_ result: Result<T, any Error>) {
        self.result = result
        done.signal()
    }

    /// Whether the result arrived within `seconds`.
    func wait(seconds: Int) -> Bool { done.wait(timeout: .now() + .seconds(seconds)) == .success }
}

/// A connection inside one `PostgresDatabase` call.
private struct PostgresSQLConnection: SQLConnection {
    let connection: PostgresConnection
    let logger: Logger

    func execute(_ sql: String, _ arguments: [SQLValue]) throws {
        _ = try run(sql, arguments)
    }

    /// Rows are decoded and handed over on the connection's event loop while this thread
    /// waits for the query to end, so none is kept longer than `body` keeps it.
    func forEachRow(_ sql: String, _ arguments: [SQLValue], _ body: (SQLRow) throws -> Void) throws {
        let query = PostgresQuery(unsafeSQL: Self.numbered(SQLDialect.postgres.translate(sql)), binds: Self.bindings(arguments))
        try withoutActuallyEscaping(body) { body in
            // PostgresNIO keeps its row callback after the query ends: the callback reaches
            // `body` through a sink that lets go of it before this call returns.
            let sink = RowSink(body)
            defer { sink.body = nil }
            _ = try wait(for: connection.query(query, logger: logger) { row in try sink.body?(try Self.decode(row)) })
        }
    }

    private static func decode(_ row: PostgresRow) throws -> SQLRow {
        SQLRow(values: try PostgresRandomAccessRow(row).map { cell in
            guard cell.bytes != nil else { return .null }
            switch cell.dataType {
            case .int8, .int4, .int2: return .int(try cell.decode(Int64.self))
            case .bool: return .int(try cell.decode(Bool.self) ? 1 : 0)
            default: return .text(try cell.decode(String.self))
            }
        })
    }

    func lock(_ key: String) throws {
        try execute("SELECT pg_advisory_xact_lock(hashtext(?))", [.text(key)])
    }

    /// Rows in multi-row `VALUES` statements, as many per statement as the protocol's
    /// parameter limit allows: one round trip per few thousand rows.
    func insertMany(into table: String, columns: [String], values: [SQLValue], onConflict: String) throws {
        precondition(values.count % columns.count == 0, "\(values.count) values do not make rows of \(columns.count) columns")
        let perStatement = max(1, 30_000 / columns.count) * columns.count
        let head = insertHead(into: table, columns: columns)
        var start = 0
        while start < values.count {
            let chunk = values[start..<min(values.count, start + perStatement)]
            var sql = head
            for number in 1...chunk.count {
                let column = (number - 1) % columns.count
                sql += (column == 0 ? (number == 1 ? "(" : "), (") : ", ") + "$" + String(number)
            }
            _ = try send(sql + ") " + onConflict, Array(chunk))
            start += perStatement
        }
    }

    private func run(_ sql: String, _ arguments: [SQLValue]) throws -> PostgresQueryResult {
        try send(Self.numbered(SQLDialect.postgres.translate(sql)), arguments)
    }

    private func send(_ sql: String, _ arguments: [SQLValue]) throws -> PostgresQueryResult {
        try wait(for: connection.query(PostgresQuery(unsafeSQL: sql, binds: Self.bindings(arguments)), logger: logger))
    }

    /// Waits for a query, or fails as a lost connection (which the call retries on a new one)
    /// once the connection has closed under it. PostgresNIO can leave a query issued just as
    /// the server drops the connection waiting forever (its fix, postgres-nio #487, was
    /// reverted in #501); a run then hung instead of waiting for the server to come back.
    private func wait<T>(for future: EventLoopFuture<T>) throws -> T {
        let outcome = QueryOutcome<T>()
        future.whenComplete { result in outcome.finish(result) }
        while !outcome.wait(seconds: 1) {
            if connection.isClosed { throw ChannelError.ioOnClosedChannel }
        }
        return try outcome.result!.get()
    }

    private static func bindings(_ arguments: [SQLValue]) -> PostgresBindings {
        var bindings = PostgresBindings(capacity: arguments.count)
        for argument in arguments {
            switch argument {
            case .null: bindings.appendNull()
            case .int(let int): bindings.append(int)
            case .text(let text): bindings.append(text)
            }
        }
        return bindings
    }

    /// `?` placeholders as PostgreSQL's `$1, $2, ...` (outside quoted text).
    static func numbered(_ sql: String) -> String {
        guard sql.utf8.contains(UInt8(ascii: "?")) else { return sql }
        var result = ""
        result.reserveCapacity(sql.utf8.count + 16)
        var number = 0
        var quote: Character?
        for character in sql {
            if let open = quote {
                if character == open { quote = nil }
                result.append(character)
            } else if character == "'" || character == "\"" {
                quote = character
                result.append(character)
            } else if character == "?" {
                number += 1
                result += "$" + String(number)
            } else {
                result.append(character)
            }
        }
        return result
    }
}

/// A row handler used on the event loop while the thread that owns it waits for the query.
private final class RowSink: @unchecked Sendable {
    var body: ((SQLRow) throws -> Void)?
    init(_ body: @escaping (SQLRow) throws -> Void) { self.body = body }
}

/// A `postgres://user@host:port/database` address.
struct PostgresURL: CustomStringConvertible {
    var user: String
    var host: String
    var port: Int
    var database: String

    init(_ text: String) throws {
        guard let components = URLComponents(string: text), ["postgres", "postgresql"].contains(components.scheme ?? "") else {
            throw RepositoryError("'\(text)' is not a PostgreSQL address: use postgres://USER@HOST:PORT/DATABASE")
        }
        if components.password != nil {
            throw RepositoryError("the repository address must not carry a password (it would show in process lists and logs): set PGPASSWORD or PGPASSFILE instead")
        }
        guard let user = components.user, !user.isEmpty else {
            throw RepositoryError("the PostgreSQL address '\(text)' names no user: use postgres://USER@HOST:PORT/DATABASE")
        }
        self.user = user.removingPercentEncoding ?? user
        host = components.host ?? "127.0.0.1"
        port = components.port ?? 5432
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        database = path.isEmpty ? self.user : path
    }

    var description: String { "postgres://\(user)@\(host):\(port)/\(database)" }

    /// The password of the first matching line of a `.pgpass`-format file
    /// (`host:port:database:user:password`, `*` matching anything).
    static func password(inFile path: String, for target: PostgresURL) throws -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw RepositoryError("cannot read the password file \(path) (PGPASSFILE)")
        }
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let fields = line.split(separator: ":", maxSplits: 4, omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 5 else { continue }
            let wanted = [target.host, String(target.port), target.database, target.user]
            if zip(fields.prefix(4), wanted).allSatisfy({ $0 == "*" || $0 == $1 }) { return fields[4] }
        }
        return nil
    }
}
