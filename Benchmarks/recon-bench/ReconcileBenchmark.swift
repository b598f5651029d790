import Connectors
import Deployment
import Foundation
import GRDB
import Reconciler
import Repository
import XPRESS

/// A synthetic deployment of N users and N accounts on a FlatFile (and on a DatabaseTable)
/// resource: a full run, an unchanged second full run, an incremental run after 1% of the
/// accounts changed, and the floor measured in the same run: `sqlite3` importing the same two
/// CSV files and joining them on the correlation attribute, before the resources' runs and
/// again after them (a shared machine's speed drifts within a run; the table keeps the faster,
/// so a step is never compared with a floor slowed down by a slow spell). Situation counts are
/// checked.
struct ReconcileBenchmark {
    let accounts: Int
    var kinds: [Kind] = [.flatFile, .databaseTable]

    struct Row {
        let name: String
        var seconds: Double
        let accounts: Int
        var peakMegabytes: Double
        /// Processor time of the step on every core (user and system), in seconds: with the
        /// wall time, how much of the machine the step used.
        var cpuSeconds: Double
    }

    enum Kind: String { case flatFile = "FlatFile", databaseTable = "DatabaseTable" }

    /// 90% of the accounts are linked, 5% belong to assigned users (FOUND), 5% are unowned and
    /// correlate by email through an XPRESS rule returning an AttributeCondition, confirmed by
    /// the standard email confirmation rule (UNASSIGNED).
    func run() throws -> [Row] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("recon-bench-\(getpid())")
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try writeData(directory)
        var rows = [try floor(directory)]
        for kind in kinds { rows += try reconcile(kind, directory) }
        rows.append(try floor(directory))  // the table keeps the faster of the two
        return rows
    }

    private var data: SyntheticData { SyntheticData(accounts: accounts) }

    private func writeData(_ directory: URL) throws {
        try data.writeFiles(directory)
        let database = try DatabaseQueue(path: directory.appendingPathComponent("accounts.db").path)
        try database.write { db in
            try db.execute(sql: "CREATE TABLE accounts (uid TEXT PRIMARY KEY, email TEXT, department TEXT)")
            let insert = try db.makeStatement(sql: "INSERT INTO accounts VALUES (?, ?, ?)")
            for index in 0..<accounts { try insert.execute(arguments: ["a\(index)", "user\(index)@example.com", "dept\(index % 50)"]) }
        }
    }

    /// sqlite3 importing both CSV files and joining them on the email.
    private func floor(_ directory: URL) throws -> Row {
        let script = """
        .mode csv
        .import \(directory.path)/users.csv users
        .import \(directory.path)/accounts.csv accounts
        CREATE INDEX users_email ON users(email);
        SELECT count(*) FROM accounts a JOIN users u ON u.email = a.email;

        """
        var result = ""
        let cpuBefore = cpuSeconds(RUSAGE_CHILDREN)
        let seconds = try time {
            let outcome = try ChildProcess.run("/usr/bin/sqlite3", [":memory:"], input: Data(script.utf8), captureOutput: true)
            result = String(decoding: outcome.output, as: UTF8.self)
        }
        guard result.trimmingCharacters(in: .whitespacesAndNewlines) == String(accounts) else {
            throw BenchmarkError("sqlite3 joined \(result) rows, expected \(accounts) (is sqlite3 installed?)")
        }
        return Row(name: "floor: sqlite3 import + join", seconds: seconds, accounts: accounts, peakMegabytes: 0,
                   cpuSeconds: cpuSeconds(RUSAGE_CHILDREN) - cpuBefore)
    }

    private func reconcile(_ kind: Kind, _ directory: URL) throws -> [Row] {
        let source = kind == .flatFile ? "<ResourceAttribute name='file' value='accounts.csv'/>"
            : "<ResourceAttribute name='file' value='accounts.db'/><ResourceAttribute name='table' value='accounts'/>"
        let config = """
        <Waveset>
          <Resource name='Bench' type='\(kind.rawValue)'>\(source)<ResourceAttribute name='accountId' value='uid'/></Resource>
          <ReconcilePolicy name='Bench' resource='Bench'>
            <Correlation correlationRule='USER_EMAIL_MATCHES_ACCOUNT_EMAIL_CORR' confirmationRule='USER_EMAIL_MATCHES_ACCOUNT_EMAIL_CONF'/>
          </ReconcilePolicy>
        </Waveset>
        """
        let document = RuleLoader.load(Array(config.utf8), file: "bench.xml")
        let (library, _) = RuleLoader.link([document])
        let (deployment, problems) = DeploymentLoader.load([document], library: library)
        guard problems.isEmpty else { throw BenchmarkError("\(problems)") }

        let repositoryFile = directory.appendingPathComponent("recon-\(kind.rawValue).db").path
        let repository = try SQLRepository(sqlitePath: repositoryFile)
        let importCPU = cpuSeconds(RUSAGE_SELF)
        let importSeconds = try time { try data.importUsers(into: repository) }
        let engine = Engine(deployment: deployment, configDirectory: directory.path, repository: repository)
        var rows = [Row(name: "\(kind.rawValue): import users", seconds: importSeconds, accounts: accounts, peakMegabytes: peakMegabytes(),
                        cpuSeconds: cpuSeconds(RUSAGE_SELF) - importCPU)]
        for (name, mode) in [("first full run", RunOptions.Mode.full), ("second full run (unchanged)", .full)] {
            let summary = try measure(engine, mode) { seconds, cpu in
                rows.append(Row(name: "\(kind.rawValue): \(name)", seconds: seconds, accounts: accounts, peakMegabytes: peakMegabytes(),
                                cpuSeconds: cpu))
            }
            try data.check(summary.situationCounts, errors: summary.errors.map(\.message))
        }
        // 1% of the accounts change department: an incremental run examines only those.
        let changed = Swift.max(1, accounts / 100)
        try change(kind, directory, count: changed)
        let incremental = try measure(engine, .incremental) { seconds, cpu in
            rows.append(Row(name: "\(kind.rawValue): incremental after 1% changed", seconds: seconds, accounts: accounts,
                            peakMegabytes: peakMegabytes(), cpuSeconds: cpu))
        }
        guard incremental.situations.values.reduce(0, +) == changed else {
            throw BenchmarkError("the incremental run examined \(incremental.situations.values.reduce(0, +)) accounts, expected \(changed)")
        }
        return rows
    }

    /// Runs the resource in `mode` and reports its wall and processor seconds.
    private func measure(_ engine: Engine, _ mode: RunOptions.Mode, _ report: (Double, Double) -> Void) throws -> RunSummary {
        var options = RunOptions()
        options.server = "bench"
        options.mode = mode
        var summary: RunSummary?
        let cpuBefore = cpuSeconds(RUSAGE_SELF)
        let seconds = try time { summary = try engine.reconcile("Bench", options: options) }
        report(seconds, cpuSeconds(RUSAGE_SELF) - cpuBefore)
        guard let summary, summary.status == "success" else { throw BenchmarkError("the run did not succeed: \(String(describing: summary?.errors.prefix(3)))") }
        return summary
    }

    /// Changes the department of the first `count` linked accounts (every 20th is skipped so
    /// that only CONFIRMED accounts change).
    private func change(_ kind: Kind, _ directory: URL, count: Int) throws {
        let indexes = (0..<accounts).lazy.filter { $0 % 20 < 18 }.prefix(count)
        switch kind {
        case .flatFile:
            var csv = "uid,email,department\n"
            let changed = Set(indexes)
            for index in 0..<accounts {
                csv += "a\(index),user\(index)@example.com,\(changed.contains(index) ? "moved" : "dept\(index % 50)")\n"
            }
            try Data(csv.utf8).write(to: directory.appendingPathComponent("accounts.csv"))
        case .databaseTable:
            let database = try DatabaseQueue(path: directory.appendingPathComponent("accounts.db").path)
            try database.write { db in
                for index in indexes { try db.execute(sql: "UPDATE accounts SET department = 'moved' WHERE uid = ?", arguments: ["a\(index)"]) }
            }
        }
    }

}

