@preconcurrency import CLibXML2
import Glibc

/// Parses XML with the system libxml2, safely: no network, no external entities or DTDs are ever
/// read, documents that declare entities are refused, and every element keeps `file:line:col`.
///
/// The parser runs libxml2 in SAX mode with our own handlers and builds an immutable tree, so
/// different documents may be parsed on different threads at the same time.
public enum XMLParser {
    /// Parses `bytes` (the whole file) as the document named `file` in diagnostics.
    public static func parse(_ bytes: [UInt8], file: String) -> XMLDocument {
        _ = libraryReady
        let (input, comments) = CommentHyphens.neutralised(bytes)
        // The builder is reached from libxml2's callbacks through a plain pointer: no reference
        // counting and no run-time exclusivity check on each of the thousands of callbacks.
        let builder = UnsafeMutablePointer<TreeBuilder>.allocate(capacity: 1)
        builder.initialize(to: TreeBuilder(file: file, originalComments: comments, byteCount: bytes.count))
        defer {
            builder.deinitialize(count: 1)
            builder.deallocate()
        }
        if bytes.isEmpty {
            builder.pointee.report(XMLDiagnosticID.malformed, "the document is empty", line: 1, column: 1)
            return XMLDocument(file: file, root: nil, diagnostics: builder.pointee.diagnostics)
        }
        let parsed: Bool = input.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
            guard let ctxt = xmlCreateMemoryParserCtxt(base, Int32(clamping: buffer.count)) else {
                return false
            }
            defer { xmlFreeParserCtxt(ctxt) }
            installHandlers(ctxt)
            _ = xmlCtxtUseOptions(ctxt, Int32(safeOptions))
            ctxt.pointee._private = UnsafeMutableRawPointer(builder)
            _ = xmlParseDocument(ctxt)
            ctxt.pointee._private = nil
            return ctxt.pointee.wellFormed != 0
        }
        if !parsed && builder.pointee.diagnostics.isEmpty {
            builder.pointee.report(XMLDiagnosticID.malformed, "the document is not well-formed XML", line: 1, column: 1)
        }
        let failed = !parsed || builder.pointee.diagnostics.contains { $0.severity == .error }
        return XMLDocument(file: file, root: failed ? nil : builder.pointee.root(), diagnostics: builder.pointee.diagnostics,
                           outerComments: builder.pointee.outerComments)
    }

    /// No network; big line numbers (past 65535). Deliberately absent: NOENT (substitutes and
    /// so loads external entities), DTDLOAD, DTDVALID, HUGE.
    static let safeOptions = XML_PARSE_NONET.rawValue | XML_PARSE_BIG_LINES.rawValue
        | XML_PARSE_NOCDATA.rawValue

    /// One-time library set-up: initialise libxml2 and make sure that nothing, whatever the
    /// options of any parse in this process, can load an external resource.
    static let libraryReady: Bool = {
        xmlInitParser()
        xmlSetExternalEntityLoader { _, _, _ in nil }
        return true
    }()

    private static func installHandlers(_ ctxt: xmlParserCtxtPtr) {
        guard let sax = ctxt.pointee.sax else { return }
        var handler = xmlSAXHandler()
        handler.initialized = UInt32(XML_SAX2_MAGIC)
        handler.startElementNs = { ctx, localname, prefix, _, _, _, count, _, attributes in
            guard let ctxt = parserContext(ctx) else { return }
            builder(ctxt).pointee.startElement(ctxt, localname: localname, prefix: prefix,
                                     attributes: attributes, count: Int(count))
        }
        handler.endElementNs = { ctx, _, _, _ in
            guard let ctxt = parserContext(ctx) else { return }
            builder(ctxt).pointee.endElement(line: Int(ctxt.pointee.input?.pointee.line ?? 0))
        }
        handler.characters = { ctx, chars, length in
            guard let ctxt = parserContext(ctx), let chars else { return }
            builder(ctxt).pointee.characters(chars, Int(length))
        }
        handler.cdataBlock = handler.characters
        handler.comment = { ctx, value in
            guard let ctxt = parserContext(ctx), let value else { return }
            builder(ctxt).pointee.comment(ctxt, value)
        }
        handler.reference = { ctx, name in
            guard let ctxt = parserContext(ctx) else { return }
            let entity = name.map { String(cString: $0) } ?? "?"
            builder(ctxt).pointee.reportHere(ctxt, XMLDiagnosticID.forbiddenDTDFeature,
                                   "entity reference '&\(entity);' is not allowed: only the five predefined entities may be used")
        }
        handler.entityDecl = { ctx, name, _, _, _, _ in
            guard let ctxt = parserContext(ctx) else { return }
            let entity = name.map { String(cString: $0) } ?? "?"
            builder(ctxt).pointee.reportHere(ctxt, XMLDiagnosticID.forbiddenDTDFeature,
                                   "entity declaration '\(entity)' is not allowed: rule files may not declare entities; remove the <!ENTITY> from the DOCTYPE")
            xmlStopParser(ctxt)
        }
        handler.serror = { data, error in
            guard let ctxt = parserContext(data), let error else { return }
            builder(ctxt).pointee.libraryError(error.pointee)
        }
        sax.pointee = handler
    }
}

