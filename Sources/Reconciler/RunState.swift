import Deployment
import Repository

/// The users linking each account id of a resource. Nearly every account has one user, kept
/// without an array: a run over a million accounts would otherwise hold a million arrays.
struct Claims {
    private var single: [String: String] = [:]
    private var several: [String: [String]] = [:]

    /// Adds a link of `user` to `accountID` (links arrive in user order).
    mutating func add(_ user: String, to accountID: String) {
        if let users = several[accountID] {
            several[accountID] = users + [user]
        } else if let first = single.removeValue(forKey: accountID) {
            several[accountID] = [first, user]
        } else {
            single[accountID] = user
        }
    }

    /// The users linking `accountID`, nil when none does.
    subscript(accountID: String) -> [String]? {
        if let user = single[accountID] { return [user] }
        return several[accountID]
    }

    /// How many account ids are linked.
    var count: Int { single.count + several.count }

    /// The claims whose account id `include` accepts, by account id.
    func sorted(where include: (String) -> Bool) -> [(accountID: String, users: [String])] {
        (single.compactMap { include($0.key) ? ($0.key, [$0.value]) : nil } + several.filter { include($0.key) }.map { ($0.key, $0.value) })
            .sorted { $0.accountID < $1.accountID }
    }

    /// Only the claims whose account id `include` accepts.
    func filter(_ include: (String) -> Bool) -> Claims {
        var kept = Claims()
        kept.single = single.filter { include($0.key) }
        kept.several = several.filter { include($0.key) }
        return kept
    }
}

/// What the previous runs left in the Account Index about one account, in the few bytes a run
/// compares (a run over a million accounts holds one per account).
struct KnownEntry {
    var digest: StoredDigest
    /// Nil for a situation this version does not know (it then counts as changed).
    var situation: Situation?
    var owner: String?
    var explanation: String?
    /// Only when the policy reconciles attributes.
    var attributes: [AccountAttribute]

    init(_ entry: IndexEntry) {
        digest = StoredDigest(entry.digest)
        situation = Situation(rawValue: entry.situation)
        owner = entry.owner
        explanation = entry.explanation
        attributes = entry.attributes
    }
}

/// An account digest as stored in the index: the number this engine writes in hexadecimal, or
/// any other text as it is.
enum StoredDigest: Equatable {
    case number(UInt64)
    case text(String)

    init(_ text: String) {
        self = UInt64(text, radix: 16).map(StoredDigest.number) ?? .text(text)
    }

    /// The text written to the index.
    var text: String {
        switch self {
        case .number(let number): String(number, radix: 16)
        case .text(let text): text
        }
    }
}
