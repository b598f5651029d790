import Foundation

/// Malformed CSV input, or a file that cannot be read.
public struct CSVError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String
    /// The 1-based line of malformed input (for an unterminated quote, the line where the quote
    /// opens); nil when the file cannot be opened or read.
    public let line: Int?

    public init(message: String, line: Int?) {
        self.message = message
        self.line = line
    }

    public var description: String { line.map { "line \($0): \(message)" } ?? message }
}

/// One CSV record: its fields and the line it starts on.
public struct CSVRecord: Sendable, Hashable {
    public var fields: [String]
    public var line: Int
}

/// An RFC 4180 reader that streams records from a file or from bytes in memory.
///
/// The input is UTF-8, with or without a byte order mark. Fields are separated by commas and
/// records end with LF or CRLF; the last record may have no line end. A quoted field may hold
/// commas, line ends and doubled quotes. A quote inside an unquoted field is kept as it is.
/// Empty lines are skipped. Lines are counted from 1 and include those inside quoted fields.
/// The reader works on bytes, reading a file a chunk at a time: a record may straddle chunks,
/// and only the current chunk (or the current record, when it is longer) is held in memory.
public struct CSVReader {
    private let file: FileChunks?
    private var buffer: [UInt8]
    /// Whether `buffer` is all ASCII, checked a word at a time as it fills: its fields then need
    /// no check one by one.
    private var bufferIsASCII = false
    private var position = 0
    private var atEnd: Bool
    private var line = 1
    private var scratch: [UInt8] = []
    private var startChecked = false
    private var sawRecord = false
    /// The field count of the last record, to reserve room for the next one's fields.
    private var fieldCount = 0

    /// Whether the input starts with a UTF-8 byte order mark (known after the first `next()`).
    public private(set) var hasByteOrderMark = false
    /// Whether the first record ends with CRLF rather than LF (known after the first `next()`).
    public private(set) var usesCRLF = false

    /// Reads the file at `path`, `chunkSize` bytes at a time.
    public init(path: String, chunkSize: Int = 1 << 20) throws(CSVError) {
        precondition(chunkSize > 0, "chunkSize must be positive")
        guard let handle = fopen(path, "rb") else {
            throw CSVError(message: "cannot open '\(path)': \(String(cString: strerror(errno)))", line: nil)
        }
        file = FileChunks(handle: handle, path: path, chunkSize: chunkSize)
        buffer = []
        atEnd = false
    }

    /// A reader of the same file from its start: the file this reader opened, even when
    /// another has been renamed over its path since (through `/proc/self/fd` on Linux; by its
    /// path where that is missing). Nil for a reader of bytes.
    public func rewound() throws(CSVError) -> CSVReader? {
        guard let file else { return nil }
        let descriptor = "/proc/self/fd/\(file.descriptor)"
        return try CSVReader(path: access(descriptor, R_OK) == 0 ? descriptor : file.path, chunkSize: file.chunkSize)
    }

    /// Reads `bytes`.
    public init(bytes: [UInt8]) {
        file = nil
        buffer = bytes
        atEnd = true
        bufferIsASCII = bytes.withUnsafeBytes(isASCII)
    }

    /// The next record, or nil at the end of the input.
    public mutating func next() throws(CSVError) -> CSVRecord? {
        var fields = StringFields(capacity: fieldCount)
        guard let line = try nextRecord(into: &fields) else { return nil }
        fieldCount = fields.values.count
        return CSVRecord(fields: fields.values, line: line)
    }

    /// The next record's fields appended to `cells` as bytes, without a string made; the line
    /// the record starts on, or nil at the end of the input. The fields are checked UTF-8.
    public mutating func next(appendingTo cells: inout CSVCells) throws(CSVError) -> Int? {
        try nextRecord(into: &cells)
    }

