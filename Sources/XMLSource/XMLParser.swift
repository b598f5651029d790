@preconcurrency import CLibXML2

/// Parses XML with the system libxml2, safely: no network, no external entities or DTDs are ever
/// read, documents that declare entities are refused, and every element keeps `file:line:col`.
///
/// The parser runs libxml2 in SAX mode with our own handlers and builds an immutable tree, so
/// different documents may be parsed on different threads at the same time.
public enum XMLParser {
    /// Parses `bytes` (the whole file) as the document named `file` in diagnostics.
    public static func parse(_ bytes: [UInt8], file: String) -> XMLDocument {
        _ = libraryReady
        let state = ParseState(file: file)
        let (input, comments) = CommentHyphens.neutralised(bytes)
        state.originalComments = comments
        if bytes.isEmpty {
            state.report(XMLDiagnosticID.malformed, "the document is empty", line: 1, column: 1)
            return XMLDocument(file: file, root: nil, diagnostics: state.diagnostics)
        }
        let parsed: Bool = input.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
            guard let ctxt = xmlCreateMemoryParserCtxt(base, Int32(clamping: buffer.count)) else {
                return false
            }
            defer { xmlFreeParserCtxt(ctxt) }
            installHandlers(ctxt)
            _ = xmlCtxtUseOptions(ctxt, Int32(safeOptions))
            let unmanaged = Unmanaged.passUnretained(state)
            ctxt.pointee._private = unmanaged.toOpaque()
            _ = xmlParseDocument(ctxt)
            ctxt.pointee._private = nil
            return ctxt.pointee.wellFormed != 0
        }
        let failed = !parsed || state.diagnostics.contains { $0.severity == .error }
        if !parsed && state.diagnostics.isEmpty {
            state.report(XMLDiagnosticID.malformed, "the document is not well-formed XML", line: 1, column: 1)
        }
        return XMLDocument(file: file, root: failed ? nil : state.root, diagnostics: state.diagnostics,
                           outerComments: state.outerComments)
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
            state(ctxt).startElement(ctxt, localname: localname, prefix: prefix,
                                     attributes: attributes, count: Int(count))
        }
        handler.endElementNs = { ctx, _, _, _ in
            guard let ctxt = parserContext(ctx) else { return }
            state(ctxt).endElement(line: Int(ctxt.pointee.input?.pointee.line ?? 0))
        }
        handler.characters = { ctx, chars, length in
            guard let ctxt = parserContext(ctx), let chars else { return }
            state(ctxt).characters(chars, Int(length))
        }
        handler.cdataBlock = handler.characters
        handler.comment = { ctx, value in
            guard let ctxt = parserContext(ctx), let value else { return }
            state(ctxt).comment(ctxt, value)
        }
        handler.reference = { ctx, name in
            guard let ctxt = parserContext(ctx) else { return }
            let entity = name.map { String(cString: $0) } ?? "?"
            state(ctxt).reportHere(ctxt, XMLDiagnosticID.forbiddenDTDFeature,
                                   "entity reference '&\(entity);' is not allowed: only the five predefined entities may be used")
        }
        handler.entityDecl = { ctx, name, _, _, _, _ in
            guard let ctxt = parserContext(ctx) else { return }
            let entity = name.map { String(cString: $0) } ?? "?"
            state(ctxt).reportHere(ctxt, XMLDiagnosticID.forbiddenDTDFeature,
                                   "entity declaration '\(entity)' is not allowed: rule files may not declare entities; remove the <!ENTITY> from the DOCTYPE")
            xmlStopParser(ctxt)
        }
        handler.serror = { data, error in
            guard let ctxt = parserContext(data), let error else { return }
            state(ctxt).libraryError(error.pointee)
        }
        sax.pointee = handler
    }
}

/// The parser context behind a callback's user data (libxml2 passes the context itself).
private func parserContext(_ raw: UnsafeMutableRawPointer?) -> xmlParserCtxtPtr? {
    raw?.assumingMemoryBound(to: xmlParserCtxt.self)
}

private func state(_ ctxt: xmlParserCtxtPtr) -> ParseState {
    Unmanaged<ParseState>.fromOpaque(ctxt.pointee._private).takeUnretainedValue()
}

