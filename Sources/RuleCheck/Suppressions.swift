import Foundation
import XMLSource

/// Inline suppressions written in XML comments:
/// `<!-- rulecheck-disable-next-line ID[,ID] -- reason -->` silences those ids on the next element
/// and its content; `<!-- rulecheck-disable-file ID -- reason -->` on the whole file.
struct Suppressions: Sendable {
    struct Entry: Sendable {
        let ids: Set<String>
        let location: SourcePosition
        /// Positions covered (inclusive); nil for the whole file.
        let range: ClosedRange<SourcePosition>?
        let hasReason: Bool
        var used = false
    }

    private(set) var entries: [Entry] = []

    /// Finds the suppression comments of a document.
    init(document: XMLDocument) {
        let root = document.root
        for (text, location) in document.outerComments {
            let target = root.flatMap { $0.location > location ? $0 : nil }
            add(text, at: location, next: target)
        }
        if let root, root.documentHasComments { collect(in: root) }
    }

    private mutating func collect(in element: XMLElement) {
        for comment in element.comments {
            let next = comment.nextElement < element.elements.count ? element.elements[comment.nextElement] : nil
            add(comment.text, at: comment.location, next: next)
        }
        element.elements.forEach { collect(in: $0) }
    }

    private mutating func add(_ text: String, at location: SourcePosition, next: XMLElement?) {
        // Most comments are not suppressions (some are whole licence texts): only the start is
        // looked at until the keyword is found.
        let start = text.drop(while: \.isWhitespace)
        let kinds = [("rulecheck-disable-next-line", false), ("rulecheck-disable-file", true)]
        guard let (keyword, wholeFile) = kinds.first(where: { start.hasPrefix($0.0) }) else { return }
        let body = start.trimmingWhitespace
        let rest = body.dropFirst(keyword.count)
        let (idText, reason) = rest.splitOnce(" -- ")
        let ids = Set(idText.split(whereSeparator: { $0 == "," || $0.isWhitespace }).map(String.init))
        let range: ClosedRange<SourcePosition>?
        if wholeFile {
            range = nil
        } else if let next {
            range = next.location...Suppressions.lastPosition(in: next)
        } else {
            range = location...location  // covers nothing but itself: reported as unused
        }
        entries.append(Entry(ids: ids, location: location, range: range, hasReason: !(reason?.trimmingWhitespace.isEmpty ?? true)))
    }

    /// The end of an element: the last character of its end tag's line.
    private static func lastPosition(in element: XMLElement) -> SourcePosition {
        SourcePosition(file: element.location.file, line: element.endLine, column: Int.max)
    }

    /// True (and the suppression marked used) when a suppression covers `finding`.
    mutating func suppresses(_ finding: Diagnostic) -> Bool {
        var covered = false
        for index in entries.indices where entries[index].ids.contains(finding.id) || entries[index].ids.contains("all") {
            if let range = entries[index].range, !range.contains(finding.location) { continue }
            entries[index].used = true
            covered = true
        }
        return covered
    }

    /// RC0002 findings: suppressions without a reason, and those that suppressed nothing.
    func problems() -> [Diagnostic] {
        var result: [Diagnostic] = []
        for entry in entries {
            if entry.ids.isEmpty {
                result.append(Diagnostic(id: "RC0002", severity: .warning, message: "suppression names no rule id (write rulecheck-disable-next-line ID -- reason)", location: entry.location))
                continue
            }
            if !entry.hasReason {
                result.append(Diagnostic(id: "RC0002", severity: .warning,
                                         message: "suppression of \(entry.ids.sorted().joined(separator: ", ")) needs a reason: add ' -- why' before '-->'",
                                         location: entry.location))
            }
            if !entry.used {
                result.append(Diagnostic(id: "RC0002", severity: .warning,
                                         message: "suppression of \(entry.ids.sorted().joined(separator: ", ")) suppresses nothing; remove it",
                                         location: entry.location))
            }
        }
        return result
    }
}

extension Substring {
    /// Splits at the first `separator`: the part before, and the part after (nil when absent).
    func splitOnce(_ separator: String) -> (Substring, Substring?) {
        guard let range = range(of: separator) else {
            // A trailing " --" with nothing after it still marks an (empty) reason.
            if hasSuffix(" --") { return (dropLast(3), Substring()) }
            return (self, nil)
        }
        return (self[..<range.lowerBound], self[range.upperBound...])
    }
}

extension StringProtocol {
    /// The text without leading and trailing white space (any Unicode white space).
    var trimmingWhitespace: String {
        guard let first = firstIndex(where: { !$0.isWhitespace }), let last = lastIndex(where: { !$0.isWhitespace }) else { return "" }
        return String(self[first...last])
    }
}
