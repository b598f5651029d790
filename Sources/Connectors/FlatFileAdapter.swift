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
        return FlatFileAccounts(rows: try FlatFileRows(adapter: self))
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
///
/// Rows are read a batch at a time as bytes (`RowBatch`): a row's strings are made
/// only when its cells or its account are asked for, and a run compares most accounts by id
/// and digest alone (`StreamedAccount`).
struct FlatFileRows {
    let header: [String]
    let idIndex: Int
    private let layout: RowLayout
    private var reader: CSVReader
    private let resource: String
    /// The ids read so far, as fingerprints: a repeat is confirmed by reading the file again.
    private var ids = FingerprintSet()
    private let fingerprint: (UnsafeBufferPointer<UInt8>) -> UInt64
    /// The rows being handed out, the line each starts on and the fingerprint of its id (nil
    /// when it has none), and the next of them.
    private var batch: RowBatch?
    private var lines: [Int] = []
    private var idFingerprints: [UInt64?] = []
    private var nextRow = 0
    /// Why reading stopped: the file's end, or its error (thrown once the rows read before it
    /// are handed out).
    private var end: Result<Void, any Error>?
    private static let batchSize = 256

    /// Whether the file starts with a byte order mark.
    var byteOrderMark: Bool { reader.hasByteOrderMark }
    /// Whether the file's lines end with CRLF.
    var crlf: Bool { reader.usesCRLF }

    /// Opens the adapter's file and reads its header. `fingerprint` (of an id's bytes) is
    /// replaceable so that tests can make every id collide.
    init(adapter: FlatFileAdapter, fingerprint: @escaping (UnsafeBufferPointer<UInt8>) -> UInt64 = Fingerprint.of) throws {
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
            layout = Self.layout(adapter, header: header, idIndex: 0)
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
        layout = Self.layout(adapter, header: header, idIndex: idIndex)
    }

    private static func layout(_ adapter: FlatFileAdapter, header: [String], idIndex: Int) -> RowLayout {
        RowLayout(coding: adapter, columns: header, idIndex: idIndex, multiValued: header.map(adapter.multiValuedAttributes.contains),
                  disabledIndex: adapter.disabledAttribute.flatMap(header.firstIndex(of:)))
    }

    /// A row: its id and its cells (no more than the header has; fewer when the row is short).
    typealias Row = (id: String, cells: [String])

    mutating func next() throws -> Row? {
        guard let (batch, row, id) = try nextInBatch() else { return nil }
        return (id, batch.cells(of: row))
    }

    /// The next row, as its place in its batch, and its id.
    mutating func nextInBatch() throws -> (batch: RowBatch, row: Int, id: String)? {
        while batch.map({ nextRow == $0.count }) ?? true {
            if let end {
                try end.get()
                return nil
            }
            readBatch()
        }
        let batch = self.batch!, row = nextRow
        nextRow += 1
        let line = lines[row], fields = batch.cellCount(of: row)
        guard fields <= header.count else {
            throw AdapterError(resource: resource, message: "the row has \(fields) fields but the header has \(header.count)", line: line)
        }
        guard let print = idFingerprints[row] else {
            throw AdapterError(resource: resource, message: "the row has an empty account id", line: line)
        }
        let id = batch.cell(idIndex, of: row)
        if !ids.insert(print), let first = try firstLine(of: id, before: line) {
            throw AdapterError(resource: resource, message: "duplicate account id: lines \(first) and \(line)", accountID: id, line: line)
        }
        return (batch, row, id)
    }

    /// Reads the next rows (up to the file's end or error), and asks for the slot of each
    /// one's id: at a million ids, noting each one waited on a cache miss.
    private mutating func readBatch() {
        var cells = CSVCells()  // new storage for each batch: the accounts of the last keep theirs
        var firstFields = [0], lines: [Int] = []
        firstFields.reserveCapacity(Self.batchSize + 1)
        lines.reserveCapacity(Self.batchSize)
        do {
            while lines.count < Self.batchSize {
                guard let line = try reader.next(appendingTo: &cells) else {
                    end = .success(())
                    break
                }
                lines.append(line)
                firstFields.append(cells.count)
            }
        } catch {
            end = .failure(AdapterError(resource: resource, message: error.message, line: error.line))
        }
        let idIndex = idIndex, fingerprint = fingerprint
        let prints = cells.bytes.withUnsafeBufferPointer { bytes in
            lines.indices.map { row -> UInt64? in
                guard idIndex < firstFields[row + 1] - firstFields[row] else { return nil }
                let range = cells.range(of: firstFields[row] + idIndex)
                return range.isEmpty ? nil : fingerprint(UnsafeBufferPointer(rebasing: bytes[range]))
            }
        }
        for print in prints { if let print { ids.prefetch(print) } }
        batch = RowBatch(layout: layout, cells: cells, firstCells: firstFields)
        self.lines = lines
        idFingerprints = prints
        nextRow = 0
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
    private var rows: FlatFileRows

    init(rows: FlatFileRows) {
        self.rows = rows
    }

    mutating func next() throws -> Account? {
        guard let (batch, row, id) = try rows.nextInBatch() else { return nil }
        return batch.account(at: row, id: id)
    }

    /// The account's id and digest, its strings left in the row's bytes until asked for.
    mutating func nextStreamed() throws -> StreamedAccount? {
        guard let (batch, row, id) = try rows.nextInBatch() else { return nil }
        return StreamedAccount(id: id, digest: batch.digest(of: row, id: id), row: row, of: batch)
    }

    /// The account with this id, from the rows not read yet.
    mutating func account(id: String) throws -> Account? {
        while let (batch, row, rowID) = try rows.nextInBatch() {
            if rowID == id { return batch.account(at: row, id: id) }
        }
        return nil
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
