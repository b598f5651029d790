import Foundation
import GRDB
import GRDBSQLite

/// Accounts kept as the rows of a table in an SQLite database file.
///
/// Each row is an account whose id is in the `accountIdColumn` column. Every column, the id
/// column included, is an attribute, read as text (numbers in their text form); NULL and
/// empty text are absent attributes. Columns named in `multiValuedAttributes` are lists split
/// on `multiValueSeparator` (empty pieces dropped). An account is disabled when its
/// `disabledAttribute` column holds `true` (in any case). Column names, as in SQLite, match
/// in any case; attributes are named as the table declares its columns.
///
/// Accounts are streamed a page at a time in primary key order, each page read through a
/// cursor in its own read transaction, so that no lock is held between pages: a row changed
/// while the stream runs is seen with its old or its new values, and never twice.
public struct DatabaseTableAdapter: ResourceAdapter, CellCoding {
    public let name: String
    /// The path of the SQLite database file.
    public let file: String
    public let table: String
    /// The column that holds the account id.
    public let accountIdColumn: String
    public let multiValueSeparator: String
    public let multiValuedAttributes: Set<String>
    /// The column whose `true` marks a disabled account; nil when accounts cannot be disabled.
    public let disabledAttribute: String?
    /// The column that holds when a row last changed, for `accounts(modifiedSince:)`.
    public let modifiedColumn: String?
    public let capabilities: AdapterCapabilities
    /// How many rows a page of the stream holds.
    var pageSize = 1000

    public init(name: String, file: String, table: String, accountIdColumn: String, multiValueSeparator: String = "|",
                multiValuedAttributes: Set<String> = [], disabledAttribute: String? = nil, modifiedColumn: String? = nil,
                incremental: Bool = true) {
        self.name = name
        self.file = file
        self.table = table
        self.accountIdColumn = accountIdColumn
        self.multiValueSeparator = multiValueSeparator
        self.multiValuedAttributes = multiValuedAttributes
        self.disabledAttribute = disabledAttribute
        self.modifiedColumn = modifiedColumn
        capabilities = AdapterCapabilities(incremental: incremental, disable: disabledAttribute != nil)
    }

    /// Streams every account.
    public func accounts() throws -> any AccountStream {
        try stream(modifiedSince: nil)
    }

    /// Streams the accounts whose `modifiedColumn` is greater than `value`: the change feed of
    /// incremental reconciliation. The comparison is SQLite's (a number column compares as a
    /// number, text such as ISO 8601 timestamps as text).
    public func accounts(modifiedSince value: String) throws -> any AccountStream {
        guard modifiedColumn != nil else {
            throw AdapterError(resource: name, message: "the resource has no modifiedColumn to list changed accounts by")
        }
        return try stream(modifiedSince: value)
    }

    /// The account with this id, or nil; an id held by more than one row is an error.
    public func account(id: String) throws -> Account? {
        let queue = try openQueue(readonly: true)
        return try databaseAccess {
            try queue.read { db in
                let schema = try TableSchema(db, adapter: self)
                let statement = try db.makeStatement(sql: schema.selectByID)
                try statement.setArguments([id])
                var cells = CSVCells(), ids: [String] = []
                while try step(statement, db) { ids.append(try schema.appendRow(of: statement, to: &cells, adapter: self)) }
                guard ids.count < 2 else {
                    throw AdapterError(resource: name, message: "the account id is in more than one row", accountID: id)
                }
                return ids.first.map { RowBatch(layout: schema.layout(self), cells: cells, firstCells: [0, cells.count]).account(at: 0, id: $0) }
            }
        }
    }

    /// Applies `changes` in one transaction: all of them or, when one is refused, none.
    ///
    /// A create inserts a row (an attribute with no column is an error naming it), an update
    /// sets the named columns (a nil value sets NULL), a delete deletes the row, and disable and
    /// enable set the `disabledAttribute` column to `true` or `false`. An empty value is stored
    /// as NULL.
    public func apply(_ changes: [AccountChange]) throws {
        guard !changes.isEmpty else { return }
        let queue = try openQueue(readonly: false)
        try databaseAccess {
            try queue.writeWithoutTransaction { db in
                try db.inTransaction(.immediate) {
                    let schema = try TableSchema(db, adapter: self)
                    for change in changes {
                        try databaseAccess(account: change.accountID) { try apply(change, schema: schema, db: db) }
                    }
                    return .commit
                }
            }
        }
    }

