import Deployment
import Repository
import Testing
@testable import Reconciler

@Suite struct RunStateTests {
    /// A run's per-situation tables are indexed by `position`, which follows `allCases`.
    @Test func eachSituationHasItsOwnPosition() {
        #expect(Situation.allCases.map(\.position) == Array(Situation.allCases.indices))
    }

    /// A situation is read back from its name, and from nothing else (the index stores names).
    @Test func situationsReadBackFromTheirNamesOnly() {
        #expect(Situation.allCases.allSatisfy { Situation(rawValue: $0.rawValue) == $0 })
        for other in ["", "confirmed", "CONFIRMEX", "COLLISIOn", "CXNFIRMED", "DELETE", "DISPUTEDS", "FOUNDS", "UNASSIGNEd", "UNMATCHES", "UNASSIGNED ", "É"] {
            #expect(Situation(rawValue: other) == nil, "\(other)")
        }
    }

    /// Linked users noted in binary order answer lookups as a set would: in order (the user at
    /// the cursor, or a few steps on), out of order, and for names not there, before, between
    /// and after them; non-ASCII names sort by their bytes.
    @Test func linkedUsersAnswerAsASetWould() {
        let binary = { (a: String, b: String) in Array(a.utf8).lexicographicallyPrecedes(Array(b.utf8)) }
        let linked = (Array(0..<3_000).filter { $0 % 7 != 3 }.map { "user\($0)" } + ["Émile", "Zoë", "ann", "Bob", "émile"]).sorted(by: binary)
        var users = LinkedUsers(capacity: linked.count)
        for name in linked { users.note(name); users.note(name) }  // a user linking two accounts is noted twice
        #expect(users.names == linked)
        var fresh = users  // first asked for a name in the middle, then one before it
        #expect(fresh.contains(linked[linked.count / 2]) && fresh.contains(linked[3]) && !fresh.contains("user3"))
        let set = Set(linked)
        let asked = (Array(0..<3_100).map { "user\($0)" } + ["", "A", "Émile", "Emile", "zz", "émile", "éz", "Bob", "Bobby"]).sorted(by: binary)
        #expect(users.contain(asked) == asked.map(set.contains))  // in order
        for _ in 0..<3 {
            let shuffled = asked.shuffled()
            #expect(users.contain(shuffled) == shuffled.map(set.contains))
        }
        #expect(LinkedUsers.precedes("Zoë", "ann") && LinkedUsers.precedes("zz", "Émile") && !LinkedUsers.precedes("ab", "a"))
        var none = LinkedUsers()
        #expect(none.contain(["a", ""]) == [false, false])
    }

