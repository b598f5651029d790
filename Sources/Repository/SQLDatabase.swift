/// The small SQL surface the repository is written against, so that one implementation of
/// `IdentityRepository` (`SQLRepository`) runs on SQLite and on PostgreSQL. Statements use `?`
/// placeholders and the tokens of `SQLDialect`; each back end translates them once per statement.

/// A value bound to a statement or read from a row.
public enum SQLValue: Sendable, Hashable {
    case null
    case int(Int64)
    case text(String)

    /// Binds an optional text (nil is NULL).
    static func text(_ value: String?) -> SQLValue { value.map { .text($0) } ?? .null }
    /// Binds an optional integer (nil is NULL).
    static func int(_ value: Int64?) -> SQLValue { value.map { .int($0) } ?? .null }
    static func bool(_ value: Bool) -> SQLValue { .int(value ? 1 : 0) }

    var string: String? {
        switch self {
        case .text(let text): text
        case .int(let int): String(int)
        case .null: nil
        }
    }

    var int64: Int64? {
        switch self {
        case .int(let int): int
        case .text(let text): Int64(text)
        case .null: nil
        }
    }
}

/// One result row, its columns in the order the statement selects them.
public struct SQLRow: @unchecked Sendable {
    /// The columns; empty while the row is an SQLite statement's current row.
    public var values: [SQLValue]
    /// The SQLite statement stepped to this row, whose columns are read as they are asked for
    /// (no array of values built and freed per row: a run reads a million rows twice). What
    /// SQLite's `forEachRow` hands to its body, valid until the body returns; `rows` keeps
    /// `kept()` copies.
    private let statement: OpaquePointer?

    init(values: [SQLValue]) {
        self.values = values
        statement = nil
    }

    init(current statement: OpaquePointer) {
        values = []
        self.statement = statement
    }

    private func value(_ index: Int) -> SQLValue {
        statement.map { SQLiteColumns.value($0, Int32(index)) } ?? values[index]
    }

    /// The text of column `index` ("" for NULL: use `optionalText` where NULL means something).
    func text(_ index: Int) -> String { optionalText(index) ?? "" }
    func optionalText(_ index: Int) -> String? {
        if let statement { return SQLiteColumns.text(statement, Int32(index)) }
        return values[index].string
    }
    /// The text of column `index`, `previous` itself when the column holds the same text (see
    /// `SQLiteColumns.text(_:_:reusing:)`).
    func text(_ index: Int, reusing previous: String) -> String {
        if let statement { return SQLiteColumns.text(statement, Int32(index), reusing: previous) }
        return text(index)
    }
    func int(_ index: Int) -> Int64 { value(index).int64 ?? 0 }
    func optionalInt(_ index: Int) -> Int64? { value(index).int64 }
    func bool(_ index: Int) -> Bool { int(index) != 0 }

    /// Column `index` as an account digest, read from SQLite's bytes without a string
    /// between (a string only for a digest that is not a number).
    func digest(_ index: Int) -> StoredDigest {
        if let statement, let digest = SQLiteColumns.digest(statement, Int32(index)) { return digest }
        return StoredDigest(text(index))
    }

    /// A row that stays valid after the statement steps on.
    func kept() -> SQLRow {
        guard let statement else { return self }
        return SQLRow(values: SQLiteColumns.all(statement))
    }
}

/// What differs between the SQL of the two back ends, as tokens in statement text.
enum SQLDialect {
    case sqlite, postgres

    /// `sql` with the dialect's tokens replaced.
    func translate(_ sql: String) -> String {
        guard sql.utf8.contains(UInt8(ascii: "{")) else { return sql }
        var text = sql
        for (token, sqlite, postgres) in Self.tokens where text.contains(token) {
            text = text.replacingOccurrences(of: token, with: self == .sqlite ? sqlite : postgres)
        }
        return text
    }