/// The parser context behind a callback's user data (libxml2 passes the context itself).
private func parserContext(_ raw: UnsafeMutableRawPointer?) -> xmlParserCtxtPtr? {
    raw?.assumingMemoryBound(to: xmlParserCtxt.self)
}

private func builder(_ ctxt: xmlParserCtxtPtr) -> UnsafeMutablePointer<TreeBuilder> {
    ctxt.pointee._private.assumingMemoryBound(to: TreeBuilder.self)
}

/// The tree under construction and the problems found, reached from libxml2's callbacks through
/// the parser context's `_private` field.
private struct TreeBuilder {
    /// An element whose end tag is still to come: its record, and where its content starts in
    /// `openChildren`, `text` and `openComments`.
    struct OpenElement {
        var record: Int
        var firstChild: Int
        var firstText: Int
        var firstComment: Int
    }

    let file: String
    /// Every comment's text as written, in document order (see `CommentHyphens`).
    let originalComments: [String]
    /// The open elements, outermost first.
    var open: [OpenElement] = []
    /// The tree's arrays (see `XMLTree`): a record is added at each start tag and completed at
    /// its end tag, which also adds the element's children, text and comments.
    private var records: [XMLTree.Record] = []
    private var children: [Int32] = []
    private var attributes: [XMLAttribute] = []
    private var texts = [""]
    private var comments: [XMLComment] = []
    /// The children and comments read so far of every open element, outermost element's first.
    private var openChildren: [Int32] = []
    private var openComments: [XMLComment] = []
    /// The character data read so far of every open element, outermost element's first.
    var text: [UInt8] = []
    private var rootRecord: Int?
    var diagnostics: [Diagnostic] = []
    var outerComments: [(String, SourcePosition)] = []
    private var commentsSeen = 0
    private var names = NameCache()
    /// The last construct whose start `startTagPosition` found, to count the next one's column
    /// on from there when it starts on the same line.
    /// It is valid while libxml2's buffer stays where it was (`base`) and keeps its bytes
    /// (`consumed`: libxml2 moves the bytes down when it drops those it has read).
    private var lastStart: (base: UnsafePointer<xmlChar>, consumed: UInt, position: UnsafePointer<xmlChar>, line: Int, column: Int)?

    /// `byteCount`, the document's size, sizes the arrays: rule files have an element every 30
    /// to 90 bytes, and growing the arrays element by element was 2% of a lint.
    init(file: String, originalComments: [String], byteCount: Int) {
        self.file = file
        self.originalComments = originalComments
        let elements = byteCount / 48 + 16
        records.reserveCapacity(elements)
        children.reserveCapacity(elements)
        attributes.reserveCapacity(elements)
        openChildren.reserveCapacity(64)
        open.reserveCapacity(32)
    }

