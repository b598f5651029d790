import Testing
@testable import XPRESS

/// `RuleLibrary.repeatability(ofRule:)`: which rules a caller may trust to answer again as they
/// answered before, and the fingerprint that tells when their source changed.
@Suite struct RepeatabilityTests {
    private static let helper = """
        <Rule name='Lower'><RuleArgument name='text'/><downcase><ref>text</ref></downcase></Rule>
        """

    private func fingerprint(_ rules: String, of name: String = "Correlate") throws -> UInt64? {
        guard case .repeatable(let fingerprint) = try library(rules).repeatability(ofRule: name) else { return nil }
        return fingerprint
    }

    private func reason(_ rules: String, of name: String = "Correlate") throws -> String? {
        guard case .unrepeatable(let reason) = try library(rules).repeatability(ofRule: name) else { return nil }
        return reason
    }

    @Test func rulesOfTheirArgumentsAloneAreRepeatable() throws {
        let rules = Self.helper + """
            <Rule name='Correlate'><RuleArgument name='account'/>
              <list><new class='AttributeCondition'><s>email</s><s>equals</s>
                <rule name='Lower'><argument name='text' value='$(account.email)'/></rule></new>
                <new class='Date'><s>2026-01-01T00:00:00Z</s></new></list>
            </Rule>
            """
        #expect(try fingerprint(rules) != nil)
        #expect(try fingerprint("", of: "USER_EMAIL_MATCHES_ACCOUNT_EMAIL_CORR") != nil)
    }

    @Test(arguments: [
        ("<script>Math.random()</script>", "<script>", "random numbers"),
        ("<block><print><s>x</s></print><s>x</s></block>", "<print>", "log"),
        ("<block><trace/><s>x</s></block>", "<trace>", "log"),
        ("<new class='java.util.Date'/>", "<new>", "clock"),
        ("<rule><concat><s>Lo</s><s>wer</s></concat></rule>", "<rule>", "known only when it runs"),
        ("<new><s>Date</s></new>", "<new>", "known only when it runs"),
    ])
    func rulesThatMayAnswerDifferentlyAreNot(body: String, element: String, why: String) throws {
        let found = try #require(try reason(Self.helper + "<Rule name='Correlate'>\(body)</Rule>"))
        #expect(found.hasPrefix("\(element) at rules.xml:1:"))
        #expect(found.contains("rule 'Correlate'"))
        #expect(found.contains(why))
    }

    @Test func aRuleCallingAnUnrepeatableRuleIsNot() throws {
        let rules = """
            <Rule name='Stamp'><new class='Date'/></Rule>
            <Rule name='Middle'><rule name='Stamp'/></Rule>
            <Rule name='Correlate'><RuleArgument name='account'><rule name='Middle'/></RuleArgument><s>x</s></Rule>
            """
        let found = try #require(try reason(rules))
        #expect(found.contains("rule 'Stamp'"))
        #expect(try fingerprint(rules, of: "Middle") == nil)
    }

    @Test func recursionEnds() throws {
        let rules = """
            <Rule name='Correlate'><RuleArgument name='n'/>
              <cond><gt><ref>n</ref><i>0</i></gt><rule name='Correlate'><argument name='n'><sub><ref>n</ref><i>1</i></sub></argument></rule><s>done</s></cond>
            </Rule>
            """
        #expect(try fingerprint(rules) != nil)
    }

    @Test func theFingerprintFollowsTheSourceOfTheRuleAndOfTheRulesItCalls() throws {
        let correlate = "<Rule name='Correlate'><RuleArgument name='account'/><rule name='Lower'><argument name='text' value='$(account.email)'/></rule></Rule>"
        let base = try #require(try fingerprint(Self.helper + correlate))
        #expect(try fingerprint(Self.helper + correlate) == base)
        // Indentation and comments are not the rule.
        let reformatted = "\n<Rule name='Lower'>\n  <!-- lower case -->\n  <RuleArgument name='text'/>\n  <downcase>\n    <ref>text</ref>\n  </downcase>\n</Rule>\n"
        #expect(try fingerprint(reformatted + correlate) == base)
        // What the rules say is.
        let upcased = Self.helper.replacingOccurrences(of: "downcase", with: "upcase")
        #expect(try fingerprint(upcased + correlate) != base)
        #expect(try fingerprint(Self.helper + correlate.replacingOccurrences(of: "account.email", with: "account.mail")) != base)
        #expect(try fingerprint(Self.helper.replacingOccurrences(of: "<ref>text</ref>", with: "<ref> text</ref>") + correlate) != base)
        // A rule it does not call is not part of it.
        #expect(try fingerprint(Self.helper + correlate + "<Rule name='Other'><s>x</s></Rule>") == base)
    }
}
