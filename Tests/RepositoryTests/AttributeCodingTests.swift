import Foundation
import Testing
@testable import Repository

/// The Account Index keeps each account's attributes as JSON text, written and read back by a
/// byte-level coder: what it writes must be valid JSON that reads back equal, and text it did
/// not write (older rows, other writers) must still read.
@Suite struct AttributeCodingTests {
    static let samples: [[AccountAttribute]] = [
        [],
        [AccountAttribute(name: "mail", value: .single("a@example.com"))],
        [AccountAttribute(name: "groups", value: .multi([])), AccountAttribute(name: "empty", value: .single(""))],
        [AccountAttribute(name: "quote\"back\\slash", value: .multi(["line\nbreak\ttab\r", "\u{1}\u{1f}", "/slash"]))],
        [AccountAttribute(name: "名前", value: .single("Zoë 🙂 Ünïcode")), AccountAttribute(name: "x", value: .multi(["a", "b", "c"]))],
    ]

    @Test(arguments: samples) func writtenTextIsJSONThatReadsBackEqual(_ attributes: [AccountAttribute]) throws {
        let text = AttributeCoding.encode(attributes)
        #expect(try JSONDecoder().decode([AccountAttribute].self, from: Data(text.utf8)) == attributes)
        #expect(AttributeCoding.decode(text) == attributes)
    }

    @Test(arguments: samples) func textOtherWritersProduceStillReads(_ attributes: [AccountAttribute]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .withoutEscapingSlashes]
        let text = String(decoding: try encoder.encode(attributes), as: UTF8.self)
        #expect(AttributeCoding.decode(text) == attributes)
        #expect(AttributeCoding.decode(#"[{"multi":true,"values":["\u00e9t\u00e9"],"name":"n"}]"#)
                == [AccountAttribute(name: "n", value: .multi(["été"]))])
    }

    @Test func unreadableTextIsNoAttributes() {
        #expect(AttributeCoding.decode("") == [])
        #expect(AttributeCoding.decode(#"[{"name":"a","values":["x"#) == [])
        #expect(AttributeCoding.decode("not json") == [])
    }
}