    private static let tokens: [(String, String, String)] = [
        ("{serial}", "INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY"),
        ("{int}", "INTEGER", "BIGINT"),
        // Text compared and sorted by code point on both (SQLite's default, PostgreSQL's "C").
        ("{text}", "TEXT", "TEXT COLLATE \"C\""),
        // A row's insertion order, where a table has no explicit sequence column.
        ("{rowid}", "rowid", "seq"),
        // `{seqcolumn}` adds the explicit insertion-order column PostgreSQL needs.
        ("{seqcolumn}", "", ", seq BIGSERIAL"),
        ("{instr}", "instr", "strpos"),
        // The column `resource` in a form no index answers (a scan in storage order): SQLite's
        // unary plus costs nothing per row, where concatenating '' copies each value.
        ("{unindexed resource}", "+resource", "resource || ''"),
        // Row locks for a claim (`b` is the claimed table's alias); SQLite's write lock covers it.
        ("{lockbucket}", "", "FOR UPDATE OF b SKIP LOCKED"),
    ]
}

/// A connection inside a read or a transaction.
protocol SQLConnection {
    /// Runs a statement that returns no rows.
    func execute(_ sql: String, _ arguments: [SQLValue]) throws
    /// Runs a query and hands its rows to `body` one by one, as they arrive.
    func forEachRow(_ sql: String, _ arguments: [SQLValue], _ body: (SQLRow) throws -> Void) throws
    /// Inserts many rows into `table` at once: `values` holds them one after another, each
    /// row's values in the order of `columns`.
    func insertMany(into table: String, columns: [String], values: [SQLValue], onConflict: String) throws
    /// Holds a lock named `key` until the transaction ends (where transactions do not already
    /// exclude each other).
    func lock(_ key: String) throws
}

extension SQLConnection {
    /// Runs a query and returns all its rows.
    func rows(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
        var rows: [SQLRow] = []
        try forEachRow(sql, arguments) { rows.append($0.kept()) }
        return rows
    }

    /// Inserts many rows into `table` at once (`columns` in order; every row as long).
    func insertMany(into table: String, columns: [String], rows: [[SQLValue]], onConflict: String) throws {
        try insertMany(into: table, columns: columns, values: Array(rows.joined()), onConflict: onConflict)
    }

    func execute(_ sql: String, _ arguments: SQLValue...) throws { try execute(sql, arguments) }
    func rows(_ sql: String, _ arguments: SQLValue...) throws -> [SQLRow] { try rows(sql, arguments) }
    func row(_ sql: String, _ arguments: SQLValue...) throws -> SQLRow? { try rows(sql, arguments).first }
}

/// `?, ?, ...`: `count` parameters, for an `IN` list or a row of values.
func parameterList(_ count: Int) -> String {
    Array(repeating: "?", count: count).joined(separator: ", ")
}

/// `INSERT INTO table ("column", ...) VALUES `: the start of a multi-row insert on either back end.
func insertHead(into table: String, columns: [String]) -> String {
    "INSERT INTO \(table) (\(columns.map { "\"\($0)\"" }.joined(separator: ", "))) VALUES "
}

/// A database: reads, transactions, and the schema migrations it has applied.
protocol SQLDatabase: Sendable {
    var dialect: SQLDialect { get }
    /// A description for messages (the path or URL, without a password).
    var location: String { get }
    /// Runs `body` on a connection that sees committed data.
    func read<T>(_ body: (any SQLConnection) throws -> T) throws -> T
    /// Runs `body` in one transaction: all its changes, or none.
    func write<T>(_ body: (any SQLConnection) throws -> T) throws -> T
    /// Applies the migrations not applied yet, each in its own transaction, in order; safe when
    /// several processes start at once.
    func migrate(_ migrations: [Migration]) throws
    /// Returns once everything committed is where a new reader reads it first: SQLite copies
    /// its write-ahead log back into the database file. A no-op for a server database.
    func settle()
}

/// One schema version: an identifier recorded once applied, and its statements.
struct Migration: Sendable {
    let identifier: String
    let statements: String
}
