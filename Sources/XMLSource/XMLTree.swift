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

/// The elements of one parsed document, stored together: a record per element in the order of
/// their start tags, and one array each for the child lists, attributes, texts, comments and
/// names of all elements. Building a tree appends to these arrays and freeing it frees them,
/// instead of allocating and freeing an object and its arrays per element (about 15 % of a
/// lint's instructions went to that). Immutable once built, so safe to share between threads.
public final class XMLTree: Sendable {
    /// One element's slice of each array.
    @usableFromInline struct Record: Sendable {
        @usableFromInline var name: Int32
        /// -1 when no prefix was written.
        @usableFromInline var prefix: Int32
        @usableFromInline var firstChild: Int32
        @usableFromInline var childCount: Int32
        @usableFromInline var firstAttribute: Int32
        @usableFromInline var attributeCount: Int32
        /// 0 (the empty text) when the element holds no character data.
        @usableFromInline var text: Int32
        @usableFromInline var firstComment: Int32
        @usableFromInline var commentCount: Int32
        @usableFromInline var line: Int32
        @usableFromInline var column: Int32
        @usableFromInline var contentLine: Int32
        @usableFromInline var endLine: Int32
    }

    @usableFromInline let file: String
    @usableFromInline let records: [Record]
    /// The indices of each element's children, each element's together.
    @usableFromInline let children: [Int32]
    @usableFromInline let attributes: [XMLAttribute]
    @usableFromInline let texts: [String]
    @usableFromInline let comments: [XMLComment]
    @usableFromInline let names: [String]

    init(file: String, records: [Record], children: [Int32], attributes: [XMLAttribute], texts: [String],
         comments: [XMLComment], names: [String]) {
        self.file = file
        self.records = records
        self.children = children
        self.attributes = attributes
        self.texts = texts
        self.comments = comments
        self.names = names
    }
}

/// An element of a parsed document: a position in its `XMLTree`, which it keeps alive. Safe to
/// share between threads.
///
/// The content is kept as the three things readers ask for: the child elements, the character
/// data concatenated, and the comments with their place among the elements.
public struct XMLElement: Sendable {
    @usableFromInline let tree: XMLTree
    @usableFromInline let index: Int

    @usableFromInline init(tree: XMLTree, index: Int) {
        self.tree = tree
        self.index = index
    }

    @inlinable var record: XMLTree.Record { tree.records[index] }

    /// The local name (`Rule`, `ref`); a namespace prefix, when written, is in `prefix`.
    @inlinable public var name: String { tree.names[Int(record.name)] }
    @inlinable public var prefix: String? {
        let prefix = record.prefix
        return prefix < 0 ? nil : tree.names[Int(prefix)]
    }
    @inlinable public var attributes: ArraySlice<XMLAttribute> {
        let record = record
        return tree.attributes[Int(record.firstAttribute)..<Int(record.firstAttribute + record.attributeCount)]
    }
    /// The child elements, in order.
    @inlinable public var elements: XMLElementList {
        let record = record
        return XMLElementList(tree: tree, first: Int(record.firstChild), count: Int(record.childCount))
    }
    /// All character data directly inside this element (text and CDATA sections, entities
    /// decoded), concatenated.
    @inlinable public var text: String { tree.texts[Int(record.text)] }
    /// The comments directly inside this element, in order.
    @inlinable public var comments: [XMLComment] {
        let record = record
        guard record.commentCount > 0 else { return [] }
        return Array(tree.comments[Int(record.firstComment)..<Int(record.firstComment + record.commentCount)])
    }
    /// Where the start tag's `<` is.
    @inlinable public var location: SourcePosition {
        let record = record
        return SourcePosition(file: tree.file, line: Int(record.line), column: Int(record.column))
    }
    /// The line on which the start tag ends (where the element's content begins).
    @inlinable public var contentLine: Int { Int(record.contentLine) }
    /// The line of the end tag (of the start tag, for an empty element).
    @inlinable public var endLine: Int { Int(record.endLine) }

    /// The name as written, with its prefix.
    public var qualifiedName: String { prefix.map { "\($0):\(name)" } ?? name }

    /// Whether an element of this element's document may be named `name`: false means that none
    /// is; true that the document uses the name (for an element, a prefix or an attribute). One
    /// look at the document's few distinct names, so that a walk looking for one kind of element
    /// (a linter walks each document several times) is skipped where it would find nothing.
    public func documentMayHaveElement(named name: String) -> Bool {
        // Lengths first: comparing two different strings is a call into the runtime.
        let length = name.utf8.count
        return tree.names.contains { $0.utf8.count == length && $0 == name }
    }

    /// Whether any element of this element's document holds a comment.
    public var documentHasComments: Bool { !tree.comments.isEmpty }

    /// The value of the attribute `name`, or nil when it is absent.
    @inlinable public func attribute(_ name: String) -> String? {
        for attribute in attributes where attribute.name == name { return attribute.value }
        return nil
    }

    /// The first child element named `name`.
    @inlinable public func firstElement(named name: String) -> XMLElement? {
        for element in elements where element.name == name { return element }
        return nil
    }
}

/// The child elements of an element, indexed from 0.
public struct XMLElementList: RandomAccessCollection, Sendable {
    @usableFromInline let tree: XMLTree
    @usableFromInline let first: Int
    public let count: Int

    @usableFromInline init(tree: XMLTree, first: Int, count: Int) {
        self.tree = tree
        self.first = first
        self.count = count
    }

    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { count }

    @inlinable public subscript(position: Int) -> XMLElement {
        precondition(position >= 0 && position < count, "child index out of range")
        return XMLElement(tree: tree, index: Int(tree.children[first + position]))
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
