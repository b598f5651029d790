import Connectors
import Deployment
import Foundation
import Repository
import XPRESS

/// One reconciliation of one resource (engine spec section 3): stream the accounts, classify
/// each, respond as the policy says, and record the Account Index in batched transactions.
struct ReconciliationRun {
    let engine: Engine
    let resource: ResourceDefinition
    let policy: EffectivePolicy
    let adapter: any ResourceAdapter
    let taskID: Int64?
    let options: RunOptions
    /// The summary but for the situation counts of the accounts handled (`situationCounts`).
    private var tally: RunSummary
    /// Per situation (`Situation.position`), the accounts handled: counted in the summary's
    /// dictionary, every account was hashed (20M instructions a run of 100,000 accounts).
    private var situationCounts = [Int](repeating: 0, count: Situation.allCases.count)

    /// The run's summary so far.
    var summary: RunSummary {
        var summary = tally
        for situation in Situation.allCases { summary.situations[situation, default: 0] += situationCounts[situation.position] }
        return summary
    }
    private let log = LogBuffer()
    private let evaluator: Evaluator
    /// Step 4, with the correlation and confirmation rules' argument names resolved once per run.
    private let correlator: Correlator
    /// Whether unchanged accounts keep the situation their last correlation gave them.
    private var correlationReuse: CorrelationReuse
    /// The accounts that did, and those correlated.
    private var reusedCorrelations = 0
    private var correlatedAccounts = 0
    private let started = currentMillis()
    /// The policy's values a run reads for every account, read once (reading a `Setting`
    /// copies where it came from): the response to each situation (by `Situation.position`),
    /// the proxy administrator, the per-account workflow, whether to explain and to
    /// reconcile attributes.
    private let responses: [Response]
    private let proxyAdministrator: String?
    private let perAccountWorkflow: String?
    private let explaining: Bool
    private let reconcilesAttributes: Bool

    /// What reconciliation concluded about one account.
    struct Outcome: Sendable {
        var accountID: String
        /// The account as the resource holds it; nil when it does not exist.
        var streamed: StreamedAccount?
        var situation: Situation
        var owner: String?
        var explanation: String?

        /// The account, built on each read: read it once.
        var account: Account? {
            get { streamed?.account }
            set { streamed = newValue.map(StreamedAccount.init) }
        }
    }

    /// Accounts between checks for a cancellation request (and progress reports).
    private static let checkInterval = 500
    /// Accounts classified together: enough that the few needing correlation (5% of them, say)
    /// keep every core busy for milliseconds, which handing them to other threads is small
    /// against; few enough that a stopped run wastes little. At a million accounts, windows
    /// of 8,192 took 12% off a first run and 15-20% off an unchanged one, and 10% of their
    /// processor time, against 2,048 (peak memory +5-10 MB); 16,384 gained nothing more.
    private static let windowSize = 8192
    /// Accounts correlated together, their candidates read in one transaction: few enough that
    /// a window's batches keep every core busy (5% of a window is 400 accounts to correlate).
    private static let correlationBatch = 32
    /// Index and history rows written per transaction: each commit rewrites the pages it
    /// touched, so larger batches write less. A killed run loses the batches not yet committed
    /// (the one being made and those queued behind the writer, five at most); the index stays
    /// as the last commit left it, and the next run examines those accounts again.
    private static let batchSize = 4000
    /// Writes the batches of index rows and history while classification goes on. With four
    /// batches queued at most rather than one, a first run of 1,000,000 accounts took 5.1-5.4 s
    /// rather than 5.6-6.2 s, alternated (the same processor time; 5 MB more at its peak).
    private let writer = BatchWriter()
    /// Index rows and history of this batch, made ready to write on this thread.
    private var pendingWrites = IndexWrites()
    private var pendingRemovals: [String] = []
    private var previous = AccountTable<KnownEntry>()
    private var examined = 0
    /// Accounts of the resource that users link, for the natively-removed safeguard.
    private var linkedAccounts = 0
    private var errorCount = 0
    private var stopped: String?
    /// Set when this run is one bucket of a bucketed run: it sees only the bucket's accounts,
    /// writes everything in one transaction at its end, and leaves the situations that need
    /// the whole resource to the finishing step (`BucketedRun.swift`).
    var part: BucketPart?
    /// DELETED and MISSING outcomes a bucket leaves to the finishing step, and the users its
    /// correlation found (who are therefore not MISSING).
    private var deferred: [DeferredOutcome] = []
    private var foundUsers: Set<String> = []

    init(engine: Engine, resource: ResourceDefinition, policy: EffectivePolicy, adapter: any ResourceAdapter, taskID: Int64?, options: RunOptions) {
        self.engine = engine
        self.resource = resource
        self.policy = policy
        self.adapter = adapter
        self.taskID = taskID
        self.options = options
        let evaluator = engine.evaluator(log: log)
        self.evaluator = evaluator
        correlator = Correlator(resource: resource.name, correlationRule: policy.correlationRule.value, confirmationRule: policy.confirmationRule.value,
                                correlationCall: evaluator.prepare(rule: policy.correlationRule.value, argumentNames: ["account"]),
                                confirmationCall: policy.confirmationRule.value.flatMap { evaluator.prepare(rule: $0, argumentNames: ["userview", "account"]) },
                                repository: engine.repository, explaining: policy.explainSituation.value)
        correlationReuse = CorrelationReuse(resource: resource, policy: policy, options: evaluator.options, library: evaluator.library,
                                            explaining: policy.explainSituation.value, forced: options.correlatesAll)
        tally = RunSummary(taskID: taskID, resource: resource.name, mode: options.mode, status: "running", dryRun: options.dryRun)
        responses = Situation.allCases.map(policy.response)
        proxyAdministrator = policy.proxyAdministrator.value
        perAccountWorkflow = policy.perAccountWorkflow.value
        explaining = policy.explainSituation.value
        reconcilesAttributes = policy.attributeReconciliation.value
        for situation in Situation.allCases { tally.situations[situation] = 0 }
    }

