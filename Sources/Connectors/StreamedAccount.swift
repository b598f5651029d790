/// An account as a stream hands it to a run: its id and digest at once, the account itself
/// built when it is asked for. A run compares most accounts by id and digest alone (an
/// unchanged account still linked to its owner); a resource that reads bytes (a flat file)
/// then never makes the strings and arrays of its attributes, which were most of the cost of
/// reading it.
public struct StreamedAccount: Sendable {
    public let id: String
    /// `Digest.value(of: account)`.
    public let digest: UInt64
    private let source: Source

    private enum Source: Sendable {
        case built(Account)
        case row(any AccountRows, Int)
    }

    /// An account already built.
    public init(_ account: Account) {
        id = account.id
        digest = Digest.value(of: account)
        source = .built(account)
    }

    /// The account of row `row` of `rows`, whose id and digest are these.
    public init(id: String, digest: UInt64, row: Int, of rows: any AccountRows) {
        self.id = id
        self.digest = digest
        source = .row(rows, row)
    }

    /// The same account, built now (on the calling thread) where it was still a row.
    public func built() -> StreamedAccount {
        guard case .row = source else { return self }
        return StreamedAccount(id: id, digest: digest, source: .built(account))
    }

    private init(id: String, digest: UInt64, source: Source) {
        self.id = id
        self.digest = digest
        self.source = source
    }

    /// The account, built again on each call for an account streamed as a row: read it once.
    public var account: Account {
        switch source {
        case .built(let account): account
        case .row(let rows, let row): rows.account(at: row, id: id)
        }
    }
}

/// Rows read from a resource, each of which builds its account on demand.
public protocol AccountRows: AnyObject, Sendable {
    /// The account of row `row`, whose id is `id`.
    func account(at row: Int, id: String) -> Account
}