    /// Ids keep their positions as the table grows; setting an id again replaces its value.
    @Test func anAccountTableFindsEveryIdAtItsPosition() {
        var table = AccountTable<Int>(capacity: 2)
        let ids = (0..<20_000).map { $0 % 3 == 0 ? "account-with-a-long-identifier-\($0)" : "a\($0)" }
        for (number, id) in ids.enumerated() { #expect(table.set(number, for: id) == number) }
        #expect(table.set(-1, for: ids[7]) == 7)
        #expect(table.count == ids.count)
        #expect(ids.indices.allSatisfy { table.position(of: ids[$0]) == $0 && table.ids[$0] == ids[$0] })
        #expect(table[ids[7]] == -1 && table[ids[8]] == 8)
        #expect(table.position(of: "a20000") == nil && table.position(of: "") == nil && table["A1"] == nil)
        let kept = table.filter { $0.hasPrefix("account") }
        #expect(kept.count == ids.count / 3 + 1 && kept[ids[3]] == 3 && kept[ids[4]] == nil)
    }

    /// Added a batch at a time, a table holds what adding one at a time gives: the first value
    /// of an id, repeats (within a batch too) reported with the position of the id's first row.
    @Test func anAccountTableAddsABatchAsOneAtATime() {
        let rows = (0..<3000).map { (id: "a\($0 % 2500)", value: $0) }
        var batched = AccountTable<Int>(capacity: 1), single = AccountTable<Int>(capacity: 1)
        var repeats: [(entry: Int, position: Int)] = []
        for start in stride(from: 0, to: rows.count, by: 700) {
            let batch = Array(rows[start..<min(rows.count, start + 700)])
            repeats += batched.add(batch).map { (start + $0.entry, $0.position) }
        }
        let singleRepeats = rows.indices.compactMap { index in
            let (position, added) = single.add(rows[index].id, rows[index].value)
            return added ? nil : (entry: index, position: position)
        }
        #expect(Array(batched.ids) == Array(single.ids) && batched.count == 2500)
        #expect(rows.allSatisfy { batched[$0.id] == single[$0.id] })
        #expect(repeats.map(\.entry) == singleRepeats.map(\.entry) && repeats.map(\.position) == singleRepeats.map(\.position))
        #expect(repeats.count == 500 && repeats.allSatisfy { batched.ids[$0.position] == rows[$0.entry].id })
    }

    /// Ids appended unplaced are found once placed, at their positions, and the table goes on
    /// growing as usual afterwards.
    @Test func idsAppendedUnplacedAreFoundOncePlaced() {
        var table = AccountTable<Int>.unplaced(capacity: 10)
        for number in 0..<5000 { table.appendUnplaced("id\(number)", number) }
        #expect(table.position(of: "id1") == nil && table.count == 5000)
        table.placeAll()
        var firstMiss: Int?
        for number in 0..<5000 where table.position(of: "id\(number)") != number || table["id\(number)"] != number {
            firstMiss = firstMiss ?? number
        }
        #expect(firstMiss == nil, "first miss \(String(describing: firstMiss)): \(String(describing: firstMiss.map { table.position(of: "id\($0)") }))")
        #expect(table.position(of: "id5000") == nil)
        for number in 5000..<9000 { _ = table.add("id\(number)", number) }
        var misses: [Int] = []
        for number in 0..<9000 where table.position(of: "id\(number)") != number { misses.append(number) }
        #expect(misses.isEmpty && table.count == 9000, "\(misses.count) misses from \(misses.first ?? -1), count \(table.count)")
    }

    /// An index row's digest comes back as the row held it, a number or a text, with or
    /// without an explanation; the entry stays 40 bytes (a million of them are loaded into
    /// fresh memory on every run).
    @Test func knownEntriesKeepTheRowsDigest() {
        let rows: [(StoredDigest, String?)] = [(.number(0), nil), (.number(.max), "why"), (.text("legacy"), nil), (.text(""), "why")]
        for (digest, explanation) in rows {
            let state = IndexState(accountID: "a", owner: "u", situation: "CONFIRMED", digest: digest, explanation: explanation)
            let entry = KnownEntry(state, situation: .confirmed)
            #expect(entry.digest == digest && entry.explanation == explanation && entry.owner == "u" && entry.situation == .confirmed)
        }
        #expect(MemoryLayout<KnownEntry>.stride == 40)
    }

    /// Links added through a batch make the same claims as links added one by one.
    @Test func claimsFromABatchMatchClaimsAddedOneByOne() {
        let links = (0..<1000).map { (accountID: "a\($0 % 900)", user: "u\(($0 * 7) % 1000)") }
        var batched = Claims(capacity: 1), single = Claims(capacity: 1)
        var batch = TableBatch<String>(), one = TableBatch<String>()
        for link in links {
            batched.add(link.user, to: link.accountID, in: &batch)
            single.add(link.user, to: link.accountID, in: &one)
            single.flush(&one)  // one link at a time
        }
        batched.flush(&batch)
        #expect(batched.count == 900 && single.count == 900)
        #expect((0..<900).allSatisfy { batched["a\($0)"] == single["a\($0)"] })
        #expect(batched["a5"]?.count == 2 && batched.soleUser(at: batched.position(of: "a5")!) == nil)
    }

    /// An id linked by several users is a collision, its users in order whatever order the
    /// links came in; the others have one user each.
    @Test func claimsKeepEveryUserOfAnAccount() throws {
        var claims = Claims(capacity: 1)
        var batch = TableBatch<String>()
        claims.add("dee", to: "a1", in: &batch)
        claims.add("bob", to: "b2", in: &batch)
        claims.add("ann", to: "a1", in: &batch)
        claims.add("cy", to: "a1", in: &batch)
        claims.flush(&batch)
        let a1 = try #require(claims.position(of: "a1")), b2 = try #require(claims.position(of: "b2"))
        #expect(claims.count == 2 && claims.users(at: a1) == ["ann", "cy", "dee"] && claims.soleUser(at: a1) == nil)
        #expect(claims.users(at: b2) == ["bob"] && claims.soleUser(at: b2) == "bob" && claims["zed"] == nil)
        #expect(claims.filter { $0 == "a1" }["a1"] == ["ann", "cy", "dee"] && claims.filter { $0 == "a1" }.count == 1)
        let users = claims.users()
        #expect(users.count == 4 && ["ann", "bob", "cy", "dee"].allSatisfy { users.position(of: $0) != nil } && users.position(of: "zed") == nil)
    }

    /// An id is seen once, whichever of the index and the links hold it.
    @Test func seenAccountsNoticeRepeats() {
        var seen = SeenAccounts(known: 2, claimed: 2)
        #expect(seen.insert("k", known: 0, claimed: 1) && !seen.insert("k", known: 0, claimed: 1))
        #expect(seen.containsKnown(at: 0) && seen.containsClaimed(at: 1) && !seen.containsClaimed(at: 0))
        #expect(seen.insert("c", known: nil, claimed: 0) && !seen.insert("c", known: nil, claimed: 0))
        #expect(seen.insert("new", known: nil, claimed: nil) && !seen.insert("new", known: nil, claimed: nil))
        #expect(seen.contains("new", known: nil, claimed: nil) && !seen.contains("other", known: nil, claimed: nil))
        #expect(!seen.contains("j", known: 1, claimed: nil))
    }
}
