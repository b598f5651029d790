/// An attribute as written in the document (entities decoded).
public struct XMLAttribute: Sendable, Hashable {
    public let name: String
    public let value: String
}

/// A child of an element, in document order.
public enum XMLNode: Sendable {
    case element(XMLElement)
    /// Character data (text and CDATA sections), entities decoded.
    case text(String)
    /// The content of an XML comment (between `<!--` and `-->`) and where it starts.
    case comment(String, SourcePosition)
}

/// An immutable element of a parsed document. Safe to share between threads.
public final class XMLElement: Sendable {
    /// The local name (`Rule`, `ref`); a namespace prefix, when written, is in `prefix`.
    public let name: String
    public let prefix: String?
    public let attributes: [XMLAttribute]
    public let children: [XMLNode]
    /// Where the start tag's `<` is.
    public let location: SourcePosition
    /// The line on which the start tag ends (where the element's content begins).
    public let contentLine: Int
    /// The line of the end tag (of the start tag, for an empty element).
    public let endLine: Int

    public init(name: String, prefix: String? = nil, attributes: [XMLAttribute], children: [XMLNode],
                location: SourcePosition, contentLine: Int? = nil, endLine: Int? = nil) {
        self.name = name
        self.prefix = prefix
        self.attributes = attributes
        self.children = children
        self.elements = children.compactMap { if case .element(let e) = $0 { e } else { nil } }
        self.location = location
        self.contentLine = contentLine ?? location.line
        self.endLine = endLine ?? contentLine ?? location.line
    }

    /// The name as written, with its prefix.
    public var qualifiedName: String { prefix.map { "\($0):\(name)" } ?? name }

    /// The value of the attribute `name`, or nil when it is absent.
    public func attribute(_ name: String) -> String? {
        for attribute in attributes where attribute.name == name { return attribute.value }
        return nil
    }

    /// The child elements, in order.
    public let elements: [XMLElement]

    /// The first child element named `name`.
    public func firstElement(named name: String) -> XMLElement? {
        for case .element(let e) in children where e.name == name { return e }
        return nil
    }

    /// All character data directly inside this element, concatenated.
    public var text: String {
        var result = ""
        for case .text(let t) in children { result += t }
        return result
    }
}

/// The outcome of parsing one document: the root element when the document was well-formed and
/// acceptable, and every problem found.
public struct XMLDocument: Sendable {
    public let file: String
    public let root: XMLElement?
    public let diagnostics: [Diagnostic]
    /// Comments outside the root element (before or after it), with their positions.
    public let outerComments: [(String, SourcePosition)]

    public init(file: String, root: XMLElement?, diagnostics: [Diagnostic], outerComments: [(String, SourcePosition)] = []) {
        self.file = file
        self.root = root
        self.diagnostics = diagnostics
        self.outerComments = outerComments
    }
}

extension StringProtocol {
    /// The text without leading and trailing XML white space (space, tab, CR, LF). Cheaper than
    /// Foundation's `trimmingCharacters`, which matters when every element's text is trimmed.
    public var trimmingXMLWhitespace: String {
        let text = Substring(self)
        let utf8 = text.utf8
        var start = utf8.startIndex, end = utf8.endIndex
        func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }
        while start < end, isSpace(utf8[start]) { start = utf8.index(after: start) }
        while end > start, isSpace(utf8[utf8.index(before: end)]) { end = utf8.index(before: end) }
        if start == utf8.startIndex && end == utf8.endIndex { return String(text) }
        return String(text[start..<end])
    }
}
