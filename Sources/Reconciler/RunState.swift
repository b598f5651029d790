import Deployment
import Repository

/// The users linking each account id of a resource. Nearly every account has one user, kept
/// without an array: a run over a million accounts would otherwise hold a million arrays.
struct Claims {
    /// Each linked account id with its first user.
    private(set) var first = AccountTable<String>()
    /// Every user of the account ids that several users link, in order.
    private var several: [String: [String]] = [:]

    init(capacity: Int = 0) { first = AccountTable(capacity: capacity) }

    /// Adds the link of `user` to `accountID` with the next ones, `batch` at a time (`flush`
    /// adds the last ones).
    mutating func add(_ user: String, to accountID: String, in batch: inout TableBatch<String>) {
        for (accountID, user, position) in batch.add(accountID, user, to: &first) { addRepeat(user, to: accountID, at: position) }
    }

    /// Adds the links `batch` holds.
    mutating func flush(_ batch: inout TableBatch<String>) {
        for (accountID, user, position) in batch.flush(to: &first) { addRepeat(user, to: accountID, at: position) }
    }

    private mutating func addRepeat(_ user: String, to accountID: String, at position: Int) {
        several[accountID, default: [first[position: position]]].append(user)
        several[accountID]?.sort()
    }

    /// Where each of `accountIDs` is among the linked ids (see `AccountTable.positions(of:)`).
    func positions(of accountIDs: [String], fingerprints: [UInt64]) -> [Int?] { first.positions(of: accountIDs, fingerprints: fingerprints) }

    /// Where `accountID` is among the linked ids, nil when no user links it.
    func position(of accountID: String) -> Int? { first.position(of: accountID) }

    /// The users linking the account id at `position`.
    func users(at position: Int) -> [String] {
        several.isEmpty ? [first[position: position]] : several[first.ids[position]] ?? [first[position: position]]
    }

    /// The one user linking the account id at `position`; nil when several do.
    func soleUser(at position: Int) -> String? {
        several.isEmpty || several[first.ids[position]] == nil ? first[position: position] : nil
    }

    /// The users linking `accountID`, nil when none does.
    subscript(accountID: String) -> [String]? { position(of: accountID).map { users(at: $0) } }

    /// How many account ids are linked.
    var count: Int { first.count }

    /// Every user that links one of the account ids, once.
    func users() -> AccountTable<Void> {
        var users = AccountTable<Void>(capacity: first.count)
        var batch = TableBatch<Void>()
        for user in first.values { batch.add(user, (), to: &users) }
        for linking in several.values { for user in linking { batch.add(user, (), to: &users) } }
        batch.flush(to: &users)
        return users
    }

    /// Only the claims whose account id `include` accepts.
    func filter(_ include: (String) -> Bool) -> Claims {
        var kept = Claims()
        kept.first = first.filter(include)
        kept.several = several.filter { include($0.key) }
        return kept
    }
}

/// Rows on their way into an `AccountTable`, added a few hundred at a time so that their
/// cache misses overlap (`AccountTable.add(_:)`).
struct TableBatch<Value> {
    static var size: Int { 256 }
    private var rows: [(id: String, value: Value)] = []

    init() { rows.reserveCapacity(Self.size) }

    /// Appends a row, and adds the batch once it is full: the rows whose id was in the table
    /// already, with the position of that id.
    @discardableResult
    mutating func add(_ id: String, _ value: Value, to table: inout AccountTable<Value>) -> [(id: String, value: Value, position: Int)] {
        rows.append((id, value))
        return rows.count == Self.size ? flush(to: &table) : []
    }

    /// Adds the rows waiting; the rows whose id was in the table already, with its position.
    @discardableResult
    mutating func flush(to table: inout AccountTable<Value>) -> [(id: String, value: Value, position: Int)] {
        defer { rows.removeAll(keepingCapacity: true) }
        return table.add(rows).map { (rows[$0.entry].id, rows[$0.entry].value, $0.position) }
    }
}

/// The account ids a run has streamed: a flag per id of the index and per linked id, found by
/// their positions in those tables, and a set of the other ids.
struct SeenAccounts {
    private var known: [Bool]
    private var claimed: [Bool]
    private var others: Set<String> = []

    init(known: Int, claimed: Int) {
        self.known = Array(repeating: false, count: known)
        self.claimed = Array(repeating: false, count: claimed)
    }

    /// Notes `id`, found at these positions of the index and the links; false when it was
    /// seen already.
    mutating func insert(_ id: String, known knownPosition: Int?, claimed claimPosition: Int?) -> Bool {
        if let knownPosition {
            if known[knownPosition] { return false }
            known[knownPosition] = true
            if let claimPosition { claimed[claimPosition] = true }
            return true
        }
        if let claimPosition {
            if claimed[claimPosition] { return false }
            claimed[claimPosition] = true
            return true
        }
        return others.insert(id).inserted
    }

