import ArgumentParser
import Dispatch
import Foundation
import Reconciler
import XPRESS

extension ReconCommand {
    struct Schedule: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "schedule", abstract: "The next scheduled runs of a resource (mode and time), after the repetition rule.")
        @OptionGroup var global: GlobalOptions
        @Argument var resource: String
        @Option(help: "List runs after this time (ISO-8601; default now).") var from: String?
        @Option(help: "How many runs.") var count = 10

        func run() throws {
            let engine = try global.engine()
            guard engine.deployment.resources[resource] != nil else { throw usage("no resource named '\(resource)' is configured") }
            var start = currentMillisNow()
            if let from {
                guard let parsed = CivilTime.parse(from, zone: TimeZone(identifier: "UTC")!) else {
                    throw usage("--from '\(from)' is not an ISO-8601 time (2026-11-21T02:00:00Z)")
                }
                start = parsed
            }
            let runs = try Scheduler(engine: engine).upcoming(resource, after: start, count: max(0, count))
            if global.json {
                printJSON(.list(runs.map { .map([("mode", .string($0.mode.rawValue)), ("at", .string(CivilTime.isoString(millis: $0.at)))]) }))
                return
            }
            if runs.isEmpty { print("\(resource) has no scheduled runs (modes NONE, or no schedule)") }
            for run in runs {
                let moved = run.at != run.computed ? "  (computed \(CivilTime.isoString(millis: run.computed)), moved by the repetition rule)" : ""
                print("\(pad(run.mode.rawValue, 12)) \(CivilTime.isoString(millis: run.at))\(moved)")
            }
        }
    }

    struct Serve: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "serve", abstract: "The scheduler daemon: runs due reconciliations of the resources whose policy names this server (or none).",
            discussion: "SIGHUP reloads the configuration (an invalid one is refused and the old one kept); SIGTERM stops cleanly, a run in progress ending at an account boundary.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Resources reconciled at once.") var parallel = 2
        @Option(help: "Seconds between checks of the schedules.") var interval = 1.0

        func run() throws {
            let log: @Sendable (String) -> Void = { line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
            let daemon = try Daemon(engine: global.engine(), server: global.serverName, parallelism: parallel, log: log)
            log("recon serve: server \(global.serverName) watching \(global.configDirectory)")
            let queue = DispatchQueue(label: "recon.serve.signals")
            let global = self.global
            signal(SIGHUP, SIG_IGN)
            signal(SIGTERM, SIG_IGN)
            signal(SIGINT, SIG_IGN)
            let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: queue)
            hangup.setEventHandler {
                do { daemon.reload(try global.engine()) } catch { log("recon serve: the new configuration is invalid; keeping the old one") }
            }
            hangup.resume()
            let stop = DispatchSemaphore(value: 0)
            var terminations: [DispatchSourceSignal] = []
            for number in [SIGTERM, SIGINT] {
                let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
                source.setEventHandler { stop.signal() }
                source.resume()
                terminations.append(source)
            }
            let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "recon.serve.ticks"))
            timer.schedule(deadline: .now(), repeating: interval)
            timer.setEventHandler { daemon.tick() }
            timer.resume()
            stop.wait()
            timer.cancel()
            log("recon serve: stopping; runs in progress end at the next account boundary")
            daemon.stop()
            withExtendedLifetime((hangup, terminations)) {}
        }
    }
}

func currentMillisNow() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
