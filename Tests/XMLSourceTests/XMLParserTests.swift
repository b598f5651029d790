import Testing
import XMLSource

private func parse(_ text: String, file: String = "t.xml") -> XMLDocument {
    XMLParser.parse(Array(text.utf8), file: file)
}

@Suite struct XMLParserTests {
    @Test func elementsKeepLineAndColumnOfTheirStartTag() throws {
        let document = parse("<a>\n  <b x='1'\n     y='2'/>\n\t<ç/><d/>\n</a>")
        let root = try #require(document.root)
        #expect(root.location == SourcePosition(file: "t.xml", line: 1, column: 1))
        let children = root.elements
        #expect(children.map(\.name) == ["b", "ç", "d"])
        #expect(children[0].location.line == 2 && children[0].location.column == 3)
        #expect(children[0].contentLine == 3)
        #expect(children[1].location.line == 4 && children[1].location.column == 2)
        #expect(children[2].location.line == 4 && children[2].location.column == 6)
    }

    @Test func columnsCountCharactersNotBytes() throws {
        let root = try #require(parse("<a><s>héllo wörld</s><b/></a>").root)
        #expect(root.elements[1].location.column == 22)
    }

    /// Columns are counted on from the previous tag of the same line, and libxml2 drops the
    /// bytes it has read from its buffer as a large document goes by: every element's position
    /// in a 400 KB document with several tags (and two-byte characters) per line is checked
    /// against a count made here from the text itself.
    @Test func positionsStayExactThroughALargeDocument() throws {
        var text = "<root>\n"
        var expected: [(line: Int, column: Int)] = []
        var line = 2
        for row in 0..<4000 {
            var column = 1
            var written = String(repeating: " ", count: row % 7)
            column += row % 7
            for item in 0..<3 {
                expected.append((line, column))
                let element = "<e i='\(row).\(item)'>é\(item)</e>"
                written += element
                column += element.count
                if item == 1 { written += "ü "; column += 2 }
            }
            text += written + "\n"
            line += 1
        }
        text += "</root>\n"
        let root = try #require(parse(text).root)
        #expect(root.elements.count == expected.count)
        var wrong: [String] = []
        for (index, element) in root.elements.enumerated() where index < expected.count {
            let want = expected[index]
            if element.location.line != want.line || element.location.column != want.column {
                wrong.append("\(element.attribute("i") ?? "?") at \(element.location.line):\(element.location.column), not \(want.line):\(want.column)")
            }
            if element.text != "é\(index % 3)" { wrong.append("\(element.attribute("i") ?? "?") holds \(element.text)") }
        }
        #expect(wrong.isEmpty, "\(wrong.prefix(5))")
    }

    @Test func textEntitiesAndCDATAAreDecoded() throws {
        let root = try #require(parse("<a t='x &amp; y &lt; &#38; z'><s> a &amp; b <![CDATA[<c>]]> </s></a>").root)
        #expect(root.attribute("t") == "x & y < & z")
        #expect(root.elements[0].text == " a & b <c> ")
    }

    @Test func commentsAreKeptWithTheirPosition() throws {
        let root = try #require(parse("<a>\n  <!-- rulecheck-disable-next-line XP0201 -- why -->\n  <b/>\n</a>").root)
        let comments = root.comments
        #expect(comments.count == 1)
        #expect(comments[0].text == " rulecheck-disable-next-line XP0201 -- why ")
        #expect(comments[0].location.line == 2 && comments[0].location.column == 3)
        #expect(comments[0].nextElement == 0 && root.elements[0].name == "b")
    }

    @Test func doubleHyphensInCommentsDoNotHideTheRestOfTheDocument() throws {
        let root = try #require(parse("<a><!-- x -- y --><b/><![CDATA[<!-- not -- a comment -->]]></a>").root)
        #expect(root.elements.map(\.name) == ["b"])
        #expect(root.text == "<!-- not -- a comment -->")
    }

