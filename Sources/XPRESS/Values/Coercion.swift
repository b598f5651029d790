import Foundation

/// Why a value could not be used as asked; the evaluator adds the element's location.
public struct CoercionFailure: Error, Sendable {
    public let message: String
}

extension Value {
    /// How deep lists and maps may nest before printing, comparing or converting them stops
    /// (a list that holds itself would otherwise recurse for ever).
    public static let maximumNesting = 200

    /// Truthiness (spec section 1, decided): false is null, integer 0, boolean false and the
    /// string "0"; everything else is true.
    @inline(__always)
    public var isTrue: Bool {
        switch self {
        case .null: false
        case .int(let n): n != 0
        case .bool(let b): b
        case .string(let s): s != "0"
        default: true
        }
    }

    /// The kind's name, for messages.
    public var kindName: String {
        switch self {
        case .null: "null"
        case .int: "integer"
        case .string: "string"
        case .bool: "boolean"
        case .list: "list"
        case .map: "map"
        case .date: "date"
        case .object(let o): o.className
        }
    }

    /// The string form (spec section 1): null is "" here; inside lists and maps it prints `null`.
    public var stringValue: String {
        switch self {
        case .null: ""
        case .string(let s): s
        default: description
        }
    }

    /// The integer form for arithmetic and comparisons; nil for null (which arithmetic skips).
    public func integerValue() throws(CoercionFailure) -> Int64? {
        switch self {
        case .null: return nil
        case .int(let n): return n
        case .bool(let b): return b ? 1 : 0
        case .string(let s): return Value.parseJavaInteger(s) ?? 0
        default:
            throw CoercionFailure(message: "a \(kindName) cannot be used as an integer")
        }
    }

    /// Integer coercion where null counts as 0 (comparisons).
    public func integerOrZero() throws(CoercionFailure) -> Int64 {
        try integerValue() ?? 0
    }

    /// Parses like Java `Long.parseLong(s.trim())`: optional sign and decimal digits only.
    /// Returns nil when the text is not such a number or is outside 64 bits.
    public static func parseJavaInteger(_ text: String) -> Int64? {
        var units = Substring(text).utf8[...]
        while let first = units.first, first <= 0x20 { units = units.dropFirst() }
        while let last = units.last, last <= 0x20 { units = units.dropLast() }
        guard !units.isEmpty else { return nil }
        var negative = false
        if let sign = units.first, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") {
            negative = sign == UInt8(ascii: "-")
            units = units.dropFirst()
        }
        guard !units.isEmpty else { return nil }
        var result: Int64 = 0
        // Java's Character.digit: any Unicode decimal digit (full-width １２ is 12).
        for scalar in String(Substring(units)).unicodeScalars {
            guard scalar.properties.numericType == .decimal, let numeric = scalar.properties.numericValue else { return nil }
            let digit = Int64(numeric)
            let (times, overflow1) = result.multipliedReportingOverflow(by: 10)
            let (next, overflow2) = negative ? times.subtractingReportingOverflow(digit)
                                             : times.addingReportingOverflow(digit)
            if overflow1 || overflow2 { return nil }
            result = next
        }
        return result
    }
}

extension Value: CustomStringConvertible {
    /// The string form of the value as an element of a list or map (null prints `null`).
    public var description: String { describe(depth: 0) }

    /// Java prints a collection that holds itself as `(this Collection)`; past the nesting
    /// limit (a cycle through several values) the same mark is printed.
    private func describe(depth: Int) -> String {
        if depth > Value.maximumNesting { return "(this Collection)" }
        switch self {
        case .null: return "null"
        case .int(let n): return String(n)
        case .string(let s): return s
        case .bool(let b): return b ? "true" : "false"
        case .list(let l):
            return "[" + l.items.map { item in
                if case .list(let inner) = item, inner === l { return "(this Collection)" }
                return item.describe(depth: depth + 1)
            }.joined(separator: ", ") + "]"
        case .map(let m):
            return "{" + m.entries.map { key, item in
                if case .map(let inner) = item, inner === m { return "\(key)=(this Map)" }
                return "\(key)=\(item.describe(depth: depth + 1))"
            }.joined(separator: ", ") + "}"
        case .date(let d): return CivilTime.isoString(millis: d.millis)
        case .object(let o): return "{" + o.properties.map { "\($0)=\($1.describe(depth: depth + 1))" }.joined(separator: ", ") + "}"
        }
    }
}

