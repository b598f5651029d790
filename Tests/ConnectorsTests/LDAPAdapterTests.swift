import Foundation
import Testing

@testable import Connectors

/// The directory of the tests: 35 people `user01`…`user35` under `ou=people` (odd ones with two
/// mail addresses, `user01` with a JPEG photo, `user02` with two descriptions, `user03`
/// disabled), a person below `ou=contractors,ou=people`, and an entry of another class; all last
/// modified in 2020.
private let fixture: String = {
    var ldif = Slapd.baseEntries + """
        dn: cn=printer,ou=people,dc=example,dc=com
        objectClass: organizationalRole
        cn: printer

        dn: ou=contractors,ou=people,dc=example,dc=com
        objectClass: organizationalUnit
        ou: contractors

        dn: uid=nested,ou=contractors,ou=people,dc=example,dc=com
        objectClass: inetOrgPerson
        uid: nested
        cn: Nested
        sn: Nested


        """
    for number in 1...35 {
        let n = number < 10 ? "0\(number)" : "\(number)"
        ldif += """
            dn: uid=user\(n),ou=people,dc=example,dc=com
            objectClass: inetOrgPerson
            uid: user\(n)
            cn: User \(n)
            sn: \(n)
            mail: user\(n)@example.com

            """
        if number % 2 == 1 { ldif += "mail: u\(n)@example.org\n" }
        if number == 1 { ldif += "jpegPhoto:: /9j/4AAQSkZJRgABAQ==\n" }
        if number == 2 { ldif += "description: first\ndescription: second\n" }
        if number == 3 { ldif += "employeeType: disabled\n" }
        ldif += "modifyTimestamp: 20200101000000Z\n\n"
    }
    return ldif
}()

private let people = "ou=people,dc=example,dc=com"

private func adapter(_ server: Slapd, url: String? = nil, bindDN: String? = Slapd.rootDN, password: String? = Slapd.rootPassword,
                     scope: LDAPAdapter.Scope = .one, filter: String? = nil, pageSize: Int = 500, startTLS: Bool = false,
                     caCertFile: String? = nil) -> LDAPAdapter {
    LDAPAdapter(name: "LDAP", url: url ?? server.url, bindDN: bindDN, password: password, baseDN: people, scope: scope,
                filter: filter, objectClass: "inetOrgPerson", accountIdAttribute: "uid",
                identityTemplate: "uid=$accountId,\(people)", disabledAttribute: "employeeType", disabledValue: "disabled",
                multiValuedAttributes: ["mail"], pageSize: pageSize, startTLS: startTLS, caCertFile: caCertFile)
}

private func ids(_ stream: any AccountStream) throws -> [String] {
    var stream = stream
    var ids: [String] = []
    while let account = try stream.next() { ids.append(account.id) }
    return ids.sorted()
}

private let userIDs = (1...35).map { $0 < 10 ? "user0\($0)" : "user\($0)" }