/// The tree under construction and the problems found, reached from libxml2's callbacks through
/// the parser context's `_private` field.
private final class ParseState {
    struct OpenElement {
        var name: String
        var prefix: String?
        var attributes: [XMLAttribute]
        var children: [XMLNode] = []
        var location: SourcePosition
        var contentLine: Int
        var pendingText = ""
    }

    let file: String
    var stack: [OpenElement] = []
    var root: XMLElement?
    var diagnostics: [Diagnostic] = []
    /// Every comment's text as written, in document order (see `CommentHyphens`).
    var originalComments: [String] = []
    var outerComments: [(String, SourcePosition)] = []
    private var commentsSeen = 0

    init(file: String) { self.file = file }

    func report(_ id: String, _ message: String, line: Int, column: Int) {
        let diagnostic = Diagnostic(id: id, message: message,
                                    location: SourcePosition(file: file, line: max(line, 1), column: max(column, 1)))
        if !diagnostics.contains(diagnostic) { diagnostics.append(diagnostic) }
    }

    func reportHere(_ ctxt: xmlParserCtxtPtr, _ id: String, _ message: String) {
        let input = ctxt.pointee.input
        report(id, message, line: Int(input?.pointee.line ?? 1), column: Int(input?.pointee.col ?? 1))
    }