    private var repository: any IdentityRepository { engine.repository }
    /// Without a proxy administrator results are recorded but no response or workflow runs.
    private var acting: Bool { proxyAdministrator != nil && !options.dryRun }
    /// Whether the run, if it ends well, will have examined every account and recorded the
    /// result (what a `CorrelationBasis` needs).
    private var examinesEverything: Bool { !options.dryRun && options.mode == .full && options.accounts == nil && part == nil }

    // MARK: The run

    mutating func execute() throws -> RunSummary {
        defer { try? writer.wait() }  // a run that fails still ends with its last batch written or refused
        if part == nil { try preReconciliation() }
        try correlationReuse.start(repository, resource: resource.name, recording: examinesEverything, writing: !options.dryRun)
        // Step 1: what the repository expects.
        let inPart = part.map { part in { @Sendable (accountID: String) in part.contains(accountID) } }
        // The index rows load on the other core while the links and assignments load here.
        let (repository, resourceName, attributes) = (repository, resource.name, reconcilesAttributes)
        let share = part.map(\.buckets) ?? 1
        let known = Background { try Self.knownEntries(repository, resourceName, attributes: attributes, accepting: inPart, share: share) }
        // The resource's accounts are read and parsed on another thread from now on, into a deep
        // queue (65,536 accounts): the two loads rarely end together, and the reader takes the
        // core the first to end leaves idle. Without index rows (a first run) every account is
        // new and recorded whole, so the reading thread builds them.
        let readAhead = options.accounts == nil
            ? ReadAhead(try adapter.accounts(), building: !(try repository.hasIndexRows(resource: resourceName)), depth: 128) : nil
        defer { readAhead?.close() }
        var (claims, expected) = try linksAndExpectedAccounts(accepting: inPart, share: share)
        previous = try known.value()
        if let part { expected = expected.filter { part.contains($0.key) } }
        linkedAccounts = claims.count
        let changedUsers = options.mode == .incremental ? try usersChangedSinceLastRun() : []

        if let only = options.accounts {
            claims = claims.filter(only.contains)
            expected = expected.filter { only.contains($0.key) }
            previous = previous.filter(only.contains)
        }
        var seen = SeenAccounts(known: previous.count, claimed: claims.count)
        var foundByCorrelation = Set<String>()
        var pending: [Outcome] = []
        var stream: any AccountStream
        if let readAhead {
            stream = readAhead
        } else {
            stream = SelectedAccounts(accounts: try (options.accounts ?? []).sorted().compactMap { try adapter.account(id: $0) })
        }
        // Accounts go a window at a time: while one window's correlations run on other threads,
        // the window before it is handled here, in the accounts' order.
        var inFlight: ClassifiedWindow?
        defer { inFlight?.finish() }  // no correlation outlives the run
        /// Handles a window's accounts; false when the run stops.
        func handleWindow(_ window: consuming ClassifiedWindow) throws -> Bool {
            let correlated = window.correlatedOutcomes()
            var nextCorrelated = correlated.startIndex
            reusedCorrelations += window.reused
            correlatedAccounts += correlated.count
            for index in window.accounts.indices {
                if stopped != nil { return false }
                examined += 1
                if examined % Self.checkInterval == 0 {
                    if pendingWrites.rowCount >= Self.batchSize { try flush(inBackground: true) }
                    if try cancelled() || stopped != nil { return false }
                    options.progress?(examined)
                }
                // Steps 2-4 for an account that exists. Each outcome is moved out of the window,
                // not copied: copying and freeing a million outcomes cost a tenth of a run.
                let classified: Result<Outcome, any Error>
                if let claimed = window.settled[index].take() {
                    classified = .success(claimed)
                } else {
                    classified = correlated[nextCorrelated]
                    nextCorrelated += 1
                }
                let outcome: Outcome
                switch consume classified {
                case .success(let classified): outcome = classified
                case .failure(let error):
                    recordError(window.accounts[index].account.id, "\(error)")
                    continue
                }
                if outcome.situation == .found, let owner = outcome.owner, expected[outcome.accountID]?.contains(owner) != true {
                    foundByCorrelation.insert(owner)
                }
                try handle(outcome, knownPosition: window.accounts[index].known, pending: &pending)
            }
            return stopped == nil
        }
        while true {
            var window: [WindowAccount] = []
            window.reserveCapacity(Self.windowSize)
            var sourceError: (any Error)?  // thrown once the accounts read before it are handled
            var ended = false
            // The accounts come a batch at a time, looked up in the index and link tables a batch
            // at a time (`AccountTable.positions(of:)`): at a million accounts one probe after
            // another missed the caches, a quarter of this thread.
            while window.count < Self.windowSize && !ended && sourceError == nil {
                var batch: [StreamedAccount] = []
                batch.reserveCapacity(Self.windowSize - window.count)
                do {
                    while batch.count < Self.windowSize - window.count {
                        guard let account = try stream.nextStreamed() else { ended = true; break }
                        batch.append(account)
                    }
                } catch {
                    sourceError = error
                }
                let ids = batch.map(\.id), fingerprints = ids.map(Fingerprint.of)
                let knownPositions = previous.positions(of: ids, fingerprints: fingerprints)
                let claimedPositions = claims.positions(of: ids, fingerprints: fingerprints)
                for (index, account) in batch.enumerated() {
                    if let part, !part.contains(account.id) { continue }
                    let known = knownPositions[index], claimed = claimedPositions[index]
                    guard seen.insert(account.id, known: known, claimed: claimed) else { continue }
                    if options.mode == .incremental
                        && !Self.mustExamine(account, known: known.map { previous[position: $0] }, claimed: claimed, claims: claims,
                                             expected: expected, changedUsers: changedUsers) { continue }
                    window.append(WindowAccount(account: account, known: known, claimed: claimed))
                }
            }
            let current = classify(window, claims: claims, expected: expected)
            // Moved, not copied, into handleWindow: its outcomes are taken out of the window,
            // which copies the window's arrays first if anything else still holds them.
            var earlier = inFlight.take()
            inFlight = current
            if let window = earlier.take() { guard try handleWindow(consume window) else { break } }
            if sourceError != nil || window.count < Self.windowSize {  // the source ended
                inFlight = nil
                guard try handleWindow(consume current) else { break }
                if let sourceError { throw sourceError }
                break
            }
        }
        readAhead?.close()  // a run stopped early leaves the rest unread
        if stopped == nil && !tally.cancelled {
            // Step 2: linked accounts that do not exist; step 3: expected accounts that do not.
            let unseenClaims = claims.first.ids.indices.filter { !seen.containsClaimed(at: $0) }
                .map { (accountID: claims.first.ids[$0], users: claims.users(at: $0)) }.sorted { $0.accountID < $1.accountID }
            for (accountID, users) in unseenClaims {
                if options.mode == .incremental && Set(users).isDisjoint(with: changedUsers)
                    && previous[accountID]?.situation == .deleted { continue }
                let explanation = "linked by \(users.joined(separator: ", ")); the account does not exist on the resource"
                try handleOrDefer(Outcome(accountID: accountID, streamed: nil, situation: .deleted, owner: users[0], explanation: explanation), pending: &pending)
            }
            // A bucket cannot know whether another bucket's correlation found the user: it defers.
            for (accountID, users) in expected.sorted(by: { $0.key < $1.key })
                where !seen.contains(accountID, known: previous.position(of: accountID), claimed: claims.position(of: accountID)) {
                for user in users where part != nil || !foundByCorrelation.contains(user) {
                    var explanation = "\(resource.name) is assigned to \(user), whose expected account id '\(accountID)' does not exist on the resource"
                    if let claimants = claims[accountID] { explanation = "\(resource.name) is assigned to \(user); the expected account '\(accountID)' is linked by \(claimants.joined(separator: ", "))" }
                    try handleOrDefer(Outcome(accountID: accountID, streamed: nil, situation: .missing, owner: user, explanation: explanation), pending: &pending)
                }
            }
            // Vanished unowned accounts leave the index.
            for (position, accountID) in previous.ids.enumerated() where !seen.containsKnown(at: position) {
                let situation = previous[position: position].situation
                if situation != .missing && situation != .deleted && claims.position(of: accountID) == nil { pendingRemovals.append(accountID) }
            }
            try respond(pending)
        }
        foundUsers = foundByCorrelation
        if part != nil { return try completeBucket() }
        try flush()
        return try conclude()
    }

