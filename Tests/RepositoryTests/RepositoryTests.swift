import Foundation
import Testing
import TestSupport
@testable import Repository

private extension SQLRepository {
    /// One correlation's candidates: a batch of one.
    func correlationCandidates(names: [String], conditions: [UserCondition], withUsers: Bool) throws -> [Candidate] {
        try correlationCandidates(for: [CorrelationRequest(names: names, conditions: conditions)], withUsers: withUsers)[0]
    }
}

/// A new repository of `backend` in a temporary folder (SQLite) or database (PostgreSQL).
func makeRepository(_ backend: Backend, serverTimeout: Int64 = 30_000) throws -> SQLRepository {
    try openRepository(try backend.newRepositoryURL(in: Scratch.directory), serverTimeout: serverTimeout)
}

/// The same behaviour on both back ends: every test runs on SQLite and on PostgreSQL.
@Suite struct RepositoryTests {
    @Test(arguments: Backend.allCases) func usersKeepTheirAttributesAssignmentsAndLinks(_ backend: Backend) throws {
        let repository = try makeRepository(backend)
        let ann = User(name: "ann", attributes: ["email": .single("ann@example.com"), "groups": .multi(["b", "a", "c"]),
                                                 "note": .single("Ünïcödé ✓ 'quoted' \"double\"")],
                       assignedResources: ["LDAP"], accounts: [AccountLink(resource: "HR", accountID: "a1")])
        let bob = User(name: "Bob", attributes: ["email": .single("bob@example.com")])
        try repository.saveUsers([ann, bob])
        #expect(try repository.user(named: "ann") == ann)
        #expect(try repository.user(named: "nobody") == nil)
        // Names sort by code point on both back ends: upper case before lower case.
        #expect(try repository.allUsers().map(\.name) == ["Bob", "ann"])
        #expect(try repository.existingUsers(["ann", "zed", "Bob"]) == ["ann", "Bob"])
        var changed = ann
        changed.attributes = ["email": .single("new@example.com")]
        changed.accounts = []
        changed.assignedResources = []
        // Saved with a new user: the one saved before is replaced whole, the new one added.
        let cy = User(name: "cy", attributes: ["email": .single("cy@example.com")], accounts: [AccountLink(resource: "HR", accountID: "c1")])
        try repository.saveUsers([changed, cy])
        #expect(try repository.user(named: "ann") == changed)
        #expect(try repository.user(named: "cy") == cy)
        #expect(try repository.user(named: "Bob") == bob)
        #expect(try repository.links(on: "HR").map(\.user) == ["cy"])
    }

    /// Users assigned a resource without a link to it, in binary name order, whether the
    /// repository looks the links up or the caller says who links (what a run does).
    @Test(arguments: Backend.allCases) func assignedUsersWithoutALinkAreExpected(_ backend: Backend) throws {
        let repository = try makeRepository(backend)
        let linkedToHR = { (name: String, id: String) in User(name: name, accounts: [AccountLink(resource: "HR", accountID: id)]) }
        try repository.saveUsers([
            linkedToHR("ann", "a1"), linkedToHR("bob", "a1"),  // both link one account
            User(name: "zed", assignedResources: ["HR"]), User(name: "Émile", assignedResources: ["HR", "LDAP"]),
            User(name: "Cy", assignedResources: ["HR"]), User(name: "dee", assignedResources: ["LDAP"]),
            User(name: "eve", assignedResources: ["HR"], accounts: [AccountLink(resource: "LDAP", accountID: "e")]),
        ])
        let expected = ["Cy", "eve", "zed", "Émile"]
        let linking = { (linked: Set<String>) in { (users: [String]) in users.map(linked.contains) } }
        #expect(try repository.assignedWithoutLink(on: "HR", linking: nil) == expected)
        #expect(try repository.assignedWithoutLink(on: "HR", linking: linking(["ann", "bob"])) == expected)
        #expect(try repository.assignedWithoutLink(on: "LDAP", linking: linking(["eve"])) == ["dee", "Émile"])
        #expect(try repository.assignedWithoutLink(on: "Nowhere", linking: linking([])).isEmpty)
        // More users than one batch of the caller's check.
        let many = (0..<600).map { String(format: "p%03d", $0) }
        try repository.saveUsers(many.enumerated().map { index, name in
            index % 3 == 0 ? User(name: name, accounts: [AccountLink(resource: "Big", accountID: "x\(index)")]) : User(name: name, assignedResources: ["Big"])
        })
        let unlinked = many.enumerated().filter { $0.offset % 3 != 0 }.map(\.element)
        #expect(try repository.assignedWithoutLink(on: "Big", linking: linking(Set(many).subtracting(unlinked))) == unlinked)
        #expect(try repository.assignedWithoutLink(on: "Big", linking: nil) == unlinked)
    }