extension Value {
    /// Strict element equality, like Java `equals`: kinds must match (`2` is not `"2"`), dates
    /// compare by instant, lists element by element, maps entry by entry.
    public func strictlyEquals(_ other: Value) -> Bool { strictlyEquals(other, depth: 0) }

    private func strictlyEquals(_ other: Value, depth: Int) -> Bool {
        if depth > Value.maximumNesting { return false }
        switch (self, other) {
        case (.null, .null): return true
        case (.int(let a), .int(let b)): return a == b
        case (.string(let a), .string(let b)): return JavaString.equals(a, b)
        case (.bool(let a), .bool(let b)): return a == b
        case (.date(let a), .date(let b)): return a.millis == b.millis
        case (.list(let a), .list(let b)):
            if a === b { return true }
            return a.items.count == b.items.count
                && zip(a.items, b.items).allSatisfy { $0.strictlyEquals($1, depth: depth + 1) }
        case (.map(let a), .map(let b)):
            if a === b { return true }
            guard a.count == b.count else { return false }
            for (key, value) in a.entries {
                guard let otherValue = b[key], value.strictlyEquals(otherValue, depth: depth + 1) else { return false }
            }
            return true
        case (.object(let a), .object(let b)):
            if a === b { return true }
            let pa = a.properties, pb = b.properties
            return a.className == b.className && pa.count == pb.count
                && zip(pa, pb).allSatisfy { $0.0 == $1.0 && $0.1.strictlyEquals($1.1, depth: depth + 1) }
        default: return false
        }
    }

    /// `eq` semantics (spec section 2): null equals only null; otherwise the first value's kind
    /// decides how the second is coerced.
    public func looselyEquals(_ other: Value) throws(CoercionFailure) -> Bool {
        switch (self, other) {
        case (.null, .null): return true
        case (.null, _), (_, .null): return false
        case (.string(let a), _): return JavaString.equals(a, other.stringValue)
        case (.int, _), (.bool, _):
            return try integerValue() == other.integerValue()
        default: return strictlyEquals(other)
        }
    }
}

/// String operations that count UTF-16 code units, as Java does (spec section 1, decided).
enum JavaString {
    /// Java `String.compareTo`: the difference of the first differing UTF-16 units, else of the
    /// lengths.
    static func compare(_ a: String, _ b: String) -> Int64 {
        var left = a.utf16.makeIterator(), right = b.utf16.makeIterator()
        while true {
            switch (left.next(), right.next()) {
            case (nil, nil): return 0
            case (nil, _): return Int64(-remaining(&right) - 1)
            case (_, nil): return Int64(remaining(&left) + 1)
            case (let x?, let y?): if x != y { return Int64(x) - Int64(y) }
            }
        }
    }

    /// Java `String.compareToIgnoreCase`.
    static func compareIgnoringCase(_ a: String, _ b: String) -> Int64 {
        let x = Array(a.utf16), y = Array(b.utf16)
        for index in 0..<min(x.count, y.count) where x[index] != y[index] {
            let ux = upper(x[index]), uy = upper(y[index])
            if ux == uy { continue }
            let lx = lower(ux), ly = lower(uy)
            if lx != ly { return Int64(lx) - Int64(ly) }
        }
        return Int64(x.count - y.count)
    }

    private static func remaining(_ iterator: inout String.UTF16View.Iterator) -> Int {
        var count = 0
        while iterator.next() != nil { count += 1 }
        return count
    }

    private static func upper(_ unit: UInt16) -> UInt16 { mapUnit(unit) { $0.properties.uppercaseMapping } }
    private static func lower(_ unit: UInt16) -> UInt16 { mapUnit(unit) { $0.properties.lowercaseMapping } }