    /// The end of a run: the index rows every account kept, the post-reconciliation workflow,
    /// and the run's status.
    private mutating func conclude() throws -> RunSummary {
        // Never a bucket: a bucketed run concludes once, in the finishing step.
        if examinesEverything && stopped == nil && !tally.cancelled {
            try repository.touchIndex(resource: resource.name, at: started)
            if errorCount == 0 { try correlationReuse.finish(repository, resource: resource.name) }
        }
        if reusedCorrelations > 0, let since = correlationReuse.basisTime {
            let time = Date(timeIntervalSince1970: Double(since) / 1000).formatted(.iso8601)
            tally.details.append("\(reusedCorrelations) unchanged accounts kept the situation correlation gave them: no rule or user changed since \(time)")
        }
        if correlatedAccounts > 0, let reason = correlationReuse.unrepeatable {
            tally.details.append("the \(correlatedAccounts) accounts correlated will be correlated again by the next full run, changed or not: \(reason)")
        }
        try workflow(policy.postReconciliationWorkflow.value, [("resourceName", .string(resource.name)),
                                                               ("mode", .string(options.mode.rawValue)), ("taskId", taskValue)])
        tally.details += log.drain()
        if tally.cancelled {
            tally.status = "failed"
            tally.details.append("cancelled at an account boundary after \(examined) accounts")
        } else if let stopped {
            tally.status = "failed"
            tally.details.append(stopped)
        } else if !tally.errors.isEmpty || tally.details.contains(where: { $0.hasPrefix("safeguard:") }) {
            tally.status = "completed with errors"
        } else {
            tally.status = "success"
        }
        return summary
    }

    private var taskValue: Value { taskID.map { .int($0) } ?? .null }

    func preReconciliation() throws {
        try workflow(policy.preReconciliationWorkflow.value, [("resourceName", .string(resource.name)),
                                                              ("mode", .string(options.mode.rawValue)), ("taskId", taskValue)])
    }

