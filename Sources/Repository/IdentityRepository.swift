import Connectors

/// Where the engine keeps its state: users with attributes, assignments and links; the Account
/// Index; tasks and their results. `SQLRepository` implements it on an SQLite file (the
/// embedded default) and on PostgreSQL (shared by clustered servers).
public protocol IdentityRepository: Sendable {
    // Users
    func saveUsers(_ users: [User]) throws
    func allUsers() throws -> [User]
    func user(named name: String) throws -> User?
    func existingUsers(_ names: [String]) throws -> [String]
    func findUsers(_ conditions: [UserCondition]) throws -> [String]
    /// The candidates of each correlation in `requests`, read in one transaction (a run asks
    /// for a few dozen accounts' at a time): the users a request names that exist, or the users
    /// matching every condition (with names as well, the named users that match), by name;
    /// with `withUsers`, each with its user record and the index rows it owns (what a
    /// confirmation rule's user view needs).
    func correlationCandidates(for requests: [CorrelationRequest], withUsers: Bool) throws -> [[Candidate]]
    /// Hands `body` (account id, user) of every link to an account on `resource`, or only of the
    /// accounts `accepting` accepts (a bucket's), as the rows arrive; first tells `reserve` how
    /// many links the resource has (to size a run's table once). True when the links came in
    /// the binary order (UTF-8 bytes) of their users, which a run can use; else in no order.
    @discardableResult
    func forEachLink(on resource: String, accepting: ((String) -> Bool)?, reserve: (Int) -> Void,
                     _ body: (_ accountID: String, _ user: String) throws -> Void) throws -> Bool
    /// The users that have `resource` assigned but no link to it, in name order (by UTF-8
    /// bytes). `linking`, when given, says of a batch of users whether each links an account of
    /// the resource (a run holds the links in memory); the repository may then read the
    /// assignments alone instead of looking up each one's links.
    func assignedWithoutLink(on resource: String, linking: (([String]) -> [Bool])?) throws -> [String]
    func usersModified(since millis: Int64) throws -> Set<String>
    /// Whether any user changed (was imported, linked, unlinked, assigned or given attributes)
    /// at `millis` or later: one index seek.
    func anyUserModified(since millis: Int64) throws -> Bool
    /// A time before which every change of users is committed, and after which every change
    /// is stamped: on SQLite the time inside a write transaction (which waits for the writer);
    /// on PostgreSQL, inside a transaction that waits for the writers of users, less a margin
    /// for the servers' clocks (`SQLRepository.clockMargin`). What a run that will record a
    /// `CorrelationBasis` takes before it reads any user.
    func userChangesSettled() throws -> Int64

    // Account Index
    /// Hands `body` every index row of a resource, or only the rows of the accounts `accepting`
    /// accepts, as they arrive; without `attributes` the rows' attribute lists are left empty
    /// (cheaper when only digests, owners and situations are needed). `reserve` is told first how
    /// many rows the resource has.
    func forEachIndexEntry(resource: String, attributes: Bool, accepting: ((String) -> Bool)?, reserve: (Int) -> Void,
                           _ body: (IndexEntry) throws -> Void) throws
    /// Hands `body` what a run compares of every index row of a resource (or of the accounts
    /// `accepting` accepts), as the rows arrive: a million of them are read in a second or two.
    /// `reserve` is told first how many rows the resource has.
    func forEachIndexState(resource: String, accepting: ((String) -> Bool)?, reserve: (Int) -> Void, _ body: (borrowing IndexState) throws -> Void) throws
    /// Whether `resource` has any index row (one index seek): a run that finds none is the
    /// resource's first, and records every account it reads.
    func hasIndexRows(resource: String) throws -> Bool
    /// What the resource's correlation situations rest on: no basis when no run recorded one,
    /// or when something else wrote an index row since (`RepositoryWriter.upsertIndex`).
    func correlationBasis(resource: String) throws -> CorrelationBasisState
    /// Marks every row of `resource` reconciled at `millis` (and seen, unless DELETED or MISSING).
    func touchIndex(resource: String, at millis: Int64) throws
    func indexEntry(resource: String, accountID: String) throws -> IndexEntry?
    func indexEntries(owner: String) throws -> [IndexEntry]
    /// The index rows of the accounts `user` links (what a user view shows of them).
    func indexEntries(linkedBy user: User) throws -> [IndexEntry]
    func searchIndex(_ query: IndexQuery) throws -> [IndexEntry]
    func history(resource: String, accountID: String) throws -> [(at: Int64, task: Int64?, situation: String, owner: String?, action: String?)]

