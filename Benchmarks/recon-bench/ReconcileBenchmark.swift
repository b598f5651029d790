import Connectors
import Deployment
import Foundation
import Reconciler
import Repository
import XPRESS

/// A synthetic deployment of N users and N accounts on a FlatFile resource, reconciled in full
/// twice (the second run finds nothing changed), with the situation counts checked.
struct ReconcileBenchmark {
    let accounts: Int

    struct Row {
        let name: String
        let seconds: Double
        let accounts: Int
        let peakMegabytes: Double
    }

    /// 90% of the accounts are linked, 5% belong to assigned users (FOUND), 5% are unowned and
    /// correlate by email through an XPRESS rule returning an AttributeCondition (UNASSIGNED).
    func run() throws -> [Row] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("recon-bench-\(getpid())")
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        var csv = "uid,email,department\n"
        csv.reserveCapacity(accounts * 40)
        for index in 0..<accounts { csv += "a\(index),user\(index)@example.com,dept\(index % 50)\n" }
        try Data(csv.utf8).write(to: directory.appendingPathComponent("accounts.csv"))
        let config = """
        <Waveset>
          <Resource name='Bench' type='FlatFile'><ResourceAttribute name='file' value='accounts.csv'/><ResourceAttribute name='accountId' value='uid'/></Resource>
          <ReconcilePolicy name='Bench' resource='Bench'>
            <Correlation correlationRule='USER_EMAIL_MATCHES_ACCOUNT_EMAIL_CORR' confirmationRule='USER_EMAIL_MATCHES_ACCOUNT_EMAIL_CONF'/>
          </ReconcilePolicy>
        </Waveset>
        """
        let document = RuleLoader.load(Array(config.utf8), file: "bench.xml")
        let (library, _) = RuleLoader.link([document])
        let (deployment, problems) = DeploymentLoader.load([document], library: library)
        guard problems.isEmpty else { throw BenchmarkError("\(problems)") }

        let repository = try SQLiteRepository(path: directory.appendingPathComponent("recon.db").path)
        var users: [User] = []
        users.reserveCapacity(accounts)
        for index in 0..<accounts {
            let share = index % 20
            let name = share == 18 ? "a\(index)" : "user\(index)"
            users.append(User(name: name, attributes: ["email": .single("user\(index)@example.com")],
                              assignedResources: share == 18 ? ["Bench"] : [],
                              accounts: share < 18 ? [AccountLink(resource: "Bench", accountID: "a\(index)")] : []))
        }
        let importSeconds = try time { try repository.saveUsers(users) }
        users = []
        let engine = Engine(deployment: deployment, configDirectory: directory.path, repository: repository)
        var options = RunOptions()
        options.server = "bench"
        var rows = [Row(name: "import \(accounts) users", seconds: importSeconds, accounts: accounts, peakMegabytes: peakMegabytes())]
        for name in ["first full run", "second full run (unchanged)"] {
            var summary: RunSummary?
            let seconds = try time { summary = try engine.reconcile("Bench", options: options) }
            let expected = accounts / 20
            guard let summary, summary.status == "success", summary.situations[.found] == expected,
                  summary.situations[.unassigned] == expected, summary.situations[.confirmed] == accounts - 2 * expected
            else { throw BenchmarkError("unexpected result: \(String(describing: summary?.situations)) \(summary?.errors.prefix(3) ?? [])") }
            rows.append(Row(name: name, seconds: seconds, accounts: accounts, peakMegabytes: peakMegabytes()))
        }
        return rows
    }

    /// The process's peak resident memory so far.
    private func peakMegabytes() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}