    /// Step 1 but the index: who links each account id, and the account ids the users assigned
    /// the resource without a link expect (a bucket's come with its part).
    private func linksAndExpectedAccounts(accepting: (@Sendable (String) -> Bool)?, share: Int) throws -> (Claims, [String: [String]]) {
        var claims = Claims()
        var links = TableBatch<String>()
        var linkedUsers = LinkedUsers()
        let inUserOrder = try repository.forEachLink(on: resource.name, accepting: accepting, reserve: { count in
            claims = Claims(capacity: Self.expectedCount(of: count, share: share))
            if part == nil { linkedUsers = LinkedUsers(capacity: count) }
        }) { accountID, user in
            claims.add(user, to: accountID, in: &links)
            if part == nil { linkedUsers.note(user) }  // a bucket's expected accounts come with it
        }
        claims.flush(&links)
        if let part { return (claims, part.expected) }
        var usersTable: AccountTable<Void>?  // when the links came in no order, and only if asked (not on PostgreSQL)
        return (claims, try expectedAccounts { batch in
            if inUserOrder { return linkedUsers.contain(batch) }
            if usersTable == nil { usersTable = claims.users() }
            return usersTable!.positions(of: batch).map { $0 != nil }
        })
    }

    /// The account ids the repository expects of users assigned the resource without a link.
    /// `linking`, which tells of a batch of users which link an account of the resource, saves
    /// the repository looking up each assigned user's links.
    func expectedAccounts(linking: (([String]) -> [Bool])? = nil) throws -> [String: [String]] {
        let users = try repository.assignedWithoutLink(on: resource.name, linking: linking)
        var expected: [String: [String]] = [:]
        expected.reserveCapacity(users.count)  // grown a doubling at a time, 3% of the loading thread at a million
        for user in users {
            expected[try expectedAccountID(of: user), default: []].append(user)
        }
        return expected
    }

    /// Handles an outcome now, or, in a bucket, leaves it to the finishing step.
    private mutating func handleOrDefer(_ outcome: Outcome, pending: inout [Outcome]) throws {
        guard part == nil else {
            deferred.append(DeferredOutcome(accountID: outcome.accountID, situation: outcome.situation.rawValue,
                                            owner: outcome.owner, explanation: outcome.explanation))
            return
        }
        try handle(outcome, pending: &pending)
    }

    /// A bucket's end: its index rows and its result, in one transaction.
    private mutating func completeBucket() throws -> RunSummary {
        guard let part, let taskID else { throw EngineError("a bucket needs its task") }
        tally.details += log.drain()
        let result = BucketResult(summary: summary, linked: linkedAccounts, examined: examined, stopped: stopped,
                                  deferred: deferred, foundUsers: foundUsers.sorted())
        try flush(completing: (taskID, part.bucket, part.server, try result.encoded()))
        return summary
    }

    /// The finishing step of a bucketed run, once every bucket is in: the DELETED and MISSING
    /// situations (and the natively-removed safeguard) over the whole resource, then the end
    /// of the run as a single server would have it.
    mutating func finishBuckets(_ results: [BucketResult], server: String) throws -> RunSummary {
        guard let taskID else { throw EngineError("a bucketed run needs its task") }
        previous = try Self.knownEntries(repository, resource.name, attributes: reconcilesAttributes, accepting: nil, share: 1)
        for result in results {
            result.summary.add(to: &tally)
            linkedAccounts += result.linked
            examined += result.examined
            if stopped == nil { stopped = result.stopped }
        }
        let found = Set(results.flatMap(\.foundUsers))
        var pending: [Outcome] = []
        if stopped == nil && !tally.cancelled {
            let outcomes = results.flatMap(\.deferred).sorted { ($0.situation, $0.accountID, $0.owner ?? "") < ($1.situation, $1.accountID, $1.owner ?? "") }
            for item in outcomes {
                guard let situation = Situation(rawValue: item.situation) else { continue }
                if situation == .missing, let owner = item.owner, found.contains(owner) { continue }
                try handle(Outcome(accountID: item.accountID, streamed: nil, situation: situation, owner: item.owner, explanation: item.explanation),
                           pending: &pending)
            }
            try respond(pending)
        }
        try flush(completing: (taskID, BucketClaim.finish, server, "{}"))
        return try conclude()
    }

    /// The index rows earlier runs left (only those `accepting` accepts), as a run compares them.
    private static func knownEntries(_ repository: any IdentityRepository, _ resource: String, attributes: Bool,
                                     accepting: ((String) -> Bool)?, share: Int) throws -> AccountTable<KnownEntry> {
        // An id has one row: the rows are appended as they come and placed in the table at the end.
        var known = AccountTable<KnownEntry>()
        let reserve = { (count: Int) in known = AccountTable.unplaced(capacity: expectedCount(of: count, share: share)) }
        var situations = SituationReader()
        if attributes {
            try repository.forEachIndexEntry(resource: resource, attributes: true, accepting: accepting, reserve: reserve) {
                known.appendUnplaced($0.accountID, KnownEntry($0.state, situation: situations.situation($0.situation), attributes: $0.attributes))
            }
        } else {
            // Each row is borrowed: the table copies its id and owner (most are inline strings,
            // copied without reference counting), and each situation's text is parsed once.
            try repository.forEachIndexState(resource: resource, accepting: accepting, reserve: reserve) { (state: borrowing IndexState) in
                known.appendUnplaced(state.accountID, KnownEntry(state, situation: situations.situation(state.situation)))
            }
        }
        known.placeAll()
        return known
    }

    /// How many of `count` rows a bucket of `share` buckets is likely to hold, with some room
    /// (a table that fills up grows).
    private static func expectedCount(of count: Int, share: Int) -> Int {
        share <= 1 ? count : count / share + count / (8 * share)
    }

    private func expectedAccountID(of userName: String) throws -> String {
        guard let rule = resource.attribute("accountIdRule"), !rule.isEmpty else { return userName }
        guard let user = try repository.user(named: userName) else { return userName }
        let view = Values.userView(user, accounts: try repository.indexEntries(linkedBy: user))
        let id = try evaluator.call(rule: rule, arguments: [("userview", view)]).stringValue
        return id.isEmpty ? userName : id
    }

