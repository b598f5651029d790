import Foundation

/// Accounts kept as the rows of a CSV file (RFC 4180, UTF-8, header row).
///
/// Each row is an account whose id is in the `accountIdAttribute` column. Every column,
/// the id column included, is an attribute; an empty cell is an absent attribute. Columns
/// named in `multiValuedAttributes` are lists split on `multiValueSeparator` (empty pieces
/// dropped); the others are single strings. An account is disabled when its
/// `disabledAttribute` cell is `true` (in any case).
///
/// Reading streams the file; `apply(_:)` rewrites it whole, atomically, under an exclusive
/// `flock` on `<file>.lock`.
public struct FlatFileAdapter: ResourceAdapter, CellCoding {
    public let name: String
    /// The path of the CSV file.
    public let file: String
    /// The column that holds the account id.
    public let accountIdAttribute: String
    public let multiValueSeparator: String
    public let multiValuedAttributes: Set<String>
    /// The column whose `true` marks a disabled account; nil when accounts cannot be disabled.
    public let disabledAttribute: String?
    public let capabilities: AdapterCapabilities
    /// How many bytes are read, and written, at a time.
    var chunkSize = 1 << 20

    public init(name: String, file: String, accountIdAttribute: String, multiValueSeparator: String = "|",
                multiValuedAttributes: Set<String> = [], disabledAttribute: String? = nil, incremental: Bool = true) {
        self.name = name
        self.file = file
        self.accountIdAttribute = accountIdAttribute
        self.multiValueSeparator = multiValueSeparator
        self.multiValuedAttributes = multiValuedAttributes
        self.disabledAttribute = disabledAttribute
        capabilities = AdapterCapabilities(incremental: incremental, disable: disabledAttribute != nil)
    }

    /// Streams the accounts in file order. Throws at a malformed row, a row with an empty id,
    /// or an id already seen (naming both lines).
    public func accounts() throws -> any AccountStream {
        try stream()
    }

    /// The account with this id, read by scanning the file up to it.
    public func account(id: String) throws -> Account? {
        var stream = try stream()
        return try stream.account(id: id)
    }

    private func stream() throws -> FlatFileAccounts {
        guard FileManager.default.fileExists(atPath: file) else {
            throw AdapterError(resource: name, message: "file '\(file)' does not exist")
        }
        return FlatFileAccounts(adapter: self, rows: try FlatFileRows(adapter: self))
    }

    /// Applies `changes` to the file: all of them or, when one is refused, none.
    ///
    /// The whole file is read, every change is made in memory, and the result is written to a
    /// temporary file in the same directory, synced, and renamed over the file. Columns keep
    /// their order; attributes the header does not name become new columns at the end. When the
    /// file does not exist it is created, its header starting with the id column.
    public func apply(_ changes: [AccountChange]) throws {
        guard !changes.isEmpty else { return }
        let lock = try FileLock(path: file + ".lock", resource: name)
        defer { lock.release() }
        var table = try FileManager.default.fileExists(atPath: file)
            ? FlatFileTable(reading: FlatFileRows(adapter: self))
            : FlatFileTable(idColumn: accountIdAttribute)
        for change in changes { try apply(change, to: &table) }
        try write(table)
    }

    private func apply(_ change: AccountChange, to table: inout FlatFileTable) throws {
        let id = change.accountID
        func existingRow() throws -> Int {
            guard let row = table.rowOfID[id] else {
                throw AdapterError(resource: name, message: "account does not exist", accountID: id)
            }
            return row
        }
        switch change {
        case .create(_, let attributes):
            guard !id.isEmpty else { throw AdapterError(resource: name, message: "cannot create an account with an empty id") }
            guard table.rowOfID[id] == nil else {
                throw AdapterError(resource: name, message: "account already exists", accountID: id)
            }
            let row = table.appendRow(id: id)
            for (attribute, value) in attributes {
                if attribute == accountIdAttribute {
                    try checkIDAttribute(value, attribute: attribute, account: id)
                } else {
                    table.set(try cell(for: value, attribute: attribute, account: id), column: attribute, row: row)
                }
            }
        case .update(_, let attributes):
            let row = try existingRow()
            for (attribute, value) in attributes {
                if attribute == accountIdAttribute {
                    try checkIDAttribute(value, attribute: attribute, account: id)
                } else {
                    let text = try value.map { try cell(for: $0, attribute: attribute, account: id) } ?? ""
                    table.set(text, column: attribute, row: row)
                }
            }
        case .delete:
            table.removeRow(try existingRow(), id: id)
        case .disable, .enable:
            guard let disabledAttribute else {
                throw AdapterError(resource: name, message: "cannot disable or enable accounts: the resource has no disabledAttribute", accountID: id)
            }
            let disable = if case .disable = change { true } else { false }
            table.set(disable ? "true" : "false", column: disabledAttribute, row: try existingRow())
        }
    }