    private mutating func nextRecord<Fields: CSVFields>(into fields: inout Fields) throws(CSVError) -> Int? {
        if !startChecked { try checkStart() }
        fields.startRecord()
        while true {
            let ascii = bufferIsASCII
            let outcome = try buffer.withUnsafeBufferPointer { bytes throws(CSVError) in
                try Self.parseRecord(bytes, from: position, line: line, atEnd: atEnd, ascii: ascii, into: &fields, scratch: &scratch)
            }
            switch outcome {
            case .end:
                return nil
            case .needMore:
                fields.restartRecord()
                try readChunk()
            case .blankLine(let end):
                position = end
                line += 1
            case .record(let end, let nextLine, let crlf):
                if !sawRecord { usesCRLF = crlf }
                sawRecord = true
                let recordLine = line
                position = end
                line = nextLine
                return recordLine
            }
        }
    }

    /// Skips a byte order mark, reading until three bytes (or the whole input) are there.
    private mutating func checkStart() throws(CSVError) {
        while buffer.count - position < 3 && !atEnd { try readChunk() }
        if buffer[position...].starts(with: [0xEF, 0xBB, 0xBF]) {
            hasByteOrderMark = true
            position += 3
        }
        startChecked = true
    }

    /// Drops the bytes already parsed and appends the next chunk of the file.
    private mutating func readChunk() throws(CSVError) {
        guard let file else { preconditionFailure("bytes in memory are read whole") }
        buffer.removeSubrange(0..<position)
        position = 0
        atEnd = try file.append(to: &buffer)
        bufferIsASCII = buffer.withUnsafeBytes(isASCII)
    }

    private enum Outcome {
        case record(end: Int, nextLine: Int, crlf: Bool)
        case blankLine(end: Int)
        case needMore
        case end
    }

    private static let comma = UInt8(ascii: ","), quote = UInt8(ascii: "\"")
    private static let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")

    /// Parses the record starting at `start` into `fields`. Changes nothing else but `scratch`,
    /// so that a record cut off by the end of the buffer (`needMore`) is parsed again from its
    /// start with more bytes (`fields` starting the record again).
    private static func parseRecord<Fields: CSVFields>(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, line startLine: Int,
                                                       atEnd: Bool, ascii: Bool, into fields: inout Fields,
                                                       scratch: inout [UInt8]) throws(CSVError) -> Outcome {
        let count = bytes.count
        var i = start
        if i == count { return atEnd ? .end : .needMore }
        if bytes[i] == lf { return .blankLine(end: i + 1) }
        if bytes[i] == cr {
            if i + 1 == count && !atEnd { return .needMore }
            if i + 1 < count && bytes[i + 1] == lf { return .blankLine(end: i + 2) }
        }
        var line = startLine
        while true {
            if i < count && bytes[i] == quote {
                let quoteLine = line
                scratch.removeAll(keepingCapacity: true)
                i += 1
                while true {
                    var closing = i
                    while closing < count && bytes[closing] != quote {
                        if bytes[closing] == lf { line += 1 }
                        closing += 1
                    }
                    if closing == count {
                        if atEnd { throw CSVError(message: "unterminated quoted field", line: quoteLine) }
                        return .needMore
                    }
                    scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[i..<closing]))
                    if closing + 1 == count && !atEnd { return .needMore }
                    if closing + 1 < count && bytes[closing + 1] == quote {
                        scratch.append(quote)
                        i = closing + 2
                    } else {
                        i = closing + 1
                        break
                    }
                }
                try scratch.withUnsafeBufferPointer { text throws(CSVError) in try fields.append(text, line: quoteLine, ascii: ascii) }
                if i < count && bytes[i] != comma && bytes[i] != lf {
                    if bytes[i] == cr && i + 1 == count && !atEnd { return .needMore }
                    if !(bytes[i] == cr && i + 1 < count && bytes[i + 1] == lf) {
                        throw CSVError(message: "text after the closing quote of a field", line: line)
                    }
                }
            } else {
                var end = i
                while end < count && bytes[end] != comma && bytes[end] != lf { end += 1 }
                if end == count && !atEnd { return .needMore }
                var fieldEnd = end
                if end < count && bytes[end] == lf && fieldEnd > i && bytes[fieldEnd - 1] == cr { fieldEnd -= 1 }
                try fields.append(UnsafeBufferPointer(rebasing: bytes[i..<fieldEnd]), line: line, ascii: ascii)
                i = fieldEnd
            }
            if i == count { return .record(end: i, nextLine: line, crlf: false) }
            switch bytes[i] {
            case comma:
                i += 1
            case lf:
                return .record(end: i + 1, nextLine: line + 1, crlf: false)
            default: // CR before LF, checked above
                return .record(end: i + 2, nextLine: line + 1, crlf: true)
            }
        }
    }

}

