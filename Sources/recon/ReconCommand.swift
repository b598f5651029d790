import ArgumentParser
import Connectors
import Deployment
import Foundation
import Reconciler
import Repository
import RuleCheck
import XMLSource
import XPRESS

/// `recon`: the reconciliation engine's command line (engine spec section 5).
@main
struct ReconCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recon",
        abstract: "Reconcile identity repository users with the accounts on resources.",
        discussion: "Exit codes: 0 success, 1 the operation ran but failed or completed with errors, 2 usage or configuration error.",
        subcommands: [Users.self, Run.self, Status.self, Cancel.self, Tasks.self, Index.self, Policy.self, Schedule.self, Serve.self,
                      Explore.self, Worklist.self, Approve.self, Reject.self])

    /// Global options may come before the command words (`recon --config Samples run HR`);
    /// the parser expects them after, so they are moved there.
    static func movingGlobalOptionsLast(_ arguments: [String]) -> [String] {
        let withValue: Set<String> = ["--config", "--repository", "--server", "--server-timeout"]
        var leading: [String] = [], rest: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if withValue.contains(argument), index + 1 < arguments.count, rest.isEmpty {
                leading += [argument, arguments[index + 1]]
                index += 2
                continue
            }
            if rest.isEmpty && (argument == "--json" || withValue.contains(where: { argument.hasPrefix($0 + "=") })) {
                leading.append(argument)
            } else {
                rest.append(argument)
            }
            index += 1
        }
        return rest + leading
    }

    /// Usage errors exit with 2, as configuration errors do (engine spec section 5).
    static func main() {
        SQLiteLibrary.configure()
        ReleasedMemory.mapLargeAllocations()
        do {
            var command = try parseAsRoot(movingGlobalOptionsLast(Array(CommandLine.arguments.dropFirst())))
            try command.run()
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}

/// Options every command takes, before or after the command words.
struct GlobalOptions: ParsableArguments {
    @Option(name: .customLong("config"), help: "The configuration directory.") var configDirectory = "."
    @Option(help: "The repository: sqlite:PATH, or postgres://USER@HOST:PORT/DATABASE shared by clustered servers (the password from PGPASSWORD or the .pgpass-format file PGPASSFILE names, never in the address).")
    var repository = "sqlite:recon.db"
    @Option(help: "This server's name (default: the host name).") var server: String?
    @Option(name: .customLong("server-timeout"), help: "Seconds a server may stay silent before its running tasks count as failed and its work goes to another server.")
    var serverTimeout = 30.0
    @Flag(help: "Machine output on stdout (JSON); logs go to stderr.") var json = false

    var serverName: String { server ?? ProcessInfo.processInfo.hostName }

    func openRepository() throws -> any IdentityRepository {
        guard serverTimeout > 0 else { throw usage("--server-timeout must be above 0 seconds") }
        do { return try Repository.openRepository(repository, serverTimeout: Int64(serverTimeout * 1000)) } catch { throw usage("\(error)") }
    }

    /// Loads and validates the configuration: rejected whole, with every problem printed, when
    /// anything is wrong (the errors rulecheck reports in the engine's classes).
    func engine() throws -> Engine {
        let (deployment, problems) = ConfigurationLoader.load(directory: configDirectory)
        if !problems.isEmpty {
            for problem in problems { writeError(problem.description) }
            writeError("recon: the configuration in \(configDirectory) has \(problems.count) error\(problems.count == 1 ? "" : "s"); nothing was changed")
            throw ExitCode(2)
        }
        return Engine(deployment: deployment, configDirectory: configDirectory, repository: try openRepository())
    }
}

/// Loads a configuration directory the way the engine accepts it.
enum ConfigurationLoader {
    /// The rulecheck ids whose errors make the engine reject a configuration.
    static func rejects(_ id: String) -> Bool {
        id.hasPrefix("XML") || id.hasPrefix("XP01") || ["XP0202", "XP0203", "XP0204", "XP0401", "XP0402", "XP0501", "RC0001"].contains(id)
    }

    /// The deployment in `directory` and the problems that reject it; every file is read and
    /// parsed once, by the linter, whose loaders are the engine's.
    static func load(directory: String) -> (Deployment, [Diagnostic]) {
        do {
            let report = try Linter.lint(paths: [directory])
            return (report.deployment, report.findings.filter { $0.severity == .error && rejects($0.id) })
        } catch {
            return (.empty, [Diagnostic(id: "RC0001", message: "\(error)", location: SourcePosition(file: directory, line: 1, column: 1))])
        }
    }
}

func usage(_ message: String) -> ExitCode {
    writeError("recon: \(message)")
    return ExitCode(2)
}

func writeError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

func printJSON(_ value: Value) {
    print(ValueJSON.encode(value, pretty: true))
}

func iso(_ millis: Int64?) -> Value {
    millis.map { .string(CivilTime.isoString(millis: $0)) } ?? .null
}

// MARK: users

extension ReconCommand {
    struct Users: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "users", abstract: "Import, list and show repository users.",
                                                        subcommands: [Import.self, List.self, Show.self])

        struct Import: ParsableCommand {
            static let configuration = CommandConfiguration(commandName: "import", abstract: "Import <User> objects (XML) or CSV (name, assignedResources, accounts, attributes).")
            @OptionGroup var global: GlobalOptions
            @Argument(help: "XML or CSV files.") var files: [String]

            func run() throws {
                var imported = 0
                // One transaction: a file that fails part-way leaves the repository as it was.
                try global.openRepository().write { writer in
                    for file in files {
                        do {
                            try UserImport.forEachBatch(of: file) { users in
                                try writer.saveUsers(users)
                                imported += users.count
                            }
                        } catch let error as UserImport.ImportError {
                            throw usage("\(error)")
                        }
                    }
                }
                if global.json { printJSON(.map([("imported", .int(Int64(imported)))])) } else { print("imported \(imported) users") }
            }
        }

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(commandName: "list", abstract: "List users with attributes, assigned resources and links.")
            @OptionGroup var global: GlobalOptions
            func run() throws {
                let users = try global.openRepository().allUsers()
                if global.json { printJSON(.list(users.map(UserImport.json))) } else {
                    for user in users {
                        print("\(user.name)  resources: \(user.assignedResources.sorted().joined(separator: ", "))  accounts: \(user.accounts.sorted().map { "\($0.resource):\($0.accountID)" }.joined(separator: ", "))")
                    }
                }
            }
        }

        struct Show: ParsableCommand {
            static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one user.")
            @OptionGroup var global: GlobalOptions
            @Argument var name: String
            func run() throws {
                guard let user = try global.openRepository().user(named: name) else {
                    writeError("recon: no user named '\(name)'")
                    throw ExitCode(1)
                }
                if global.json { printJSON(UserImport.json(user)); return }
                print("user \(user.name)")
                for (key, value) in user.attributes.sorted(by: { $0.key < $1.key }) { print("  \(key): \(value.values.joined(separator: " | "))") }
                print("  assigned resources: \(user.assignedResources.sorted().joined(separator: ", "))")
                for link in user.accounts.sorted() { print("  account \(link.resource):\(link.accountID)") }
            }
        }
    }
}