    @Test func malformedXMLIsReportedWithItsPosition() {
        let document = parse("<a>\n  <b>\n</a>")
        #expect(document.root == nil)
        let first = document.diagnostics.first
        #expect(first?.id == XMLDiagnosticID.malformed)
        #expect(first?.location.line == 3)
    }

    @Test func emptyInputIsMalformed() {
        let document = parse("")
        #expect(document.root == nil)
        #expect(document.diagnostics.map(\.id) == [XMLDiagnosticID.malformed])
    }

    @Test func externalEntityIsRefusedAndNeverRead() {
        let document = parse("<?xml version='1.0'?>\n<!DOCTYPE s [ <!ENTITY x SYSTEM 'file:///etc/hostname'> ]>\n<s>&x;</s>")
        #expect(document.root == nil)
        #expect(document.diagnostics.map(\.id) == [XMLDiagnosticID.forbiddenDTDFeature])
        #expect(document.diagnostics[0].location.line == 2)
    }

    @Test func entityBombIsRefusedQuickly() {
        var text = "<?xml version='1.0'?>\n<!DOCTYPE s [ <!ENTITY a0 'aaaaaaaaaa'>"
        for level in 1...9 { text += "<!ENTITY a\(level) '" + String(repeating: "&a\(level - 1);", count: 10) + "'>" }
        text += "]>\n<s>&a9;</s>"
        let started = ContinuousClock.now
        let document = parse(text)
        #expect(ContinuousClock.now - started < .seconds(1))
        #expect(document.root == nil)
        #expect(document.diagnostics.contains { $0.id == XMLDiagnosticID.forbiddenDTDFeature })
    }

    @Test func undeclaredEntityReferenceIsRefused() {
        let document = parse("<!DOCTYPE Waveset PUBLIC 'waveset.dtd' 'waveset.dtd'>\n<Waveset>&nbsp;</Waveset>")
        #expect(document.root == nil)
        #expect(document.diagnostics.contains { $0.id == XMLDiagnosticID.forbiddenDTDFeature })
    }

    @Test func externalDoctypeIsAcceptedAndNeverFetched() throws {
        let document = parse("<?xml version='1.0'?>\n<!DOCTYPE Waveset PUBLIC 'waveset.dtd' 'http://example.invalid/waveset.dtd'>\n<Waveset/>")
        #expect(document.diagnostics.isEmpty)
        #expect(try #require(document.root).name == "Waveset")
    }

    @Test func linesPast65535AreExact() throws {
        let text = "<a>" + String(repeating: "\n", count: 70_000) + "<b/></a>"
        let root = try #require(parse(text).root)
        #expect(root.elements[0].location.line == 70_001)
    }

    /// What lets a linter skip a walk: a name no element (or attribute) of the document has is
    /// reported absent, from any element of the document; comments anywhere inside are noticed.
    @Test func documentsTellWhichNamesAndCommentsTheyMayHold() throws {
        let root = try #require(parse("<Rule name='r'><block><defun name='f'/></block></Rule>").root)
        let inner = root.elements[0]
        #expect(inner.documentMayHaveElement(named: "defun") && root.documentMayHaveElement(named: "block"))
        #expect(!inner.documentMayHaveElement(named: "def") && !root.documentMayHaveElement(named: "set"))
        #expect(!root.documentHasComments)
        let commented = try #require(parse("<!-- outside --><a><b><!-- inside --></b></a>").root)
        #expect(commented.documentHasComments)
        #expect(!(try #require(parse("<!-- outside only --><a/>").root)).documentHasComments)
    }

    @Test func differentDocumentsParseOnManyThreadsAtOnce() async {
        await withTaskGroup(of: Int.self) { group in
            for index in 0..<32 {
                group.addTask {
                    let document = parse("<a n='\(index)'>" + String(repeating: "<b/>", count: 500) + "</a>")
                    return document.root?.elements.count ?? -1
                }
            }
            for await count in group { #expect(count == 500) }
        }
    }
}
