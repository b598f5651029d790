import Deployment
import Foundation
import Repository
import Testing
import XPRESS
@testable import Reconciler

private func millis(_ iso: String) -> Int64 { CivilTime.parse(iso, zone: TimeZone(identifier: "UTC")!)! }
private func iso(_ millis: Int64) -> String { CivilTime.isoString(millis: millis) }

private func series(every: Int = 1, _ unit: ScheduleDefinition.Unit, start: String, zone: String = "UTC") -> ScheduleSeries {
    let timeZone = TimeZone(identifier: zone)!
    return ScheduleSeries(ScheduleDefinition(every: every, unit: unit, startMillis: CivilTime.parse(start, zone: timeZone)!,
                                             timeZone: timeZone, repetitionRule: nil))
}

@Suite struct ScheduleArithmeticTests {
    @Test func monthsClampToTheLastDayAndComeFromTheStart() {
        let monthly = series(.months, start: "2026-01-31T09:00:00")
        #expect((0...4).map { iso(monthly.point($0)) } == ["2026-01-31T09:00:00.000Z", "2026-02-28T09:00:00.000Z", "2026-03-31T09:00:00.000Z",
                                                          "2026-04-30T09:00:00.000Z", "2026-05-31T09:00:00.000Z"])
        #expect(iso(series(every: 12, .months, start: "2024-02-29T00:00:00").point(1)) == "2025-02-28T00:00:00.000Z")
    }

    @Test func daysKeepTheWallClockAcrossDaylightSaving() {
        let daily = series(.days, start: "2026-03-27T02:30:00", zone: "Europe/Paris")
        // 29 March 02:30 does not exist in Paris: it moves forward to 03:30 (+02:00).
        #expect((0...3).map { iso(daily.point($0)) } == ["2026-03-27T01:30:00.000Z", "2026-03-28T01:30:00.000Z",
                                                        "2026-03-29T01:30:00.000Z", "2026-03-30T00:30:00.000Z"])
        // 25 October 02:30 happens twice: the first occurrence (+02:00) is taken.
        let autumn = series(.days, start: "2026-10-24T02:30:00", zone: "Europe/Paris")
        #expect(iso(autumn.point(1)) == "2026-10-25T00:30:00.000Z")
        #expect(iso(autumn.point(2)) == "2026-10-26T01:30:00.000Z")
    }

    @Test func weeksKeepTheWallClockAndHoursAreAbsolute() {
        let weekly = series(.weeks, start: "2026-03-23T09:00:00", zone: "Europe/Paris")
        #expect(iso(weekly.point(1)) == "2026-03-30T07:00:00.000Z")
        let hourly = series(every: 24, .hours, start: "2026-03-28T02:30:00", zone: "Europe/Paris")
        #expect(iso(hourly.point(1)) == "2026-03-29T01:30:00.000Z")
        let minutes = series(every: 90, .minutes, start: "2026-11-21T00:00:00")
        #expect(iso(minutes.next(after: millis("2026-11-21T02:59:59Z"))) == "2026-11-21T03:00:00.000Z")
    }

    @Test(arguments: [ScheduleDefinition.Unit.minutes, .hours, .days, .weeks, .months])
    func nextAfterIsTheFirstLaterPoint(_ unit: ScheduleDefinition.Unit) {
        let schedule = series(every: 3, unit, start: "2026-01-31T23:45:00", zone: "America/New_York")
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            let moment = schedule.schedule.startMillis + Int64.random(in: -86_400_000...(800 * 86_400_000), using: &generator)
            let next = schedule.next(after: moment)
            #expect(next > moment)
            let k = schedule.index(after: moment)
            #expect(schedule.point(k) == next)
            #expect(k == 0 || schedule.point(k - 1) <= moment)
        }
    }
}

/// A deployment whose FlatFile policy schedules runs; `rules` adds repetition rules.
private func scheduled(_ scheduling: String, rules: String = "", resources: [String] = ["HR"], server: String? = nil) throws -> Deployed {
    var files: [String: String] = [:]
    var config = "<Waveset>\n"
    for resource in resources {
        config += "<Resource name='\(resource)' type='FlatFile'><ResourceAttribute name='file' value='\(resource).csv'/><ResourceAttribute name='accountId' value='uid'/></Resource>\n"
        files["\(resource).csv"] = "uid,email\na,a@x\n"
    }
    config += "<ReconcilePolicy name='Files' resourceType='FlatFile'>\(scheduling)</ReconcilePolicy>\n"
    config += "<ReconcilePolicy name='Default'><Scheduling\(server.map { " server='\($0)'" } ?? "")/></ReconcilePolicy>\n"
    files["config.xml"] = config + rules + "</Waveset>"
    return try Deployed(files)
}