    /// On SQLite, a resource holding most links has them read in the binary order of their
    /// users, and says so (a run then walks a sorted list of linked users); otherwise they come
    /// in no promised order, and the repository says that.
    @Test(arguments: Backend.allCases) func linksSayWhetherTheyComeInTheirUsersOrder(_ backend: Backend) throws {
        let repository = try makeRepository(backend)
        let names = ["émile", "Zoë", "ann", "Bob", "bob", "Émile", "a"]
        try repository.saveUsers(names.enumerated().map { User(name: $1, accounts: [AccountLink(resource: "HR", accountID: "h\($0)")]) }
            + [User(name: "x", accounts: [AccountLink(resource: "LDAP", accountID: "l"), AccountLink(resource: "HR", accountID: "h9")])])
        var users: [String] = []
        let ordered = try repository.forEachLink(on: "HR", accepting: nil, reserve: { _ in }) { users.append($1) }
        #expect(ordered == (backend == .sqlite))
        #expect(users.sorted() == (names + ["x"]).sorted())
        if ordered {
            #expect(users == (names + ["x"]).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
        }
        #expect(try repository.forEachLink(on: "LDAP", accepting: nil, reserve: { _ in }) { _, _ in } == false)
        // The only resource with links: every row is its own, tested for none.
        let alone = try makeRepository(backend)
        try alone.saveUsers(names.enumerated().map { User(name: $1, accounts: [AccountLink(resource: "HR", accountID: "h\($0)")]) })
        var reserved: [Int] = []
        users = []
        #expect(try alone.forEachLink(on: "HR", accepting: { $0 != "h1" }, reserve: { reserved.append($0) }) { users.append($1) } == (backend == .sqlite))
        #expect(reserved == [names.count] && users.sorted() == names.filter { $0 != "Zoë" }.sorted())
        #expect(try alone.forEachLink(on: "LDAP", accepting: nil, reserve: { _ in }) { _, _ in Issue.record("LDAP has no links") } == false)
    }

    /// One attribute equal to a value (the common correlation): each user once, however many
    /// of its values match, in binary name order.
    @Test(arguments: Backend.allCases) func anEqualityConditionNamesEachUserOnceInOrder(_ backend: Backend) throws {
        let repository = try makeRepository(backend)
        try repository.saveUsers([
            User(name: "zoe", attributes: ["dept": .multi(["Ops", "IT", "Ops"])]), User(name: "Émile", attributes: ["dept": .single("Ops")]),
            User(name: "Bea", attributes: ["dept": .single("Ops")]), User(name: "al", attributes: ["dept": .single("ops")]),
        ])
        #expect(try repository.findUsers([UserCondition(attribute: "dept", op: .equals, operand: "Ops")]) == ["Bea", "zoe", "Émile"])
        #expect(try repository.findUsers([UserCondition(attribute: "dept", op: .equals, operand: "HR")]).isEmpty)
    }