    /// Java `Character.toUpperCase(char)`: a one-to-one mapping, or the unit unchanged.
    private static func mapUnit(_ unit: UInt16, _ mapping: (Unicode.Scalar) -> String) -> UInt16 {
        guard let scalar = Unicode.Scalar(unit) else { return unit }
        let mapped = mapping(scalar).utf16
        return mapped.count == 1 ? mapped.first! : unit
    }

    /// Java `String.trim`: removes code units <= U+0020 at both ends.
    static func trim(_ s: String, leading: Bool = true, trailing: Bool = true) -> String {
        var scalars = Substring(s).unicodeScalars[...]
        if leading { while let f = scalars.first, f.value <= 0x20 { scalars = scalars.dropFirst() } }
        if trailing { while let l = scalars.last, l.value <= 0x20 { scalars = scalars.dropLast() } }
        return String(scalars)
    }

    /// The UTF-16 units `start..<end` of `s`, clamped to the string.
    static func substring(_ s: String, start: Int64, length: Int64?) -> String {
        let units = s.utf16
        let count = Int64(units.count)
        let from = min(max(start, 0), count)
        let to = length.map { $0 <= 0 ? from : ($0 >= count - from ? count : from + $0) } ?? count
        if from == 0 && to == count { return s }
        let lower = units.index(units.startIndex, offsetBy: Int(from))
        let upper = units.index(lower, offsetBy: Int(to - from))
        return String(decoding: Array(units[lower..<upper]), as: UTF16.self)
    }

    /// Java `String.equals`: the same UTF-16 units (Swift's `==` would also equate canonically
    /// equivalent strings, such as a precomposed and a decomposed é).
    /// Strings of different lengths (most keys a map search passes over) are told apart without
    /// touching their bytes.
    @inline(__always)
    static func equals(_ a: String, _ b: String) -> Bool {
        let (x, y) = (a.utf8, b.utf8)
        guard x.count == y.count else { return false }
        // Borrows both texts' bytes in place (a copy of a `String` would retain it).
        let equal = x.withContiguousStorageIfAvailable { x in
            y.withContiguousStorageIfAvailable { y in x.isEmpty || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 }
        }
        return (equal ?? nil) ?? x.elementsEqual(y)
    }

    static func hasPrefix(_ s: String, _ prefix: String) -> Bool { s.utf16.starts(with: prefix.utf16) }

    static func hasSuffix(_ s: String, _ suffix: String) -> Bool { s.utf16.reversed().starts(with: suffix.utf16.reversed()) }

    /// Java `String.replace(CharSequence, CharSequence)`: every occurrence, left to right; an
    /// empty target inserts the replacement around every unit.
    static func replace(_ s: String, _ target: String, _ replacement: String) -> String {
        let units = Array(s.utf16), t = Array(target.utf16), r = Array(replacement.utf16)
        var out: [UInt16] = []
        if t.isEmpty {
            for unit in units { out += r; out.append(unit) }
            return String(decoding: out + r, as: UTF16.self)
        }
        var index = 0
        while index < units.count {
            if index + t.count <= units.count && units[index..<(index + t.count)].elementsEqual(t) {
                out += r
                index += t.count
            } else {
                out.append(units[index])
                index += 1
            }
        }
        return String(decoding: out, as: UTF16.self)
    }

    /// Position (in UTF-16 units) of `needle` in `haystack` at or after `start`, or -1.
    static func indexOf(_ haystack: String, _ needle: String, from start: Int64 = 0) -> Int64 {
        let h = Array(haystack.utf16), n = Array(needle.utf16)
        let first = Int(min(max(start, 0), Int64(h.count)))
        if n.isEmpty { return Int64(first) }
        guard h.count >= n.count, first <= h.count - n.count else { return -1 }
        outer: for index in first...(h.count - n.count) {
            for offset in 0..<n.count where h[index + offset] != n[offset] { continue outer }
            return Int64(index)
        }
        return -1
    }
}
