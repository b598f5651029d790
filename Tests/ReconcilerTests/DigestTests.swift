import Connectors
import Repository
import Testing
@testable import Reconciler

/// The digest tells an unchanged account from a changed one between runs, whatever the order
/// in which the resource lists its attributes.
@Suite struct DigestTests {
    let account = Account(id: "a1", attributes: [("uid", .single("a1")), ("mail", .single("a@x")), ("groups", .multi(["g1", "g2"]))])

    /// Digests are stored: the same account must give the same number in every version, or
    /// the first run after an upgrade would see every account changed.
    @Test func digestsAreStableAcrossVersions() {
        #expect(Digest.value(of: account) == 0x7003_5991_d8ee_0b06)
        let unicode = Account(id: "Émile-ünïcode-long-identifier-0001",
                              attributes: [("cn", .single("Émile Zola")), ("mail", .single("emile@example.com"))], disabled: true)
        #expect(Digest.value(of: unicode) == 0x9c32_fd4d_3f08_4d9b)
    }

    @Test func attributeOrderDoesNotMatter() {
        let reordered = Account(id: "a1", attributes: [("groups", .multi(["g1", "g2"])), ("uid", .single("a1")), ("mail", .single("a@x"))])
        #expect(Digest.of(reordered) == Digest.of(account))
    }

    @Test(arguments: [
        Account(id: "a2", attributes: [("uid", .single("a1")), ("mail", .single("a@x")), ("groups", .multi(["g1", "g2"]))]),
        Account(id: "a1", attributes: [("uid", .single("a1")), ("mail", .single("b@x")), ("groups", .multi(["g1", "g2"]))]),
        Account(id: "a1", attributes: [("uid", .single("a1")), ("mail", .single("a@x")), ("groups", .multi(["g2", "g1"]))]),
        Account(id: "a1", attributes: [("uid", .single("a1")), ("mail", .single("a@x"))]),
        Account(id: "a1", attributes: [("uid", .single("a1")), ("email", .single("a@x")), ("groups", .multi(["g1", "g2"]))]),
        Account(id: "a1", attributes: [("uid", .single("a1")), ("mail", .single("a@x")), ("groups", .multi(["g1", "g2"]))], disabled: true),
        // A value moved from one attribute to another.
        Account(id: "a1", attributes: [("uid", .single("a@x")), ("mail", .single("a1")), ("groups", .multi(["g1", "g2"]))]),
    ])
    func anyChangeChangesTheDigest(_ changed: Account) {
        #expect(Digest.of(changed) != Digest.of(account))
    }
}

/// Digests read back from the index: what this engine wrote compares as the number it was;
/// any other text (another writer's, or damaged) stays text and so never equals a digest.
@Suite struct StoredDigestTests {
    @Test(arguments: [0, 1, 0xabc, UInt64.max, Digest.value(of: Account(id: "a1", attributes: [("mail", .single("a@x"))]))])
    func writtenDigestsReadBackAsTheirNumber(_ value: UInt64) {
        #expect(StoredDigest(StoredDigest.number(value).text) == .number(value))
        #expect(StoredDigest(String(value, radix: 16, uppercase: true)) == .number(value))
    }

    @Test func everyHexadecimalDigitReadsAsItsValue() {
        #expect(StoredDigest("0123456789abcdef") == .number(0x0123_4567_89ab_cdef))
        #expect(StoredDigest("FEDCBA9876543210") == .number(0xfedc_ba98_7654_3210))
        #expect(StoredDigest("0aBcDeF9") == .number(0x0abc_def9))
    }

    @Test(arguments: ["", "sha256:0a1b", "12g4", "-1", " 1f", "1ffffffffffffffff",
                      // the bytes just outside 0-9, a-f and A-F
                      "/1", ":1", "@1", "G1", "`1", "g1", "é1"])
    func otherTextStaysText(_ text: String) {
        #expect(StoredDigest(text) == .text(text))
    }
}
