/// A position in a source file. Lines and columns start at 1; columns count characters
/// (Unicode scalars) of the original line.
public struct SourcePosition: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }

    public static func < (a: SourcePosition, b: SourcePosition) -> Bool {
        (a.file, a.line, a.column) < (b.file, b.line, b.column)
    }
}

/// How serious a diagnostic is.
public enum Severity: String, Sendable, Hashable, Comparable {
    case error, warning, note

    private var rank: Int {
        switch self {
        case .error: 0
        case .warning: 1
        case .note: 2
        }
    }

    public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
}

/// One problem found in a file: a stable rule id (`XML0001`, `XP0101`, ...), where, and what.
/// The loader, the evaluator and `rulecheck` all speak in these.
public struct Diagnostic: Sendable, Hashable, Error, CustomStringConvertible {
    /// A secondary location that explains the main one (a call frame, the other definition).
    public struct Note: Sendable, Hashable {
        public var location: SourcePosition?
        public var message: String
        public init(location: SourcePosition?, message: String) {
            self.location = location
            self.message = message
        }
    }

    public var id: String
    public var severity: Severity
    public var message: String
    public var location: SourcePosition
    public var notes: [Note]

    public init(id: String, severity: Severity = .error, message: String, location: SourcePosition,
                notes: [Note] = []) {
        self.id = id
        self.severity = severity
        self.message = message
        self.location = location
        self.notes = notes
    }

    /// `file:line:col: error: message`, followed by one `note:` line per note.
    public var description: String {
        var text = "\(location): \(severity.rawValue): \(message)"
        for note in notes {
            let place = note.location.map { "\($0): " } ?? ""
            text += "\n\(place)note: \(note.message)"
        }
        return text
    }
}

/// Stable ids of the problems the XML layer itself finds.
public enum XMLDiagnosticID {
    /// The document is not well-formed XML.
    public static let malformed = "XML0001"
    /// The document declares entities or references an entity other than the predefined five.
    public static let forbiddenDTDFeature = "XML0002"
}