@Suite struct RepetitionRuleTests {
    static let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Samples/rules/Scheduling.xml")

    @Test(arguments: ["Move Saturday Runs To 10:00", "Move Saturday Runs To 10:00 UTC (JavaScript)"])
    func aSaturdayRunMovesTo10WithoutMovingTheSeries(_ rule: String) throws {
        let rules = String(decoding: try Data(contentsOf: Self.samples), as: UTF8.self)
            .replacingOccurrences(of: "<?xml version='1.0' encoding='UTF-8'?>", with: "")
            .replacingOccurrences(of: "<!DOCTYPE Waveset PUBLIC 'waveset.dtd' 'waveset.dtd'>", with: "")
            .replacingOccurrences(of: "<Waveset>", with: "").replacingOccurrences(of: "</Waveset>", with: "")
        // Daily at 02:00 UTC from Friday 20 November 2026.
        let deployed = try scheduled("<Scheduling modes='FULL'><FullSchedule every='1' unit='days' start='2026-11-20T02:00:00' repetitionRule='\(rule)'/></Scheduling>",
                                     rules: rules)
        let runs = try Scheduler(engine: deployed.engine).upcoming("HR", after: millis("2026-11-19T00:00:00Z"), count: 3)
        #expect(runs.map { iso($0.at) } == ["2026-11-20T02:00:00.000Z", "2026-11-21T10:00:00.000Z", "2026-11-22T02:00:00.000Z"])
        #expect(runs.map { iso($0.computed) } == ["2026-11-20T02:00:00.000Z", "2026-11-21T02:00:00.000Z", "2026-11-22T02:00:00.000Z"])
    }

    @Test func aFailingOrNonDateRuleKeepsTheComputedTimeAndIsLogged() throws {
        let rules = """
        <Rule name='Broken' subtype='SUBTYPE_TASKSCHEDULE_REPETITION_RULE'><RuleArgument name='calculatedNextDate'/><div><i>1</i><i>0</i></div></Rule>
        <Rule name='Text' subtype='SUBTYPE_TASKSCHEDULE_REPETITION_RULE'><RuleArgument name='calculatedNextDate'/><s>tomorrow</s></Rule>
        """
        for rule in ["Broken", "Text"] {
            let deployed = try scheduled("<Scheduling modes='FULL'><FullSchedule every='1' unit='days' start='2026-11-20T02:00:00' repetitionRule='\(rule)'/></Scheduling>", rules: rules)
            let lines = LogBuffer()
            var scheduler = Scheduler(engine: deployed.engine)
            scheduler.log = { lines.append($0) }
            let runs = try scheduler.upcoming("HR", after: millis("2026-11-19T00:00:00Z"), count: 2)
            #expect(runs.map { $0.at } == runs.map { $0.computed })
            let logged = lines.drain()
            #expect(logged.count == 2 && logged[0].contains("repetition rule '\(rule)'"), "\(logged)")
        }
    }

    @Test func fullAndIncrementalMergeAndTheFullRunWinsATie() throws {
        let deployed = try scheduled("""
        <Scheduling modes='BOTH'><FullSchedule every='1' unit='days' start='2026-11-20T00:00:00'/>
          <IncrementalSchedule every='8' unit='hours' start='2026-11-20T00:00:00'/></Scheduling>
        """)
        let runs = try Scheduler(engine: deployed.engine).upcoming("HR", after: millis("2026-11-19T23:00:00Z"), count: 4)
        #expect(runs.map { "\($0.mode.rawValue) \(iso($0.at))" } == [
            "FULL 2026-11-20T00:00:00.000Z", "INCREMENTAL 2026-11-20T08:00:00.000Z",
            "INCREMENTAL 2026-11-20T16:00:00.000Z", "FULL 2026-11-21T00:00:00.000Z",
        ])
        let none = try scheduled("<Scheduling modes='NONE'><FullSchedule every='1' unit='days' start='2026-11-20T00:00:00'/></Scheduling>")
        #expect(try Scheduler(engine: none.engine).upcoming("HR", after: 0, count: 3).isEmpty)
    }
}