    func contains(_ id: String, known knownPosition: Int?, claimed claimPosition: Int?) -> Bool {
        if let knownPosition { return known[knownPosition] }
        if let claimPosition { return claimed[claimPosition] }
        return others.contains(id)
    }

    func containsKnown(at position: Int) -> Bool { known[position] }
    func containsClaimed(at position: Int) -> Bool { claimed[position] }
}

/// What the previous runs left in the Account Index about one account, in the few bytes a run
/// compares (a run over a million accounts holds one per account).
struct KnownEntry {
    /// The digest, when it is a number (as the engine writes them); 0 when it is a text.
    private let digestNumber: UInt64
    /// Nil for a situation this version does not know (it then counts as changed).
    let situation: Situation?
    let owner: String?
    /// What most rows lack, kept apart: the explanation and attributes (in each entry they took
    /// 24 of 64 bytes, at a million rows 16 MB to fault in and free on every run), and a digest
    /// that is not a number (as an enum beside the situation it took 8 bytes more an entry).
    private let details: Details?

    private final class Details: Sendable {
        let explanation: String?
        let attributes: [AccountAttribute]
        let textDigest: String?

        init(explanation: String?, attributes: [AccountAttribute], textDigest: String?) {
            self.explanation = explanation
            self.attributes = attributes
            self.textDigest = textDigest
        }
    }

    var digest: StoredDigest { details?.textDigest.map { .text($0) } ?? .number(digestNumber) }
    var explanation: String? { details?.explanation }
    /// Only when the policy reconciles attributes.
    var attributes: [AccountAttribute] { details?.attributes ?? [] }

    /// `situation`: what `state.situation` names (`SituationReader`).
    init(_ state: borrowing IndexState, situation: Situation?, attributes: [AccountAttribute] = []) {
        self.situation = situation
        owner = state.owner
        var textDigest: String?
        switch state.digest {
        case .number(let number): digestNumber = number
        case .text(let text):
            digestNumber = 0
            textDigest = text
        }
        details = state.explanation == nil && attributes.isEmpty && textDigest == nil ? nil
            : Details(explanation: state.explanation, attributes: attributes, textDigest: textDigest)
    }
}

/// The distinct users of a resource's links in binary name order (UTF-8 bytes, SQL's order),
/// for links that arrive in that order (on SQLite they do: read through the links' primary
/// key). Walking it tells which assigned users have a link, where `Claims.users()` would place
/// every user in a table: 45M instructions and 30 MB at a million links.
struct LinkedUsers {
    private(set) var names: [String] = []
    /// Where the next lookup starts: lookups in order find their user there or close by.
    private var cursor = 0

    init(capacity: Int = 0) { names.reserveCapacity(capacity) }

    /// Notes the user of the next link (links come in their users' order).
    mutating func note(_ user: String) {
        if names.last != user { names.append(user) }
    }

    /// Whether each of `users` links an account (quickest when they come in order too).
    mutating func contain(_ users: [String]) -> [Bool] { users.map { contains($0) } }

    /// Whether `user` is in the list. The user at the cursor is the usual answer; a user that
    /// falls between the cursor's neighbours is not there; otherwise the list is halved.
    mutating func contains(_ user: String) -> Bool {
        if cursor < names.count && names[cursor] == user {
            cursor += 1
            return true
        }
        // The first name not before `user` is at an index in low...high.
        var low = 0, high = names.count
        if cursor > 0 {
            if Self.precedes(names[cursor - 1], user) { low = cursor } else { high = cursor - 1 }
        }
        if cursor < names.count && Self.precedes(user, names[cursor]) { high = Swift.min(high, cursor) }
        while low < high {
            let middle = (low + high) / 2
            if Self.precedes(names[middle], user) { low = middle + 1 } else { high = middle }
        }
        let found = low < names.count && names[low] == user
        cursor = found ? low + 1 : low
        return found
    }

    /// Whether `a` sorts before `b` by UTF-8 bytes (the order SQL gives text).
    static func precedes(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }
}

/// The situations of index rows as they are loaded: rows mostly share a few situations, so
/// each text is parsed once and recognised after by a comparison with the one before.
struct SituationReader {
    private var lastText = ""
    private var last: Situation?

    /// What `text` names (nil for a situation this version does not know).
    mutating func situation(_ text: String) -> Situation? {
        if text != lastText {
            lastText = text
            last = Situation(rawValue: text)
        }
        return last
    }
}
