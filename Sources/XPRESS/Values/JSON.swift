/// The JSON form of values (spec section 5): null, numbers for integers, strings, booleans,
/// arrays for lists, objects (keys in insertion order) for maps, `{"$date": ISO}` for dates and
/// `{"$class": Name, ...properties}` for host objects.
public enum ValueJSON {
    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public let message: String
        public let offset: Int
        public var description: String { "\(message) at character \(offset + 1)" }
    }

    /// Serialises a value. Maps keep their key order; output is compact with `", "`-free
    /// separators unless `pretty`.
    public static func encode(_ value: Value, pretty: Bool = false) -> String {
        var out = ""
        write(value, into: &out, pretty: pretty, indent: 0)
        return out
    }

    private static func write(_ value: Value, into out: inout String, pretty: Bool, indent: Int) {
        if indent > Value.maximumNesting {  // a list or map that holds itself
            writeString("(this Collection)", into: &out)
            return
        }
        switch value {
        case .null: out += "null"
        case .int(let n): out += String(n)
        case .bool(let b): out += b ? "true" : "false"
        case .string(let s): writeString(s, into: &out)
        case .date(let d):
            writeObject([("$date", .string(CivilTime.isoString(millis: d.millis)))], into: &out, pretty: pretty, indent: indent)
        case .list(let l):
            if l.items.isEmpty { out += "[]"; return }
            out += "["
            for (index, item) in l.items.enumerated() {
                if index > 0 { out += pretty ? "," : ", " }
                if pretty { newline(&out, indent + 1) }
                write(item, into: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { newline(&out, indent) }
            out += "]"
        case .map(let m):
            writeObject(Array(m.entries), into: &out, pretty: pretty, indent: indent)
        case .object(let o):
            writeObject([("$class", .string(o.className))] + o.properties, into: &out, pretty: pretty, indent: indent)
        }
    }

    private static func writeObject(_ entries: [(String, Value)], into out: inout String, pretty: Bool, indent: Int) {
        if entries.isEmpty { out += "{}"; return }
        out += "{"
        for (index, (key, item)) in entries.enumerated() {
            if index > 0 { out += pretty ? "," : ", " }
            if pretty { newline(&out, indent + 1) }
            writeString(key, into: &out)
            out += ": "
            write(item, into: &out, pretty: pretty, indent: indent + 1)
        }
        if pretty { newline(&out, indent) }
        out += "}"
    }

    private static func newline(_ out: inout String, _ indent: Int) {
        out += "\n" + String(repeating: "  ", count: indent)
    }

    /// Writes `s` as a JSON string literal.
    public static func writeString(_ s: String, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    /// A JSON string literal for `s`.
    public static func quoted(_ s: String) -> String {
        var out = ""
        writeString(s, into: &out)
        return out
    }

    /// Parses JSON into a value: objects become maps (key order kept) unless they are the
    /// `$date` / `$class` forms; numbers must be integers.
    public static func decode(_ text: String) throws(ParseError) -> Value {
        var parser = Parser(bytes: Array(text.utf8))
        parser.skipSpace()
        let value = try parser.value()
        parser.skipSpace()
        guard parser.index == parser.bytes.count else { throw parser.failure("unexpected text after the JSON value") }
        return value
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        func failure(_ message: String) -> ParseError { ParseError(message: message, offset: index) }

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        mutating func expect(_ literal: String) throws(ParseError) {
            let expected = Array(literal.utf8)
            guard bytes[index...].starts(with: expected) else { throw failure("expected '\(literal)'") }
            index += expected.count
        }

        var depth = 0

        mutating func value() throws(ParseError) -> Value {
            guard index < bytes.count else { throw failure("unexpected end of JSON") }
            depth += 1
            defer { depth -= 1 }
            guard depth <= Value.maximumNesting else { throw failure("JSON nested more than \(Value.maximumNesting) levels deep") }
            switch bytes[index] {
            case UInt8(ascii: "n"): try expect("null"); return .null
            case UInt8(ascii: "t"): try expect("true"); return .bool(true)
            case UInt8(ascii: "f"): try expect("false"); return .bool(false)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "["): return try array()
            case UInt8(ascii: "{"): return try object()
            default: return try number()
            }
        }

        mutating func number() throws(ParseError) -> Value {
            let start = index
            let numberBytes = Array("0123456789.eE+-".utf8)
            while index < bytes.count, numberBytes.contains(bytes[index]) { index += 1 }
            let text = String(decoding: bytes[start..<index], as: UTF8.self)
            if let n = Int64(text) { return .int(n) }
            if let d = Double(text), d.rounded() == d, abs(d) < 9.2e18 { return .int(Int64(d)) }
            index = start
            throw failure(text.isEmpty ? "expected a JSON value" : "the number \(text) is not a 64-bit integer")
        }

        mutating func string() throws(ParseError) -> String {
            index += 1
            var units: [UInt16] = []
            var chunk: [UInt8] = []
            func flush() { units.append(contentsOf: String(decoding: chunk, as: UTF8.self).utf16); chunk.removeAll() }
            while index < bytes.count {
                let c = bytes[index]
                if c == UInt8(ascii: "\"") {
                    index += 1
                    flush()
                    return String(decoding: units, as: UTF16.self)
                }
                if c == UInt8(ascii: "\\") {
                    flush()
                    index += 1
                    guard index < bytes.count else { break }
                    let e = bytes[index]
                    index += 1
                    switch e {
                    case UInt8(ascii: "n"): units.append(10)
                    case UInt8(ascii: "t"): units.append(9)
                    case UInt8(ascii: "r"): units.append(13)
                    case UInt8(ascii: "b"): units.append(8)
                    case UInt8(ascii: "f"): units.append(12)
                    case UInt8(ascii: "u"):
                        guard index + 4 <= bytes.count,
                              let unit = UInt16(String(decoding: bytes[index..<(index + 4)], as: UTF8.self), radix: 16)
                        else { throw failure("bad \\u escape") }
                        units.append(unit)
                        index += 4
                    default: units.append(UInt16(e))
                    }
                } else {
                    chunk.append(c)
                    index += 1
                }
            }
            throw failure("unterminated string")
        }

        mutating func array() throws(ParseError) -> Value {
            index += 1
            var items: [Value] = []
            skipSpace()
            if index < bytes.count && bytes[index] == UInt8(ascii: "]") { index += 1; return .list(items) }
            while true {
                skipSpace()
                items.append(try value())
                skipSpace()
                guard index < bytes.count else { throw failure("unterminated array") }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "]") { index += 1; return .list(items) }
                throw failure("expected ',' or ']'")
            }
        }

        mutating func object() throws(ParseError) -> Value {
            index += 1
            var entries: [(String, Value)] = []
            skipSpace()
            if index < bytes.count && bytes[index] == UInt8(ascii: "}") { index += 1; return .map(entries) }
            while true {
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw failure("expected a key") }
                let key = try string()
                skipSpace()
                try expect(":")
                skipSpace()
                entries.append((key, try value()))
                skipSpace()
                guard index < bytes.count else { throw failure("unterminated object") }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "}") { index += 1; break }
                throw failure("expected ',' or '}'")
            }
            return try special(entries)
        }

        /// `{"$date": ...}` and `{"$class": ...}` forms.
        func special(_ entries: [(String, Value)]) throws(ParseError) -> Value {
            if entries.count == 1, entries[0].0 == "$date" {
                guard case .string(let text) = entries[0].1, let millis = CivilTime.parse(text, zone: .gmt),
                      DateBox.range.contains(millis) else { throw failure("bad $date value") }
                return .date(millis: millis)
            }
            guard let first = entries.first, first.0 == "$class", case .string(let name) = first.1 else {
                return .map(entries)
            }
            let properties = Dictionary(entries.dropFirst().map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a })
            switch name {
            case "AttributeCondition":
                return .object(AttributeCondition(attrName: properties["attrName"] ?? .null,
                                                  operatorName: properties["operator"] ?? .null,
                                                  operand: properties["operand"] ?? .null))
            case "WSAttribute":
                return .object(WSAttribute(name: properties["name"] ?? .null, value: properties["value"] ?? .null))
            default:
                throw failure("unknown $class '\(name)'")
            }
        }
    }
}
