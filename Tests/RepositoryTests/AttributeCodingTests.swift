import Foundation
import Testing
@testable import Repository

/// The Account Index keeps each account's attributes as JSON text, written and read back by a
/// byte-level coder: what it writes must be valid JSON that reads back equal, rows written in
/// the older shape must still read, and so must text it did not write.
@Suite struct AttributeCodingTests {
    static let samples: [[AccountAttribute]] = [
        [],
        [AccountAttribute(name: "mail", value: .single("a@example.com"))],
        [AccountAttribute(name: "groups", value: .multi([])), AccountAttribute(name: "empty", value: .single(""))],
        [AccountAttribute(name: "quote\"back\\slash", value: .multi(["line\nbreak\ttab\r", "\u{1}\u{1f}", "/slash"]))],
        [AccountAttribute(name: "名前", value: .single("Zoë 🙂 Ünïcode")), AccountAttribute(name: "x", value: .multi(["a", "b", "c"]))],
    ]

    @Test func oneMemberPerAttributeInTheAccountsOrder() {
        let attributes = [AccountAttribute(name: "uid", value: .single("a0")), AccountAttribute(name: "groups", value: .multi(["x", "y"])),
                          AccountAttribute(name: "cn", value: .single("Ann"))]
        #expect(AttributeCoding.encode(attributes) == #"{"uid":"a0","groups":["x","y"],"cn":"Ann"}"#)
        #expect(AttributeCoding.encode([]) == "{}")
    }

    @Test(arguments: samples) func writtenTextIsJSONThatReadsBackEqual(_ attributes: [AccountAttribute]) throws {
        let text = AttributeCoding.encode(attributes)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        for attribute in attributes {
            if attribute.multi {
                #expect(object[attribute.name] as? [String] == attribute.values)
            } else {
                #expect(object[attribute.name] as? String == attribute.values.first)
            }
        }
        #expect(object.count == attributes.count)
        #expect(AttributeCoding.decode(text) == attributes)
    }

    @Test(arguments: samples) func rowsInTheOlderShapeStillRead(_ attributes: [AccountAttribute]) throws {
        // As the coder wrote them before (JSONEncoder's order and spacing differ; both read).
        let older = "[" + attributes.map { attribute in
            let values = attribute.values.map(Self.jsonString).joined(separator: ",")
            return #"{"name":"# + Self.jsonString(attribute.name) + #","values":["# + values + #"],"multi":"# + "\(attribute.multi)}"
        }.joined(separator: ",") + "]"
        #expect(AttributeCoding.decode(older) == attributes)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .withoutEscapingSlashes]
        #expect(AttributeCoding.decode(String(decoding: try encoder.encode(attributes), as: UTF8.self)) == attributes)
        #expect(AttributeCoding.decode(#"[{"multi":true,"values":["\u00e9t\u00e9"],"name":"n"}]"#)
                == [AccountAttribute(name: "n", value: .multi(["été"]))])
    }

    @Test func objectsOtherWritersProduceReadSortedByName() {
        #expect(AttributeCoding.decode(#"{ "uid": "a0", "groups": [ "x", "\u00e9" ] }"#)
                == [AccountAttribute(name: "groups", value: .multi(["x", "é"])), AccountAttribute(name: "uid", value: .single("a0"))])
    }

    @Test func unreadableTextIsNoAttributes() {
        #expect(AttributeCoding.decode("") == [])
        #expect(AttributeCoding.decode(#"[{"name":"a","values":["x"#) == [])
        #expect(AttributeCoding.decode(#"{"a":"x""#) == [])
        #expect(AttributeCoding.decode(#"{"a":1}"#) == [])
        #expect(AttributeCoding.decode("not json") == [])
    }

    private static func jsonString(_ text: String) -> String {
        String(decoding: try! JSONEncoder().encode(text), as: UTF8.self)
    }
}