    /// Writes `table` to a temporary file beside the file, syncs it and renames it over the file.
    private func write(_ table: FlatFileTable) throws {
        let temporary = "\(file).\(String(UInt64.random(in: 0...UInt64.max), radix: 36)).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        guard descriptor >= 0 else { throw ioError("cannot create '\(temporary)'") }
        var renamed = false
        defer { if !renamed { unlink(temporary) } }
        do {
            defer { close(descriptor) }
            var status = stat()
            if stat(file, &status) == 0 && fchmod(descriptor, status.st_mode & 0o7777) != 0 {
                throw ioError("cannot set the permissions of '\(temporary)'")
            }
            var writer = CSVWriter(crlf: table.crlf)
            if table.byteOrderMark { writer.writeByteOrderMark() }
            writer.write(table.header)
            for case var cells? in table.rows {
                if cells.count < table.header.count {
                    cells.append(contentsOf: repeatElement("", count: table.header.count - cells.count))
                }
                writer.write(cells)
                if writer.output.count >= chunkSize {
                    try writeAll(writer.output, to: descriptor, path: temporary)
                    writer.removeAll()
                }
            }
            try writeAll(writer.output, to: descriptor, path: temporary)
            guard fsync(descriptor) == 0 else { throw ioError("cannot sync '\(temporary)'") }
        }
        guard rename(temporary, file) == 0 else { throw ioError("cannot rename '\(temporary)' to '\(file)'") }
        renamed = true
        // Make the rename durable. It is done whatever this reports, so a failure is not an error.
        let directory = open(URL(fileURLWithPath: file).deletingLastPathComponent().path, O_RDONLY | O_CLOEXEC)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
    }

    private func writeAll(_ bytes: [UInt8], to descriptor: Int32, path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress! + offset, bytes.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                throw ioError("cannot write '\(path)'")
            }
            offset += written
        }
    }

    private func ioError(_ message: String) -> AdapterError {
        AdapterError(resource: name, message: "\(message): \(String(cString: strerror(errno)))")
    }
}

/// The rows of a flat file, checked: the header names the id column and no column twice, no
/// row has more fields than the header, and every row has an id no other row has. A file with
/// no header is read as a header of the id column alone.
struct FlatFileRows {
    let header: [String]
    let idIndex: Int
    private var reader: CSVReader
    private let resource: String
    /// The ids read so far, as fingerprints: a repeat is confirmed by reading the file again.
    private var ids = FingerprintSet()
    private let fingerprint: (String) -> UInt64
    /// Records read ahead of the one handed out, each with its id's fingerprint (nil for a row
    /// `next()` will refuse): a ring of `lookahead` places, `aheadCount` of them used from
    /// `aheadStart` on. Their slots in `ids` are fetched while the rows before them are handed
    /// out: at a million ids, noting each one waited on a cache miss, a quarter of the reading
    /// thread.
    private var ahead = [(record: CSVRecord, fingerprint: UInt64?)?](repeating: nil, count: Self.lookahead)
    private var aheadStart = 0
    private var aheadCount = 0
    /// Why reading ahead stopped: the file's end, or its error (thrown once the rows read
    /// before it are handed out).
    private var aheadEnd: Result<Void, any Error>?
    private static let lookahead = 16