    private func usersChangedSinceLastRun() throws -> Set<String> {
        let last = try repository.tasks(resource: resource.name, name: "Reconcile", limit: 20)
            .first { $0.id != taskID && ($0.status == "success" || $0.status == "completed with errors") }
        guard let last else { return try Set(repository.allUsers().map(\.name)) }
        return try repository.usersModified(since: last.started)
    }

    /// Incremental: an account is examined when it is new, changed, or involves a changed user
    /// (its owner in the index, a user linking it, a user it is assigned to). Static, and
    /// without building the list of those users: it is asked of every account of the resource,
    /// and as a method it copied the whole run each time. An incremental run of 1,000,000
    /// accounts with 1% changed took 4.6-5.0 s, then 3.3-3.6 s (alternated).
    private static func mustExamine(_ account: StreamedAccount, known: KnownEntry?, claimed: Int?, claims: Claims, expected: [String: [String]],
                                    changedUsers: Set<String>) -> Bool {
        guard let known, known.digest == .number(account.digest) else { return true }
        if changedUsers.isEmpty { return false }
        if let owner = known.owner, changedUsers.contains(owner) { return true }
        if let claimed, claims.users(at: claimed).contains(where: changedUsers.contains) { return true }
        return expected[account.id]?.contains(where: changedUsers.contains) ?? false
    }

    private mutating func cancelled() throws -> Bool {
        guard let taskID, try repository.cancelRequested(task: taskID) else { return false }
        tally.cancelled = true
        return true
    }

    // MARK: Classification

    /// An account a run examines, with its positions among the index rows and the linked
    /// account ids.
    private struct WindowAccount {
        var account: StreamedAccount
        var known: Int?
        var claimed: Int?
    }

    /// A window of accounts classified: what links and assignments settled (or the index kept
    /// from an unchanged account's correlation), and the correlations of the others, which run
    /// on other threads (every core) from the start.
    private struct ClassifiedWindow {
        let accounts: [WindowAccount]
        /// Per account, what links, assignments or the index settled; nil where correlation decides.
        var settled: [Outcome?]
        /// How many of those the index settled (`CorrelationReuse`).
        let reused: Int
        let correlated: Background<[Result<Outcome, any Error>]>?

        /// The outcomes of the accounts `claimed` leaves nil, in the window's order, once the
        /// correlations are done.
        func correlatedOutcomes() -> [Result<Outcome, any Error>] {
            (try? correlated?.value()) ?? []
        }

        /// Waits for the correlations of a window that will not be handled.
        func finish() { _ = try? correlated?.value() }
    }

    /// Steps 2-4 for a window of accounts. Those that neither links nor assignments claim go
    /// through the correlation rule on other threads: each costs a few repository reads and
    /// two rule calls, and none depends on another.
    private func classify(_ window: [WindowAccount], claims: Claims, expected: [String: [String]]) -> ClassifiedWindow {
        var reused = 0
        let settled = window.map { account -> Outcome? in
            if let claimed = classifyByClaims(account.account, claimed: account.claimed, claims: claims, expected: expected) { return claimed }
            guard let kept = correlationReuse.outcome(for: account.account, known: account.known.map { previous[position: $0] }) else { return nil }
            reused += 1
            return kept
        }
        let unclaimed = window.indices.filter { settled[$0] == nil }.map { window[$0].account }
        guard !unclaimed.isEmpty else { return ClassifiedWindow(accounts: window, settled: settled, reused: reused, correlated: nil) }
        let correlator = correlator
        let batches = stride(from: 0, to: unclaimed.count, by: Self.correlationBatch).map {
            Array(unclaimed[$0..<Swift.min($0 + Self.correlationBatch, unclaimed.count)])
        }
        let correlated = Background { mapOnAllCores(batches, minimumPerCore: 1) { correlator.correlate($0) }.flatMap { $0 } }
        return ClassifiedWindow(accounts: window, settled: settled, reused: reused, correlated: correlated)
    }

    /// The situation links (CONFIRMED, COLLISION) or assignments (FOUND, DISPUTED) give an
    /// account; nil when neither claims it and the correlation rule decides.
    private func classifyByClaims(_ account: StreamedAccount, claimed: Int?, claims: Claims, expected: [String: [String]]) -> Outcome? {
        if let claimed {
            guard let owner = claims.soleUser(at: claimed) else {
                let claimants = claims.users(at: claimed)
                return Outcome(accountID: account.id, streamed: account, situation: .collision, owner: nil,
                               explanation: "linked by \(claimants.count) users: \(claimants.joined(separator: ", "))")
            }
            return Outcome(accountID: account.id, streamed: account, situation: .confirmed, owner: owner,
                           explanation: explaining ? "linked by \(owner); the account exists" : nil)
        }
        if let users = expected[account.id] {
            if users.count > 1 {
                return Outcome(accountID: account.id, streamed: account, situation: .disputed, owner: nil,
                               explanation: "\(resource.name) is assigned to \(users.joined(separator: " and ")), all expecting account id '\(account.id)'")
            }
            return Outcome(accountID: account.id, streamed: account, situation: .found, owner: users[0],
                           explanation: explaining ? "\(resource.name) is assigned to \(users[0]), whose expected account id is '\(account.id)'" : nil)
        }
        return nil
    }

    // MARK: Responses

