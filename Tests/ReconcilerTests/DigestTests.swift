import Connectors
import Testing
@testable import Reconciler

/// The digest tells an unchanged account from a changed one between runs, whatever the order
/// in which the resource lists its attributes.
@Suite struct DigestTests {
    let account = Account(id: "a1", attributes: [("uid", .single("a1")), ("mail", .single("a@x")), ("groups", .multi(["g1", "g2"]))])

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