// MARK: run, status, cancel, tasks

extension ReconCommand {
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "run", abstract: "Reconcile resources now and print the summary.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Resources to reconcile (or --all).") var resources: [String] = []
        @Flag(help: "Every configured resource whose policy is not disabled (modes NONE), in name order.") var all = false
        @Flag(help: "A full reconciliation (the default).") var full = false
        @Flag(help: "Only what changed since the last run.") var incremental = false
        @Flag(name: .customLong("dry-run"), help: "Classify and report the responses it would take; change nothing.") var dryRun = false
        @Flag(name: .customLong("correlate-all"), help: "Run the correlation rule for every unowned account, even an unchanged one that could keep its situation (after users were changed other than through recon).")
        var correlateAll = false
        @Option(help: "Split a full run into this many buckets that every server sharing the repository helps with (default: the policy's buckets).")
        var buckets: Int?

        func validate() throws {
            if full && incremental { throw ValidationError("choose --full or --incremental, not both") }
            if let buckets, buckets < 1 || buckets > 1024 { throw ValidationError("--buckets must be between 1 and 1024") }
            if buckets ?? 1 > 1 && (incremental || dryRun) { throw ValidationError("only a full run that is not a dry run can be split into buckets") }
            if resources.isEmpty && !all { throw ValidationError("name a resource to reconcile, or --all") }
        }

        func run() throws {
            let engine = try global.engine()
            let names = all ? engine.deployment.resources.keys.sorted().filter { (try? engine.policy(for: $0).modes.value) != ReconcileModes.none } : resources
            for name in names where engine.deployment.resources[name] == nil {
                throw usage("no resource named '\(name)' is configured (known: \(engine.deployment.resources.keys.sorted().joined(separator: ", ")))")
            }
            var failed = false
            var summaries: [Value] = []
            for name in names {
                var options = RunOptions()
                options.mode = incremental ? .incremental : .full
                options.dryRun = dryRun
                options.correlatesAll = correlateAll
                options.server = global.serverName
                let progress = Progress(resource: name)
                options.progress = { count in progress.update(count) }
                let summary: RunSummary
                do {
                    let policyBuckets = incremental || dryRun ? 1 : try engine.policy(for: name).buckets.value
                    let split = buckets ?? policyBuckets
                    summary = split > 1 ? try engine.reconcileBucketed(name, buckets: split, options: options) : try engine.reconcile(name, options: options)
                } catch let error as EngineError {
                    progress.done()
                    writeError("recon: \(error.description)")
                    if let partial = error.summary { summaries.append(SummaryJSON.run(partial)) }
                    failed = true
                    continue
                } catch {
                    progress.done()
                    writeError("recon: \(error)")
                    failed = true
                    continue
                }
                progress.done()
                if summary.status != "success" { failed = true }
                summaries.append(SummaryJSON.run(summary))
                if !global.json { SummaryJSON.printText(summary) }
            }
            if global.json { printJSON(summaries.count == 1 && !all ? summaries[0] : .list(summaries)) }
            if failed { throw ExitCode(1) }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "status", abstract: "Resources with their last run and status, or one resource's summary.")
        @OptionGroup var global: GlobalOptions
        @Argument var resource: String?
        @Flag(help: "The servers sharing the repository instead: each with its heartbeat and what it runs.") var servers = false

        func run() throws {
            let engine = try global.engine()
            if servers { return try showServers(engine.repository) }
            let statuses = try engine.repository.resourceStatuses()
            let names = resource.map { [$0] } ?? engine.deployment.resources.keys.sorted()
            var rows: [Value] = []
            for name in names {
                guard engine.deployment.resources[name] != nil else { throw usage("no resource named '\(name)' is configured") }
                let policy = try engine.policy(for: name)
                let status = policy.modes.value == .none ? "disabled" : statuses[name]?.status ?? "unknown"
                let last = try statuses[name]?.task.flatMap { try engine.repository.task(id: $0) }
                let next = try Scheduler(engine: engine).nextRuns(name, after: currentMillisNow())
                var entries: [(String, Value)] = [("resource", .string(name)), ("status", .string(status)),
                                                  ("lastRun", iso(last?.started)), ("lastTask", last.map { .int($0.id) } ?? .null),
                                                  ("nextFull", iso(next.full?.at)), ("nextIncremental", iso(next.incremental?.at))]
                if resource != nil, let last { entries.append(("summary", SummaryJSON.task(last))) }
                rows.append(.map(entries))
                if !global.json {
                    print("\(pad(name, 16)) \(pad(status, 22)) last run: \(pad(last.map { CivilTime.isoString(millis: $0.started) } ?? "never", 24)) next full: \(pad(next.full.map { CivilTime.isoString(millis: $0.at) } ?? "-", 24)) next incremental: \(next.incremental.map { CivilTime.isoString(millis: $0.at) } ?? "-")")
                    if resource != nil, let last { SummaryJSON.printText(last) }
                }
            }
            if global.json { printJSON(resource == nil ? .list(rows) : rows[0]) }
            if !global.json && resource == nil, try !engine.repository.servers().isEmpty {
                print("")
                try showServers(engine.repository)
            }
        }

        /// Each server: alive (heartbeat within the server timeout), silent or stopped, and its tasks.
        private func showServers(_ repository: any IdentityRepository) throws {
            let now = currentMillisNow()
            var rows: [Value] = []
            for server in try repository.servers() {
                let state = server.stopped != nil ? "stopped" : now - server.heartbeat <= repository.serverTimeout ? "alive" : "silent"
                let running = server.running.map { "\($0.resource) \($0.mode) (task \($0.task))" }
                rows.append(.map([("server", .string(server.name)), ("host", .string(server.host)), ("pid", .int(server.pid)),
                                  ("state", .string(state)), ("heartbeat", iso(server.heartbeat)), ("started", iso(server.started)),
                                  ("running", .list(server.running.map { .map([("task", .int($0.task)), ("resource", .string($0.resource)),
                                                                               ("mode", .string($0.mode))]) }))]))
                if !global.json {
                    print("server \(pad(server.name, 16)) \(pad(state, 8)) host \(server.host) pid \(server.pid)  heartbeat \(CivilTime.isoString(millis: server.heartbeat)) (\((now - server.heartbeat) / 1000) s ago)  running: \(running.isEmpty ? "nothing" : running.joined(separator: ", "))")
                }
            }
            if global.json { printJSON(.list(rows)) }
        }
    }

    struct Cancel: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel a resource's running reconciliation, whichever process runs it.")
        @OptionGroup var global: GlobalOptions
        @Argument var resource: String
        func run() throws {
            guard let task = try global.openRepository().requestCancel(resource: resource) else {
                writeError("recon: no reconciliation of '\(resource)' is running")
                throw ExitCode(1)
            }
            if global.json { printJSON(.map([("taskId", .int(task)), ("cancelRequested", .bool(true))])) } else {
                print("asked task \(task) to stop at the next account boundary")
            }
        }
    }

    struct Tasks: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "tasks", abstract: "Submitted tasks, newest first.")
        @OptionGroup var global: GlobalOptions
        @Option var resource: String?
        @Option var name: String?
        func run() throws {
            let tasks = try global.openRepository().tasks(resource: resource, name: name, limit: 200)
            if global.json { printJSON(.list(tasks.map(SummaryJSON.taskRow))); return }
            for task in tasks {
                print("\(task.id)  \(task.name)  \(task.resource)  \(task.mode)  \(task.status)\(task.cancelled ? " (cancelled)" : "")  \(CivilTime.isoString(millis: task.started))")
            }
        }
    }
}

/// Runs one (partial) reconciliation and prints its summary; exit 1 when it did not succeed.
func reconcile(_ engine: Engine, _ resource: String, _ options: RunOptions, json: Bool) throws {
    do {
        let summary = try engine.reconcile(resource, options: options)
        if json { printJSON(SummaryJSON.run(summary)) } else { SummaryJSON.printText(summary) }
        if summary.status != "success" { throw ExitCode(1) }
    } catch let error as EngineError {
        writeError("recon: \(error.description)")
        throw ExitCode(1)
    }
}

/// A progress line on a terminal (rate and count); nothing when stderr is not a terminal.
final class Progress: @unchecked Sendable {
    private let resource: String
    private let started = Date()
    private let enabled = isatty(STDERR_FILENO) == 1
    private var shown = false

    init(resource: String) { self.resource = resource }

    func update(_ count: Int) {
        guard enabled else { return }
        let rate = Double(count) / max(Date().timeIntervalSince(started), 0.001)
        FileHandle.standardError.write(Data("\r\(resource): \(count) accounts, \(Int(rate))/s   ".utf8))
        shown = true
    }

    func done() {
        if shown { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
