import Connectors
import Deployment
import Foundation
import Repository
import XMLSource
import XPRESS
#if canImport(Glibc)
import CMalloc
#endif

/// How a reconciliation runs.
public struct RunOptions: Sendable {
    public enum Mode: String, Sendable { case full = "FULL", incremental = "INCREMENTAL" }
    public var mode: Mode = .full
    public var dryRun = false
    public var server: String = ProcessInfo.processInfo.hostName
    /// Called every few thousand accounts with (accounts examined so far).
    public var progress: (@Sendable (Int) -> Void)?
    /// Reconcile only these account ids (`recon index reconcile`); nil for the whole resource.
    public var accounts: Set<String>?
    /// Take this response instead of the policy's (`recon index repair`); it must be allowed
    /// for the account's situation.
    public var responseOverride: Response?
    /// The schedule slot (computed time) a scheduled run is for: refused when another server
    /// already started that slot.
    public var slot: Int64?
    /// Run the correlation rule for every account nobody claims, even an unchanged one whose
    /// situation the index could keep (`CorrelationReuse`): after users were changed other
    /// than through the engine, which cannot see that.
    public var correlatesAll = false
    public init() {}
}

/// The result of a run (engine spec section 5's JSON shape).
public struct RunSummary: Sendable {
    public var taskID: Int64?
    public var resource: String
    public var mode: RunOptions.Mode
    public var status: String
    public var dryRun: Bool
    public var cancelled = false
    public var situations: [Situation: Int] = [:]
    public var responses: [Response: Int] = [:]
    public var errors: [TaskError] = []
    public var details: [String] = []
}

extension RunSummary {
    /// The situation counts by name, as tasks store them.
    public var situationCounts: [String: Int] { Dictionary(uniqueKeysWithValues: situations.map { ($0.rawValue, $1) }) }
    /// The response counts by name, as tasks store them.
    public var responseCounts: [String: Int] { Dictionary(uniqueKeysWithValues: responses.map { ($0.rawValue, $1) }) }
}

/// The reconciliation engine: a loaded deployment, a repository, and the rules.
public final class Engine: Sendable {
    public let deployment: Deployment
    public let configDirectory: String
    public let repository: any IdentityRepository
    let options: EvaluationOptions

    public init(deployment: Deployment, configDirectory: String, repository: any IdentityRepository,
                options: EvaluationOptions = EvaluationOptions()) {
        self.deployment = deployment
        self.configDirectory = configDirectory
        self.repository = repository
        self.options = options
        ReleasedMemory.mapLargeAllocations()
    }

    /// The adapter of a configured resource.
    public func adapter(for resourceName: String) throws -> any ResourceAdapter {
        guard let resource = deployment.resources[resourceName] else {
            throw EngineError("no resource named '\(resourceName)' is configured (known: \(deployment.resources.keys.sorted().joined(separator: ", ")))")
        }
        return try Adapters.make(resource, configDirectory: configDirectory)
    }

    /// The effective policy of a resource.
    public func policy(for resourceName: String) throws -> EffectivePolicy {
        guard let resource = deployment.resources[resourceName] else { throw EngineError("no resource named '\(resourceName)' is configured") }
        return EffectivePolicy(resource: resource, deployment: deployment)
    }

    /// Reconciles one resource now.
    public func reconcile(_ resourceName: String, options runOptions: RunOptions = RunOptions()) throws -> RunSummary {
        let (resource, policy, adapter) = try prepare(resourceName)
        if runOptions.mode == .incremental && !resource.supportsIncremental {
            throw EngineError("resource '\(resourceName)' does not support incremental reconciliation")
        }
        let heartbeat = runOptions.dryRun ? nil : Heartbeat(repository: repository, server: runOptions.server)
        defer { heartbeat?.stop() }
        let taskID = runOptions.dryRun ? nil : try repository.startTask(name: "Reconcile", resource: resourceName,
                                                                          mode: runOptions.mode.rawValue, server: runOptions.server,
                                                                          slot: runOptions.slot)
        let outcome = execute(ReconciliationRun(engine: self, resource: resource, policy: policy, adapter: adapter, taskID: taskID,
                                                options: runOptions))
        ReleasedMemory.returnToSystem()
        repository.settle()  // the run's writes are in the database file before it is reported finished
        switch outcome {
        case .success(let summary):
            if let taskID { try finish(taskID, summary) }
            return summary
        case .failure(let failure):
            if let taskID { try? finish(taskID, failure.summary) }
            throw EngineError("reconciliation of '\(resourceName)' failed: \(failure.error)", summary: failure.summary)
        }
    }

    /// Why a run failed, and its summary so far marked failed.
    private struct RunFailure: Error {
        let error: any Error
        let summary: RunSummary
    }

    /// Executes `run`; the run (its tables of a million accounts) is gone when this returns.
    private func execute(_ run: consuming ReconciliationRun) -> Result<RunSummary, RunFailure> {
        do {
            return .success(try run.execute())
        } catch {
            var failed = run.summary
            failed.status = "failed"
            failed.errors.append(TaskError(accountID: nil, message: "\(error)"))
            return .failure(RunFailure(error: error, summary: failed))
        }
    }

    /// A configured resource, its effective policy and its adapter.
    func prepare(_ resourceName: String) throws -> (ResourceDefinition, EffectivePolicy, any ResourceAdapter) {
        guard let resource = deployment.resources[resourceName] else {
            throw EngineError("no resource named '\(resourceName)' is configured (known: \(deployment.resources.keys.sorted().joined(separator: ", ")))")
        }
        return (resource, EffectivePolicy(resource: resource, deployment: deployment), try Adapters.make(resource, configDirectory: configDirectory))
    }