/// The generated deployment both reconciliation benchmarks use: N users and N accounts. 90% of
/// the accounts are linked, 5% belong to assigned users (FOUND), 5% are unowned and correlate by
/// email through an XPRESS rule returning an AttributeCondition, confirmed by the standard email
/// confirmation rule (UNASSIGNED).
struct SyntheticData {
    let accounts: Int

    func userName(_ index: Int) -> String { index % 20 == 18 ? "a\(index)" : "user\(index)" }

    /// `accounts.csv` (the resource) and `users.csv` (for the sqlite3 floor) in `directory`.
    func writeFiles(_ directory: URL) throws {
        var accountsCSV = "uid,email,department\n", usersCSV = "name,email\n"
        accountsCSV.reserveCapacity(accounts * 40)
        usersCSV.reserveCapacity(accounts * 32)
        for index in 0..<accounts {
            accountsCSV += "a\(index),user\(index)@example.com,dept\(index % 50)\n"
            usersCSV += "\(userName(index)),user\(index)@example.com\n"
        }
        try Data(accountsCSV.utf8).write(to: directory.appendingPathComponent("accounts.csv"))
        try Data(usersCSV.utf8).write(to: directory.appendingPathComponent("users.csv"))
    }

    /// The users, with their links and assignments to the resource `Bench`, in batches.
    func importUsers(into repository: any IdentityRepository) throws {
        var batch: [User] = []
        for index in 0..<accounts {
            let share = index % 20
            batch.append(User(name: userName(index), attributes: ["email": .single("user\(index)@example.com")],
                              assignedResources: share == 18 ? ["Bench"] : [],
                              accounts: share < 18 ? [AccountLink(resource: "Bench", accountID: "a\(index)")] : []))
            if batch.count == 10_000 || index == accounts - 1 {
                try repository.saveUsers(batch)
                batch.removeAll(keepingCapacity: true)
            }
        }
    }

    /// Throws unless a full run's situation counts are those the data makes.
    func check(_ situations: [String: Int], errors: [String]) throws {
        let expected = accounts / 20
        guard situations["FOUND"] == expected, situations["UNASSIGNED"] == expected, situations["CONFIRMED"] == accounts - 2 * expected else {
            throw BenchmarkError("unexpected situations: \(situations) \(errors.prefix(3))")
        }
    }
}

/// User and system processor seconds so far of this process (`RUSAGE_SELF`) or of its
/// waited-for children (`RUSAGE_CHILDREN`).
func cpuSeconds(_ who: __rusage_who) -> Double {
    var usage = rusage()
    getrusage(who.rawValue, &usage)
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// The process's peak resident memory so far.
func peakMegabytes() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}