/// Where `CSVReader` puts a record's fields as it parses them.
protocol CSVFields {
    /// Notes that a record's fields come next.
    mutating func startRecord()
    /// Forgets the fields added since `startRecord()`: the record is parsed again.
    mutating func restartRecord()
    /// Adds a field, checked to be UTF-8 unless `ascii` says it is ASCII (`line` names the
    /// field's line when it is not UTF-8).
    mutating func append(_ field: UnsafeBufferPointer<UInt8>, line: Int, ascii: Bool) throws(CSVError)
}

extension CSVFields {
    /// Throws unless `bytes` are UTF-8. ASCII, the common case, is checked without decoding
    /// (validating is much slower).
    static func checkUTF8(_ bytes: UnsafeBufferPointer<UInt8>, line: Int) throws(CSVError) {
        if bytes.allSatisfy({ $0 < 0x80 }) { return }
        guard String(validating: bytes, as: UTF8.self) != nil else { throw CSVError(message: "invalid UTF-8", line: line) }
    }
}

/// A record's fields as strings.
private struct StringFields: CSVFields {
    var values: [String] = []
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    mutating func startRecord() { values.reserveCapacity(capacity) }

    mutating func restartRecord() { values.removeAll(keepingCapacity: true) }

    mutating func append(_ field: UnsafeBufferPointer<UInt8>, line: Int, ascii: Bool) throws(CSVError) {
        if !ascii { try Self.checkUTF8(field, line: line) }
        values.append(String(decoding: field, as: UTF8.self))
    }
}

/// The fields of records as bytes, one after another, with where each ends: what
/// `CSVReader.next(appendingTo:)` fills, without a string made per field.
public struct CSVCells: Sendable, CSVFields {
    /// The fields' bytes back to back (a quoted field's without its quotes, doubled quotes undone).
    public private(set) var bytes: [UInt8] = []
    /// Where each field ends in `bytes`; the next field starts there.
    public private(set) var ends: [Int] = []
    /// Where the record being parsed started, to start it again.
    private var recordStart = (bytes: 0, fields: 0)

    public init() {}

    /// The number of fields held.
    public var count: Int { ends.count }

    /// The bytes of field `index`.
    public func range(of index: Int) -> Range<Int> { (index == 0 ? 0 : ends[index - 1])..<ends[index] }

    /// Field `index` as a string.
    public func text(of index: Int) -> String {
        let range = range(of: index)
        return bytes.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[range]), as: UTF8.self) }
    }

    /// Forgets every field, keeping the room.
    public mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        ends.removeAll(keepingCapacity: true)
        recordStart = (0, 0)
    }

    /// Adds a field of text that may not be UTF-8 (a database's), repaired as a string made
    /// of it would be (each invalid sequence becoming U+FFFD).
    mutating func append(repairing field: UnsafeBufferPointer<UInt8>) {
        if isASCII(UnsafeRawBufferPointer(field)) || String(validating: field, as: UTF8.self) != nil {
            bytes.append(contentsOf: field)
        } else {
            bytes.append(contentsOf: String(decoding: field, as: UTF8.self).utf8)
        }
        ends.append(bytes.count)
    }

    mutating func startRecord() { recordStart = (bytes.count, ends.count) }

    mutating func restartRecord() {
        bytes.removeSubrange(recordStart.bytes...)
        ends.removeSubrange(recordStart.fields...)
    }

    mutating func append(_ field: UnsafeBufferPointer<UInt8>, line: Int, ascii: Bool) throws(CSVError) {
        if !ascii { try Self.checkUTF8(field, line: line) }
        bytes.append(contentsOf: field)
        ends.append(bytes.count)
    }
}

