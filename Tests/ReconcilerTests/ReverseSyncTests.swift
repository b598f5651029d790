import Connectors
import Foundation
import Repository
import Testing
@testable import Reconciler

private func reverseSyncConfiguration(newAccounts: String = "APPROVE", modifiedAccounts: String = "APPROVE") -> String {
    """
    <Waveset>
      <Resource name='AD' type='FlatFile'>
        <ResourceAttribute name='file' value='ad.csv'/><ResourceAttribute name='accountId' value='uid'/>
        <ResourceAttribute name='multiValuedAttributes' value='groups'/><ResourceAttribute name='disabledAttribute' value='disabled'/>
      </Resource>
      <Administrator name='Admin' userForm='Form'><Capability name='DeleteAccount'/><Capability name='DisableAccount'/><Capability name='LinkAccount'/></Administrator>
      <Form name='Form'><Field name='global.email'><Expansion><ref>account.email</ref></Expansion></Field></Form>
      <ReconcilePolicy name='AD' resource='AD'><Correlation correlationRule='USER_EMAIL_MATCHES_ACCOUNT_EMAIL_CORR'/><Workflow proxyAdministrator='Admin'/></ReconcilePolicy>
      <ReverseSyncPolicy resource='AD' defaultUser='nobody' approver='helpdesk'>
        <NewAccounts action='\(newAccounts)'/><ModifiedAccounts action='\(modifiedAccounts)'/><CapabilityAttribute name='groups'/>
      </ReverseSyncPolicy>
    </Waveset>
    """
}

private let adUsers = [
    User(name: "alice", attributes: ["email": .single("alice@x")], accounts: [AccountLink(resource: "AD", accountID: "a")]),
    User(name: "bob", attributes: ["email": .single("bob@x")]),
    User(name: "nobody"),
]

@Suite struct ReverseSyncTests {
    func write(_ deployed: Deployed, _ csv: String) throws {
        try Data(("uid,email,groups,disabled\n" + csv).utf8).write(to: deployed.directory.appendingPathComponent("ad.csv"))
    }

    @Test func newAndModifiedAccountsBecomeWorkItemsAndDecisionsApply() throws {
        let deployed = try Deployed(["config.xml": reverseSyncConfiguration(), "ad.csv": "uid,email,groups,disabled\na,alice@x,staff|mail,\nb,bob@x,staff,\n"],
                                    users: adUsers)
        let sync = ReverseSync(engine: deployed.engine, server: "test")
        let first = try sync.explore("AD")
        #expect(first.accounts == 2 && first.newAccounts == 1 && first.modifiedAccounts == 0)
        let newItem = try #require(try deployed.repository.workItems(includeDecided: false).first)
        #expect(newItem.kind == .newAccount && newItem.accountID == "b" && newItem.suggestedUser == "bob" && newItem.approver == "helpdesk")
        #expect(try sync.explore("AD").workItems.isEmpty, "an open item is not repeated")

        try write(deployed, "a,alice@new,mail|admins,\nb,bob@x,staff,\n")
        let second = try sync.explore("AD")
        #expect(second.modifiedAccounts == 1)
        let items = try deployed.repository.workItems(includeDecided: false).filter { $0.accountID == "a" }
        #expect(items.map(\.kind) == [.modifiedAccount, .capability, .capability])
        #expect(items[0].changes == [WorkItem.Change(attribute: "email", old: ["alice@x"], new: ["alice@new"], multi: false)])
        #expect(items[1].changes == [WorkItem.Change(attribute: "groups", old: nil, new: ["admins"], multi: true)])
        #expect(items[2].changes == [WorkItem.Change(attribute: "groups", old: ["staff"], new: nil, multi: true)])

        _ = try sync.approve(newItem.id)
        #expect(try deployed.repository.user(named: "bob")?.accounts == [AccountLink(resource: "AD", accountID: "b")])
        #expect(try deployed.repository.indexEntry(resource: "AD", accountID: "b")?.situation == "CONFIRMED")

        _ = try sync.approve(items[0].id)
        #expect(try deployed.repository.user(named: "alice")?.attributes["email"] == .single("alice@new"))
        #expect(try deployed.repository.indexEntry(resource: "AD", accountID: "a")?.attributes.first { $0.name == "email" }?.values == ["alice@new"])

        _ = try sync.reject(items[1].id)  // the added group is taken away again
        #expect(try deployed.file("ad.csv").contains("a,alice@new,mail,"))
        _ = try sync.approve(items[2].id)  // the removal of staff is accepted
        #expect(try deployed.repository.indexEntry(resource: "AD", accountID: "a")?.attributes.first { $0.name == "groups" }?.values == ["mail"])

        #expect(throws: EngineError.self) { try sync.approve(items[0].id) }
        let activity = try deployed.repository.tasks(resource: "AD", name: "Provisioning Activity", limit: 10)
        #expect(activity.count == 4 && activity.allSatisfy { $0.status == "success" })
    }

    @Test func rejectedChangesGoBackAsOneChangeAndStaleItemsAreRefused() throws {
        let deployed = try Deployed(["config.xml": reverseSyncConfiguration(), "ad.csv": "uid,email,groups,disabled\na,alice@x,staff,\n"], users: adUsers)
        let sync = ReverseSync(engine: deployed.engine, server: "test")
        _ = try sync.explore("AD")
        try write(deployed, "a,alice@evil,staff,\n")
        _ = try sync.explore("AD")
        let item = try #require(try deployed.repository.workItems(includeDecided: false).first)
        _ = try sync.reject(item.id)
        #expect(try deployed.file("ad.csv").contains("a,alice@x,staff,"))

        try write(deployed, "a,alice@second,staff,\n")
        _ = try sync.explore("AD")
        let stale = try #require(try deployed.repository.workItems(includeDecided: false).first)
        try write(deployed, "a,alice@third,staff,\n")
        #expect(throws: EngineError.self) { try sync.approve(stale.id) }
        #expect(try deployed.repository.workItem(id: stale.id)?.status == "failed")
        #expect(try deployed.repository.tasks(resource: "AD", name: "Provisioning Activity", limit: 10).first?.status == "failed")
    }

    @Test func newAccountsCanBeDeletedOrAcceptedAtOnce() throws {
        let deployed = try Deployed(["config.xml": reverseSyncConfiguration(), "ad.csv": "uid,email,groups,disabled\nx,x@x,,\n"], users: adUsers)
        let sync = ReverseSync(engine: deployed.engine, server: "test")
        _ = try sync.explore("AD")
        let item = try #require(try deployed.repository.workItems(includeDecided: false).first)
        #expect(item.suggestedUser == "nobody", "no correlation: the default user")
        #expect(throws: EngineError.self) { try sync.reject(item.id) }
        _ = try sync.reject(item.id, action: "delete")
        #expect(try !deployed.file("ad.csv").contains("x,x@x"))

        let accepting = try Deployed(["config.xml": reverseSyncConfiguration(newAccounts: "ACCEPT"), "ad.csv": "uid,email,groups,disabled\nb,bob@x,,\n"], users: adUsers)
        let summary = try ReverseSync(engine: accepting.engine, server: "test").explore("AD")
        #expect(summary.applied == 1 && summary.workItems.isEmpty)
        #expect(try accepting.repository.user(named: "bob")?.accounts.count == 1)
    }
}
