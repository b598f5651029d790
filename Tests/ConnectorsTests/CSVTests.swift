import Foundation
import Testing
@testable import Connectors

private func records(_ text: String) throws -> [CSVRecord] {
    var reader = CSVReader(bytes: Array(text.utf8))
    var records: [CSVRecord] = []
    while let record = try reader.next() { records.append(record) }
    return records
}

private func fields(_ text: String) throws -> [[String]] {
    try records(text).map(\.fields)
}

private func csvError(_ text: String) -> CSVError? {
    do {
        _ = try records(text)
        return nil
    } catch {
        return error as? CSVError
    }
}

/// Input that exercises every path of the parser, for reading in chunks of every size.
private let tricky = "\u{FEFF}id,name,note\r\n1,\"Doe, Jane\",\"say \"\"hi\"\"\"\r\n\r\n2,\"two\nlines\",x\"y\r\n3,,\"\"\n4,é€😀,\"\"\"\"\n5,last,\"\r\n\""

@Suite struct CSVReaderTests {
    /// A rewound reader reads the file its reader opened, even once another file has been
    /// renamed over the path (as the flat file adapter's writes do).
    @Test func rewoundReaderReadsTheFileItOpened() throws {
        try withTemporaryDirectory { directory throws in
            let path = directory + "/accounts.csv", replacement = directory + "/new.csv"
            try writeFile(path, "id\nold1\nold2\n")
            var reader = try CSVReader(path: path)
            #expect(try reader.next()?.fields == ["id"])
            try writeFile(replacement, "id\nnew\n")
            #expect(rename(replacement, path) == 0)
            guard var again = try reader.rewound() else { Issue.record("a file reader rewinds"); return }
            var ids: [String] = []
            while let record = try again.next() { ids += record.fields }
            #expect(ids == ["id", "old1", "old2"])
            #expect(try reader.next()?.fields == ["old1"])
            #expect(try CSVReader(bytes: Array("x\n".utf8)).rewound() == nil)
        }
    }

    @Test func plainRecordsWithTheirLines() throws {
        let read = try records("a,b,c\n1,2,3\n4,5,6\n")
        #expect(read.map(\.fields) == [["a", "b", "c"], ["1", "2", "3"], ["4", "5", "6"]])
        #expect(read.map(\.line) == [1, 2, 3])
    }

    @Test func quotedFieldsHoldCommasDoubledQuotesAndNewlines() throws {
        let read = try records("a,b\n\"x, y\",\"say \"\"hi\"\"\"\n\"one\ntwo\r\nthree\",z\nlast,row\n")
        #expect(read.map(\.fields) == [["a", "b"], ["x, y", "say \"hi\""], ["one\ntwo\r\nthree", "z"], ["last", "row"]])
        #expect(read.map(\.line) == [1, 2, 3, 6])
    }

    @Test func crlfAndLFLineEnds() throws {
        var reader = CSVReader(bytes: Array("a,b\r\n1,2\r\n3,4\n".utf8))
        #expect(try reader.next()?.fields == ["a", "b"])
        #expect(reader.usesCRLF)
        #expect(try reader.next()?.fields == ["1", "2"])
        #expect(try reader.next()?.fields == ["3", "4"])
        #expect(try reader.next() == nil)
        var lf = CSVReader(bytes: Array("a\nb\n".utf8))
        _ = try lf.next()
        #expect(!lf.usesCRLF)
    }

    @Test func byteOrderMarkIsSkipped() throws {
        var reader = CSVReader(bytes: Array("\u{FEFF}id,name\n1,x\n".utf8))
        #expect(try reader.next()?.fields == ["id", "name"])
        #expect(reader.hasByteOrderMark)
        var plain = CSVReader(bytes: Array("id\n".utf8))
        _ = try plain.next()
        #expect(!plain.hasByteOrderMark)
    }

    @Test func lastLineWithoutLineEnd() throws {
        #expect(try fields("a,b\n1,2") == [["a", "b"], ["1", "2"]])
        #expect(try fields("a,b\r\n\"1\",\"2\"") == [["a", "b"], ["1", "2"]])
    }

    @Test func emptyFieldsAndEmptyLines() throws {
        #expect(try fields("a,,c\n,\n\n\r\nx,\n") == [["a", "", "c"], ["", ""], ["x", ""]])
        #expect(try records("\n\na\n").map(\.line) == [3])
        #expect(try fields("").isEmpty)
        #expect(try fields("\"\"\n") == [[""]])
    }

    @Test func quoteInsideAnUnquotedFieldIsKept() throws {
        #expect(try fields("Jane \"JJ\" Doe,x\n") == [["Jane \"JJ\" Doe", "x"]])
    }

    @Test func unterminatedQuoteIsReportedAtTheLineItOpens() {
        let error = csvError("a,b\n1,2\n3,\"open\nstill open\n")
        #expect(error?.line == 3)
        #expect(error?.message == "unterminated quoted field")
    }

    @Test func textAfterAClosingQuoteIsMalformed() {
        let error = csvError("a\n\"x\"y\n")
        #expect(error?.line == 2)
        #expect(error?.message == "text after the closing quote of a field")
        #expect(csvError("a\n\"x\"\rb\n")?.line == 2)
    }

