import Foundation
import Testing
@testable import XPRESS

/// Cases found in review: Java compatibility at the edges and inputs that must fail cleanly.
@Suite struct EdgeCaseTests {
    static let results: [Case] = [
        Case("<dolist name='i'><list><i>1</i><i>2</i></list><script>const y = env.get('i'); y * 2;</script></dolist>", "[2, 4]"),
        Case("<dolist name='a'><list><s>y</s><s>n</s></list><script>var r; if (env.get('a') == 'y') r = 'yes'; r;</script></dolist>", #"["yes"]"#),
        Case("<substr><s>abc</s><i>1</i><i>9223372036854775807</i></substr>", #""bc""#),
        Case("<ncmp><i>10</i><i>9</i></ncmp>", "1"),
        Case("<mod><i>-9223372036854775808</i><i>-1</i></mod>", "0"),
        Case("<eq><s>&#xE9;</s><s>e&#x301;</s></eq>", "0"),
        Case("<length><map><s>&#xE9;</s><i>1</i><s>e&#x301;</s><i>2</i></map></length>", "2"),
        Case("<invoke name='startsWith'><s>e&#x301;</s><s>e</s></invoke>", "true"),
        Case("<invoke name='replace'><s>abc</s><s></s><s>-</s></invoke>", #""-a-b-c-""#),
        Case("<contains><s>e&#x301;x</s><s>e</s></contains>", "1"),
        Case("<block><defvar name='i'><i>1</i></defvar><defvar name='l'><list><s>a</s><s>b</s></list></defvar><rule name='SCHEDULING_RULE_ACCEPT_ALL_DATES'><argument name='calculatedNextDate' value='$(l[#$(i)])'/></rule></block>", #""b""#),
        Case("<expand><s>[$(l[#$(i)])]</s></expand>", #""[b]""#, [("i", "1"), ("l", #"["a", "b"]"#)]),
        Case("<rule name='SCHEDULING_RULE_ACCEPT_ALL_DATES'><argument name='calculatedNextDate'/></rule>", "null"),
        Case("<add><s>１２</s></add>", "12"),
        Case("<lconcat><list><s>a</s></list><null/></lconcat>", #"["a", null]"#),
        Case("<block><defvar name='l'><list/></defvar><set name='l[k=v].x'><i>1</i></set><ref>l</ref></block>", "[]"),
        Case("<block><defvar name='l'><list/></defvar><append name='l'><ref>l</ref></append><concat><ref>l</ref></concat></block>", #""[(this Collection)]""#),
    ]

    @Test(arguments: results) func edgeCases(_ c: Case) throws { #expect(try eval(c.xml, variables: c.variables) == c.expected) }

    @Test(arguments: [
        ("<invoke name='setHours'><new class='java.util.Date'><i>0</i></new><i>9223372036854775807</i></invoke>", "not a 32-bit integer"),
        ("<new class='java.util.Date'><i>9223372036854775807</i></new>", "outside the range of dates"),
        ("<pad><s>a</s><i>100000000000</i></pad>", "cannot pad"),
        ("<script>new Array(4294967295)</script>", "limit"),
        ("<invoke class='Integer' name='parseInt'><s>3000000000</s></invoke>", "32-bit"),
        ("<invoke class='Integer' name='parseInt'><s> 7</s></invoke>", "32-bit"),
        ("<block><defvar name='l'><list/></defvar><append name='l'><ref>l</ref></append><script>env.get('l')</script></block>", "nests too deeply"),
        ("<block><set name='fresh[#0]'><i>1</i></set></block>", "cannot set"),
    ])
    func inputsThatFailCleanly(_ xml: String, _ message: String) throws {
        let error = try #require(try runtimeError(xml))
        #expect(error.message.contains(message), "\(error.message)")
    }

    @Test func deeplyNestedJSONIsRefused() {
        #expect(throws: ValueJSON.ParseError.self) { try ValueJSON.decode(String(repeating: "[", count: 100_000)) }
    }

    @Test func defaultsAreEvaluatedInsideTheRule() throws {
        let rules = "<Rule name='D'><RuleArgument name='a'><block><set name='made'><i>1</i></set><s>dflt</s></block></RuleArgument><ref>a</ref></Rule>"
        #expect(try eval("<block><rule name='D'/><ref>made</ref></block>", rules: rules) == "null")
        #expect(try eval("<rule name='D'/>", rules: rules) == #""dflt""#)
    }

    @Test func scriptErrorsNameTheFileLine() throws {
        let error = try #require(try runtimeError("<block>\n<script>\nvar a = 1;\nnull.x;\n</script>\n</block>"))
        #expect(error.message.contains("file line 4"), "\(error.message)")
    }
}