    mutating func report(_ id: String, _ message: String, line: Int, column: Int) {
        let diagnostic = Diagnostic(id: id, message: message,
                                    location: SourcePosition(file: file, line: max(line, 1), column: max(column, 1)))
        if !diagnostics.contains(diagnostic) { diagnostics.append(diagnostic) }
    }

    mutating func reportHere(_ ctxt: xmlParserCtxtPtr, _ id: String, _ message: String) {
        let input = ctxt.pointee.input
        report(id, message, line: Int(input?.pointee.line ?? 1), column: Int(input?.pointee.col ?? 1))
    }

    mutating func libraryError(_ error: xmlError) {
        let message = error.message.map { String(cString: $0) } ?? "XML error"
        let trimmed = String(message.reversed().drop(while: \.isWhitespace).reversed())
        let code = Int(error.code)
        if code == Int(XML_ERR_UNDECLARED_ENTITY.rawValue) || code == Int(XML_WAR_UNDECLARED_ENTITY.rawValue) {
            report(XMLDiagnosticID.forbiddenDTDFeature, "\(trimmed): only the five predefined entities may be used",
                   line: Int(error.line), column: Int(error.int2))
            return
        }
        guard error.level == XML_ERR_ERROR || error.level == XML_ERR_FATAL else { return }
        report(XMLDiagnosticID.malformed, trimmed, line: Int(error.line), column: Int(error.int2))
    }

    mutating func startElement(_ ctxt: xmlParserCtxtPtr, localname: UnsafePointer<xmlChar>?, prefix: UnsafePointer<xmlChar>?,
                               attributes: UnsafeMutablePointer<UnsafePointer<xmlChar>?>?, count: Int) {
        let firstAttribute = self.attributes.count
        if let attributes, count > 0 {
            for index in 0..<count {
                let base = index * 5
                guard let name = attributes[base], let start = attributes[base + 3],
                      let end = attributes[base + 4] else { continue }
                let value = UnsafeBufferPointer(start: start, count: end - start)
                self.attributes.append(XMLAttribute(name: names.name(name), value: Self.decodeAmpersands(value)))
            }
        }
        let (line, column, contentLine) = startTagPosition(ctxt, marker: UInt8(ascii: "<"), length: 1)
        let name = localname.map { names.index($0) } ?? names.index(of: "")
        records.append(XMLTree.Record(
            name: name, prefix: prefix.map { names.index($0) } ?? -1, firstChild: 0, childCount: 0,
            firstAttribute: Int32(firstAttribute), attributeCount: Int32(self.attributes.count - firstAttribute),
            text: 0, firstComment: 0, commentCount: 0, line: Int32(clamping: line), column: Int32(clamping: column),
            contentLine: Int32(clamping: contentLine), endLine: Int32(clamping: contentLine)))
        open.append(OpenElement(record: records.count - 1, firstChild: openChildren.count, firstText: text.count,
                                firstComment: openComments.count))
    }

    mutating func endElement(line: Int) {
        guard let element = open.popLast() else { return }
        var record = records[element.record]
        if text.count > element.firstText {
            record.text = madeText(from: element.firstText)
            text.removeSubrange(element.firstText...)
        }
        if openComments.count > element.firstComment {
            record.firstComment = Int32(comments.count)
            record.commentCount = Int32(openComments.count - element.firstComment)
            comments.append(contentsOf: openComments[element.firstComment...])
            openComments.removeSubrange(element.firstComment...)
        }
        if openChildren.count > element.firstChild {
            record.firstChild = Int32(children.count)
            record.childCount = Int32(openChildren.count - element.firstChild)
            children.append(contentsOf: openChildren[element.firstChild...])
            openChildren.removeSubrange(element.firstChild...)
        }
        record.endLine = max(Int32(clamping: line), record.contentLine)
        records[element.record] = record
        if open.isEmpty {
            rootRecord = element.record
        } else {
            openChildren.append(Int32(element.record))
        }
    }

    /// The document's root element, once its end tag has been read.
    func root() -> XMLElement? {
        guard let rootRecord else { return nil }
        let tree = XMLTree(file: file, records: records, children: children, attributes: attributes, texts: texts,
                           comments: comments, names: names.strings)
        return XMLElement(tree: tree, index: rootRecord)
    }