    /// `knownPosition`, where the caller found the account's index row, saves looking it up again.
    private mutating func handle(_ outcome: Outcome, knownPosition: Int? = nil, pending: inout [Outcome]) throws {
        situationCounts[outcome.situation.position] += 1
        let response = try response(for: outcome.situation)
        if response != .doNothing && proxyAdministrator != nil {
            // Kept until the run's end, built: a streamed account would keep its whole batch of rows.
            var kept = outcome
            kept.streamed = outcome.streamed?.built()
            pending.append(kept)
            return
        }
        try record(outcome, finalSituation: outcome.situation, response: nil, knownPosition: knownPosition)
    }

    /// Carries out the responses, resource changes as one batch.
    private mutating func respond(_ outcomes: [Outcome]) throws {
        let linked = linkedAccounts
        let limit = policy.maxNativelyRemovedPercent.value
        let deleted = summary.situations[.deleted] ?? 0
        let removalBlocked = limit > 0 && linked > 0 && Double(deleted) > Double(linked) * Double(limit) / 100
        if removalBlocked {
            tally.details.append("safeguard: \(deleted) of \(linked) linked accounts were removed natively, above maxNativelyRemovedPercent \(limit)%; no DELETED response ran and no link was removed")
        }
        var changes: [(Outcome, Response, AccountChange, RepositoryAction)] = []
        for outcome in outcomes {
            let response = try response(for: outcome.situation)
            if outcome.situation == .deleted && removalBlocked {
                try record(outcome, finalSituation: outcome.situation, response: nil)
                continue
            }
            if stopped != nil { break }
            do {
                try checkCapability(response)
                if options.dryRun {
                    tally.responses[response, default: 0] += 1
                    continue
                }
                let plan = try plan(response, for: outcome)
                if let change = plan.change {
                    changes.append((outcome, response, change, plan.action))
                } else {
                    try perform(plan.action, outcome, response)
                }
            } catch {
                recordError(outcome.accountID, "\(response.rawValue) failed: \(error)")
                try record(outcome, finalSituation: outcome.situation, response: response)
            }
        }
        guard !changes.isEmpty else { return }
        do {
            try adapter.apply(changes.map(\.2))
        } catch {
            for (outcome, response, _, _) in changes {
                recordError(outcome.accountID, "\(response.rawValue) failed on the resource: \(error)")
                try record(outcome, finalSituation: outcome.situation, response: response)
            }
            return
        }
        for (outcome, response, _, action) in changes { try perform(action, outcome, response) }
    }

    /// The policy's response, or the one a repair asks for (refused when not allowed).
    private func response(for situation: Situation) throws -> Response {
        guard let override = options.responseOverride else { return responses[situation.position] }
        guard situation.allows(override) else {
            throw EngineError("\(override.rawValue) is not allowed for a \(situation.rawValue) account; allowed: \((["DO_NOTHING"] + situation.allowedResponses.map(\.rawValue)).joined(separator: ", "))")
        }
        if policy.proxyAdministrator.value == nil { throw EngineError("a repair acts as the proxy administrator, and the policy names none") }
        return override
    }

    private func checkCapability(_ response: Response) throws {
        guard let needed = response.capability else { return }
        guard let name = policy.proxyAdministrator.value, let admin = engine.deployment.administrators[name] else {
            throw EngineError("the proxy administrator '\(policy.proxyAdministrator.value ?? "")' is not configured")
        }
        guard admin.capabilities.contains(needed) else {
            throw EngineError("the proxy administrator '\(name)' lacks the capability \(needed.rawValue)")
        }
    }

    /// What a response does to the repository once any resource change succeeded.
    enum RepositoryAction {
        case link(user: String)
        case unlink(user: String)
        case createUser(User)
        case removeFromIndex
        case keep(Situation)
        case linkCreated(user: String)
    }

    private func plan(_ response: Response, for outcome: Outcome) throws -> (change: AccountChange?, action: RepositoryAction) {
        switch response {
        case .doNothing: return (nil, .keep(outcome.situation))
        case .linkAccount:
            guard let owner = outcome.owner else { throw EngineError("no owner to link") }
            return (nil, .link(user: owner))
        case .unlinkAccount:
            guard let owner = outcome.owner else { throw EngineError("no owner to unlink") }
            return (nil, .unlink(user: owner))
        case .deleteAccount: return (.delete(id: outcome.accountID), .removeFromIndex)
        case .disableAccount:
            guard adapter.capabilities.disable else { throw EngineError("resource '\(resource.name)' cannot disable accounts (no disabledAttribute)") }
            return (.disable(id: outcome.accountID), .keep(outcome.situation))
        case .createNewUser:
            guard let account = outcome.account else { throw EngineError("no account to create a user from") }
            let (name, attributes) = try newUser(from: account)
            return (nil, .createUser(User(name: name, attributes: attributes, accounts: [AccountLink(resource: resource.name, accountID: account.id)])))
        case .createAccount:
            guard let owner = outcome.owner, let user = try repository.user(named: owner) else { throw EngineError("no owner to create an account for") }
            let attributes = try accountAttributes(for: user, accountID: outcome.accountID)
            return (.create(id: outcome.accountID, attributes: attributes), .linkCreated(user: owner))
        }
    }