    /// Whether the file starts with a byte order mark.
    var byteOrderMark: Bool { reader.hasByteOrderMark }
    /// Whether the file's lines end with CRLF.
    var crlf: Bool { reader.usesCRLF }

    /// Opens the adapter's file and reads its header. `fingerprint` is replaceable so that
    /// tests can make every id collide.
    init(adapter: FlatFileAdapter, fingerprint: @escaping (String) -> UInt64 = Fingerprint.of) throws {
        resource = adapter.name
        self.fingerprint = fingerprint
        do {
            reader = try CSVReader(path: adapter.file, chunkSize: adapter.chunkSize)
        } catch {
            throw AdapterError(resource: resource, message: error.message, line: error.line)
        }
        guard let record = try Self.next(of: &reader, resource: resource) else {
            header = [adapter.accountIdAttribute]
            idIndex = 0
            return
        }
        var seen = Set<String>()
        for (index, column) in record.fields.enumerated() {
            guard !column.isEmpty else {
                throw AdapterError(resource: resource, message: "column \(index + 1) of the header has no name", line: record.line)
            }
            guard seen.insert(column).inserted else {
                throw AdapterError(resource: resource, message: "column '\(column)' appears twice in the header", line: record.line)
            }
        }
        guard let idIndex = record.fields.firstIndex(of: adapter.accountIdAttribute) else {
            throw AdapterError(resource: resource, message: "the header has no account id column '\(adapter.accountIdAttribute)'", line: record.line)
        }
        header = record.fields
        self.idIndex = idIndex
    }

    /// A row: its id and its cells (no more than the header has; fewer when the row is short).
    typealias Row = (id: String, cells: [String])

    mutating func next() throws -> Row? {
        readAhead()
        guard let (record, print) = ahead[aheadStart].take() else {
            try aheadEnd?.get()
            return nil
        }
        aheadStart = (aheadStart + 1) % Self.lookahead
        aheadCount -= 1
        let line = record.line
        guard record.fields.count <= header.count else {
            throw AdapterError(resource: resource, message: "the row has \(record.fields.count) fields but the header has \(header.count)", line: line)
        }
        guard let print else {
            throw AdapterError(resource: resource, message: "the row has an empty account id", line: line)
        }
        let id = record.fields[idIndex]
        if !ids.insert(print), let first = try firstLine(of: id, before: line) {
            throw AdapterError(resource: resource, message: "duplicate account id: lines \(first) and \(line)", accountID: id, line: line)
        }
        return (id, record.fields)
    }

    /// Reads records until `lookahead` wait (or the file ends or fails), asking for the slot
    /// of each one's id.
    private mutating func readAhead() {
        while aheadCount < Self.lookahead && aheadEnd == nil {
            do {
                guard let record = try Self.next(of: &reader, resource: resource) else {
                    aheadEnd = .success(())
                    return
                }
                let id = idIndex < record.fields.count ? record.fields[idIndex] : ""
                let print = id.isEmpty ? nil : fingerprint(id)
                if let print { ids.prefetch(print) }
                ahead[(aheadStart + aheadCount) % Self.lookahead] = (record, print)
                aheadCount += 1
            } catch {
                aheadEnd = .failure(error)
            }
        }
    }

    /// The line of the row with `id` before `line`, read again from the start of the file;
    /// nil when the fingerprint that sent us here was another id's.
    private func firstLine(of id: String, before line: Int) throws -> Int? {
        let rewound: CSVReader?
        do {
            rewound = try reader.rewound()
        } catch {
            throw AdapterError(resource: resource, message: error.message, line: error.line)
        }
        guard var again = rewound else { return nil }
        _ = try Self.next(of: &again, resource: resource)  // the header
        while let record = try Self.next(of: &again, resource: resource), record.line < line {
            if idIndex < record.fields.count && record.fields[idIndex] == id { return record.line }
        }
        return nil
    }

    private static func next(of reader: inout CSVReader, resource: String) throws -> CSVRecord? {
        do {
            return try reader.next()
        } catch {
            throw AdapterError(resource: resource, message: error.message, line: error.line)
        }
    }
}