    @Test func invalidUTF8IsMalformed() {
        var reader = CSVReader(bytes: Array("a\n".utf8) + [0x61, 0xFF, 0x0A])
        #expect(throws: CSVError(message: "invalid UTF-8", line: 2)) {
            while try reader.next() != nil {}
        }
    }

    @Test func missingFileCannotBeOpened() {
        #expect(throws: CSVError.self) { try CSVReader(path: "/nonexistent/file.csv") }
    }

    @Test(arguments: [1, 2, 3, 4, 5, 7, 11, 64, 1 << 20])
    func chunkBoundariesDoNotChangeTheRecords(chunkSize: Int) throws {
        try withTemporaryDirectory { directory throws in
            let path = directory + "/t.csv"
            try writeFile(path, tricky)
            var reader = try CSVReader(path: path, chunkSize: chunkSize)
            var read: [CSVRecord] = []
            while let record = try reader.next() { read.append(record) }
            #expect(read == (try records(tricky)))
            #expect(read.map(\.fields) == [
                ["id", "name", "note"], ["1", "Doe, Jane", "say \"hi\""], ["2", "two\nlines", "x\"y"],
                ["3", "", ""], ["4", "é€😀", "\""], ["5", "last", "\r\n"],
            ])
            #expect(read.map(\.line) == [1, 2, 4, 6, 7, 8])
            #expect(reader.hasByteOrderMark && reader.usesCRLF)
        }
    }

    /// Records read as bytes (a flat file's accounts) have the fields the string reader gives,
    /// however the chunks cut them; invalid UTF-8 is refused the same way.
    @Test(arguments: [1, 2, 3, 5, 11, 1 << 20])
    func recordsReadAsBytesHoldTheSameFields(chunkSize: Int) throws {
        try withTemporaryDirectory { directory throws in
            let path = directory + "/t.csv"
            try writeFile(path, tricky)
            var reader = try CSVReader(path: path, chunkSize: chunkSize)
            var cells = CSVCells(), lines: [Int] = [], firstFields = [0]
            while let line = try reader.next(appendingTo: &cells) {
                lines.append(line)
                firstFields.append(cells.count)
            }
            let fields = lines.indices.map { record in
                (firstFields[record]..<firstFields[record + 1]).map { String(decoding: cells.bytes[cells.range(of: $0)], as: UTF8.self) }
            }
            let expected = try records(tricky)
            #expect(fields == expected.map(\.fields) && lines == expected.map(\.line))
        }
        var reader = CSVReader(bytes: Array("a\n".utf8) + [0x61, 0xFF, 0x0A])
        var cells = CSVCells()
        #expect(throws: CSVError(message: "invalid UTF-8", line: 2)) {
            while try reader.next(appendingTo: &cells) != nil {}
        }
    }

    @Test(arguments: [1, 3, 8])
    func unterminatedQuoteInAFileReadInChunks(chunkSize: Int) throws {
        try withTemporaryDirectory { directory throws in
            let path = directory + "/t.csv"
            try writeFile(path, "id,x\n1,a\n2,\"b\nc\n3,d\n")
            var reader = try CSVReader(path: path, chunkSize: chunkSize)
            #expect(throws: CSVError(message: "unterminated quoted field", line: 3)) {
                while try reader.next() != nil {}
            }
        }
    }
}

@Suite struct CSVWriterTests {
    @Test func quotesOnlyWhenNeeded() {
        var writer = CSVWriter()
        writer.write(["plain", "a,b", "say \"hi\"", "two\nlines", "cr\r", " lead", "trail ", "\ttab", "", "é"])
        #expect(String(decoding: writer.output, as: UTF8.self)
            == "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"cr\r\",\" lead\",\"trail \",\"\ttab\",,é\n")
    }

    @Test func crlfAndByteOrderMark() {
        var writer = CSVWriter(crlf: true)
        writer.writeByteOrderMark()
        writer.write(["a", "b"])
        #expect(writer.output == [0xEF, 0xBB, 0xBF] + Array("a,b\r\n".utf8))
        writer.removeAll()
        #expect(writer.output.isEmpty)
    }

    @Test func aLoneEmptyFieldIsQuotedSoItIsNotAnEmptyLine() throws {
        var writer = CSVWriter()
        writer.write(["id"])
        writer.write([""])
        #expect(String(decoding: writer.output, as: UTF8.self) == "id\n\"\"\n")
        var reader = CSVReader(bytes: writer.output)
        _ = try reader.next()
        #expect(try reader.next()?.fields == [""])
    }

    @Test func writtenRecordsReadBackTheSame() throws {
        let rows = [["id", "name", "note"], ["1", "Doe, Jane", "say \"hi\""], ["2", " x ", "a\r\nb"], ["3", "", "\""]]
        for crlf in [false, true] {
            var writer = CSVWriter(crlf: crlf)
            rows.forEach { writer.write($0) }
            var reader = CSVReader(bytes: writer.output)
            var read: [[String]] = []
            while let record = try reader.next() { read.append(record.fields) }
            #expect(read == rows)
        }
    }
}