    private func stream(modifiedSince: String?) throws -> any AccountStream {
        let queue = try openQueue(readonly: true)
        let schema = try databaseAccess { try queue.read { try TableSchema($0, adapter: self) } }
        return TableAccounts(adapter: self, queue: queue, schema: schema, modifiedSince: modifiedSince)
    }

    private func apply(_ change: AccountChange, schema: TableSchema, db: Database) throws {
        let id = change.accountID
        let rows = try Int.fetchOne(db, sql: schema.countByID, arguments: [id]) ?? 0
        if case .create = change {
            guard !id.isEmpty else { throw AdapterError(resource: name, message: "cannot create an account with an empty id") }
            guard rows == 0 else { throw AdapterError(resource: name, message: "account already exists", accountID: id) }
        } else if rows != 1 {
            throw AdapterError(resource: name, message: rows == 0 ? "account does not exist" : "the account id is in \(rows) rows", accountID: id)
        }
        let whereID = "WHERE \(quoted(schema.idColumn)) = ?"
        switch change {
        case .create(_, let attributes):
            let values = try assignments(attributes.map { ($0.name, $0.value) }, schema: schema, account: id)
            let columns = ([schema.idColumn] + values.map(\.column)).map(quoted).joined(separator: ", ")
            try db.execute(sql: "INSERT INTO \(schema.quotedTable) (\(columns)) VALUES (\(databaseQuestionMarks(count: values.count + 1)))",
                           arguments: StatementArguments([id] + values.map(\.text)))
        case .update(_, let attributes):
            let values = try assignments(attributes, schema: schema, account: id)
            guard !values.isEmpty else { return }
            let settings = values.map { "\(quoted($0.column)) = ?" }.joined(separator: ", ")
            try db.execute(sql: "UPDATE \(schema.quotedTable) SET \(settings) \(whereID)",
                           arguments: StatementArguments(values.map(\.text) + [id]))
        case .delete:
            try db.execute(sql: "DELETE FROM \(schema.quotedTable) \(whereID)", arguments: [id])
        case .disable, .enable:
            guard let disabledColumn = schema.disabledColumn else {
                throw AdapterError(resource: name, message: "cannot disable or enable accounts: the resource has no disabledAttribute", accountID: id)
            }
            let mark = if case .disable = change { "true" } else { "false" }
            try db.execute(sql: "UPDATE \(schema.quotedTable) SET \(quoted(disabledColumn)) = ? \(whereID)", arguments: [mark, id])
        }
    }

    /// The columns and texts (nil for NULL) that `attributes` set; the last value of a column
    /// given twice wins. Refuses attributes without a column, naming them all.
    private func assignments(_ attributes: [(name: String, value: AttributeValue?)], schema: TableSchema,
                             account id: String) throws -> [(column: String, text: String?)] {
        var result: [(column: String, text: String?)] = []
        var unknown: [String] = []
        for (attribute, value) in attributes {
            guard let column = schema.column(named: attribute) else {
                unknown.append("'\(attribute)'")
                continue
            }
            if column == schema.idColumn {
                try checkIDAttribute(value, attribute: attribute, account: id)
                continue
            }
            let text = try value.map { try cell(for: $0, attribute: attribute, account: id) }
            result.removeAll { $0.column == column }
            result.append((column, text?.isEmpty == false ? text : nil))
        }
        guard unknown.isEmpty else {
            throw AdapterError(resource: name, message: "table '\(table)' has no column \(unknown.joined(separator: ", "))", accountID: id)
        }
        return result
    }

    private func openQueue(readonly: Bool) throws -> DatabaseQueue {
        guard FileManager.default.fileExists(atPath: file) else {
            throw AdapterError(resource: name, message: "database file '\(file)' does not exist")
        }
        var configuration = Configuration()
        configuration.readonly = readonly
        configuration.busyMode = .timeout(10)
        return try databaseAccess { try DatabaseQueue(path: file, configuration: configuration) }
    }

    /// Steps `statement` (its arguments set) to its next row; false when it has no more. Rows are
    /// stepped through SQLite directly rather than a GRDB cursor: a stream steps every row of the
    /// table.
    fileprivate func step(_ statement: Statement, _ db: Database) throws -> Bool {
        switch sqlite3_step(statement.sqliteStatement) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let code:
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)),
                                sql: statement.sql)
        }
    }

    /// Runs `body`, turning an SQLite error into an `AdapterError` (about `account` when given).
    func databaseAccess<T>(account: String? = nil, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as DatabaseError {
            throw AdapterError(resource: name, message: "SQLite error: \(error.message ?? error.description)", accountID: account)
        }
    }
}