/// Whether every byte is below 0x80, looked at eight at a time.
func isASCII(_ raw: UnsafeRawBufferPointer) -> Bool {
    var bits: UInt64 = 0, index = 0
    while index + 8 <= raw.count {
        bits |= raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
        index += 8
    }
    while index < raw.count {
        bits |= UInt64(raw[index])
        index += 1
    }
    return bits & 0x8080_8080_8080_8080 == 0
}

/// A file read a chunk at a time; closed when the last reader using it goes.
private final class FileChunks {
    private let handle: UnsafeMutablePointer<FILE>
    let path: String
    private var chunk: [UInt8]

    init(handle: UnsafeMutablePointer<FILE>, path: String, chunkSize: Int) {
        self.handle = handle
        self.path = path
        chunk = Array(repeating: 0, count: chunkSize)
    }

    deinit { fclose(handle) }

    var descriptor: Int32 { fileno(handle) }
    var chunkSize: Int { chunk.count }

    /// Appends up to one chunk to `buffer`; returns true at the end of the file.
    func append(to buffer: inout [UInt8]) throws(CSVError) -> Bool {
        let chunkSize = chunk.count
        let read = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, chunkSize, handle) }
        buffer.append(contentsOf: chunk[..<read])
        if read < chunkSize && ferror(handle) != 0 {
            throw CSVError(message: "cannot read '\(path)': \(String(cString: strerror(errno)))", line: nil)
        }
        return read == 0
    }
}

/// Encodes CSV records, quoting a field only when it needs it: when it holds a comma, a quote,
/// CR or LF, or starts or ends with a space or tab. A record of one empty field is written
/// `""` so that it is not read back as an empty line.
public struct CSVWriter {
    /// The bytes written so far (the caller empties them with `removeAll()` after saving them).
    public private(set) var output: [UInt8] = []
    private let lineEnd: [UInt8]

    /// A writer ending records with CRLF when `crlf` is true, else LF.
    public init(crlf: Bool = false) {
        lineEnd = crlf ? [0x0D, 0x0A] : [0x0A]
    }

    /// Appends a UTF-8 byte order mark.
    public mutating func writeByteOrderMark() {
        output.append(contentsOf: [0xEF, 0xBB, 0xBF])
    }

    /// Appends one record.
    public mutating func write(_ fields: [String]) {
        if fields == [""] {
            output.append(contentsOf: [0x22, 0x22])
        }
        for (index, field) in fields.enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            Self.append(field, to: &output)
        }
        output.append(contentsOf: lineEnd)
    }

    /// Forgets the bytes written so far.
    public mutating func removeAll() {
        output.removeAll(keepingCapacity: true)
    }

    /// Whether `field` must be quoted.
    static func needsQuotes(_ field: String) -> Bool {
        let utf8 = field.utf8
        guard let first = utf8.first, let last = utf8.last else { return false }
        if first == 0x20 || first == 0x09 || last == 0x20 || last == 0x09 { return true }
        return utf8.contains { $0 == 0x2C || $0 == 0x22 || $0 == 0x0D || $0 == 0x0A }
    }

    private static func append(_ field: String, to output: inout [UInt8]) {
        guard needsQuotes(field) else {
            output.append(contentsOf: field.utf8)
            return
        }
        output.append(0x22)
        for byte in field.utf8 {
            output.append(byte)
            if byte == 0x22 { output.append(0x22) }
        }
        output.append(0x22)
    }
}
