import Foundation
import Repository
import TestSupport

/// A full run of the generated deployment as operators run it (`recon` processes), on SQLite,
/// on PostgreSQL with one server, and on PostgreSQL with two servers sharing a run split into
/// buckets. The PostgreSQL server is a private one started for the benchmark, like the tests'.
/// Situation counts are checked.
struct ClusterBenchmark {
    let accounts: Int
    let buckets: Int
    let recon: URL

    struct Row {
        let name: String
        let importSeconds: Double
        let runSeconds: Double
        let peakMegabytes: Double
    }

    func run() throws -> [Row] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("recon-cluster-bench-\(getpid())")
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = SyntheticData(accounts: accounts)
        try data.writeFiles(directory)
        try Data("""
        <Waveset>
          <Resource name='Bench' type='FlatFile'><ResourceAttribute name='file' value='accounts.csv'/><ResourceAttribute name='accountId' value='uid'/></Resource>
          <ReconcilePolicy name='Bench' resource='Bench'>
            <Scheduling modes='FULL'/>
            <Correlation correlationRule='USER_EMAIL_MATCHES_ACCOUNT_EMAIL_CORR' confirmationRule='USER_EMAIL_MATCHES_ACCOUNT_EMAIL_CONF'/>
          </ReconcilePolicy>
        </Waveset>
        """.utf8).write(to: directory.appendingPathComponent("config.xml"))

        let postgres = try PostgresServer()
        var rows: [Row] = []
        let sqlite = "sqlite:" + directory.appendingPathComponent("recon.db").path
        rows.append(try measure("SQLite, 1 server", repository: sqlite, data: data, directory: directory, helpers: 0))
        rows.append(try measure("PostgreSQL, 1 server", repository: try database(postgres, "single"), data: data, directory: directory, helpers: 0))
        rows.append(try measure("PostgreSQL, 2 servers, \(buckets) buckets", repository: try database(postgres, "pair"), data: data,
                                directory: directory, helpers: 1))
        return rows
    }

    private func database(_ server: PostgresServer, _ name: String) throws -> String {
        try server.execute("CREATE DATABASE \(name)")
        return "postgres://\(PostgresServer.user)@127.0.0.1:\(server.port)/\(name)"
    }

    /// Imports the users, then times `recon run Bench` (split into buckets when helper servers
    /// run beside it).
    private func measure(_ name: String, repository url: String, data: SyntheticData, directory: URL, helpers: Int) throws -> Row {
        let repository = try openRepository(url)
        let importSeconds = try time { try data.importUsers(into: repository) }
        let common = ["--config", directory.path, "--repository", url]
        let helperProcesses = try (0..<helpers).map { index in
            try start(["serve", "--server", "helper\(index)", "--parallel", "1", "--interval", "0.1"] + common, directory: directory)
        }
        defer {
            for process in helperProcesses where process.isRunning {
                process.terminate()
                process.waitUntilExit()
            }
        }
        var arguments = ["run", "Bench", "--json", "--server", "main"] + common
        if helpers > 0 { arguments += ["--buckets", String(buckets)] }
        var output = Data()
        let seconds = try time {
            let output_ = Pipe()
            let process = try start(arguments, directory: directory, output: output_)
            output = output_.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
        }
        guard let summary = try JSONSerialization.jsonObject(with: output) as? [String: Any],
              let situations = summary["situations"] as? [String: Int] else {
            throw BenchmarkError("recon run printed no summary: \(String(decoding: output, as: UTF8.self))")
        }
        try data.check(situations, errors: (summary["errors"] as? [[String: Any]] ?? []).map { "\($0)" })
        return Row(name: name, importSeconds: importSeconds, runSeconds: seconds, peakMegabytes: childrenPeakMegabytes())
    }

    private func start(_ arguments: [String], directory: URL, output: Pipe? = nil) throws -> Process {
        let process = Process()
        process.executableURL = recon
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.standardOutput = output ?? FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// The largest peak resident memory of the `recon` processes ended so far.
    private func childrenPeakMegabytes() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_CHILDREN.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}