/// `name` quoted as an SQL identifier.
private func quoted(_ name: String) -> String {
    "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}

/// The adapter's table as the database declares it: its columns, and the ones the adapter's
/// settings name, which must exist.
private struct TableSchema: Sendable {
    let quotedTable: String
    /// The column names, as declared, in table order.
    let columns: [String]
    let idColumn: String
    let disabledColumn: String?
    /// The places of `idColumn` and `disabledColumn` among `columns`.
    private let idIndex: Int
    private let disabledIndex: Int?
    let modifiedColumn: String?
    /// The columns the stream orders and pages by: the rowid, or the primary key of a table
    /// without rowid.
    let pageKey: [String]
    let multiValued: [Bool]
    private let columnOfLowercasedName: [String: String]

    init(_ db: Database, adapter: DatabaseTableAdapter) throws {
        let resource = adapter.name
        guard let table = try Row.fetchOne(db, sql: """
            SELECT name, wr FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND name = ? COLLATE NOCASE
            """, arguments: [adapter.table]) else {
            throw AdapterError(resource: resource, message: "the database has no table '\(adapter.table)'")
        }
        let name: String = table["name"]
        let withoutRowID: Bool = table["wr"]
        quotedTable = quoted(name)
        // Not GRDB's `columns(in:)` and `primaryKey(_:)`, which do not escape quotes in the name.
        columns = try String.fetchAll(db, sql: "SELECT name FROM pragma_table_xinfo(?, 'main') WHERE hidden <> 1 ORDER BY cid",
                                      arguments: [name])
        columnOfLowercasedName = Dictionary(columns.map { ($0.lowercased(), $0) }, uniquingKeysWith: { first, _ in first })
        let lowercasedMulti = Set(adapter.multiValuedAttributes.map { $0.lowercased() })
        multiValued = columns.map { lowercasedMulti.contains($0.lowercased()) }
        pageKey = withoutRowID
            ? try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?, 'main') WHERE pk > 0 ORDER BY pk", arguments: [name])
            : ["rowid"]

        let columnOfLowercasedName = self.columnOfLowercasedName
        func column(_ setting: String, _ value: String) throws -> String {
            guard let column = columnOfLowercasedName[value.lowercased()] else {
                throw AdapterError(resource: resource, message: "table '\(name)' has no column '\(value)' (\(setting))")
            }
            return column
        }
        idColumn = try column("accountIdColumn", adapter.accountIdColumn)
        disabledColumn = try adapter.disabledAttribute.map { try column("disabledAttribute", $0) }
        idIndex = columns.firstIndex(of: idColumn) ?? 0
        disabledIndex = disabledColumn.flatMap(columns.firstIndex(of:))
        modifiedColumn = try adapter.modifiedColumn.map { try column("modifiedColumn", $0) }
    }

    /// The column named `name` in any case.
    func column(named name: String) -> String? {
        columnOfLowercasedName[name.lowercased()]
    }

    /// The columns, then the page key. Columns are read as text by `appendRow`, which SQLite
    /// converts as `CAST(column AS TEXT)` would.
    private var selection: String {
        (columns + pageKey).map(quoted).joined(separator: ", ")
    }

    var selectByID: String { "SELECT \(selection) FROM \(quotedTable) WHERE \(quoted(idColumn)) = ? LIMIT 2" }

    var countByID: String { "SELECT COUNT(*) FROM \(quotedTable) WHERE \(quoted(idColumn)) = ?" }

    /// A page of at most `limit` rows, after the page key `after` (one argument per key column)
    /// when `afterKey`, modified after an argument when `modified`.
    func selectPage(afterKey: Bool, modified: Bool, limit: Int) -> String {
        let key = pageKey.map(quoted).joined(separator: ", ")
        var conditions: [String] = []
        if afterKey { conditions.append("(\(key)) > (\(databaseQuestionMarks(count: pageKey.count)))") }
        if modified, let modifiedColumn { conditions.append("\(quoted(modifiedColumn)) > ?") }
        let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        return "SELECT \(selection) FROM \(quotedTable)\(filter) ORDER BY \(key) LIMIT \(limit)"
    }

    /// The page key of the row `statement` (run with `selection`) stands on.
    func pageKey(of statement: Statement) -> [DatabaseValue] {
        (columns.count..<columns.count + pageKey.count).map { DatabaseValue(sqliteStatement: statement.sqliteStatement, index: Int32($0)) }
    }

    /// How the stream's rows (`selection`'s first columns) are laid out.
    func layout(_ adapter: DatabaseTableAdapter) -> RowLayout {
        RowLayout(coding: adapter, columns: columns, idIndex: idIndex, multiValued: multiValued, disabledIndex: disabledIndex)
    }

    /// Appends the columns of the row `statement` (run with `selection`) stands on to `cells`,
    /// their text read from SQLite directly (NULL as empty); returns the account id. Nothing
    /// is decoded through GRDB's generic values: a stream reads every row of the table.
    func appendRow(of statement: Statement, to cells: inout CSVCells, adapter: DatabaseTableAdapter) throws -> String {
        let handle = statement.sqliteStatement
        for index in columns.indices {
            let text = sqlite3_column_text(handle, Int32(index))
            cells.append(repairing: UnsafeBufferPointer(start: text, count: text == nil ? 0 : Int(sqlite3_column_bytes(handle, Int32(index)))))
        }
        let id = cells.text(of: cells.count - columns.count + idIndex)
        guard !id.isEmpty else {
            let key = zip(pageKey, pageKey(of: statement)).map { "\($0) \($1)" }.joined(separator: ", ")
            throw AdapterError(resource: adapter.name, message: "the row with \(key) has no account id")
        }
        return id
    }
}