    private mutating func perform(_ action: RepositoryAction, _ outcome: Outcome, _ response: Response) throws {
        tally.responses[response, default: 0] += 1
        switch action {
        case .keep(let situation):
            var changed = outcome
            if response == .disableAccount, var account = changed.account { account.disabled = true; changed.account = account }
            try record(changed, finalSituation: situation, response: response)
        case .link(let user):
            try flush()
            try repository.write { try $0.link(user: user, resource: resource.name, accountID: outcome.accountID) }
            try record(outcome, finalSituation: .confirmed, response: response)
        case .linkCreated(let user):
            try flush()
            try repository.write { try $0.link(user: user, resource: resource.name, accountID: outcome.accountID) }
            let account = try adapter.account(id: outcome.accountID)
            var created = outcome
            created.account = account
            try record(created, finalSituation: .confirmed, response: response)
        case .unlink(let user):
            try flush()
            try repository.write { try $0.unlink(user: user, resource: resource.name, accountID: outcome.accountID) }
            pendingRemovals.append(outcome.accountID)
            recordHistory(outcome.accountID, outcome.situation, owner: nil, action: response.rawValue)
        case .createUser(let user):
            try flush()
            if try repository.user(named: user.name) != nil { throw EngineError("a user named '\(user.name)' already exists") }
            try repository.saveUsers([user])
            var created = outcome
            created.owner = user.name
            try record(created, finalSituation: .confirmed, response: response)
        case .removeFromIndex:
            pendingRemovals.append(outcome.accountID)
            recordHistory(outcome.accountID, outcome.situation, owner: outcome.owner, action: response.rawValue)
        }
    }

    /// CREATE_NEW_USER: the proxy administrator's user form over the account.
    private func newUser(from account: Account) throws -> (String, [String: AttributeValue]) {
        let form = try userForm()
        let view = Values.userView(User(name: account.id), accounts: [])
        let result = try FormRunner(form: form, evaluator: evaluator).run(account: Values.account(account), view: view)
        var attributes: [String: AttributeValue] = [:]
        for (name, value) in result.userAttributes { if let value { attributes[name] = value } }
        return (result.userName ?? account.id, attributes)
    }

    /// CREATE_ACCOUNT: the user form over the user builds the account's attributes.
    private func accountAttributes(for user: User, accountID: String) throws -> [(name: String, value: AttributeValue)] {
        let form = try userForm()
        let view = Values.userView(user, accounts: try repository.indexEntries(linkedBy: user))
        let result = try FormRunner(form: form, evaluator: evaluator).run(account: .map([("accountId", .string(accountID))]), view: view)
        var attributes: [(name: String, value: AttributeValue)] = [(resource.accountIdAttribute, .single(accountID))]
        for (name, value) in result.accountAttributes[resource.name] ?? [] where name != resource.accountIdAttribute {
            if let value { attributes.append((name, value)) }
        }
        return attributes
    }

    private func userForm() throws -> FormDefinition {
        guard let name = policy.proxyAdministrator.value, let admin = engine.deployment.administrators[name] else {
            throw EngineError("no proxy administrator")
        }
        guard let formName = admin.userForm, let form = engine.deployment.forms[formName] else {
            throw EngineError("the proxy administrator '\(name)' has no user form")
        }
        return form
    }

    // MARK: Recording

    /// Queues the Account Index row of an account's final situation, and runs the per-account
    /// workflow. Without `knownPosition` the account's index row is looked up by its id.
    private mutating func record(_ outcome: Outcome, finalSituation: Situation, response: Response?, knownPosition: Int? = nil) throws {
        let known = knownPosition.map { previous[position: $0] } ?? previous[outcome.accountID]
        let digest = outcome.streamed.map { StoredDigest.number($0.digest) } ?? known?.digest ?? .text("")
        let unchanged = known != nil && known?.digest == digest && known?.situation == finalSituation
            && known?.owner == outcome.owner && known?.explanation == outcome.explanation && response == nil
        // Built only where it is read: the strings of an unchanged account are never made.
        let account = reconcilesAttributes || !unchanged ? outcome.account : nil
        if reconcilesAttributes, let known, let account {
            for name in policy.reconciledAttributes.value {
                let old = known.attributes.first { $0.name == name }?.value, new = account.attribute(name)
                if old != new {
                    tally.details.append("native change: \(outcome.accountID).\(name): \(old.map(Self.describe) ?? "(none)") -> \(new.map(Self.describe) ?? "(none)")")
                }
            }
        }
        if !unchanged {  // unchanged rows get their times from touchIndex at the end of the run
            let attributes = try account.map { $0.attributes.map { AccountAttribute(name: $0.name, value: $0.value) } }
                ?? lastKnownAttributes(outcome.accountID)
            pendingWrites.upsert(IndexEntry(resource: resource.name, accountID: outcome.accountID, owner: outcome.owner,
                                           situation: finalSituation.rawValue, attributes: attributes, digest: digest.text,
                                           lastSeen: outcome.streamed == nil ? nil : started, lastReconciled: started,
                                           explanation: outcome.explanation))
        }
        if known?.situation != finalSituation || known?.owner != outcome.owner || response != nil {
            recordHistory(outcome.accountID, finalSituation, owner: outcome.owner, action: response?.rawValue)
        }
        if acting, let rule = perAccountWorkflow {
            let arguments: [(String, Value)] = [
                ("accountId", .string(outcome.accountID)), ("resourceName", .string(resource.name)),
                ("userName", outcome.owner.map { .string($0) } ?? .null), ("initialSituation", .string(outcome.situation.rawValue)),
                ("response", .string((response ?? .doNothing).rawValue)), ("responseSuccess", .bool(true)),
                ("finalSituation", .string(finalSituation.rawValue)),
            ]
            do {
                let result = try evaluator.call(rule: rule, arguments: arguments)
                if case .map(let changes) = result, let owner = outcome.owner {
                    var attributes: [String: AttributeValue] = [:]
                    for (key, value) in changes.entries where key.hasPrefix("global.") {
                        if let attribute = Values.attribute(value) { attributes[String(key.dropFirst(7))] = attribute }
                    }
                    if !attributes.isEmpty { try repository.write { try $0.setUserAttributes(owner, attributes) } }
                }
            } catch {
                recordError(outcome.accountID, "per-account workflow '\(rule)' failed: \(error)")
            }
        }
        if pendingWrites.indexRowCount >= Self.batchSize { try flush(inBackground: true) }
    }

