import Foundation
import XMLSource

/// Calendar arithmetic on millisecond instants: the proleptic Gregorian calendar, time zones
/// from the system's zone database, and Java's lenient field setting (month 13 is January of the
/// next year). Pure functions; safe on any thread.
public enum CivilTime {
    /// Wall-clock fields. `month` is 1-12; `weekday` is 0 (Sunday) to 6.
    public struct Fields: Equatable, Sendable {
        public var year: Int64, month: Int64, day: Int64
        public var hour: Int64, minute: Int64, second: Int64, millisecond: Int64
        public var weekday: Int64 = 0

        public init(year: Int64, month: Int64, day: Int64, hour: Int64 = 0, minute: Int64 = 0,
                    second: Int64 = 0, millisecond: Int64 = 0) {
            self.year = year; self.month = month; self.day = day
            self.hour = hour; self.minute = minute; self.second = second; self.millisecond = millisecond
        }
    }

    static let millisPerDay: Int64 = 86_400_000

    /// Days since 1970-01-01 of a (possibly out-of-range, normalised) civil date.
    static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        // Normalise the month first (Java's lenient calendar), then Hinnant's days_from_civil.
        let monthIndex = month - 1
        let y0 = year + floorDiv(monthIndex, 12)
        let m = floorMod(monthIndex, 12) + 1
        let y = m <= 2 ? y0 - 1 : y0
        let era = floorDiv(y, 400)
        let yoe = y - era * 400
        let mp = (m + 9) % 12
        let doy = (153 * mp + 2) / 5
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468 + (day - 1)
    }

    /// The civil date of a day count since 1970-01-01.
    static func civil(days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    /// Fields of an instant read as UTC wall-clock time plus `offsetMillis`.
    public static func fields(millis: Int64, offsetMillis: Int64 = 0) -> Fields {
        let local = millis + offsetMillis
        let dayCount = floorDiv(local, millisPerDay)
        let inDay = floorMod(local, millisPerDay)
        let (y, m, d) = civil(days: dayCount)
        var f = Fields(year: y, month: m, day: d, hour: inDay / 3_600_000, minute: inDay / 60_000 % 60,
                       second: inDay / 1000 % 60, millisecond: inDay % 1000)
        f.weekday = floorMod(dayCount + 4, 7)
        return f
    }

    /// Milliseconds of wall-clock fields read as UTC (fields may be out of range; they carry).
    public static func millis(utc f: Fields) -> Int64 {
        days(year: f.year, month: f.month, day: 1) * millisPerDay + (f.day - 1) * millisPerDay
            + f.hour * 3_600_000 + f.minute * 60_000 + f.second * 1000 + f.millisecond
    }

    /// Fields of an instant in `zone`.
    public static func fields(millis: Int64, in zone: TimeZone) -> Fields {
        fields(millis: millis, offsetMillis: offset(zone, at: millis))
    }

    /// The instant of wall-clock fields in `zone`. A local time that does not exist (a
    /// daylight-saving gap) moves forward by the gap; an ambiguous one takes the first occurrence.
    public static func millis(local f: Fields, in zone: TimeZone) -> Int64 {
        let local = millis(utc: f)
        let before = offset(zone, at: local - millisPerDay), after = offset(zone, at: local + millisPerDay)
        let candidates = [local - before, local - after].filter { offset(zone, at: $0) == local - $0 }
        return candidates.min() ?? (local - before)
    }

    /// The zone's offset from UTC at an instant, in milliseconds.
    public static func offset(_ zone: TimeZone, at millis: Int64) -> Int64 {
        if zone.identifier == "UTC" || zone.identifier == "GMT" { return 0 }
        return Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(millis) / 1000))) * 1000
    }

    /// `yyyy-MM-ddTHH:mm:ss.SSSZ` in UTC, the string and JSON form of dates.
    public static func isoString(millis: Int64) -> String {
        let f = fields(millis: millis)
        return "\(pad(f.year, 4))-\(pad(f.month, 2))-\(pad(f.day, 2))T\(pad(f.hour, 2)):\(pad(f.minute, 2)):\(pad(f.second, 2)).\(pad(f.millisecond, 3))Z"
    }

    /// Parses ISO-8601 (`2026-11-21T02:00:00Z`, optional `.SSS`, `Z` or `±HH:MM`; without a zone
    /// the time is local to `zone`), Waveset's `yyyyMMdd HH:mm:ss` (local to `zone`) or a
    /// millisecond count. Nil when the text is none of these.
    public static func parse(_ text: String, zone: TimeZone) -> Int64? {
        let t = text.trimmingXMLWhitespace
        if let millis = Int64(t) { return millis }
        let chars = Array(t.utf8)
        func number(_ from: Int, _ count: Int) -> Int64? {
            guard from + count <= chars.count else { return nil }
            var n: Int64 = 0
            for c in chars[from..<(from + count)] {
                guard c >= 48 && c <= 57 else { return nil }
                n = n * 10 + Int64(c - 48)
            }
            return n
        }
        // Waveset: yyyyMMdd HH:mm:ss
        if chars.count == 17, chars[8] == UInt8(ascii: " "), let y = number(0, 4), let mo = number(4, 2),
           let d = number(6, 2), let h = number(9, 2), let mi = number(12, 2), let s = number(15, 2),
           chars[11] == UInt8(ascii: ":"), chars[14] == UInt8(ascii: ":") {
            return valid(y, mo, d, h, mi, s) ? millis(local: Fields(year: y, month: mo, day: d, hour: h, minute: mi, second: s), in: zone) : nil
        }
        // ISO-8601: yyyy-MM-dd[THH:mm[:ss[.SSS]]][Z|±HH:MM]
        guard chars.count >= 10, let y = number(0, 4), chars[4] == UInt8(ascii: "-"), let mo = number(5, 2),
              chars[7] == UInt8(ascii: "-"), let d = number(8, 2) else { return nil }
        var f = Fields(year: y, month: mo, day: d)
        var index = 10
        if index < chars.count && (chars[index] == UInt8(ascii: "T") || chars[index] == UInt8(ascii: " ")) {
            guard let h = number(index + 1, 2), index + 3 < chars.count, chars[index + 3] == UInt8(ascii: ":"),
                  let mi = number(index + 4, 2) else { return nil }
            f.hour = h; f.minute = mi
            index += 6
            if index < chars.count && chars[index] == UInt8(ascii: ":") {
                guard let s = number(index + 1, 2) else { return nil }
                f.second = s
                index += 3
                if index < chars.count && chars[index] == UInt8(ascii: ".") {
                    var digits = 0
                    var fraction: Int64 = 0
                    index += 1
                    while index < chars.count, chars[index] >= 48, chars[index] <= 57 {
                        if digits < 3 { fraction = fraction * 10 + Int64(chars[index] - 48) }
                        digits += 1
                        index += 1
                    }
                    guard digits > 0 else { return nil }
                    if digits < 3 { for _ in digits..<3 { fraction *= 10 } }
                    f.millisecond = fraction
                }
            }
        }
        guard valid(f.year, f.month, f.day, f.hour, f.minute, f.second) else { return nil }
        if index == chars.count { return millis(local: f, in: zone) }
        if chars[index] == UInt8(ascii: "Z") && index + 1 == chars.count { return millis(utc: f) }
        guard chars[index] == UInt8(ascii: "+") || chars[index] == UInt8(ascii: "-"),
              let oh = number(index + 1, 2) else { return nil }
        var om: Int64 = 0
        if index + 3 < chars.count {
            let minuteAt = chars[index + 3] == UInt8(ascii: ":") ? index + 4 : index + 3
            guard let m = number(minuteAt, 2), minuteAt + 2 == chars.count else { return nil }
            om = m
        } else if index + 3 != chars.count {
            return nil
        }
        let sign: Int64 = chars[index] == UInt8(ascii: "-") ? -1 : 1
        return millis(utc: f) - sign * (oh * 3_600_000 + om * 60_000)
    }

    private static func valid(_ y: Int64, _ mo: Int64, _ d: Int64, _ h: Int64, _ mi: Int64, _ s: Int64) -> Bool {
        (1...12).contains(mo) && (1...31).contains(d) && (0...23).contains(h) && (0...59).contains(mi)
            && (0...60).contains(s) && civil(days: days(year: y, month: mo, day: d)).month == mo
    }

    private static func pad(_ n: Int64, _ width: Int) -> String {
        let digits = String(abs(n))
        return (n < 0 ? "-" : "") + String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    /// The number of days of a month (1-12) in the proleptic Gregorian calendar.
    public static func daysInMonth(year: Int64, month: Int64) -> Int64 {
        days(year: year, month: month + 1, day: 1) - days(year: year, month: month, day: 1)
    }

    @inline(__always) public static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    @inline(__always) public static func floorMod(_ a: Int64, _ b: Int64) -> Int64 { a - floorDiv(a, b) * b }
}
