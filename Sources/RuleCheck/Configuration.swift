import Foundation
import XMLSource

/// `.rulecheck.yml`: per-rule severities and ignored paths.
///
/// ```yaml
/// rules:
///   XP0201: off        # error | warning | off
///   XP0205: error
/// ignore:
///   - "generated/**"
/// ```
/// Flow style (`rules: {XP0201: off}`, `ignore: [a, b]`) works too. Anything else is an error,
/// so that a typo never silently disables nothing.
public struct LintConfiguration: Sendable {
    public enum Level: String, Sendable { case error, warning, off }

    public var levels: [String: Level] = [:]
    public var ignore: [String] = []
    /// The folder holding the file (globs are relative to it); nil for the defaults.
    public var directory: String?

    public init() {}

    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Finds `.rulecheck.yml` in `directory` or a parent.
    public static func find(from directory: String) -> String? {
        var url = URL(fileURLWithPath: directory).standardizedFileURL
        while true {
            let candidate = url.appendingPathComponent(".rulecheck.yml").path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
            let parent = url.deletingLastPathComponent()
            if parent.path == url.path { return nil }
            url = parent
        }
    }

    public static func load(path: String) throws -> LintConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else { throw ParseError(description: "\(path): cannot read the file") }
        var configuration = try parse(String(decoding: data, as: UTF8.self), file: path)
        configuration.directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return configuration
    }

    /// Parses the YAML subset above.
    public static func parse(_ text: String, file: String = ".rulecheck.yml") throws -> LintConfiguration {
        var configuration = LintConfiguration()
        var section: String?
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = stripComment(rawLine)
            guard !line.trimmingWhitespace.isEmpty else { continue }
            func fail(_ message: String) -> ParseError { ParseError(description: "\(file):\(number + 1): \(message)") }
            let indented = line.first?.isWhitespace ?? false
            let content = line.trimmingWhitespace
            if !indented {
                guard let colon = content.firstIndex(of: ":") else { throw fail("expected 'rules:' or 'ignore:'") }
                let key = String(content[..<colon]).trimmingWhitespace
                let value = String(content[content.index(after: colon)...]).trimmingWhitespace
                guard key == "rules" || key == "ignore" else { throw fail("unknown key '\(key)'; use 'rules' or 'ignore'") }
                section = key
                if value.isEmpty { continue }
                if key == "rules" {
                    guard value.hasPrefix("{"), value.hasSuffix("}") else { throw fail("'rules' takes a map of ID: error|warning|off") }
                    for pair in value.dropFirst().dropLast().split(separator: ",") {
                        try configuration.setLevel(String(pair), fail)
                    }
                } else {
                    guard value.hasPrefix("["), value.hasSuffix("]") else { throw fail("'ignore' takes a list of globs") }
                    configuration.ignore += value.dropFirst().dropLast().split(separator: ",").map { unquote($0.trimmingWhitespace) }
                }
                continue
            }
            switch section {
            case "rules"?: try configuration.setLevel(content, fail)
            case "ignore"?:
                guard content.hasPrefix("-") else { throw fail("expected '- glob' under 'ignore'") }
                configuration.ignore.append(unquote(String(content.dropFirst()).trimmingWhitespace))
            default: throw fail("indented line outside 'rules' or 'ignore'")
            }
        }
        return configuration
    }

    private mutating func setLevel(_ pair: String, _ fail: (String) -> ParseError) throws {
        guard let colon = pair.firstIndex(of: ":") else { throw fail("expected 'ID: error|warning|off'") }
        let id = LintConfiguration.unquote(String(pair[..<colon]).trimmingWhitespace)
        let value = LintConfiguration.unquote(String(pair[pair.index(after: colon)...]).trimmingWhitespace)
        guard LintCatalogue.rule(id) != nil else { throw fail("unknown rule id '\(id)' (rulecheck --list-rules lists them)") }
        guard let level = Level(rawValue: value.lowercased()) else { throw fail("'\(value)' is not error, warning or off") }
        levels[id] = level
    }

    private static func stripComment(_ line: Substring) -> String {
        var inQuote: Character?
        for index in line.indices {
            let c = line[index]
            if let quote = inQuote { if c == quote { inQuote = nil } } else if c == "'" || c == "\"" { inQuote = c } else if c == "#" {
                return String(line[..<index])
            }
        }
        return String(line)
    }

    private static func unquote(_ text: String) -> String {
        if text.count >= 2, let first = text.first, first == "'" || first == "\"", text.last == first {
            return String(text.dropFirst().dropLast())
        }
        return text
    }

    /// Whether `path` matches an `ignore` glob (`*` within a folder, `**` across folders, `?`).
    public func ignores(_ path: String) -> Bool {
        guard !ignore.isEmpty else { return false }
        var candidates = [path]
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        if let directory {
            let base = URL(fileURLWithPath: directory).standardizedFileURL.path + "/"
            if absolute.hasPrefix(base) { candidates.append(String(absolute.dropFirst(base.count))) }
        }
        return ignore.contains { glob in candidates.contains { Glob.matches(glob, $0) } }
    }
}

/// Shell-style globs over paths.
enum Glob {
    static func matches(_ pattern: String, _ path: String) -> Bool {
        match(Array(pattern.unicodeScalars), 0, Array(path.unicodeScalars), 0)
    }

    private static func match(_ p: [Unicode.Scalar], _ pi: Int, _ s: [Unicode.Scalar], _ si: Int) -> Bool {
        if pi == p.count { return si == s.count }
        if p[pi] == "*" {
            let doubled = pi + 1 < p.count && p[pi + 1] == "*"
            var next = pi + (doubled ? 2 : 1)
            if doubled && next < p.count && p[next] == "/" { next += 1 }  // `**/` also matches nothing
            var index = si
            while true {
                if match(p, next, s, index) { return true }
                guard index < s.count, doubled || s[index] != "/" else { return false }
                index += 1
            }
        }
        guard si < s.count else { return false }
        if p[pi] == "?" { return s[si] != "/" && match(p, pi + 1, s, si + 1) }
        return p[pi] == s[si] && match(p, pi + 1, s, si + 1)
    }
}
