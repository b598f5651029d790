import Deployment
import Foundation
import XPRESS

/// The points of a schedule: start + k x (every x unit), each computed from the start, never
/// from the previous point (engine spec section 6). Minutes and hours are absolute durations;
/// days and weeks keep the wall-clock time in the schedule's zone across daylight-saving
/// changes; months add calendar months and clamp to the month's last day.
public struct ScheduleSeries: Sendable {
    public let schedule: ScheduleDefinition

    public init(_ schedule: ScheduleDefinition) { self.schedule = schedule }

    private var fixedDuration: Int64? {
        switch schedule.unit {
        case .minutes: Int64(schedule.every) * 60_000
        case .hours: Int64(schedule.every) * 3_600_000
        default: nil
        }
    }

    /// The k-th point (k = 0 is the start).
    public func point(_ k: Int64) -> Int64 {
        if let duration = fixedDuration { return schedule.startMillis + k * duration }
        var fields = CivilTime.fields(millis: schedule.startMillis, in: schedule.timeZone)
        switch schedule.unit {
        case .days: fields.day += k * Int64(schedule.every)
        case .weeks: fields.day += k * Int64(schedule.every) * 7
        default:
            let monthIndex = fields.month - 1 + k * Int64(schedule.every)
            fields.year += CivilTime.floorDiv(monthIndex, 12)
            fields.month = CivilTime.floorMod(monthIndex, 12) + 1
            fields.day = min(fields.day, CivilTime.daysInMonth(year: fields.year, month: fields.month))
        }
        return CivilTime.millis(local: fields, in: schedule.timeZone)
    }

    /// The first point strictly after `millis`.
    public func next(after millis: Int64) -> Int64 { point(index(after: millis)) }

    /// The index of the first point strictly after `millis`.
    public func index(after millis: Int64) -> Int64 {
        if millis < schedule.startMillis { return 0 }
        if let duration = fixedDuration { return CivilTime.floorDiv(millis - schedule.startMillis, duration) + 1 }
        let approximate: Int64
        switch schedule.unit {
        case .days, .weeks:
            let period = Int64(schedule.every) * (schedule.unit == .weeks ? 7 : 1) * 86_400_000
            approximate = max(0, (millis - schedule.startMillis) / period - 1)
        default:
            let start = CivilTime.fields(millis: schedule.startMillis, in: schedule.timeZone)
            let now = CivilTime.fields(millis: millis, in: schedule.timeZone)
            approximate = max(0, ((now.year - start.year) * 12 + now.month - start.month) / Int64(schedule.every) - 1)
        }
        var k = approximate
        while point(k) <= millis { k += 1 }
        while k > 0 && point(k - 1) > millis { k -= 1 }
        return k
    }
}

/// A scheduled job: its mode, the time the series gives, and the time it runs (after the
/// repetition rule).
public struct ScheduledRun: Sendable, Hashable {
    public let mode: RunOptions.Mode
    public let computed: Int64
    public let at: Int64
}

/// Next runs of resources from their effective policies.
public struct Scheduler: Sendable {
    public let engine: Engine
    /// Where a failing repetition rule is logged.
    public var log: @Sendable (String) -> Void = { line in FileHandle.standardError.write(Data((line + "\n").utf8)) }

    public init(engine: Engine) { self.engine = engine }

    /// The next `count` runs of a resource after `from`: full and incremental merged by time
    /// (a full run wins a tie), as the policy's modes allow.
    public func upcoming(_ resource: String, after from: Int64, count: Int) throws -> [ScheduledRun] {
        let policy = try engine.policy(for: resource)
        var series: [(RunOptions.Mode, ScheduleSeries)] = []
        if policy.modes.value.includesFull, let full = policy.fullSchedule.value { series.append((.full, ScheduleSeries(full))) }
        if policy.modes.value.includesIncremental, let incremental = policy.incrementalSchedule.value {
            series.append((.incremental, ScheduleSeries(incremental)))
        }
        guard !series.isEmpty else { return [] }
        var cursors = series.map { $0.1.next(after: from) }
        var runs: [ScheduledRun] = []
        while runs.count < count {
            let earliest = cursors.min()!
            let index = cursors.firstIndex(of: earliest)!  // full comes first, so it wins a tie
            for other in cursors.indices where cursors[other] == earliest { cursors[other] = series[other].1.next(after: earliest) }
            let (mode, chosen) = series[index]
            runs.append(ScheduledRun(mode: mode, computed: earliest, at: apply(chosen.schedule, to: earliest, resource: resource)))
        }
        // Listed by the time they run; a full run stays first on a tie.
        return runs.enumerated().sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }.map(\.element)
    }

    /// The latest job of `mode` that is due at `now` and whose slot is after `handled`: the
    /// newest slot at or before now (missed slots collapse into it), or the one before when a
    /// repetition rule moved the newest past now.
    public func dueJob(_ resource: String, mode: RunOptions.Mode, now: Int64, after handled: Int64) throws -> ScheduledRun? {
        let policy = try engine.policy(for: resource)
        let schedule: ScheduleDefinition?
        switch mode {
        case .full: schedule = policy.modes.value.includesFull ? policy.fullSchedule.value : nil
        case .incremental: schedule = policy.modes.value.includesIncremental ? policy.incrementalSchedule.value : nil
        }
        guard let schedule else { return nil }
        let series = ScheduleSeries(schedule)
        var k = series.index(after: now) - 1
        for _ in 0..<2 where k >= 0 {
            let computed = series.point(k)
            guard computed > handled else { return nil }
            let at = apply(schedule, to: computed, resource: resource)
            if at <= now { return ScheduledRun(mode: mode, computed: computed, at: at) }
            k -= 1
        }
        return nil
    }

    /// The next full and the next incremental run of a resource after `from`.
    public func nextRuns(_ resource: String, after from: Int64) throws -> (full: ScheduledRun?, incremental: ScheduledRun?) {
        let runs = try upcoming(resource, after: from, count: 64)
        return (runs.first { $0.mode == .full }, runs.first { $0.mode == .incremental })
    }

    /// The repetition rule's time for one job; the computed time when there is no rule, or it
    /// fails, or it returns something that is not a date (logged).
    func apply(_ schedule: ScheduleDefinition, to computed: Int64, resource: String) -> Int64 {
        guard let rule = schedule.repetitionRule else { return computed }
        var options = EvaluationOptions()
        options.timeZone = schedule.timeZone
        let evaluator = Evaluator(library: engine.deployment.library, options: options)
        do {
            let result = try evaluator.call(rule: rule, arguments: [("calculatedNextDate", .date(millis: computed))])
            if case .date(let date) = result { return date.millis }
            log("recon: repetition rule '\(rule)' of \(resource) returned \(ValueJSON.encode(result)), not a date; keeping \(CivilTime.isoString(millis: computed))")
        } catch {
            log("recon: repetition rule '\(rule)' of \(resource) failed: \(error); keeping \(CivilTime.isoString(millis: computed))")
        }
        return computed
    }
}
