import Foundation
import GRDB
import Testing
@testable import Connectors

private let schema = """
    CREATE TABLE users (
        uid TEXT, name TEXT, groups TEXT, age INTEGER, score REAL, disabled TEXT, modified TEXT, photo BLOB);
    INSERT INTO users VALUES ('jdoe', 'Jane Doe', 'staff|admins||', 42, 1.5, 'FALSE', '2026-01-02', NULL);
    INSERT INTO users VALUES ('bob', '', NULL, NULL, NULL, 'True', '2026-03-04', NULL);
    INSERT INTO users VALUES ('amy', 'Amy', '|', 7, 2.0, NULL, '2026-05-06', x'414243');
    """

/// Runs `body` with a database file made by `sql` in a new temporary directory.
private func withDatabase<T>(_ sql: String = schema, _ body: (String) throws -> T) throws -> T {
    try withTemporaryDirectory { directory throws in
        let file = directory + "/accounts.db"
        try DatabaseQueue(path: file).write { try $0.execute(sql: sql) }
        return try body(file)
    }
}

private func adapter(_ file: String, table: String = "users", id: String = "uid", disabled: String? = "disabled",
                     modified: String? = "modified", pageSize: Int? = nil) -> DatabaseTableAdapter {
    var adapter = DatabaseTableAdapter(name: "DB", file: file, table: table, accountIdColumn: id,
                                       multiValuedAttributes: ["groups"], disabledAttribute: disabled, modifiedColumn: modified)
    if let pageSize { adapter.pageSize = pageSize }
    return adapter
}

/// The rows `sql` selects, each value as text (nil for NULL).
private func rows(_ file: String, _ sql: String) throws -> [[String?]] {
    try DatabaseQueue(path: file).read { db in
        try Row.fetchAll(db, sql: sql).map { row in
            row.databaseValues.map { value in
                switch value.storage {
                case .null: nil
                case .int64(let number): String(number)
                case .double(let number): String(number)
                case .string(let text): text
                case .blob(let data): data.base64EncodedString()
                }
            }
        }
    }
}

@Suite struct DatabaseTableReadingTests {
    /// A run compares accounts by id and digest, computed from the row's bytes: the digest is
    /// the built account's (NULL and empty alike absent, text that is not UTF-8 repaired as a
    /// string is), across pages, and the account built later is the one `next()` reads.
    @Test(arguments: [1, 2, 1000])
    func streamedAccountsHaveTheDigestsOfTheAccountsBuilt(pageSize: Int) throws {
        let more = schema + """
            INSERT INTO users VALUES ('é1', 'Émile', '€|😀||€', 1, NULL, 'tRuE', '', CAST(x'61ff62' AS TEXT));
            INSERT INTO users VALUES ('x2', CAST(x'c3' AS TEXT), '|', NULL, NULL, 'TRUE ', NULL, NULL);
            """
        try withDatabase(more) { file throws in
            let built = try allAccounts(adapter(file, pageSize: pageSize))
            var stream = try adapter(file, pageSize: pageSize).accounts()
            var streamed: [StreamedAccount] = []
            while let account = try stream.nextStreamed() { streamed.append(account) }
            #expect(built.count == 5 && streamed.map(\.id) == built.map(\.id))
            for (one, account) in zip(streamed, built) {
                #expect(one.digest == Digest.value(of: account), "\(account.id)")
                #expect(one.account == account)
            }
            #expect(built.map(\.disabled) == [false, true, false, true, false])
            #expect(built[3].attribute("photo") == .single("a\u{FFFD}b") && built[4].attribute("name") == .single("\u{FFFD}"))
        }
    }