    /// The index in `texts` of `text` from `start` on, added to it.
    private mutating func madeText(from start: Int) -> Int32 {
        texts.append(String(decoding: text[start...], as: UTF8.self))
        return Int32(texts.count - 1)
    }

    mutating func characters(_ chars: UnsafePointer<xmlChar>, _ length: Int) {
        guard !open.isEmpty else { return }
        text.append(contentsOf: UnsafeBufferPointer(start: chars, count: length))
    }

    mutating func comment(_ ctxt: xmlParserCtxtPtr, _ value: UnsafePointer<xmlChar>) {
        let index = commentsSeen
        commentsSeen += 1
        let text = index < originalComments.count ? originalComments[index] : String(cString: value)
        let (line, column, _) = startTagPosition(ctxt, marker: UInt8(ascii: "<"), length: 4)
        let position = SourcePosition(file: file, line: line, column: column)
        guard let parent = open.last else {
            if ctxt.pointee.inSubset == 0 { outerComments.append((text, position)) }
            return
        }
        openComments.append(XMLComment(text: text, location: position, nextElement: openChildren.count - parent.firstChild))
    }

    /// Where the construct that libxml2 has just read began. libxml2 reports only the line at
    /// its read position (for a start tag: at the closing `>`), so this searches its decoded
    /// buffer backwards for the opening `<` and counts lines and characters from there.
    /// Returns the start's line and column and the line of the read position.
    private mutating func startTagPosition(_ ctxt: xmlParserCtxtPtr, marker: UInt8, length: Int) -> (Int, Int, Int) {
        guard let input = ctxt.pointee.input, let base = input.pointee.base, let cur = input.pointee.cur else {
            return (1, 1, 1)
        }
        let currentLine = Int(input.pointee.line)
        let newline = Int32(UInt8(ascii: "\n"))
        // A comment's read position is after `-->`; a start tag's is at `>` or `/>`. Attribute
        // values cannot hold a literal `<`, so the nearest `<` behind is the construct's start.
        var position = cur
        while position > base && position.pointee != marker { position -= 1 }
        if length == 4 {  // a comment: skip back over any `<` inside it to its `<!--`
            while position > base && !(position.pointee == marker && position[1] == UInt8(ascii: "!")
                                       && position[2] == UInt8(ascii: "-") && position[3] == UInt8(ascii: "-")) {
                position -= 1
            }
        }
        var newlines = 0
        var scan = position
        while let found = memchr(scan, newline, scan.distance(to: cur)) {  // many bytes at a time
            newlines += 1
            scan = UnsafePointer(found.assumingMemoryBound(to: UInt8.self)) + 1
        }
        let line = max(currentLine - newlines, 1)
        // The column counts characters, not bytes: on from the last start found when that was
        // earlier on the same line (tags written on one line), else back to the line's start.
        var column = 1
        let consumed = input.pointee.consumed
        if let last = lastStart, last.base == base, last.consumed == consumed, last.line == line, last.position <= position {
            column = last.column
            var walk = last.position
            while walk < position {
                if walk.pointee & 0xC0 != 0x80 { column += 1 }
                walk += 1
            }
        } else {
            var walk = position
            while walk > base && walk[-1] != UInt8(ascii: "\n") {
                walk -= 1
                if walk.pointee & 0xC0 != 0x80 { column += 1 }
            }
        }
        lastStart = (base, consumed, position, line, column)
        return (line, column, currentLine)
    }

    /// libxml2 (without entity substitution) hands attribute values over with each `&` that the
    /// document wrote as `&amp;` or `&#38;` re-escaped as `&#38;`; a literal `&` cannot occur.
    private static func decodeAmpersands(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        guard bytes.contains(UInt8(ascii: "&")) else { return String(decoding: bytes, as: UTF8.self) }
        let escape = Array("&#38;".utf8)
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if bytes[index] == escape[0] && bytes[index...].starts(with: escape) {
                result.append(UInt8(ascii: "&"))
                index += escape.count
            } else {
                result.append(bytes[index])
                index += 1
            }
        }
        return String(decoding: result, as: UTF8.self)
    }
}