/// A clock tests move by hand.
final class FakeClock: @unchecked Sendable {
    private let lock = NSLock()
    private var now: Int64
    init(_ iso: String) { now = millis(iso) }
    func read() -> Int64 { lock.lock(); defer { lock.unlock() }; return now }
    func set(_ iso: String) { lock.lock(); now = millis(iso); lock.unlock() }
}

@Suite struct DaemonTests {
    @Test func twoResourcesRunOnAFakeClockAndMissedSlotsRunOnce() throws {
        let deployed = try scheduled("<Scheduling modes='INCREMENTAL'><IncrementalSchedule every='1' unit='minutes' start='2026-11-20T00:00:00'/></Scheduling>",
                                     resources: ["HR", "Directory"])
        let clock = FakeClock("2026-11-20T00:00:30Z")
        let daemon = try Daemon(engine: deployed.engine, server: "test", parallelism: 2, clock: clock.read, log: { _ in })
        #expect(daemon.tick().map(\.0).sorted() == ["Directory", "HR"])
        daemon.waitForRuns()
        #expect(daemon.tick().isEmpty, "each slot runs once")
        clock.set("2026-11-20T00:05:10Z")  // four slots missed
        #expect(daemon.tick().count == 2)
        daemon.waitForRuns()
        #expect(daemon.tick().isEmpty)
        let tasks = try deployed.repository.tasks(resource: nil, name: "Reconcile", limit: 10)
        #expect(tasks.count == 4 && tasks.allSatisfy { $0.status == "success" && $0.mode == "INCREMENTAL" })
        // A restarted daemon does not rerun what already ran.
        let restarted = try Daemon(engine: deployed.engine, server: "test", clock: clock.read, log: { _ in })
        #expect(restarted.tick().isEmpty)
    }

    @Test func parallelismAndServersLimitWhatRuns() throws {
        let deployed = try scheduled("<Scheduling modes='FULL'><FullSchedule every='1' unit='hours' start='2026-11-20T00:00:00'/></Scheduling>",
                                     resources: ["A", "B", "C"])
        let clock = FakeClock("2026-11-20T00:00:00Z")
        let one = try Daemon(engine: deployed.engine, server: "test", parallelism: 1, clock: clock.read, log: { _ in })
        #expect(one.tick().count == 1)
        one.waitForRuns()
        #expect(one.tick().count == 1)
        one.waitForRuns()
        let elsewhere = try scheduled("<Scheduling modes='FULL'><FullSchedule every='1' unit='hours' start='2026-11-20T00:00:00'/></Scheduling>",
                                      server: "recon-2")
        #expect(try Daemon(engine: elsewhere.engine, server: "recon-1", clock: clock.read, log: { _ in }).tick().isEmpty)
        #expect(try Daemon(engine: elsewhere.engine, server: "recon-2", clock: clock.read, log: { _ in }).tick().count == 1)
    }

    @Test func stopCancelsARunAtAnAccountBoundary() throws {
        let rows = (0..<30_000).map { "u\($0),u\($0)@x" }.joined(separator: "\n")
        let deployed = try scheduled("<Scheduling modes='FULL'><FullSchedule every='1' unit='days' start='2026-11-20T00:00:00'/></Scheduling>")
        try Data("uid,email\n\(rows)\n".utf8).write(to: deployed.directory.appendingPathComponent("HR.csv"))
        let clock = FakeClock("2026-11-20T00:00:01Z")
        let daemon = try Daemon(engine: deployed.engine, server: "test", clock: clock.read, log: { _ in })
        #expect(daemon.tick().count == 1)
        while try deployed.repository.tasks(resource: "HR", name: "Reconcile", limit: 1).isEmpty { usleep(1_000) }
        daemon.stop()
        let task = try #require(try deployed.repository.tasks(resource: "HR", name: "Reconcile", limit: 1).first)
        #expect(task.status == "failed" && task.cancelled)
        #expect(daemon.tick().isEmpty, "a stopped daemon starts nothing")
    }
}
