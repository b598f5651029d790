import Connectors
import Deployment
import Foundation
import Repository
import TestSupport
import Testing
@testable import Reconciler

/// One directory entry per situation (mail is what the correlation rule matches).
private let directoryFixture: String = {
    var ldif = Slapd.baseEntries
    for (uid, mail) in [("alice", "alice@example.com"), ("shared", "shared@example.com"), ("dave", "dave@example.com"),
                        ("x9", "erin@example.com"), ("nobody", "nobody@example.com"), ("twin", "t@example.com")] {
        ldif += "dn: uid=\(uid),ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: \(uid)\ncn: \(uid)\nsn: \(uid)\nmail: \(mail)\n\n"
    }
    return ldif
}()

private func configuration(_ server: Slapd, password: String = Slapd.rootPassword) -> String {
    """
    <Waveset>
      <Resource name='LDAP' type='LDAP'>
        <ResourceAttribute name='url' value='\(server.url)'/>
        <ResourceAttribute name='bindDN' value='\(Slapd.rootDN)'/>
        <ResourceAttribute name='password' value='\(password)'/>
        <ResourceAttribute name='baseDN' value='ou=people,dc=example,dc=com'/>
        <ResourceAttribute name='scope' value='one'/>
        <ResourceAttribute name='objectClass' value='inetOrgPerson'/>
        <ResourceAttribute name='accountId' value='uid'/>
        <ResourceAttribute name='identityTemplate' value='uid=$accountId,ou=people,dc=example,dc=com'/>
        <ResourceAttribute name='disabledAttribute' value='employeeType'/>
        <ResourceAttribute name='disabledValue' value='disabled'/>
        <ResourceAttribute name='pageSize' value='2'/>
      </Resource>
      <Administrator name='Admin' userForm='Form'>
        <Capability name='CreateAccount'/><Capability name='DeleteAccount'/><Capability name='DisableAccount'/><Capability name='LinkAccount'/>
      </Administrator>
      <Form name='Form'>
        <Field name='accounts[LDAP].cn'><Expansion><ref>waveset.accountId</ref></Expansion></Field>
        <Field name='accounts[LDAP].sn'><Expansion><ref>waveset.accountId</ref></Expansion></Field>
        <Field name='accounts[LDAP].mail'><Expansion><ref>global.email</ref></Expansion></Field>
      </Form>
      <Rule name='By Mail' subtype='SUBTYPE_ACCOUNT_CORRELATION_RULE'>
        <RuleArgument name='account'/>
        <cond><notnull><ref>account.mail</ref></notnull>
          <list><new class='com.waveset.object.AttributeCondition'><s>email</s><s>equals</s><ref>account.mail</ref></new></list>
        </cond>
      </Rule>
      <ReconcilePolicy name='LDAP' resource='LDAP'>
        <Correlation correlationRule='By Mail'/>
        <Workflow proxyAdministrator='Admin'/>
        <Responses>
          <Response situation='FOUND' action='LINK_ACCOUNT'/>
          <Response situation='UNASSIGNED' action='LINK_ACCOUNT'/>
          <Response situation='MISSING' action='CREATE_ACCOUNT'/>
          <Response situation='UNMATCHED' action='DISABLE_ACCOUNT'/>
          <Response situation='DISPUTED' action='DELETE_ACCOUNT'/>
        </Responses>
      </ReconcilePolicy>
    </Waveset>
    """
}

private func person(_ name: String, email: String? = nil, assigned: Bool = false, linked: [String] = []) -> User {
    User(name: name, attributes: ["email": .single(email ?? "\(name)@example.com")], assignedResources: assigned ? ["LDAP"] : [],
         accounts: Set(linked.map { AccountLink(resource: "LDAP", accountID: $0) }))
}

@Suite(.serialized, .enabled(if: Slapd.isInstalled, "needs OpenLDAP's slapd"))
struct LDAPReconcileTests {
    @Test func aDirectoryIsReconciledWithEverySituationAndItsResponses() throws {
        let server = try Slapd(fixture: directoryFixture)
        let deployed = try Deployed(["config.xml": configuration(server)], users: [
            person("alice", linked: ["alice"]), person("bob", linked: ["shared"]), person("carol", linked: ["shared"]),
            person("dan", linked: ["gone"]), person("dave", assigned: true), person("hank", assigned: true),
            person("erin"), person("frank", email: "t@example.com"), person("gina", email: "t@example.com"),
        ])
        let summary = try deployed.run("LDAP")
        #expect(summary.status == "success", "\(summary.errors)")
        #expect(Situation.allCases.allSatisfy { summary.situations[$0] == 1 }, "\(summary.situations)")
        #expect(summary.responses == [.linkAccount: 2, .createAccount: 1, .disableAccount: 1, .deleteAccount: 1])

        let ldap = try deployed.engine.adapter(for: "LDAP")
        let created = try #require(try ldap.account(id: "hank"))
        #expect(created.attribute("mail") == .single("hank@example.com") && created.attribute("cn") == .single("hank"))
        #expect(try ldap.account(id: "nobody")?.disabled == true)
        #expect(try ldap.account(id: "twin") == nil)
        #expect(try deployed.index("LDAP")["hank"]?.situation == "CONFIRMED")

        // After a settling run, an entry changed in the directory is all an incremental run examines.
        #expect(try deployed.run("LDAP").status == "success")
        try ldap.apply([.update(id: "alice", attributes: [("mail", .single("alice@new.example.com"))])])
        let incremental = try deployed.run("LDAP", mode: .incremental)
        #expect(incremental.situations.values.reduce(0, +) == 1 && incremental.situations[.confirmed] == 1, "\(incremental.situations)")
    }

    @Test func badCredentialsFailTheRunWithAClearMessage() throws {
        let server = try Slapd(fixture: directoryFixture)
        let deployed = try Deployed(["config.xml": configuration(server, password: "wrong")])
        do {
            _ = try deployed.run("LDAP")
            Issue.record("the run should fail")
        } catch {
            #expect("\(error)".contains("bad credentials for \(Slapd.rootDN)"), "\(error)")
            #expect(!"\(error)".contains("wrong"))
        }
        let task = try #require(try deployed.repository.tasks(resource: "LDAP", name: "Reconcile", limit: 1).first)
        #expect(task.status == "failed")
    }
}
