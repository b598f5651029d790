import ArgumentParser
import Foundation
import Reconciler
import Repository

/// `recon-bench`: the project's performance figures, each against a baseline measured in the
/// same run.
@main
struct ReconBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recon-bench",
        abstract: "Measure the project against baselines taken in the same run (use a release build).",
        subcommands: [Interpreter.self, Lint.self, Reconcile.self, Cluster.self])

    struct Cluster: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cluster", abstract: "A full run as `recon` processes: SQLite, PostgreSQL with one server, PostgreSQL with two servers sharing a bucketed run (needs recon built beside recon-bench, and PostgreSQL installed).")

        @Option(help: "Users and accounts.") var accounts = 1_000_000
        @Option(help: "Buckets of the two-server run.") var buckets = 8

        func run() throws {
            let recon = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("recon")
            guard FileManager.default.isExecutableFile(atPath: recon.path) else { throw BenchmarkError("build recon first: no \(recon.path)") }
            let rows = try ClusterBenchmark(accounts: accounts, buckets: buckets, recon: recon).run()
            print("repository and servers                  import s     run s   accounts/s   peak MB (largest recon process)")
            for row in rows {
                print(row.name.padding(toLength: 38, withPad: " ", startingAt: 0)
                      + String(format: "%9.2f  %8.2f  %11.0f  %8.0f", row.importSeconds, row.runSeconds, Double(accounts) / row.runSeconds, row.peakMegabytes))
            }
        }
    }

    struct Reconcile: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reconcile", abstract: "Reconciliation of a generated deployment on FlatFile and DatabaseTable resources against the sqlite3 floor (situation counts checked).")

        @Option(help: "Users and accounts.") var accounts = 100_000
        @Option(help: "Resource types to reconcile: FlatFile, DatabaseTable (comma-separated).") var kinds = "FlatFile,DatabaseTable"
        @Option(help: "Measure this many times and print each step's fastest (shared machines are noisy).") var `repeat` = 1

        func run() throws {
            SQLiteLibrary.configure()
            ReleasedMemory.mapLargeAllocations()
            let kinds = try kinds.split(separator: ",").map { name in
                guard let kind = ReconcileBenchmark.Kind(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("unknown resource type '\(name)'; use FlatFile or DatabaseTable")
                }
                return kind
            }
            // A step measured more than once (the floor twice a round; every step with
            // --repeat) shows its fastest time and its largest peak.
            var rows: [ReconcileBenchmark.Row] = []
            for _ in 0..<max(1, `repeat`) {
                for row in try ReconcileBenchmark(accounts: accounts, kinds: kinds).run() {
                    if let index = rows.firstIndex(where: { $0.name == row.name }) {
                        if row.seconds < rows[index].seconds { (rows[index].seconds, rows[index].cpuSeconds) = (row.seconds, row.cpuSeconds) }
                        rows[index].peakMegabytes = max(rows[index].peakMegabytes, row.peakMegabytes)
                    } else {
                        rows.append(row)
                    }
                }
            }
            let floor = rows.first?.seconds ?? 1
            print("step                                              seconds   accounts/s   x floor   peak MB    cpu s")
            for row in rows {
                print(row.name.padding(toLength: 48, withPad: " ", startingAt: 0)
                      + String(format: "%10.2f  %11.0f  %8.1f  %8.0f  %7.2f", row.seconds, Double(row.accounts) / row.seconds,
                               row.seconds / floor, row.peakMegabytes, row.cpuSeconds))
            }
        }
    }

    struct Lint: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "lint", abstract: "rulecheck against xmllint --noout over the same files (needs rulecheck built beside recon-bench).")

        @Option(help: "Generated rule files.") var files = 5_000
        @Option(help: "A folder of real files to lint as well.") var corpus: String?

        func run() throws {
            let rows = try LintBenchmark(fileCount: files, corpus: corpus).run()
            print("files                                   count   rulecheck s   xmllint s   rulecheck/xmllint")
            for row in rows {
                print(row.name.padding(toLength: 38, withPad: " ", startingAt: 0)
                      + String(format: "%6d  %12.3f  %10.3f  %12.2fx", row.files, row.rulecheckSeconds, row.xmllintSeconds, row.ratio))
            }
        }
    }

    struct Interpreter: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "interpreter", abstract: "Evaluations per second of the standard rules against the same logic in Swift.")

        @Option(help: "Evaluations per rule in each round.") var iterations = 500_000
        @Option(help: "Rounds; XPRESS and Swift alternate, and each keeps its fastest round.") var rounds = 5
        @Option(help: "Measure only the rules whose name contains this text (to profile one).") var only: String?

        func run() throws {
            let rows = try InterpreterBenchmark(iterations: iterations, rounds: rounds, only: only).run()
            print("rule                                      XPRESS eval/s     Swift eval/s   Swift/XPRESS")
            for row in rows {
                print(row.name.padding(toLength: 40, withPad: " ", startingAt: 0)
                      + String(format: "%15.0f  %15.0f  %12.1fx", row.xpressPerSecond, row.swiftPerSecond, row.ratio))
            }
        }
    }
}