    private mutating func recordHistory(_ accountID: String, _ situation: Situation, owner: String?, action: String?) {
        pendingWrites.recordHistory(resource: resource.name, accountID: accountID, task: taskID, situation: situation.rawValue,
                                    owner: owner, action: action)
    }

    private static func describe(_ value: AttributeValue) -> String {
        switch value {
        case .single(let s): s
        case .multi(let values): "[" + values.joined(separator: ", ") + "]"
        }
    }

    /// The attributes the index holds for an account that no longer exists (written by an
    /// earlier run: this run writes each account once).
    private func lastKnownAttributes(_ accountID: String) throws -> [AccountAttribute] {
        try writer.wait()
        return try repository.indexEntry(resource: resource.name, accountID: accountID)?.attributes ?? []
    }

    /// Writes the queued index rows in one transaction (nothing in a dry run), after the batches
    /// still waiting or being written, if any. In the background, the run goes on while they are
    /// written; otherwise they are written when this returns. A bucket keeps them until it
    /// completes, so that it commits all or nothing.
    private mutating func flush(inBackground: Bool = false,
                                completing bucket: (task: Int64, bucket: Int, server: String, result: String)? = nil) throws {
        if part != nil && bucket == nil { return }
        defer { pendingWrites.removeAll(); pendingRemovals.removeAll() }
        guard !options.dryRun, bucket != nil || pendingWrites.rowCount > 0 || !pendingRemovals.isEmpty else {
            try writer.wait()
            return
        }
        let batch = Batch(writes: pendingWrites, removals: pendingRemovals)
        let (resourceName, repository) = (resource.name, repository)
        try writer.submit(batch) { batch in
            try repository.write { writer in
                try writer.write(batch.writes)
                for accountID in batch.removals { try writer.removeIndex(resource: resourceName, accountID: accountID) }
                if let bucket { try writer.completeBucket(task: bucket.task, bucket: bucket.bucket, server: bucket.server, result: bucket.result) }
            }
        }
        if !inBackground { try writer.wait() }
    }

    private mutating func recordError(_ accountID: String?, _ message: String) {
        errorCount += 1
        if tally.errors.count < 1000 { tally.errors.append(TaskError(accountID: accountID, message: message)) }
        let limit = policy.errorLimit.value
        if limit > 0 && errorCount >= limit && stopped == nil {
            stopped = "stopped after \(errorCount) errors (errorLimit \(limit))"
        }
    }

    private func workflow(_ rule: String?, _ arguments: [(String, Value)]) throws {
        guard acting, let rule else { return }
        _ = try evaluator.call(rule: rule, arguments: arguments)
    }
}

/// The accounts of a single-account (or one-user) reconciliation.
private struct SelectedAccounts: AccountStream {
    var accounts: [Account]
    mutating func next() throws -> Account? { accounts.isEmpty ? nil : accounts.removeFirst() }
}

/// The index rows, history and removals one transaction writes.
struct Batch: Sendable {
    var writes: IndexWrites
    var removals: [String]
}

/// Runs a run's batch writes on a thread of its own, in order: classification of the next
/// accounts overlaps the writing of the last ones (the two cores of a small server). Up to
/// `depth` batches wait or are written at once, so that a batch that takes long to write (its
/// commit copied the log back into the file, say) does not stop classification at once.
/// After a batch fails, the batches queued behind it are not written, and its error is thrown
/// by every `submit` and `wait` after. Batches are released on the thread that made them:
/// freeing their strings on the writing thread would contend for the allocator's lock with the
/// thread allocating the next batch.
final class BatchWriter: @unchecked Sendable {
    private let queue = DispatchQueue(label: "recon.batch-writer")
    private let group = DispatchGroup()
    private let slots: DispatchSemaphore
    /// Guards what follows.
    private let lock = NSLock()
    /// The batches submitted and not yet released, oldest first; the first `done` of them are
    /// written (or skipped after a failure).
    private var submitted: [Batch] = []
    private var done = 0
    /// The first failure, which stays.
    private var failure: (any Error)?

    /// `depth`: the batches that may wait or be written at once.
    init(depth: Int = 4) {
        slots = DispatchSemaphore(value: depth)
    }

    /// Queues `batch`, once fewer than `depth` batches are waiting or being written.
    func submit(_ batch: Batch, _ write: @escaping @Sendable (Batch) throws -> Void) throws {
        slots.wait()
        do {
            try releaseWritten()
        } catch {
            slots.signal()
            throw error
        }
        lock.withLock { submitted.append(batch) }
        group.enter()
        queue.async { [self] in
            writeNext(write)
            slots.signal()
            group.leave()
        }
    }

    /// Waits for every batch submitted; throws the first failure.
    func wait() throws {
        group.wait()
        try releaseWritten()
    }

    /// Writes the oldest batch not written, unless one failed. This thread's reference to it is
    /// dropped before it counts as written, so that the submitting thread is the one to free it.
    private func writeNext(_ write: (Batch) throws -> Void) {
        do {
            let batch = lock.withLock { failure == nil ? submitted[done] : nil }
            if let batch {
                do { try write(batch) } catch { lock.withLock { failure = error } }
            }
        }
        lock.withLock { done += 1 }
    }

    /// Releases the batches written; throws the failure, if one happened.
    private func releaseWritten() throws {
        // The written batches are handed out of the lock, to be freed here rather than under it.
        let (_, error) = lock.withLock {
            defer {
                submitted.removeFirst(done)
                done = 0
            }
            return (submitted.prefix(done), failure)
        }
        if let error { throw error }
    }
}