    func libraryError(_ error: xmlError) {
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

    private func flushText() {
        guard !stack.isEmpty, !stack[stack.count - 1].pendingText.isEmpty else { return }
        stack[stack.count - 1].children.append(.text(stack[stack.count - 1].pendingText))
        stack[stack.count - 1].pendingText = ""
    }

    func startElement(_ ctxt: xmlParserCtxtPtr, localname: UnsafePointer<xmlChar>?, prefix: UnsafePointer<xmlChar>?,
                      attributes: UnsafeMutablePointer<UnsafePointer<xmlChar>?>?, count: Int) {
        flushText()
        var list: [XMLAttribute] = []
        list.reserveCapacity(count)
        if let attributes {
            for index in 0..<count {
                let base = index * 5
                guard let name = attributes[base], let start = attributes[base + 3],
                      let end = attributes[base + 4] else { continue }
                let value = String(decoding: UnsafeBufferPointer(start: start, count: end - start), as: UTF8.self)
                list.append(XMLAttribute(name: String(cString: name), value: decodeAmpersands(value)))
            }
        }
        let (line, column, contentLine) = startTagPosition(ctxt, marker: UInt8(ascii: "<"), length: 1)
        stack.append(OpenElement(name: localname.map { String(cString: $0) } ?? "",
                                 prefix: prefix.map { String(cString: $0) },
                                 attributes: list,
                                 location: SourcePosition(file: file, line: line, column: column),
                                 contentLine: contentLine))
    }

    func endElement(line: Int) {
        flushText()
        guard let open = stack.popLast() else { return }
        let element = XMLElement(name: open.name, prefix: open.prefix, attributes: open.attributes,
                                 children: open.children, location: open.location, contentLine: open.contentLine,
                                 endLine: max(line, open.contentLine))
        if stack.isEmpty {
            root = element
        } else {
            stack[stack.count - 1].children.append(.element(element))
        }
    }

    func characters(_ chars: UnsafePointer<xmlChar>, _ length: Int) {
        guard !stack.isEmpty else { return }
        stack[stack.count - 1].pendingText += String(decoding: UnsafeBufferPointer(start: chars, count: length), as: UTF8.self)
    }

    func comment(_ ctxt: xmlParserCtxtPtr, _ value: UnsafePointer<xmlChar>) {
        let index = commentsSeen
        commentsSeen += 1
        let text = index < originalComments.count ? originalComments[index] : String(cString: value)
        let (line, column, _) = startTagPosition(ctxt, marker: UInt8(ascii: "<"), length: 4)
        let position = SourcePosition(file: file, line: line, column: column)
        guard !stack.isEmpty else {
            if ctxt.pointee.inSubset == 0 { outerComments.append((text, position)) }
            return
        }
        flushText()
        stack[stack.count - 1].children.append(.comment(text, position))
    }

    /// Where the construct that libxml2 has just read began. libxml2 reports only the line at
    /// its read position (for a start tag: at the closing `>`), so this searches its decoded
    /// buffer backwards for the opening `<` and counts lines and characters from there.
    /// Returns the start's line and column and the line of the read position.
    private func startTagPosition(_ ctxt: xmlParserCtxtPtr, marker: UInt8, length: Int) -> (Int, Int, Int) {
        guard let input = ctxt.pointee.input, let base = input.pointee.base, let cur = input.pointee.cur else {
            return (1, 1, 1)
        }
        let currentLine = Int(input.pointee.line)
        var position = cur
        // A comment's read position is after `-->`; a start tag's is at `>` or `/>`. Attribute
        // values cannot hold a literal `<`, so the nearest `<` behind is the construct's start.
        while position > base && position.pointee != marker { position -= 1 }
        if length == 4 {  // a comment: skip back over any `<` inside it to its `<!--`
            while position > base && !(position.pointee == marker && position[1] == UInt8(ascii: "!")
                                       && position[2] == UInt8(ascii: "-") && position[3] == UInt8(ascii: "-")) {
                position -= 1
            }
        }
        var newlines = 0
        var scan = position
        while scan < cur {
            if scan.pointee == UInt8(ascii: "\n") { newlines += 1 }
            scan += 1
        }
        var lineStart = position
        while lineStart > base && lineStart[-1] != UInt8(ascii: "\n") { lineStart -= 1 }
        var column = 1
        var walk = lineStart
        while walk < position {
            if walk.pointee & 0xC0 != 0x80 { column += 1 }
            walk += 1
        }
        return (max(currentLine - newlines, 1), column, currentLine)
    }

    /// libxml2 (without entity substitution) hands attribute values over with each `&` that the
    /// document wrote as `&amp;` or `&#38;` re-escaped as `&#38;`; a literal `&` cannot occur.
    private func decodeAmpersands(_ value: String) -> String {
        guard value.utf8.contains(UInt8(ascii: "&")) else { return value }
        let escape = Array("&#38;".utf8)
        let bytes = Array(value.utf8)
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

/// XML forbids `--` inside a comment, yet suppression comments are written
/// `<!-- rulecheck-disable-next-line ID -- reason -->`. Before parsing, each `--` inside a comment
/// becomes `- ` (same length, so positions do not move); the comments' original texts are
/// returned in document order for the tree. CDATA sections and processing instructions are
/// skipped, so only real comments are touched.
enum CommentHyphens {
    static func neutralised(_ bytes: [UInt8]) -> ([UInt8], [String]) {
        let open = Array("<!--".utf8), cdata = Array("<![CDATA[".utf8)
        var output = bytes
        var comments: [String] = []
        var index = 0
        let lt = UInt8(ascii: "<"), dash = UInt8(ascii: "-"), gt = UInt8(ascii: ">")
        while index < bytes.count {
            guard bytes[index] == lt else { index += 1; continue }
            if bytes[index...].starts(with: open) {
                let bodyStart = index + 4
                var end = bodyStart
                while end + 2 < bytes.count && !(bytes[end] == dash && bytes[end + 1] == dash && bytes[end + 2] == gt) { end += 1 }
                guard end + 2 < bytes.count else { break }
                comments.append(String(decoding: bytes[bodyStart..<end], as: UTF8.self))
                var scan = bodyStart
                while scan + 1 < end {
                    if bytes[scan] == dash && bytes[scan + 1] == dash {
                        output[scan + 1] = UInt8(ascii: " ")
                        scan += 2
                    } else {
                        scan += 1
                    }
                }
                if end > bodyStart && bytes[end - 1] == dash { output[end - 1] = UInt8(ascii: " ") }
                index = end + 3
            } else if bytes[index...].starts(with: cdata) {
                index = skip(bytes, from: index, past: Array("]]>".utf8))
            } else if index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "?") {
                index = skip(bytes, from: index, past: Array("?>".utf8))
            } else {
                index += 1
            }
        }
        return (output, comments)
    }

    private static func skip(_ bytes: [UInt8], from start: Int, past terminator: [UInt8]) -> Int {
        var index = start
        while index < bytes.count && !bytes[index...].starts(with: terminator) { index += 1 }
        return index + terminator.count
    }
}