    func finish(_ taskID: Int64, _ summary: RunSummary) throws {
        try repository.finishTask(taskID, status: summary.status, cancelled: summary.cancelled,
                                  situations: summary.situationCounts, responses: summary.responseCounts,
                                  errors: summary.errors, details: summary.details.isEmpty ? nil : summary.details.joined(separator: "\n"),
                                  setsResourceStatus: true)
    }

    /// An evaluator whose `print` output is collected by `log`.
    func evaluator(log: LogBuffer) -> Evaluator {
        var options = self.options
        options.traceSink = { line in log.append(line) }
        return Evaluator(library: deployment.library, options: options)
    }
}

/// Lines written by rules' `print` during a run, for the task's log.
final class LogBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.lock(); lines.append(line); lock.unlock() }
    func drain() -> [String] { lock.lock(); defer { lines = []; lock.unlock() }; return lines }
}

/// An engine failure for an operator.
public struct EngineError: Error, CustomStringConvertible {
    public let description: String
    public let summary: RunSummary?
    public init(_ description: String, summary: RunSummary? = nil) {
        self.description = description
        self.summary = summary
    }
}

/// Adapters for the resource types.
public enum Adapters {
    public static func make(_ resource: ResourceDefinition, configDirectory: String) throws -> any ResourceAdapter {
        func path(_ file: String) -> String { file.hasPrefix("/") ? file : configDirectory + "/" + file }
        let multi = resource.multiValuedAttributes
        let separator = resource.attribute("multiValueSeparator") ?? "|"
        switch resource.type {
        case .flatFile:
            return FlatFileAdapter(name: resource.name, file: path(resource.attribute("file") ?? ""),
                                   accountIdAttribute: resource.accountIdAttribute, multiValueSeparator: separator,
                                   multiValuedAttributes: multi, disabledAttribute: resource.attribute("disabledAttribute"),
                                   incremental: resource.supportsIncremental)
        case .databaseTable:
            return DatabaseTableAdapter(name: resource.name, file: path(resource.attribute("file") ?? ""),
                                        table: resource.attribute("table") ?? "", accountIdColumn: resource.accountIdAttribute,
                                        multiValueSeparator: separator, multiValuedAttributes: multi,
                                        disabledAttribute: resource.attribute("disabledAttribute"),
                                        modifiedColumn: resource.attribute("modifiedColumn"), incremental: resource.supportsIncremental)
        case .ldap:
            // The password comes from the file or, better, from the environment variable it names.
            var password = resource.attribute("password")
            if let variable = resource.attribute("passwordEnv"), !variable.isEmpty {
                guard let value = ProcessInfo.processInfo.environment[variable] else {
                    throw EngineError("resource '\(resource.name)': the environment variable \(variable) (passwordEnv) is not set")
                }
                password = value
            }
            let scope: LDAPAdapter.Scope = resource.attribute("scope")?.lowercased() == "one" ? .one : .sub
            guard let pageSize = Int(resource.attribute("pageSize") ?? "500"), pageSize > 0 else {
                throw EngineError("resource '\(resource.name)': pageSize must be a whole number above 0")
            }
            return LDAPAdapter(name: resource.name, url: resource.attribute("url") ?? "", bindDN: resource.attribute("bindDN"),
                               password: password, baseDN: resource.attribute("baseDN") ?? "", scope: scope,
                               filter: resource.attribute("filter"), objectClass: resource.attribute("objectClass") ?? "inetOrgPerson",
                               accountIdAttribute: resource.attribute("accountId") ?? "uid",
                               identityTemplate: resource.attribute("identityTemplate"),
                               disabledAttribute: resource.attribute("disabledAttribute"), disabledValue: resource.attribute("disabledValue"),
                               multiValuedAttributes: multi, pageSize: pageSize,
                               startTLS: resource.attribute("startTLS")?.lowercased() == "true",
                               caCertFile: resource.attribute("caCertFile").map(path), incremental: resource.supportsIncremental)
        }
    }
}

/// Memory the process has freed, handed back to the system.
public enum ReleasedMemory {
    /// Large blocks (a run's index state and claims: tens of megabytes at a million accounts)
    /// get memory of their own from the system, returned the moment they are freed. Left to
    /// itself, glibc raises its mmap threshold once the first such block is freed and puts the
    /// next ones on its heaps, where the peak then depends on which thread's heap they land in:
    /// `recon-bench reconcile --accounts 1000000` peaked at 264 MB with this setting, at 277-334 MB
    /// without. Set once per process; a fixed threshold also ends glibc's adjusting it. Every
    /// engine sets it; programs call it first thing, before memory is spent elsewhere.
    public static func mapLargeAllocations() { _ = largeAllocationsMapped }

    private static let largeAllocationsMapped: Void = {
        #if canImport(Glibc)
        _ = mallopt(M_MMAP_THRESHOLD, 1 << 20)
        #endif
    }()

    /// A run frees its tables (hundreds of megabytes at a million accounts), but the C
    /// allocator keeps freed memory mapped for reuse, in pieces the next run's different mix of
    /// allocations reuses badly: a server reconciling resource after resource would grow from
    /// run to run. Trimming after each run returns it.
    static func returnToSystem() {
        #if canImport(Glibc)
        _ = malloc_trim(0)
        #endif
    }
}