@Suite(.serialized, .enabled(if: Slapd.isInstalled, "needs OpenLDAP's slapd"))
struct LDAPAdapterTests {
    @Test func streamsEveryEntryInPages() throws {
        let server = try Slapd(fixture: fixture)
        // Anonymous searches return at most 10 entries, so the 35 come in pages.
        let anonymous = adapter(server, bindDN: nil, password: nil, pageSize: 10)
        let accounts = try allAccounts(anonymous)
        #expect(accounts.map(\.id).sorted() == userIDs)
        #expect(accounts.first { $0.id == "user01" } == Account(id: "user01", attributes: [
            ("objectClass", .single("inetOrgPerson")), ("uid", .single("user01")), ("cn", .single("User 01")),
            ("sn", .single("01")), ("mail", .multi(["user01@example.com", "u01@example.org"])),
        ]))
        #expect(accounts.first { $0.id == "user02" } == Account(id: "user02", attributes: [
            ("objectClass", .single("inetOrgPerson")), ("uid", .single("user02")), ("cn", .single("User 02")),
            ("sn", .single("02")), ("mail", .multi(["user02@example.com"])), ("description", .multi(["first", "second"])),
        ]))
        #expect(accounts.filter(\.disabled).map(\.id) == ["user03"])
        let tooLarge = adapterError { _ = try allAccounts(adapter(server, bindDN: nil, password: nil, pageSize: 11)) }
        #expect(tooLarge?.message.contains("illegal pagedResults page size") == true)
    }

    @Test func scopeAndFilterSelectTheAccounts() throws {
        let server = try Slapd(fixture: fixture)
        #expect(try allAccounts(adapter(server, scope: .sub)).map(\.id).sorted() == ["nested"] + userIDs)
        #expect(try allAccounts(adapter(server, filter: "uid=user0*")).map(\.id).sorted() == Array(userIDs.prefix(9)))
        #expect(try allAccounts(adapter(server, scope: .sub, filter: "(|(uid=nested)(cn=User 35))")).map(\.id).sorted()
                    == ["nested", "user35"])
    }

    @Test func readsOneAccountByID() throws {
        let server = try Slapd(fixture: fixture)
        let ldap = adapter(server)
        #expect(try ldap.account(id: "user04") == Account(id: "user04", attributes: [
            ("objectClass", .single("inetOrgPerson")), ("uid", .single("user04")), ("cn", .single("User 04")),
            ("sn", .single("04")), ("mail", .multi(["user04@example.com"])),
        ]))
        #expect(try ldap.account(id: "user03")?.disabled == true)
        #expect(try ldap.account(id: "nobody") == nil)
        #expect(try ldap.account(id: "user*") == nil)
        #expect(try ldap.account(id: "nested") == nil)
    }

    @Test func createsEntriesAtTheIdentityTemplate() throws {
        let server = try Slapd(fixture: fixture)
        let ldap = adapter(server)
        try ldap.apply([.create(id: "Doe, Jane", attributes: [
            ("cn", .single("Jane Doe")), ("sn", .single("Doe")), ("mail", .multi(["jd@example.com", "jane@example.com"])),
            ("description", .single("")),
        ])])
        #expect(try ldap.account(id: "Doe, Jane") == Account(id: "Doe, Jane", attributes: [
            ("objectClass", .single("inetOrgPerson")), ("uid", .single("Doe, Jane")), ("cn", .single("Jane Doe")),
            ("sn", .single("Doe")), ("mail", .multi(["jd@example.com", "jane@example.com"])),
        ]))
        #expect(try allAccounts(ldap).count == 36)
        let duplicate = adapterError { try ldap.apply([.create(id: "user01", attributes: [("cn", .single("X")), ("sn", .single("X"))])]) }
        #expect(duplicate?.accountID == "user01")
        #expect(duplicate?.message.contains("already exists") == true)
    }

    @Test func updatesOnlyTheNamedAttributes() throws {
        let server = try Slapd(fixture: fixture)
        let ldap = adapter(server)
        try ldap.apply([.update(id: "user02", attributes: [
            ("cn", .single("Second User")), ("description", nil), ("mail", .multi(["a@example.com", "b@example.com"])),
            ("uid", .single("user02")), ("title", nil),
        ])])
        // The server puts replaced attributes last.
        #expect(try ldap.account(id: "user02") == Account(id: "user02", attributes: [
            ("objectClass", .single("inetOrgPerson")), ("uid", .single("user02")), ("sn", .single("02")),
            ("cn", .single("Second User")), ("mail", .multi(["a@example.com", "b@example.com"])),
        ]))
        let missing = adapterError { try ldap.apply([.update(id: "nobody", attributes: [("cn", .single("X"))])]) }
        #expect(missing?.accountID == "nobody")
        #expect(missing?.message == "account does not exist")
        let renamed = adapterError { try ldap.apply([.update(id: "user02", attributes: [("uid", .single("other"))])]) }
        #expect(renamed?.message.contains("holds the account id") == true)
    }

    @Test func disablesAndEnables() throws {
        let server = try Slapd(fixture: fixture)
        let ldap = adapter(server)
        #expect(ldap.capabilities == AdapterCapabilities(incremental: true, disable: true))
        try ldap.apply([.disable(id: "user04")])
        #expect(try ldap.account(id: "user04")?.disabled == true)
        #expect(try ldap.account(id: "user04")?.attribute("employeeType") == .single("disabled"))
        try ldap.apply([.enable(id: "user04"), .enable(id: "user04")])
        #expect(try ldap.account(id: "user04")?.disabled == false)
        #expect(try ldap.account(id: "user04")?.attribute("employeeType") == nil)
    }

    @Test func deletesEntries() throws {
        let server = try Slapd(fixture: fixture)
        let ldap = adapter(server)
        try ldap.apply([.delete(id: "user06")])
        #expect(try ldap.account(id: "user06") == nil)
        #expect(try allAccounts(ldap).map(\.id).sorted() == userIDs.filter { $0 != "user06" })
        let missing = adapterError { try ldap.apply([.delete(id: "user06")]) }
        #expect(missing?.accountID == "user06")
        #expect(missing?.message == "account does not exist")
    }

    @Test func stopsAtTheFirstFailedChangeKeepingTheEarlierOnes() throws {
        let server = try Slapd(fixture: fixture)
        let ldap = adapter(server)
        let error = adapterError {
            try ldap.apply([
                .create(id: "first", attributes: [("cn", .single("First")), ("sn", .single("First"))]),
                .create(id: "no-surname", attributes: [("cn", .single("No Surname"))]),
                .create(id: "third", attributes: [("cn", .single("Third")), ("sn", .single("Third"))]),
            ])
        }
        #expect(error?.accountID == "no-surname")
        #expect(error?.message.contains("object class violation") == true)
        #expect(try ldap.account(id: "first") != nil)
        #expect(try ldap.account(id: "third") == nil)
    }

    @Test func badCredentialsAreReportedWithoutThePassword() throws {
        let server = try Slapd(fixture: fixture)
        let error = adapterError { _ = try adapter(server, password: "not-the-secret-42").accounts() }
        #expect(error?.message == "bad credentials for \(Slapd.rootDN)")
        #expect(error?.description.contains("not-the-secret-42") == false)
    }

    @Test func anUnreachableServerIsReported() throws {
        let url = "ldap://127.0.0.1:\(try Slapd.freePort())/"
        let ldap = LDAPAdapter(name: "LDAP", url: url, bindDN: Slapd.rootDN, password: Slapd.rootPassword, baseDN: people,
                               scope: .one, filter: nil, objectClass: "inetOrgPerson", accountIdAttribute: "uid",
                               identityTemplate: nil, disabledAttribute: nil, disabledValue: nil, multiValuedAttributes: [],
                               caCertFile: nil)
        #expect(adapterError { _ = try ldap.account(id: "user01") }?.message == "cannot reach \(url)")
        #expect(ldap.capabilities == AdapterCapabilities(incremental: true, disable: false))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl"), "needs openssl for a certificate"))
    func connectsWithTLS() throws {
        let server = try Slapd(fixture: fixture, tls: true)
        #expect(try adapter(server, startTLS: true, caCertFile: server.certificateFile).account(id: "user01") != nil)
        #expect(try adapter(server, url: server.tlsURL, caCertFile: server.certificateFile).account(id: "user01") != nil)
        let untrusted = adapterError { _ = try adapter(server, startTLS: true).account(id: "user01") }
        #expect(untrusted?.message == "TLS with \(server.url) failed: is its certificate trusted?")
        let untrustedLDAPS = adapterError { _ = try adapter(server, url: server.tlsURL).account(id: "user01") }
        #expect(untrustedLDAPS?.message == "cannot reach \(server.tlsURL!) (or TLS failed: is its certificate trusted?)")
    }

    @Test func streamsTheAccountsModifiedSinceATime() throws {
        let server = try Slapd(fixture: fixture)
        let ldap = adapter(server)
        let since = LDAPAdapter.generalizedTime(Date())
        try ldap.apply([.update(id: "user07", attributes: [("title", .single("Engineer"))])])
        #expect(try ids(ldap.accounts(modifiedSince: since)) == ["user07"])
        #expect(try ids(ldap.accounts(modifiedSince: "20200101000000Z")).count == 35)
    }

    @Test func formatsGeneralizedTimes() {
        #expect(LDAPAdapter.generalizedTime(millis: 1_767_225_600_999) == "20260101000000Z")
        #expect(LDAPAdapter.generalizedTime(Date(timeIntervalSince1970: 951_827_696)) == "20000229123456Z")
    }

    @Test func escapesFilterAndDNValues() {
        #expect(LDAPAdapter.escapedFilterValue("a*(b)\\c\0") == "a\\2a\\28b\\29\\5cc\\00")
        #expect(LDAPAdapter.escapedDNValue("#Doe, Jane+1 ") == "\\#Doe\\, Jane\\+1\\ ")
    }
}
