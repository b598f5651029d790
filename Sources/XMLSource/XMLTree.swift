/// An attribute as written in the document (entities decoded).
public struct XMLAttribute: Sendable, Hashable {
    public let name: String
    public let value: String
}

/// An XML comment inside an element.
public struct XMLComment: Sendable {
    /// The content as written, between `<!--` and `-->`.
    public let text: String
    /// Where the `<!--` is.
    public let location: SourcePosition
    /// The index in the parent's `elements` of the first element after the comment
    /// (`elements.count` when none follows).
    public let nextElement: Int
}

/// An immutable element of a parsed document. Safe to share between threads.
///
/// The content is kept as the three things readers ask for: the child elements, the character
/// data concatenated, and the comments with their place among the elements. One array per
/// element instead of an array of mixed nodes keeps a large tree cheap to build and to free.
public final class XMLElement: Sendable {
    /// The local name (`Rule`, `ref`); a namespace prefix, when written, is in `prefix`.
    public let name: String
    public let prefix: String?
    public let attributes: [XMLAttribute]
    /// The child elements, in order.
    public let elements: [XMLElement]
    /// All character data directly inside this element (text and CDATA sections, entities
    /// decoded), concatenated.
    public let text: String
    /// The comments directly inside this element, in order.
    public let comments: [XMLComment]
    /// Where the start tag's `<` is.
    public let location: SourcePosition
    /// The line on which the start tag ends (where the element's content begins).
    public let contentLine: Int
    /// The line of the end tag (of the start tag, for an empty element).
    public let endLine: Int

    init(name: String, prefix: String?, attributes: [XMLAttribute], elements: [XMLElement], text: String,
         comments: [XMLComment], location: SourcePosition, contentLine: Int, endLine: Int) {
        self.name = name
        self.prefix = prefix
        self.attributes = attributes
        self.elements = elements
        self.text = text
        self.comments = comments
        self.location = location
        self.contentLine = contentLine
        self.endLine = endLine
    }

    /// The name as written, with its prefix.
    public var qualifiedName: String { prefix.map { "\($0):\(name)" } ?? name }

    /// The value of the attribute `name`, or nil when it is absent.
    public func attribute(_ name: String) -> String? {
        for attribute in attributes where attribute.name == name { return attribute.value }
        return nil
    }

    /// The first child element named `name`.
    public func firstElement(named name: String) -> XMLElement? {
        for element in elements where element.name == name { return element }
        return nil
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