    @Test func rowsAreAccountsWithTextAttributes() throws {
        try withDatabase { file throws in
            let accounts = try allAccounts(adapter(file))
            #expect(accounts.map(\.id) == ["jdoe", "bob", "amy"])
            #expect(accounts[0] == Account(id: "jdoe", attributes: [
                ("uid", .single("jdoe")), ("name", .single("Jane Doe")), ("groups", .multi(["staff", "admins"])),
                ("age", .single("42")), ("score", .single("1.5")), ("disabled", .single("FALSE")),
                ("modified", .single("2026-01-02")),
            ]))
            #expect(accounts[1] == Account(id: "bob", attributes: [
                ("uid", .single("bob")), ("disabled", .single("True")), ("modified", .single("2026-03-04")),
            ], disabled: true))
            #expect(accounts[2].attributes.map(\.name) == ["uid", "name", "age", "score", "modified", "photo"])
            #expect(accounts[2].attribute("score") == .single("2.0"))
            #expect(accounts[2].attribute("photo") == .single("ABC"))
        }
    }

    @Test(arguments: [1, 2, 3, 1000])
    func pagesStreamEveryRowOnce(pageSize: Int) throws {
        try withDatabase { file throws in
            #expect(try allAccounts(adapter(file, pageSize: pageSize)).map(\.id) == ["jdoe", "bob", "amy"])
        }
    }

    @Test(arguments: [1, 2, 100])
    func tablesWithoutRowIDArePagedByTheirPrimaryKey(pageSize: Int) throws {
        let sql = #"""
            CREATE TABLE "odd ""name""" ("given name" TEXT, "id" TEXT, PRIMARY KEY ("given name", "id")) WITHOUT ROWID;
            INSERT INTO "odd ""name""" VALUES ('b', '2'), ('a', '3'), ('a', '1'), ('c', '0');
            """#
        try withDatabase(sql) { file throws in
            let odd = adapter(file, table: "odd \"name\"", id: "ID", disabled: nil, modified: nil, pageSize: pageSize)
            let accounts = try allAccounts(odd)
            #expect(accounts.map(\.id) == ["1", "3", "2", "0"])
            #expect(accounts[0].attributes.map(\.name) == ["given name", "id"])
        }
    }

    @Test func accountByID() throws {
        try withDatabase { file throws in
            #expect(try adapter(file).account(id: "bob")?.disabled == true)
            #expect(try adapter(file).account(id: "nobody") == nil)
        }
    }

    @Test func anIDInTwoRowsIsAnError() throws {
        try withDatabase(schema + "INSERT INTO users (uid) VALUES ('bob');") { file throws in
            let error = adapterError { _ = try adapter(file).account(id: "bob") }
            #expect(error?.message == "the account id is in more than one row")
            #expect(error?.accountID == "bob")
        }
    }

    @Test func aRowWithoutIDIsAnError() throws {
        try withDatabase(schema + "INSERT INTO users (uid, name) VALUES (NULL, 'x');") { file throws in
            let error = adapterError { _ = try allAccounts(adapter(file)) }
            #expect(error?.message == "the row with rowid 4 has no account id")
        }
    }

    /// The stream keeps its compiled statement from page to page; a page that fails must not
    /// leave it mid-table, where it would keep the file's read lock and stop every writer.
    @Test func aFailedPageHoldsNoLock() throws {
        try withDatabase(schema + "INSERT INTO users (uid, name) VALUES (NULL, 'x');") { file throws in
            var stream = try adapter(file).accounts()
            #expect(throws: AdapterError.self) { while try stream.next() != nil {} }
            var configuration = Configuration()
            configuration.busyMode = .immediateError
            try DatabaseQueue(path: file, configuration: configuration).write { try $0.execute(sql: "DELETE FROM users WHERE uid IS NULL") }
            withExtendedLifetime(stream) {}
        }
    }

    @Test func modifiedSinceListsTheChangedRows() throws {
        try withDatabase { file throws in
            var stream = try adapter(file).accounts(modifiedSince: "2026-02-01")
            var ids: [String] = []
            while let account = try stream.next() { ids.append(account.id) }
            #expect(ids == ["bob", "amy"])
            let error = adapterError { _ = try adapter(file, modified: nil).accounts(modifiedSince: "x") }
            #expect(error?.message == "the resource has no modifiedColumn to list changed accounts by")
        }
    }

    @Test func columnNamesMatchInAnyCase() throws {
        try withDatabase { file throws in
            let upper = adapter(file, table: "USERS", id: "UID", disabled: "Disabled", modified: "MODIFIED")
            #expect(try upper.account(id: "bob")?.disabled == true)
            #expect(try upper.account(id: "bob")?.attributes.first?.name == "uid")
        }
    }

    @Test(arguments: [
        ("nope", "uid", "disabled", "modified", "the database has no table 'nope'"),
        ("users", "login", "disabled", "modified", "table 'users' has no column 'login' (accountIdColumn)"),
        ("users", "uid", "locked", "modified", "table 'users' has no column 'locked' (disabledAttribute)"),
        ("users", "uid", "disabled", "changed", "table 'users' has no column 'changed' (modifiedColumn)"),
    ])
    func namesThatDoNotExistAreRefused(table: String, id: String, disabled: String, modified: String, message: String) throws {
        try withDatabase { file throws in
            let bad = adapter(file, table: table, id: id, disabled: disabled, modified: modified)
            #expect(adapterError { _ = try bad.accounts() }?.message == message)
            #expect(adapterError { _ = try bad.account(id: "bob") }?.message == message)
            #expect(adapterError { try bad.apply([.delete(id: "bob")]) }?.message == message)
        }
    }

    @Test func missingDatabaseFileIsAnError() throws {
        try withTemporaryDirectory { directory throws in
            let file = directory + "/none.db"
            #expect(adapterError { _ = try adapter(file).accounts() }?.message == "database file '\(file)' does not exist")
            #expect(adapterError { try adapter(file).apply([.delete(id: "x")]) }?.message == "database file '\(file)' does not exist")
            #expect(!FileManager.default.fileExists(atPath: file))
        }
    }

    @Test func capabilitiesFollowTheSettings() {
        #expect(adapter("f").capabilities == AdapterCapabilities(incremental: true, disable: true))
        let plain = DatabaseTableAdapter(name: "DB", file: "f", table: "t", accountIdColumn: "id", incremental: false)
        #expect(plain.capabilities == AdapterCapabilities(incremental: false, disable: false))
    }
}

@Suite struct DatabaseTableApplyTests {
    @Test func changesAreAppliedToTheRows() throws {
        try withDatabase { file throws in
            let db = adapter(file)
            try db.apply([
                .create(id: "zed", attributes: [("NAME", .single("Zed")), ("groups", .multi(["a", "b"])), ("age", .single("30")),
                                                ("uid", .single("zed")), ("score", .single(""))]),
                .update(id: "jdoe", attributes: [("name", .single("Jane Q.")), ("groups", nil), ("age", .single("43"))]),
                .delete(id: "amy"),
                .disable(id: "jdoe"),
                .enable(id: "bob"),
            ])
            #expect(try rows(file, "SELECT uid, name, groups, age, score, disabled, typeof(age) FROM users ORDER BY rowid") == [
                ["jdoe", "Jane Q.", nil, "43", "1.5", "true", "integer"],
                ["bob", "", nil, nil, nil, "false", "null"],
                ["zed", "Zed", "a|b", "30", nil, nil, "integer"],
            ])
            #expect(try db.account(id: "zed")?.attribute("groups") == .multi(["a", "b"]))
        }
    }

    @Test func aBatchWithOneBadChangeChangesNothing() throws {
        try withDatabase { file throws in
            let before = try rows(file, "SELECT * FROM users ORDER BY rowid")
            let error = adapterError {
                try adapter(file).apply([
                    .create(id: "new", attributes: [("name", .single("New"))]),
                    .delete(id: "bob"),
                    .update(id: "ghost", attributes: [("name", .single("Ghost"))]),
                ])
            }
            #expect(error?.message == "account does not exist")
            #expect(error?.accountID == "ghost")
            #expect(try rows(file, "SELECT * FROM users ORDER BY rowid") == before)
        }
    }

    @Test(arguments: [
        (AccountChange.create(id: "bob", attributes: []), "account already exists"),
        (.create(id: "", attributes: []), "cannot create an account with an empty id"),
        (.create(id: "x", attributes: [("mail", .single("m")), ("name", .single("X")), ("phone", .single("1"))]),
         "table 'users' has no column 'mail', 'phone'"),
        (.update(id: "bob", attributes: [("mail", .single("m"))]), "table 'users' has no column 'mail'"),
        (.update(id: "bob", attributes: [("uid", .single("robert"))]), "attribute 'uid' holds the account id and cannot be given another value"),
        (.update(id: "bob", attributes: [("groups", .multi(["a|b"]))]), "value 'a|b' of multi-valued attribute 'groups' contains the separator '|'"),
        (.delete(id: "ghost"), "account does not exist"),
        (.disable(id: "ghost"), "account does not exist"),
    ])
    func refusedChanges(change: AccountChange, message: String) throws {
        try withDatabase { file throws in
            let before = try rows(file, "SELECT * FROM users ORDER BY rowid")
            #expect(adapterError { try adapter(file).apply([change]) }?.message == message)
            #expect(try rows(file, "SELECT * FROM users ORDER BY rowid") == before)
        }
    }

    @Test func disableNeedsADisabledAttribute() throws {
        try withDatabase { file throws in
            let error = adapterError { try adapter(file, disabled: nil).apply([.enable(id: "bob")]) }
            #expect(error?.message == "cannot disable or enable accounts: the resource has no disabledAttribute")
        }
    }

    @Test func changesToAnIDInTwoRowsAreRefused() throws {
        try withDatabase(schema + "INSERT INTO users (uid) VALUES ('bob');") { file throws in
            let error = adapterError { try adapter(file).apply([.delete(id: "bob")]) }
            #expect(error?.message == "the account id is in 2 rows")
            #expect(try rows(file, "SELECT COUNT(*) FROM users") == [["4"]])
        }
    }

    @Test func constraintViolationsAreAdapterErrors() throws {
        try withDatabase("CREATE TABLE t (id TEXT PRIMARY KEY, mail TEXT NOT NULL);") { file throws in
            let db = adapter(file, table: "t", id: "id", disabled: nil, modified: nil)
            let error = adapterError { try db.apply([.create(id: "a", attributes: [])]) }
            #expect(error?.message.hasPrefix("SQLite error: NOT NULL constraint failed") == true)
            #expect(error?.accountID == "a")
        }
    }

    @Test func quotedIdentifiersAreWrittenSafely() throws {
        let sql = #"""
            CREATE TABLE "odd ""name""" ("id" TEXT, "given ""nick"" name" TEXT);
            INSERT INTO "odd ""name""" VALUES ('1', 'x');
            """#
        try withDatabase(sql) { file throws in
            let odd = adapter(file, table: "odd \"name\"", id: "id", disabled: nil, modified: nil)
            try odd.apply([
                .create(id: "2", attributes: [("given \"nick\" name", .single("y"))]),
                .update(id: "1", attributes: [("given \"nick\" name", .single("z"))]),
            ])
            #expect(try allAccounts(odd).map { $0.attribute("given \"nick\" name") } == [.single("z"), .single("y")])
        }
    }
}
