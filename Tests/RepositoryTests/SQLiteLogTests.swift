import Foundation
import Testing
import TestSupport
@testable import Repository

/// An SQLite repository's write-ahead log: copied back into the database file by a
/// checkpointer of its own, and bounded when that falls behind.
@Suite struct SQLiteLogTests {
    private static func newPath() -> String {
        Scratch.newPath("log-", ".db")
    }

    private static func size(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
    }

    /// Commits `count` transactions of 100 rows of 1,000 bytes (about 25 pages each).
    private static func write(_ database: SQLiteDatabase, transactions count: Int) throws {
        try database.write { try $0.execute("CREATE TABLE t (v TEXT NOT NULL)", []) }
        let row = SQLValue.text(String(repeating: "x", count: 1000))
        for _ in 0..<count {
            try database.write { try $0.insertMany(into: "t", columns: ["v"], values: Array(repeating: row, count: 100), onConflict: "") }
        }
    }

    @Test func theCheckpointerCopiesTheLogIntoTheFile() throws {
        let path = Self.newPath()
        // Every commit asks for a checkpoint (so the last one's pages are copied too) and none
        // runs one itself.
        let database = try SQLiteDatabase(path: path, checkpoints: .init(asked: 1, forced: .max))
        try Self.write(database, transactions: 40)
        let deadline = Date().addingTimeInterval(10)
        while Self.size(path) < 4_000_000 && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(Self.size(path) >= 4_000_000, "the database file holds the 4 MB committed")
        #expect(try database.read { try $0.row("SELECT count(*) FROM t")?.int(0) } == 4000)
    }

    /// Below the size that asks for a checkpoint the commits stay in the log; `settle()` copies
    /// them into the database file, which then holds every row without its log.
    @Test func settlingCopiesTheWholeLogIntoTheFile() throws {
        let path = Self.newPath()
        let database = try SQLiteDatabase(path: path)
        try Self.write(database, transactions: 4)
        let copy = Self.newPath()
        func rowsInTheFileAlone() throws -> Int64? {
            try? FileManager.default.removeItem(atPath: copy)
            try FileManager.default.copyItem(atPath: path, toPath: copy)
            return try SQLiteDatabase(path: copy).read { try $0.row("SELECT count(*) FROM t")?.int(0) }
        }
        #expect(throws: (any Error).self, "the table is only in the log") { try rowsInTheFileAlone() }
        database.settle()
        #expect(try rowsInTheFileAlone() == 400)
    }

    /// A row body that runs more distinct statements than the connection keeps compiled
    /// must not have the statement it is stepping through finalized under it.
    @Test func statementsRunInsideARowBodyLeaveTheOuterOneWhole() throws {
        let database = try SQLiteDatabase(path: Self.newPath())
        try database.write { db in
            try db.execute("CREATE TABLE t (v INTEGER NOT NULL)", [])
            try db.insertMany(into: "t", columns: ["v"], values: (1...3).map { SQLValue.int($0) }, onConflict: "")
        }
        var seen: [Int64] = []
        try database.read { db in
            try db.forEachRow("SELECT v FROM t ORDER BY v", []) { row in
                seen.append(row.int(0))
                for extra in 0..<300 { _ = try db.row("SELECT \(extra) + ?", .int(row.int(0))) }
            }
        }
        #expect(seen == [1, 2, 3])
    }

    @Test func theLogStaysBoundedWithoutTheCheckpointer() throws {
        let path = Self.newPath()
        // No checkpoint is asked for: commits past 256 pages (1 MB) checkpoint themselves.
        let database = try SQLiteDatabase(path: path, checkpoints: .init(asked: .max, forced: 256))
        try Self.write(database, transactions: 100)
        #expect(Self.size(path + "-wal") < 1_400_000, "the log restarts after each forced checkpoint")
        #expect(Self.size(path) >= 10_000_000)
        #expect(try database.read { try $0.row("SELECT count(*) FROM t")?.int(0) } == 10_000)
    }
}
