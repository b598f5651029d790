import Foundation
import Synchronization
import Testing
@testable import Connectors

private let hr = """
    uid,name,groups,mail,disabled
    jdoe,Jane Doe,staff|admins||,jane@example.com,FALSE
    bob,"Bob, Jr.",,,True
    amy,Amy,|,,

    """

private func adapter(_ file: String, disabled: String? = "disabled", chunkSize: Int? = nil) -> FlatFileAdapter {
    var adapter = FlatFileAdapter(name: "HR", file: file, accountIdAttribute: "uid", multiValuedAttributes: ["groups"],
                                  disabledAttribute: disabled)
    if let chunkSize { adapter.chunkSize = chunkSize }
    return adapter
}

/// A flat file with `text` in a new temporary directory.
private func withFile<T>(_ text: String?, _ body: (String) throws -> T) throws -> T {
    try withTemporaryDirectory { directory throws in
        let file = directory + "/hr.csv"
        if let text { try writeFile(file, text) }
        return try body(file)
    }
}

@Suite struct FlatFileReadingTests {
    @Test func rowsAreAccountsWithTheirAttributes() throws {
        try withFile(hr) { file throws in
            let accounts = try allAccounts(adapter(file))
            #expect(accounts.map(\.id) == ["jdoe", "bob", "amy"])
            #expect(accounts[0] == Account(id: "jdoe", attributes: [
                ("uid", .single("jdoe")), ("name", .single("Jane Doe")), ("groups", .multi(["staff", "admins"])),
                ("mail", .single("jane@example.com")), ("disabled", .single("FALSE")),
            ], disabled: false))
            #expect(accounts[1] == Account(id: "bob", attributes: [
                ("uid", .single("bob")), ("name", .single("Bob, Jr.")), ("disabled", .single("True")),
            ], disabled: true))
            // A multi-valued cell of separators only is absent, as an empty cell is.
            #expect(accounts[2] == Account(id: "amy", attributes: [("uid", .single("amy")), ("name", .single("Amy"))]))
        }
    }

    @Test func aSingleValueOfAMultiValuedColumnIsAList() throws {
        try withFile("uid,groups,name\nx,staff,a|b\n") { file throws in
            let account = try #require(try adapter(file).account(id: "x"))
            #expect(account.attribute("groups") == .multi(["staff"]))
            #expect(account.attribute("name") == .single("a|b"))
        }
    }

    @Test func shortRowsHaveTheMissingCellsAbsent() throws {
        try withFile("uid,name,mail\nx,X\n") { file throws in
            #expect(try allAccounts(adapter(file)).first?.attributes.map(\.name) == ["uid", "name"])
        }
    }

    @Test func capabilitiesFollowTheSettings() {
        #expect(adapter("f", disabled: "disabled").capabilities == AdapterCapabilities(incremental: true, disable: true))
        let plain = FlatFileAdapter(name: "HR", file: "f", accountIdAttribute: "uid", incremental: false)
        #expect(plain.capabilities == AdapterCapabilities(incremental: false, disable: false))
    }

    @Test func accountByID() throws {
        try withFile(hr) { file throws in
            #expect(try adapter(file).account(id: "bob")?.disabled == true)
            #expect(try adapter(file).account(id: "nobody") == nil)
        }
    }

    @Test(arguments: [1, 2, 5, 16])
    func smallChunksStreamTheSameAccounts(chunkSize: Int) throws {
        try withFile(hr) { file throws in
            #expect(try allAccounts(adapter(file, chunkSize: chunkSize)) == (try allAccounts(adapter(file))))
        }
    }

    @Test func missingFileIsAnError() throws {
        try withFile(nil) { file throws in
            let error = adapterError { _ = try adapter(file).accounts() }
            #expect(error?.message == "file '\(file)' does not exist")
            #expect(error?.resource == "HR")
        }
    }

    @Test func emptyFileHasNoAccounts() throws {
        try withFile("") { file throws in
            #expect(try allAccounts(adapter(file)).isEmpty)
        }
    }

    @Test func duplicateIDsNameBothLines() throws {
        try withFile("uid,name\na,1\nb,\"two\nlines\"\na,3\n") { file throws in
            let error = adapterError { _ = try allAccounts(adapter(file)) }
            #expect(error?.message == "duplicate account id: lines 2 and 5")
            #expect(error?.line == 5)
            #expect(error?.accountID == "a")
        }
    }

    /// Rows are read some way ahead of the one handed out: a bad row or a broken file still
    /// comes after every good row before it, with its line.
    @Test func rowsBeforeABadOneAreHandedOutFirst() throws {
        let good = (1...20).map { "a\($0),\($0)\n" }.joined()
        try withFile("uid,name\n" + good + ",21\n" + "a22,22\n") { file throws in
            var rows = try FlatFileRows(adapter: adapter(file))
            for number in 1...20 { #expect(try rows.next()?.id == "a\(number)") }
            let error = adapterError { _ = try rows.next() }
            #expect(error?.message == "the row has an empty account id" && error?.line == 22)
            #expect(try rows.next()?.id == "a22")
        }
        try withFile("uid,name\n" + good + "a21,\"open\n") { file throws in
            var rows = try FlatFileRows(adapter: adapter(file))
            for number in 1...20 { #expect(try rows.next()?.id == "a\(number)") }
            let error = adapterError { _ = try rows.next() }
            #expect(error?.message == "unterminated quoted field" && error?.line == 22)
        }
    }

    /// Ids are remembered as fingerprints: with every fingerprint the same, distinct ids still
    /// read (each repeat of a fingerprint is checked against the file), and a real duplicate is
    /// still found with both its lines.
    @Test func idsSharingAFingerprintAreToldApartByTheFile() throws {
        try withFile("uid,name\na,1\nb,\"two\nlines\"\nc,3\nb,4\n") { file throws in
            var rows = try FlatFileRows(adapter: adapter(file), fingerprint: { _ in 42 })
            #expect(try rows.next()?.id == "a")
            #expect(try rows.next()?.id == "b")
            #expect(try rows.next()?.id == "c")
            let error = adapterError { _ = try rows.next() }
            #expect(error?.message == "duplicate account id: lines 3 and 6")
            #expect(error?.accountID == "b")
        }
    }

    /// A fingerprint depends on the id's bytes alone: the same for equal ids, different for
    /// different ones (precomposed and decomposed é included).
    @Test func fingerprintsTellIdsApart() {
        var prints = Set<UInt64>()
        let ids = (0..<5000).map { "a\($0)" } + ["\u{e9}", "e\u{301}", ""]
        #expect(ids.allSatisfy { prints.insert(Fingerprint.of($0)).inserted })
        #expect(ids.allSatisfy { !prints.insert(Fingerprint.of(String($0))).inserted })
        #expect(prints.count == ids.count)
        // Read eight bytes at a time and then the tail: every length, every byte counts.
        let long = "uid=someone,ou=people,dc=example,dc=org"
        let prefixes = (0...long.utf8.count).map { String(long.utf8.prefix($0))! }
        #expect(Set(prefixes.map(Fingerprint.of)).count == prefixes.count)
        let bytes = Array(long.utf8)
        let oneByteApart = bytes.indices.map { position in
            var changed = bytes
            changed[position] ^= 1
            return String(decoding: changed, as: UTF8.self)
        }
        #expect(Set(oneByteApart.map(Fingerprint.of) + [Fingerprint.of(long)]).count == oneByteApart.count + 1)
        // However the string is stored: a slice copied out, or bytes decoded.
        #expect(Fingerprint.of(String(long.dropFirst(4))) == Fingerprint.of("someone,ou=people,dc=example,dc=org"))
        #expect(Fingerprint.of(String(decoding: Array("a12".utf8), as: UTF8.self)) == Fingerprint.of("a12"))
    }

    /// The set the flat-file reader notes ids in: every fingerprint once, through its growth,
    /// including 0 (its free-slot mark) and fingerprints that share their low bits (one slot).
    @Test func fingerprintSetTellsNewFromSeen() {
        var set = FingerprintSet()
        let prints = (0..<5000).map { Fingerprint.of("a\($0)") } + [0, 1 << 40, 2 << 40, 3 << 40]
        let firstTime = prints.map { set.insert($0) }
        let secondTime = prints.map { set.insert($0) }
        #expect(firstTime.allSatisfy { $0 }, "each fingerprint is new the first time")
        #expect(!secondTime.contains(true), "and seen the second")
        let another = set.insert(4 << 40)
        #expect(another)
    }

    @Test func emptyIDIsAnErrorWithItsLine() throws {
        try withFile("uid,name\na,1\n,2\n") { file throws in
            let error = adapterError { _ = try allAccounts(adapter(file)) }
            #expect(error?.message == "the row has an empty account id")
            #expect(error?.line == 3)
        }
    }

    @Test func moreFieldsThanTheHeaderIsAnError() throws {
        try withFile("uid,name\na,1\nb,2,3\n") { file throws in
            let error = adapterError { _ = try allAccounts(adapter(file)) }
            #expect(error?.message == "the row has 3 fields but the header has 2")
            #expect(error?.line == 3)
        }
    }

    @Test func unterminatedQuoteIsAnErrorWithItsLine() throws {
        try withFile("uid,name\na,1\nb,\"2\n") { file throws in
            let error = adapterError { _ = try allAccounts(adapter(file)) }
            #expect(error?.message == "unterminated quoted field")
            #expect(error?.line == 3)
        }
    }

    @Test(arguments: [
        ("name,mail\nx,y\n", "the header has no account id column 'uid'"),
        ("uid,name,name\n", "column 'name' appears twice in the header"),
        ("uid,,mail\n", "column 2 of the header has no name"),
    ])
    func badHeaders(text: String, message: String) throws {
        try withFile(text) { file throws in
            let error = adapterError { _ = try allAccounts(adapter(file)) }
            #expect(error?.message == message)
            #expect(error?.line == 1)
        }
    }
}

/// A run compares a flat file's accounts by id and digest, computed from the row's bytes: the
/// digest must be the one the built account gives (the index stores it), whatever the row
/// holds, and the account built later must be the one `next()` reads.
@Suite struct StreamedFlatFileAccountTests {
    @Test(arguments: [1, 7, 1 << 20])
    func streamedAccountsHaveTheDigestsOfTheAccountsBuilt(chunkSize: Int) throws {
        let rows = hr + """
            "q,1","say ""hi""\nthere",,"x@example.com",true
            é1,Émile Zola,€|😀||€,émile@example.com,tRuE
            short,Short
            sep,"a|b",|||,,TRUE\u{00A0}
            upper,Upper,a|,,İtrue

            """
        try withFile(rows) { file throws in
            let built = try allAccounts(adapter(file, chunkSize: chunkSize))
            var stream = try adapter(file, chunkSize: chunkSize).accounts()
            var streamed: [StreamedAccount] = []
            while let account = try stream.nextStreamed() { streamed.append(account) }
            #expect(streamed.map(\.id) == built.map(\.id))
            #expect(built.count == 8)
            for (one, account) in zip(streamed, built) {
                #expect(one.digest == Digest.value(of: account), "\(account.id)")
                #expect(one.account == account)
            }
            #expect(built.map(\.disabled) == [false, true, false, true, true, false, false, false])
        }
    }

    /// A run keeps the accounts awaiting a response to its end, built: a built account no
    /// longer holds the batch of rows it came from.
    @Test func aBuiltAccountLetsItsRowsGo() throws {
        try withFile(hr) { file throws in
            weak var weakBatch: RowBatch?
            let built: StreamedAccount
            do {
                var rows = try FlatFileRows(adapter: adapter(file))
                let (batch, row, id) = try #require(try rows.nextInBatch())
                weakBatch = batch
                built = StreamedAccount(id: id, digest: batch.digest(of: row, id: id), row: row, of: batch).built()
            }
            #expect(weakBatch == nil)
            #expect(built.account.id == "jdoe" && built.digest == Digest.value(of: built.account))
        }
    }

    /// A row error still comes after the rows before it, streamed or not.
    @Test func aBadRowStopsTheStreamAfterTheGoodOnes() throws {
        try withFile("uid,name\na,1\n,2\nb,3\n") { file throws in
            var stream = try adapter(file, disabled: nil).accounts()
            #expect(try stream.nextStreamed()?.id == "a")
            let error = adapterError { _ = try stream.nextStreamed() }
            #expect(error?.message == "the row has an empty account id" && error?.line == 3)
        }
    }
}

@Suite struct FlatFileApplyTests {
    @Test func changesAreWrittenKeepingTheHeaderOrder() throws {
        try withFile(hr) { file throws in
            let hr = adapter(file)
            try hr.apply([
                .create(id: "zed", attributes: [("mail", .single("zed@example.com")), ("groups", .multi(["a", "b"])),
                                                ("uid", .single("zed"))]),
                .update(id: "jdoe", attributes: [("mail", nil), ("name", .single("Jane, Q.")), ("phone", .single("555"))]),
                .delete(id: "amy"),
                .disable(id: "jdoe"),
                .enable(id: "bob"),
            ])
            #expect(try readFile(file) == """
                uid,name,groups,mail,disabled,phone
                jdoe,"Jane, Q.",staff|admins||,,true,555
                bob,"Bob, Jr.",,,false,
                zed,,a|b,zed@example.com,,

                """)
            let accounts = try allAccounts(hr)
            #expect(accounts.map(\.id) == ["jdoe", "bob", "zed"])
            #expect(accounts.map(\.disabled) == [true, false, false])
            #expect(accounts[2].attribute("groups") == .multi(["a", "b"]))
        }
    }

    @Test func aBatchWithOneBadChangeLeavesTheFileByteIdentical() throws {
        try withFile(hr) { file throws in
            let before = try bytes(of: file)
            let error = adapterError {
                try adapter(file).apply([
                    .create(id: "new", attributes: [("name", .single("New")), ("extra", .single("x"))]),
                    .delete(id: "bob"),
                    .update(id: "ghost", attributes: [("name", .single("Ghost"))]),
                ])
            }
            #expect(error?.message == "account does not exist")
            #expect(error?.accountID == "ghost")
            #expect(try bytes(of: file) == before)
            #expect(try FileManager.default.contentsOfDirectory(atPath: (file as NSString).deletingLastPathComponent).sorted()
                == ["hr.csv", "hr.csv.lock"])
        }
    }

    @Test(arguments: [
        (AccountChange.create(id: "bob", attributes: []), "account already exists"),
        (.create(id: "", attributes: []), "cannot create an account with an empty id"),
        (.create(id: "x", attributes: [("uid", .single("y"))]), "attribute 'uid' holds the account id and cannot be given another value"),
        (.update(id: "bob", attributes: [("uid", nil)]), "attribute 'uid' holds the account id and cannot be given another value"),
        (.update(id: "bob", attributes: [("groups", .multi(["a|b"]))]), "value 'a|b' of multi-valued attribute 'groups' contains the separator '|'"),
        (.delete(id: "ghost"), "account does not exist"),
        (.disable(id: "ghost"), "account does not exist"),
        (.enable(id: "ghost"), "account does not exist"),
    ])
    func refusedChanges(change: AccountChange, message: String) throws {
        try withFile(hr) { file throws in
            let before = try bytes(of: file)
            #expect(adapterError { try adapter(file).apply([change]) }?.message == message)
            #expect(try bytes(of: file) == before)
        }
    }

    @Test func disableNeedsADisabledAttribute() throws {
        try withFile(hr) { file throws in
            let error = adapterError { try adapter(file, disabled: nil).apply([.disable(id: "bob")]) }
            #expect(error?.message == "cannot disable or enable accounts: the resource has no disabledAttribute")
        }
    }

    @Test func theFileIsReplacedByARename() throws {
        try withFile(hr) { file throws in
            chmod(file, 0o640)
            var status = stat()
            stat(file, &status)
            let inode = status.st_ino
            var before = try adapter(file).accounts()
            try adapter(file).apply([.delete(id: "jdoe"), .delete(id: "bob"), .delete(id: "amy")])
            // A stream opened before still reads the file it opened.
            #expect(try before.next()?.id == "jdoe")
            stat(file, &status)
            #expect(status.st_ino != inode)
            #expect(status.st_mode & 0o777 == 0o640)
            #expect(try readFile(file) == "uid,name,groups,mail,disabled\n")
        }
    }

    @Test func aMissingFileIsCreatedWithTheIDColumnFirst() throws {
        try withFile(nil) { file throws in
            try adapter(file).apply([.create(id: "a", attributes: [("name", .single("A")), ("groups", .multi(["x", "y"]))])])
            #expect(try readFile(file) == "uid,name,groups\na,A,x|y\n")
        }
    }

    @Test func aMissingFileIsNotCreatedWithoutCreates() throws {
        try withFile(nil) { file throws in
            #expect(adapterError { try adapter(file).apply([.delete(id: "a")]) }?.message == "account does not exist")
            try adapter(file).apply([])
            #expect(!FileManager.default.fileExists(atPath: file))
        }
    }

    @Test func byteOrderMarkAndCRLFAreKept() throws {
        try withFile("\u{FEFF}uid,name\r\na,\"x\r\ny\"\r\n") { file throws in
            try adapter(file).apply([.create(id: "b", attributes: [("name", .single(" B "))])])
            #expect(try readFile(file) == "\u{FEFF}uid,name\r\na,\"x\r\ny\"\r\nb,\" B \"\r\n")
        }
    }

    @Test func applyRefusesAMalformedFile() throws {
        try withFile("uid,name\na,1\na,2\n") { file throws in
            let before = try bytes(of: file)
            let error = adapterError { try adapter(file).apply([.create(id: "b", attributes: [])]) }
            #expect(error?.line == 3)
            #expect(try bytes(of: file) == before)
        }
    }

    @Test func concurrentBatchesDoNotLoseChanges() throws {
        try withFile("uid\n") { file throws in
            let hr = adapter(file)
            let failures = Mutex(0)
            DispatchQueue.concurrentPerform(iterations: 4) { worker in
                for index in 0..<10 {
                    do {
                        try hr.apply([.create(id: "w\(worker)-\(index)", attributes: [])])
                    } catch {
                        failures.withLock { $0 += 1 }
                    }
                }
            }
            #expect(failures.withLock { $0 } == 0)
            #expect(try allAccounts(hr).count == 40)
        }
    }

    @Test func manyRowsWrittenInSeveralChunks() throws {
        try withFile(nil) { file throws in
            var small = adapter(file)
            small.chunkSize = 64
            try small.apply((0..<500).map { .create(id: "u\($0)", attributes: [("name", .single("User, \($0)"))]) })
            let accounts = try allAccounts(small)
            #expect(accounts.count == 500)
            #expect(accounts.last?.attribute("name") == .single("User, 499"))
        }
    }
}