/// Streams a flat file's rows as accounts.
private struct FlatFileAccounts: AccountStream {
    private let adapter: FlatFileAdapter
    private var rows: FlatFileRows
    private let multiValued: [Bool]
    private let disabledIndex: Int?

    init(adapter: FlatFileAdapter, rows: FlatFileRows) {
        self.adapter = adapter
        self.rows = rows
        multiValued = rows.header.map(adapter.multiValuedAttributes.contains)
        disabledIndex = adapter.disabledAttribute.flatMap(rows.header.firstIndex(of:))
    }

    mutating func next() throws -> Account? {
        // Not `rows.next().map(account(of:))`: the method as a closure captures a copy of this
        // struct, reader buffers and all, for every account.
        guard let row = try rows.next() else { return nil }
        return account(of: row)
    }

    /// The account with this id, from the rows not read yet.
    mutating func account(id: String) throws -> Account? {
        while let row = try rows.next() {
            if row.id == id { return account(of: row) }
        }
        return nil
    }

    private func account(of row: FlatFileRows.Row) -> Account {
        var attributes: [(name: String, value: AttributeValue)] = []
        attributes.reserveCapacity(row.cells.count)
        for (index, cell) in row.cells.enumerated() {
            if let value = adapter.value(ofCell: cell, multiValued: multiValued[index]) {
                attributes.append((rows.header[index], value))
            }
        }
        let disabled = disabledIndex.map { $0 < row.cells.count && adapter.isDisabledMark(row.cells[$0]) } ?? false
        return Account(id: row.id, attributes: attributes, disabled: disabled)
    }
}

/// A flat file held in memory while changes are made to it.
struct FlatFileTable {
    private(set) var header: [String]
    private var columnOfName: [String: Int]
    /// The rows' cells, in file order; nil for a deleted row.
    private(set) var rows: [[String]?] = []
    private(set) var rowOfID: [String: Int] = [:]
    private let idIndex: Int
    private(set) var byteOrderMark = false
    private(set) var crlf = false

    /// An empty table whose header is the id column.
    init(idColumn: String) {
        header = [idColumn]
        columnOfName = [idColumn: 0]
        idIndex = 0
    }

    /// The table of every row of `rows`.
    init(reading rows: FlatFileRows) throws {
        var rows = rows
        header = rows.header
        columnOfName = Dictionary(uniqueKeysWithValues: rows.header.enumerated().map { ($1, $0) })
        idIndex = rows.idIndex
        while let row = try rows.next() {
            rowOfID[row.id] = self.rows.count
            self.rows.append(row.cells)
        }
        byteOrderMark = rows.byteOrderMark
        crlf = rows.crlf
    }

    /// Adds a row holding only `id`; returns its index.
    mutating func appendRow(id: String) -> Int {
        var cells = Array(repeating: "", count: idIndex + 1)
        cells[idIndex] = id
        rowOfID[id] = rows.count
        rows.append(cells)
        return rows.count - 1
    }

    mutating func removeRow(_ row: Int, id: String) {
        rows[row] = nil
        rowOfID[id] = nil
    }

    /// Sets a cell, adding the column at the end of the header when it is new.
    mutating func set(_ text: String, column name: String, row: Int) {
        let column = columnOfName[name] ?? {
            header.append(name)
            columnOfName[name] = header.count - 1
            return header.count - 1
        }()
        if rows[row]!.count <= column {
            rows[row]!.append(contentsOf: repeatElement("", count: column + 1 - rows[row]!.count))
        }
        rows[row]![column] = text
    }
}

/// An exclusive `flock` on a lock file, held until `release()`.
private struct FileLock {
    private let descriptor: Int32

    init(path: String, resource: String) throws {
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o666)
        guard descriptor >= 0 else {
            throw AdapterError(resource: resource, message: "cannot open lock file '\(path)': \(String(cString: strerror(errno)))")
        }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else {
                let reason = String(cString: strerror(errno))
                close(descriptor)
                throw AdapterError(resource: resource, message: "cannot lock '\(path)': \(reason)")
            }
        }
    }

    /// Closes the lock file, which releases the lock.
    func release() {
        close(descriptor)
    }
}