/// Streams a table's rows as accounts, a page at a time.
private struct TableAccounts: AccountStream {
    let adapter: DatabaseTableAdapter
    let queue: DatabaseQueue
    let schema: TableSchema
    let layout: RowLayout
    let modifiedSince: String?
    /// The page's rows and their ids.
    private var page: RowBatch?
    private var ids: [String] = []
    private var index = 0
    /// The page key of the last row read; nil before the first page.
    private var lastKey: [DatabaseValue]?
    private var finished = false

    init(adapter: DatabaseTableAdapter, queue: DatabaseQueue, schema: TableSchema, modifiedSince: String?) {
        self.adapter = adapter
        self.queue = queue
        self.schema = schema
        self.modifiedSince = modifiedSince
        layout = schema.layout(adapter)
    }

    mutating func next() throws -> Account? {
        guard let (page, row) = try nextRow() else { return nil }
        return page.account(at: row, id: ids[row])
    }

    /// The account's id and digest, its strings left in the page's bytes until asked for.
    mutating func nextStreamed() throws -> StreamedAccount? {
        guard let (page, row) = try nextRow() else { return nil }
        return StreamedAccount(id: ids[row], digest: page.digest(of: row, id: ids[row]), row: row, of: page)
    }

    private mutating func nextRow() throws -> (RowBatch, Int)? {
        if index == ids.count {
            if finished { return nil }
            try readPage()
            if ids.isEmpty { return nil }
        }
        defer { index += 1 }
        return page.map { ($0, index) }
    }

    private mutating func readPage() throws {
        let sql = schema.selectPage(afterKey: lastKey != nil, modified: modifiedSince != nil, limit: adapter.pageSize)
        var arguments = StatementArguments(lastKey ?? [])
        if let modifiedSince { arguments += [modifiedSince] }
        let (adapter, schema, layout) = (self.adapter, self.schema, self.layout)
        let (page, ids, key) = try adapter.databaseAccess {
            try queue.read { db in
                var cells = CSVCells(), firstCells = [0], ids: [String] = []
                var key: [DatabaseValue]?
                let statement = try db.cachedStatement(sql: sql)
                try statement.setArguments(arguments)
                // A page left by an error must not hold its snapshot in the cached statement.
                defer { sqlite3_reset(statement.sqliteStatement) }
                while try adapter.step(statement, db) {
                    ids.append(try schema.appendRow(of: statement, to: &cells, adapter: adapter))
                    firstCells.append(cells.count)
                    // A full page's last row is where the next page starts; a page that is not
                    // full is the last.
                    if ids.count == adapter.pageSize { key = schema.pageKey(of: statement) }
                }
                return (RowBatch(layout: layout, cells: cells, firstCells: firstCells), ids, key)
            }
        }
        self.page = page
        self.ids = ids
        index = 0
        lastKey = key ?? lastKey
        finished = ids.count < adapter.pageSize
    }
}