    // Tasks
    /// Starts a task; a scheduled run names its `slot`, which is refused when another server
    /// already ran (or runs) that slot.
    func startTask(name: String, resource: String, mode: String, server: String, slot: Int64?) throws -> Int64
    func recoverInterruptedTasks(server: String) throws
    func finishTask(_ id: Int64, status: String, cancelled: Bool, situations: [String: Int], responses: [String: Int],
                    errors: [TaskError], details: String?, setsResourceStatus: Bool) throws
    func requestCancel(resource: String) throws -> Int64?
    func cancelRequested(task: Int64) throws -> Bool
    func tasks(resource: String?, name: String?, limit: Int) throws -> [TaskRecord]
    func task(id: Int64) throws -> TaskRecord?
    func resourceStatuses() throws -> [String: (status: String, task: Int64?)]

    // Work items (reverse synchronization)
    /// Adds a work item; its id is assigned by the repository and returned.
    func addWorkItem(_ item: WorkItem) throws -> String
    func workItems(includeDecided: Bool) throws -> [WorkItem]
    func workItem(id: String) throws -> WorkItem?
    func decideWorkItem(id: String, status: String, message: String?) throws
    /// Records a finished provisioning task (a reverse-sync decision) and returns its id.
    func recordTask(name: String, resource: String, status: String, details: String, server: String) throws -> Int64

    // Servers sharing the repository (`Cluster.swift`)
    func heartbeat(server: String) throws
    func serverStopped(server: String) throws
    func servers() throws -> [ServerRecord]
    @discardableResult func failTasksOfSilentServers() throws -> [Int64]
    func createBuckets(task: Int64, count: Int, plan: String) throws
    func bucketPlan(task: Int64) throws -> String?
    func takeBucket(server: String, task: Int64?, resources: [String]?) throws -> BucketClaim?
    func bucketResults(task: Int64) throws -> [Int: String]
    /// Returns once everything committed is where the next reader reads it first (SQLite's log
    /// copied back into the database file); a run ends with this.
    func settle()
    /// How long a server may stay silent before its running tasks count as failed (ms).
    var serverTimeout: Int64 { get }

    /// Runs `body` in one transaction.
    func write<T>(_ body: (RepositoryWriter) throws -> T) throws -> T
}

extension IdentityRepository {
    /// (account id, user) of every link to an account on `resource`, by account id then user.
    public func links(on resource: String) throws -> [(accountID: String, user: String)] {
        var links: [(accountID: String, user: String)] = []
        try forEachLink(on: resource, accepting: nil, reserve: { links.reserveCapacity($0) }) { links.append(($0, $1)) }
        return links.sorted { ($0.accountID, $0.user) < ($1.accountID, $1.user) }
    }

    /// Every index row of a resource by account id.
    public func indexEntries(resource: String, attributes: Bool) throws -> [String: IndexEntry] {
        var entries: [String: IndexEntry] = [:]
        try forEachIndexEntry(resource: resource, attributes: attributes, accepting: nil, reserve: { entries.reserveCapacity($0) }) { entries[$0.accountID] = $0 }
        return entries
    }

    public func startTask(name: String, resource: String, mode: String, server: String) throws -> Int64 {
        try startTask(name: name, resource: resource, mode: mode, server: server, slot: nil)
    }
}

/// Opens the repository a URL names: `sqlite:PATH` or `postgres://USER@HOST:PORT/DATABASE`
/// (the password from `PGPASSWORD` or `PGPASSFILE`).
/// A server silent for `serverTimeout` milliseconds counts as dead.
public func openRepository(_ url: String, serverTimeout: Int64 = 30_000) throws -> SQLRepository {
    if url.hasPrefix("sqlite:") { return try SQLRepository(sqlitePath: String(url.dropFirst("sqlite:".count)), serverTimeout: serverTimeout) }
    if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") { return try SQLRepository(postgresURL: url, serverTimeout: serverTimeout) }
    throw RepositoryError("unsupported repository '\(url)': use sqlite:PATH or postgres://USER@HOST:PORT/DATABASE")
}