    @Test(arguments: Backend.allCases) func correlationConditionsFindTheSameUsers(_ backend: Backend) throws {
        let repository = try makeRepository(backend)
        try repository.saveUsers([
            User(name: "alice", attributes: ["email": .single("alice@example.com"), "dept": .multi(["IT", "Ops"])],
                 accounts: [AccountLink(resource: "HR", accountID: "e1")]),
            User(name: "albert", attributes: ["email": .single("al@corp.example"), "dept": .single("HR")]),
            User(name: "Émile", attributes: ["email": .single("emile@example.com")]),
        ])
        func find(_ attribute: String, _ op: UserCondition.Operator, _ operand: String = "") throws -> [String] {
            try repository.findUsers([UserCondition(attribute: attribute, op: op, operand: operand)])
        }
        #expect(try find("email", .equals, "al@corp.example") == ["albert"])
        #expect(try find("email", .notEquals, "al@corp.example") == ["alice", "Émile"])
        #expect(try find("email", .startsWith, "al") == ["albert", "alice"])
        #expect(try find("email", .endsWith, "example.com") == ["alice", "Émile"])
        #expect(try find("email", .contains, "corp") == ["albert"])
        #expect(try find("dept", .equals, "Ops") == ["alice"])
        #expect(try find("dept", .isPresent) == ["albert", "alice"])
        #expect(try find("dept", .notPresent) == ["Émile"])
        #expect(try find("name", .startsWith, "al") == ["albert", "alice"])
        #expect(try find("name", .endsWith, "ile") == ["Émile"])
        #expect(try find("linkedAccountId", .equals, "e1") == ["alice"])
        #expect(try find("linkedAccountId", .contains, "1") == ["alice"])
        #expect(try repository.findUsers([UserCondition(attribute: "email", op: .endsWith, operand: "example.com"),
                                          UserCondition(attribute: "dept", op: .equals, operand: "IT")]) == ["alice"])

        // A correlated account's candidates in one read: names that exist, users matching the
        // conditions, or (both given) the named users that match; with their users when asked.
        let example = [UserCondition(attribute: "email", op: .endsWith, operand: "example.com")]
        func candidates(_ names: [String], _ conditions: [UserCondition]) throws -> [String] {
            try repository.correlationCandidates(names: names, conditions: conditions, withUsers: false).map(\.name)
        }
        #expect(try candidates(["nobody", "albert", "alice", "albert"], []) == ["albert", "alice"])
        #expect(try candidates([], example) == ["alice", "Émile"])
        #expect(try candidates(["albert", "Émile"], example) == ["Émile"])
        #expect(try candidates([], []) == [])
        // The candidate comes with the index rows of the accounts it links: e1 (a COLLISION row,
        // owned by nobody) but not e2, which names alice as its owner without a link.
        try repository.write { writer in
            try writer.upsertIndex(IndexEntry(resource: "HR", accountID: "e1", owner: nil, situation: "COLLISION",
                                              attributes: [AccountAttribute(name: "dept", value: .single("Ops"))],
                                              digest: "1", lastSeen: 1, lastReconciled: 1, explanation: nil))
            try writer.upsertIndex(IndexEntry(resource: "HR", accountID: "e2", owner: "alice", situation: "UNASSIGNED",
                                              attributes: [], digest: "2", lastSeen: 1, lastReconciled: 1, explanation: nil))
        }
        let alice = try #require(try repository.correlationCandidates(names: ["alice"], conditions: [], withUsers: true).first)
        #expect(alice.user == (try repository.user(named: "alice")) && alice.accounts.map(\.accountID) == ["e1"])
        #expect(alice.accounts.first?.attributes == [AccountAttribute(name: "dept", value: .single("Ops"))])
        #expect(try repository.indexEntries(linkedBy: #require(alice.user)).map(\.accountID) == ["e1"])
        #expect(try repository.indexEntries(linkedBy: User(name: "albert")).isEmpty)
        #expect(try repository.correlationCandidates(names: ["alice"], conditions: [], withUsers: false).first?.user == nil)
        // Found by a condition (the one-attribute lookup, or SQL over users), each user whole.
        for conditions in [[UserCondition(attribute: "dept", op: .equals, operand: "Ops")], example] {
            for candidate in try repository.correlationCandidates(names: [], conditions: conditions, withUsers: true) {
                #expect(candidate.user == (try repository.user(named: candidate.name)))
            }
        }
        #expect(try repository.correlationCandidates(names: [], conditions: example, withUsers: true).map(\.name) == ["alice", "Émile"])
        // Several correlations read together answer each as it would be answered alone, in order.
        let requests = [CorrelationRequest(names: [], conditions: example), CorrelationRequest(names: [], conditions: []),
                        CorrelationRequest(names: ["albert", "nobody"], conditions: []),
                        CorrelationRequest(names: [], conditions: [UserCondition(attribute: "dept", op: .equals, operand: "Ops")])]
        for withUsers in [false, true] {
            let together = try repository.correlationCandidates(for: requests, withUsers: withUsers)
            let alone = try requests.map { try repository.correlationCandidates(names: $0.names, conditions: $0.conditions, withUsers: withUsers) }
            #expect(together == alone && together.map { $0.map(\.name) } == [["alice", "Émile"], [], ["albert"], ["alice"]])
        }
        #expect(try repository.correlationCandidates(for: [], withUsers: true).isEmpty)
    }

    /// Rows prepared outside the transaction (what a run's writing thread gets) are written
    /// after what the transaction upserted before, replace it, and replace each other.
    @Test(arguments: Backend.allCases) func preparedIndexWritesLandAfterEarlierUpserts(_ backend: Backend) throws {
        let repository = try makeRepository(backend)
        func entry(_ id: String, _ situation: String, owner: String? = nil) -> IndexEntry {
            IndexEntry(resource: "HR", accountID: id, owner: owner, situation: situation,
                       attributes: [AccountAttribute(name: "mail", value: .multi(["\(id)@x", "\"q\"@x"]))], digest: "d\(id)",
                       lastSeen: 5, lastReconciled: 5, explanation: nil)
        }
        var writes = IndexWrites()
        writes.upsert(entry("a1", "UNMATCHED"))
        writes.upsert(entry("a1", "CONFIRMED", owner: "ann"))
        writes.upsert(entry("b2", "UNASSIGNED"))
        writes.recordHistory(resource: "HR", accountID: "a1", task: 3, situation: "CONFIRMED", owner: "ann", action: "LINK_ACCOUNT")
        #expect(writes.indexRowCount == 2 && writes.rowCount == 3)
        try repository.write { writer in
            try writer.upsertIndex(entry("a1", "DISPUTED"))
            try writer.upsertIndex(entry("c3", "UNMATCHED"))
            try writer.write(writes)
            try writer.removeIndex(resource: "HR", accountID: "c3")
        }
        #expect(try repository.indexEntry(resource: "HR", accountID: "a1") == entry("a1", "CONFIRMED", owner: "ann"))
        #expect(try repository.indexEntry(resource: "HR", accountID: "b2") == entry("b2", "UNASSIGNED"))
        #expect(try repository.indexEntry(resource: "HR", accountID: "c3") == nil)
        let history = try repository.history(resource: "HR", accountID: "a1")
        #expect(history.map(\.situation) == ["CONFIRMED"] && history.first?.task == 3 && history.first?.action == "LINK_ACCOUNT")
        writes.removeAll()
        #expect(writes.rowCount == 0)
    }

    /// A correlation basis is recorded only over the version a run read, and goes when an index
    /// row is written outside a run; users changed after the settled time are seen.
    @Test(arguments: Backend.allCases) func aCorrelationBasisHoldsUntilSomethingElseWritesTheIndex(_ backend: Backend) throws {
        let repository = try makeRepository(backend)
        let basis = CorrelationBasis(fingerprint: "f1", since: 1000)
        #expect(try repository.correlationBasis(resource: "HR") == CorrelationBasisState(basis: nil, version: 0))
        #expect(try repository.write { try $0.recordCorrelationBasis(basis, resource: "HR", ifVersion: 0) })
        #expect(try repository.correlationBasis(resource: "HR") == CorrelationBasisState(basis: basis, version: 1))
        // A run that read version 0 finds a basis recorded since: its own is not recorded.
        #expect(try !repository.write { try $0.recordCorrelationBasis(CorrelationBasis(fingerprint: "f2", since: 2000), resource: "HR", ifVersion: 0) })
        #expect(try repository.correlationBasis(resource: "HR").basis == basis)
        // The run's own writes leave it; a row written one by one drops it, for its resource only.
        var writes = IndexWrites()
        writes.upsert(IndexEntry(resource: "HR", accountID: "a1", owner: nil, situation: "UNMATCHED", attributes: [], digest: "d",
                                 lastSeen: 5, lastReconciled: 5, explanation: nil))
        try repository.write { try $0.write(writes) }
        #expect(try repository.correlationBasis(resource: "HR").basis == basis)
        try repository.write { writer in
            try writer.upsertIndex(IndexEntry(resource: "HR", accountID: "a2", owner: nil, situation: "UNMATCHED", attributes: [], digest: "d",
                                              lastSeen: 5, lastReconciled: 5, explanation: nil))
            try writer.upsertIndex(IndexEntry(resource: "HR", accountID: "a3", owner: nil, situation: "UNMATCHED", attributes: [], digest: "d",
                                              lastSeen: 5, lastReconciled: 5, explanation: nil))
        }
        #expect(try repository.correlationBasis(resource: "HR") == CorrelationBasisState(basis: nil, version: 2))
        #expect(try !repository.write { try $0.recordCorrelationBasis(basis, resource: "HR", ifVersion: 1) })
        #expect(try repository.write { try $0.dropCorrelationBasis(resource: "HR") } == 3)
        #expect(try repository.write { try $0.recordCorrelationBasis(basis, resource: "HR", ifVersion: 3) })
        #expect(try repository.correlationBasis(resource: "HR") == CorrelationBasisState(basis: basis, version: 4))
        #expect(try repository.correlationBasis(resource: "LDAP") == CorrelationBasisState(basis: nil, version: 0))

        let before = currentMillis()
        try repository.saveUsers([User(name: "ann")])
        let settled = try repository.userChangesSettled()
        #expect(settled >= before - SQLRepository.clockMargin)
        #expect(try repository.anyUserModified(since: before - SQLRepository.clockMargin))
        #expect(try !repository.anyUserModified(since: currentMillis() + 1000))
        try repository.write { try $0.link(user: "ann", resource: "HR", accountID: "a1") }
        #expect(try repository.anyUserModified(since: settled))
    }

    @Test(arguments: Backend.allCases) func theAccountIndexKeepsRowsHistoryAndSearches(_ backend: Backend) throws {
        let repository = try makeRepository(backend)
        #expect(try repository.hasIndexRows(resource: "HR") == false)
        func entry(_ id: String, _ situation: String, owner: String? = nil, seen: Int64? = 10) -> IndexEntry {
            IndexEntry(resource: "HR", accountID: id, owner: owner, situation: situation,
                       attributes: [AccountAttribute(name: "mail", value: .single("\(id)@x"))], digest: "d\(id)",
                       lastSeen: seen, lastReconciled: 10, explanation: owner.map { "owned by \($0)" })
        }
        try repository.write { writer in
            try writer.upsertIndex(entry("a1", "UNMATCHED"))
            try writer.upsertIndex(entry("a1", "CONFIRMED", owner: "ann"))  // the later row of a transaction wins
            try writer.upsertIndex(entry("b2", "UNMATCHED"))
            try writer.upsertIndex(entry("c3", "DELETED", owner: "cy", seen: nil))
            try writer.recordHistory(resource: "HR", accountID: "a1", task: nil, situation: "UNMATCHED", owner: nil, action: nil)
            try writer.recordHistory(resource: "HR", accountID: "a1", task: 7, situation: "CONFIRMED", owner: "ann", action: "LINK_ACCOUNT")
            try writer.removeIndex(resource: "HR", accountID: "b2")
        }
        #expect(try repository.indexEntry(resource: "HR", accountID: "a1") == entry("a1", "CONFIRMED", owner: "ann"))
        #expect(try repository.indexEntry(resource: "HR", accountID: "b2") == nil)
        #expect(try repository.hasIndexRows(resource: "HR") && !repository.hasIndexRows(resource: "LDAP"))
        #expect(try repository.indexEntries(owner: "ann").map(\.accountID) == ["a1"])
        let history = try repository.history(resource: "HR", accountID: "a1")
        #expect(history.map(\.situation) == ["UNMATCHED", "CONFIRMED"])
        #expect(history.last?.task == 7 && history.last?.action == "LINK_ACCOUNT" && history.first?.owner == nil)
        // A null last_seen keeps the earlier one.
        try repository.write { try $0.upsertIndex(entry("a1", "CONFIRMED", owner: "ann", seen: nil)) }
        #expect(try repository.indexEntry(resource: "HR", accountID: "a1")?.lastSeen == 10)
        try repository.touchIndex(resource: "HR", at: 99)
        let rows = try repository.indexEntries(resource: "HR", attributes: false)
        #expect(rows["a1"]?.lastSeen == 99 && rows["c3"]?.lastSeen == nil && rows["c3"]?.lastReconciled == 99)
        // A sweep is one row, applied as rows are read: a row written after it keeps its own
        // times, one swept as seen and then rewritten as not seen keeps the sweep's time, and
        // an older sweep does not undo a newer one.
        var deleted = entry("a1", "DELETED", owner: "ann", seen: nil)
        deleted.lastReconciled = 120
        try repository.write { try $0.upsertIndex(deleted) }
        try repository.touchIndex(resource: "HR", at: 50)
        let swept = try repository.indexEntries(resource: "HR", attributes: false)
        #expect(swept["a1"]?.lastSeen == 99 && swept["a1"]?.lastReconciled == 120)
        #expect(swept["c3"]?.lastSeen == nil && swept["c3"]?.lastReconciled == 99)
        #expect(try repository.indexEntry(resource: "HR", accountID: "c3")?.lastReconciled == 99)
        #expect(rows["a1"]?.attributes.isEmpty == true)
        var query = IndexQuery()
        query.accountID = .contains("3")
        #expect(try repository.searchIndex(query).map(\.accountID) == ["c3"])
        query = IndexQuery()
        query.owner = .startsWith("c")
        query.situations = ["DELETED"]
        #expect(try repository.searchIndex(query).map(\.accountID) == ["c3"])
        // A resource's rows are read whether they are most of the index (in one pass over it)
        // or few of its rows (through the index).
        try repository.write { writer in
            for number in 0..<10 {
                var other = entry("o\(number)", "UNMATCHED")
                other.resource = "Other"
                try writer.upsertIndex(other)
            }
        }
        #expect(try Set(repository.indexEntries(resource: "HR", attributes: false).keys) == ["a1", "c3"])
        #expect(try repository.indexEntries(resource: "Other", attributes: true).count == 10)
        #expect(try repository.indexEntries(resource: "Other", attributes: true)["o3"]?.attributes.first?.values == ["o3@x"])
        // What a run compares of each row, read without attributes and times.
        var states: [IndexState] = []
        var reserved: [Int] = []
        try repository.forEachIndexState(resource: "HR", accepting: { $0 != "c3" }, reserve: { reserved.append($0) }) { states.append($0) }
        #expect(states == [IndexState(accountID: "a1", owner: "ann", situation: "DELETED", digest: .number(0xda1), explanation: "owned by ann")])
        states = []
        try repository.forEachIndexState(resource: "Other", accepting: nil, reserve: { reserved.append($0) }) { states.append($0) }
        #expect(reserved == [2, 10], "each resource's rows, counted before they come")
        #expect(states.count == 10 && states.allSatisfy { $0.situation == "UNMATCHED" && $0.owner == nil && $0.digest == .text("d\($0.accountID)") })
    }

    @Test(arguments: Backend.allCases) func tasksStartFinishAndRefuseASecondRun(_ backend: Backend) throws {
        let repository = try makeRepository(backend)
        let id = try repository.startTask(name: "Reconcile", resource: "HR", mode: "FULL", server: "s1")
        #expect(throws: RepositoryError.self) { try repository.startTask(name: "Reconcile", resource: "HR", mode: "FULL", server: "s2") }
        #expect(try repository.requestCancel(resource: "HR") == id)
        #expect(try repository.cancelRequested(task: id))
        try repository.finishTask(id, status: "completed with errors", cancelled: true, situations: ["CONFIRMED": 3], responses: ["LINK_ACCOUNT": 1],
                                  errors: [TaskError(accountID: "a1", message: "first"), TaskError(accountID: nil, message: "second")],
                                  details: "done", setsResourceStatus: true)
        let task = try #require(try repository.task(id: id))
        #expect(task.status == "completed with errors" && task.cancelled && task.situations == ["CONFIRMED": 3] && task.details == "done")
        #expect(task.errors.map(\.message) == ["first", "second"] && task.errors.first?.accountID == "a1")
        #expect(try repository.resourceStatuses()["HR"]?.status == "completed with errors")
        let next = try repository.startTask(name: "Reconcile", resource: "HR", mode: "INCREMENTAL", server: "s2")
        #expect(next > id)
        let provisioning = try repository.recordTask(name: "Provisioning Activity", resource: "HR", status: "success", details: "W1", server: "s1")
        #expect(try repository.tasks(resource: "HR", name: nil, limit: 10).map(\.id) == [provisioning, next, id])
        #expect(try repository.requestCancel(resource: "LDAP") == nil)
    }

    @Test(arguments: Backend.allCases) func workItemsAreNumberedAndDecided(_ backend: Backend) throws {
        let repository = try makeRepository(backend)
        let change = WorkItem.Change(attribute: "mail", old: nil, new: ["a@x"], multi: false)
        let first = try repository.addWorkItem(WorkItem(id: "", resource: "HR", accountID: "a1", kind: .newAccount, suggestedUser: "ann",
                                                        approver: "boss", changes: [change]))
        let second = try repository.addWorkItem(WorkItem(id: "", resource: "HR", accountID: "b2", kind: .modifiedAccount, suggestedUser: nil,
                                                         approver: nil, changes: []))
        #expect(first != second && first.hasPrefix("W"))
        try repository.decideWorkItem(id: first, status: "approved", message: "ok")
        #expect(try repository.workItems(includeDecided: false).map(\.id) == [second])
        let decided = try #require(try repository.workItem(id: first))
        #expect(decided.status == "approved" && decided.message == "ok" && decided.changes == [change] && decided.suggestedUser == "ann")
        #expect(try repository.workItem(id: "W999") == nil)
    }

    /// The migrations make the same tables and views with the same columns on both back ends.
    @Test func bothBackEndsHaveTheSameSchema() throws {
        func columns(_ repository: SQLRepository, _ query: String) throws -> Set<String> {
            Set(try repository.database.read { db in try db.rows(query, []) }.map { $0.text(0) + "." + $0.text(1) })
        }
        let sqlite = try columns(try makeRepository(.sqlite), """
            SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
            WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE 'grdb_%'
            """)
        let postgres = try columns(try makeRepository(.postgres), """
            SELECT table_name::text, column_name::text FROM information_schema.columns
            WHERE table_schema = 'public' AND table_name <> 'schema_migrations'
            """)
        // PostgreSQL numbers history and errors explicitly where SQLite has its rowid.
        #expect(postgres.subtracting(["index_history.seq", "task_errors.seq"]) == sqlite)
        #expect(sqlite.contains("account_index.explanation") && sqlite.contains("run_buckets.result"))
        #expect(sqlite.contains("account_index_swept.last_seen"))
    }

    @Test func passwordsStayOutOfTheAddressAndComeFromTheEnvironmentOrAFile() throws {
        #expect(throws: RepositoryError.self) { try PostgresURL("postgres://recon:secret@127.0.0.1:5432/recon") }
        let url = try PostgresURL("postgres://recon@db.example:6543/identity")
        #expect(url.host == "db.example" && url.port == 6543 && url.database == "identity" && url.user == "recon")
        let file = Scratch.newPath("pgpass-")
        try writeFile(file, "# comment\nother:*:*:*:wrong\ndb.example:6543:*:recon:right\n*:*:*:*:fallback\n")
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect(try PostgresURL.password(inFile: file, for: url) == "right")
        #expect(try PostgresURL.password(inFile: file, for: PostgresURL("postgres://x@h/d")) == "fallback")
        let error = #expect(throws: RepositoryError.self) { try openRepository("mysql://x@h/d") }
        #expect(error?.description.contains("postgres://USER@HOST:PORT/DATABASE") == true)
    }
}