/// The element and attribute names of a document, each made into a string once. libxml2 keeps
/// each distinct name once in its parser's dictionary and hands over the same pointer every
/// time, so a pointer seen before finds its name's index again in a small direct-mapped cache
/// (a name whose slot another took is added again).
private struct NameCache {
    private static let slots = 64
    private var pointers = [UnsafePointer<xmlChar>?](repeating: nil, count: Self.slots)
    private var indices = [Int32](repeating: 0, count: Self.slots)
    /// The names, indexed by `XMLTree.Record.name` and `.prefix`.
    private(set) var strings: [String] = []

    /// The index in `strings` of the name at `pointer`.
    mutating func index(_ pointer: UnsafePointer<xmlChar>) -> Int32 {
        let slot = Int(truncatingIfNeeded: (UInt(bitPattern: pointer) &* 0x9E37_79B9_7F4A_7C15) >> 58)
        if pointers[slot] == pointer { return indices[slot] }
        let index = self.index(of: String(cString: pointer))
        pointers[slot] = pointer
        indices[slot] = index
        return index
    }

    /// The name at `pointer`.
    mutating func name(_ pointer: UnsafePointer<xmlChar>) -> String { strings[Int(index(pointer))] }

    /// A new index for `name`.
    mutating func index(of name: String) -> Int32 {
        strings.append(name)
        return Int32(strings.count - 1)
    }
}

/// XML forbids `--` inside a comment, yet suppression comments are written
/// `<!-- rulecheck-disable-next-line ID -- reason -->`. Before parsing, each `--` inside a comment
/// becomes `- ` (same length, so positions do not move); the comments' original texts are
/// returned in document order for the tree. CDATA sections and processing instructions are
/// skipped, so only real comments are touched.
enum CommentHyphens {
    static func neutralised(_ bytes: [UInt8]) -> ([UInt8], [String]) {
        var output = bytes  // copied only when a comment holds `--`
        var comments: [String] = []
        bytes.withUnsafeBufferPointer { input in
            let count = input.count
            func starts(_ prefix: StaticString, at index: Int) -> Bool {
                let length = prefix.utf8CodeUnitCount
                guard index + length <= count else { return false }
                for offset in 0..<length where input[index + offset] != prefix.utf8Start[offset] { return false }
                return true
            }
            func skip(from start: Int, past terminator: StaticString) -> Int {
                var index = start
                while index < count && !starts(terminator, at: index) { index += 1 }
                return index + terminator.utf8CodeUnitCount
            }
            let lt = UInt8(ascii: "<"), dash = UInt8(ascii: "-"), gt = UInt8(ascii: ">")
            var index = 0
            while index < count {
                // Jump to the next `<` (memchr reads many bytes at a time).
                guard let found = memchr(input.baseAddress! + index, Int32(lt), count - index) else { break }
                index = input.baseAddress!.distance(to: found.assumingMemoryBound(to: UInt8.self))
                if starts("<!--", at: index) {
                    let bodyStart = index + 4
                    var end = bodyStart
                    while end + 2 < count && !(input[end] == dash && input[end + 1] == dash && input[end + 2] == gt) { end += 1 }
                    guard end + 2 < count else { break }
                    comments.append(String(decoding: input[bodyStart..<end], as: UTF8.self))
                    var scan = bodyStart
                    while scan + 1 < end {
                        if input[scan] == dash && input[scan + 1] == dash {
                            output[scan + 1] = UInt8(ascii: " ")
                            scan += 2
                        } else {
                            scan += 1
                        }
                    }
                    if end > bodyStart && input[end - 1] == dash { output[end - 1] = UInt8(ascii: " ") }
                    index = end + 3
                } else if starts("<![CDATA[", at: index) {
                    index = skip(from: index, past: "]]>")
                } else if index + 1 < count && input[index + 1] == UInt8(ascii: "?") {
                    index = skip(from: index, past: "?>")
                } else {
                    index += 1
                }
            }
        }
        return (output, comments)
    }
}
