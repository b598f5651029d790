import GRDB

/// An SQLite file through GRDB: a pool of readers and one writer in WAL mode, statements
/// compiled once per connection (GRDB's statement cache).
final class SQLiteDatabase: SQLDatabase, @unchecked Sendable {
    private let pool: DatabasePool
    let location: String
    var dialect: SQLDialect { .sqlite }

    init(path: String) throws {
        location = path
        var configuration = Configuration()
        configuration.busyMode = .timeout(30)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw RepositoryError("cannot open the repository \(path): \(error)")
        }
    }

    func read<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try pool.read { db in try body(GRDBConnection(db: db)) }
    }

    func write<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try pool.write { db in try body(GRDBConnection(db: db)) }
    }

    /// GRDB's migrator: it records applied identifiers in `grdb_migrations` and serialises
    /// concurrent openers through SQLite's write lock.
    func migrate(_ migrations: [Migration]) throws {
        var migrator = DatabaseMigrator()
        for migration in migrations {
            migrator.registerMigration(migration.identifier) { db in
                try db.execute(sql: SQLDialect.sqlite.translate(migration.statements))
            }
        }
        try migrator.migrate(pool)
    }
}

private struct GRDBConnection: SQLConnection {
    let db: Database

    private func statement(_ sql: String, _ arguments: [SQLValue]) throws -> Statement {
        let statement = try db.cachedStatement(sql: SQLDialect.sqlite.translate(sql))
        try statement.setArguments(StatementArguments(arguments.map(Self.databaseValue)))
        return statement
    }

    private static func databaseValue(_ value: SQLValue) -> DatabaseValue {
        switch value {
        case .null: .null
        case .int(let int): int.databaseValue
        case .text(let text): text.databaseValue
        }
    }

    func execute(_ sql: String, _ arguments: [SQLValue]) throws {
        try statement(sql, arguments).execute()
    }

    func forEachRow(_ sql: String, _ arguments: [SQLValue], _ body: (SQLRow) throws -> Void) throws {
        let cursor = try Row.fetchCursor(try statement(sql, arguments))
        while let row = try cursor.next() {
            try body(SQLRow(values: row.databaseValues.map { value in
                switch value.storage {
                case .null: .null
                case .int64(let int): .int(int)
                case .double(let double): .int(Int64(double))
                case .string(let text): .text(text)
                case .blob(let data): .text(String(decoding: data, as: UTF8.self))
                }
            }))
        }
    }

    /// SQLite's write transactions already exclude each other.
    func lock(_ key: String) throws {}

    /// One compiled INSERT run per row: SQLite has no round trips to save.
    func insertMany(into table: String, columns: [String], rows: [[SQLValue]], onConflict: String) throws {
        guard !rows.isEmpty else { return }
        let statement = try db.cachedStatement(sql: "INSERT INTO \(table) (\(columns.map { "\"\($0)\"" }.joined(separator: ", "))) VALUES ("
            + columns.map { _ in "?" }.joined(separator: ", ") + ") " + onConflict)
        for row in rows {
            try statement.setArguments(StatementArguments(row.map(Self.databaseValue)))
            try statement.execute()
        }
    }
}
