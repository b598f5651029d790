import CLDAP
import Foundation

/// Accounts kept as the entries of an LDAP directory, read and changed with OpenLDAP's client
/// library.
///
/// The accounts are the entries under `baseDN` (its children with `.one`, the whole subtree with
/// `.sub`) that match `(objectClass=<objectClass>)` and `filter`; the account id is the value of
/// `accountIdAttribute`. Every attribute the server returns is an attribute of the account, named
/// as the schema spells it: several values are `.multi`, one is `.single`, except for attributes
/// named in `multiValuedAttributes`, which are always `.multi`. Values that are not UTF-8 text and
/// attributes with the `binary` option are skipped. An account is disabled when its
/// `disabledAttribute` holds `disabledValue`. Attribute names match in any case, as in LDAP.
///
/// Each operation opens its own connection (LDAP v3; TLS with an `ldaps://` URL or StartTLS; 30
/// seconds to connect) and binds as `bindDN`, or anonymously when it is nil. Accounts are
/// streamed with the simple paged results control, a page at a time, over one connection that is
/// unbound at the end of the stream or when the stream is released.
public struct LDAPAdapter: ResourceAdapter {
    /// Which entries under the base DN are searched.
    public enum Scope: Sendable, Hashable {
        /// The children of the base DN.
        case one
        /// The base DN and every entry below it.
        case sub
    }

    public let name: String
    /// The server, `ldap://host:port` or `ldaps://host:port`.
    public let url: String
    /// The DN to bind as; nil binds anonymously.
    public let bindDN: String?
    fileprivate let password: String?
    /// Where the accounts are searched.
    public let baseDN: String
    public let scope: Scope
    /// A search filter the accounts also match (with or without its parentheses), or nil.
    public let filter: String?
    /// The object class of the accounts, given to the entries `apply(_:)` creates.
    public let objectClass: String
    /// The attribute that holds the account id.
    public let accountIdAttribute: String
    /// The DN of a new account, with `$accountId` for its id, as in
    /// `uid=$accountId,ou=people,dc=example,dc=com`; nil when accounts cannot be created.
    public let identityTemplate: String?
    /// The attribute whose `disabledValue` marks a disabled account; nil when accounts cannot be
    /// disabled.
    public let disabledAttribute: String?
    /// The value of `disabledAttribute` that marks a disabled account.
    public let disabledValue: String
    /// The attributes read as lists even when they have one value.
    public let multiValuedAttributes: Set<String>
    /// How many entries a page of the stream holds (at least 1).
    public let pageSize: Int
    /// Whether to upgrade an `ldap://` connection to TLS with the StartTLS operation.
    public let startTLS: Bool
    /// The PEM file of the certificate authorities trusted for TLS; nil for the library's default.
    public let caCertFile: String?
    public let capabilities: AdapterCapabilities
    private let lowercasedMultiValued: Set<String>

    /// An LDAP resource; see the type's description. `password` goes with `bindDN` and is never
    /// shown in errors; `disabledValue` is `TRUE` when nil.
    public init(name: String, url: String, bindDN: String?, password: String?, baseDN: String, scope: Scope,
                filter: String?, objectClass: String, accountIdAttribute: String, identityTemplate: String?,
                disabledAttribute: String?, disabledValue: String?, multiValuedAttributes: Set<String>,
                pageSize: Int = 500, startTLS: Bool = false, caCertFile: String?, incremental: Bool = true) {
        self.name = name
        self.url = url
        self.bindDN = bindDN
        self.password = password
        self.baseDN = baseDN
        self.scope = scope
        self.filter = filter
        self.objectClass = objectClass
        self.accountIdAttribute = accountIdAttribute
        self.identityTemplate = identityTemplate
        self.disabledAttribute = disabledAttribute
        self.disabledValue = disabledValue ?? "TRUE"
        self.multiValuedAttributes = multiValuedAttributes
        lowercasedMultiValued = Set(multiValuedAttributes.map { $0.lowercased() })
        self.pageSize = max(1, pageSize)
        self.startTLS = startTLS
        self.caCertFile = caCertFile
        capabilities = AdapterCapabilities(incremental: incremental, disable: disabledAttribute != nil)
    }

    /// Streams every account, a page of `pageSize` entries at a time.
    public func accounts() throws -> any AccountStream {
        try LDAPAccounts(connection: LDAPConnection(self), filter: searchFilter(), pageSize: pageSize)
    }

    /// Streams the accounts whose `modifyTimestamp` is at or after `timestamp`, an LDAP
    /// generalized time (see `generalizedTime(_:)`): the change feed of incremental reconciliation.
    public func accounts(modifiedSince timestamp: String) throws -> any AccountStream {
        let since = "(modifyTimestamp>=\(Self.escapedFilterValue(timestamp)))"
        return try LDAPAccounts(connection: LDAPConnection(self), filter: searchFilter(since), pageSize: pageSize)
    }

    /// `date` as an LDAP generalized time in UTC, in whole seconds (rounded down, as the
    /// server's `modifyTimestamp`), such as `20260102030405Z`.
    public static func generalizedTime(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0)!
        let time = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04ld%02ld%02ld%02ld%02ld%02ldZ", time.year!, time.month!, time.day!, time.hour!,
                      time.minute!, time.second!)
    }

    /// `millis` since 1970 as an LDAP generalized time (see `generalizedTime(_:)`).
    public static func generalizedTime(millis: Int64) -> String {
        generalizedTime(Date(timeIntervalSince1970: Double(millis) / 1000))
    }

    /// The account with this id, or nil; an id held by more than one entry is an error.
    public func account(id: String) throws -> Account? {
        let entries = try LDAPConnection(self).search(idFilter(id), account: id)
        guard entries.count < 2 else {
            throw AdapterError(resource: name, message: "the account id is in more than one entry", accountID: id)
        }
        return entries.first?.account
    }

    /// Applies `changes` one at a time, in order. LDAP has no transactions: when a change fails,
    /// the error names its account, and the changes before it stay applied.
    ///
    /// A create adds an entry at the DN of `identityTemplate`, with `objectClass`, the id and the
    /// attributes; an update replaces the named attributes (a nil value removes one); a delete
    /// deletes the entry; disable sets `disabledAttribute` to `disabledValue` and enable removes
    /// it. Empty values are dropped (an attribute left with none is removed); the id attribute
    /// cannot be given another value.
    public func apply(_ changes: [AccountChange]) throws {
        guard !changes.isEmpty else { return }
        let connection = try LDAPConnection(self)
        for change in changes { try apply(change, connection: connection) }
    }

    private func apply(_ change: AccountChange, connection: LDAPConnection) throws {
        let id = change.accountID
        switch change {
        case .create(_, let attributes):
            guard let identityTemplate else {
                throw AdapterError(resource: name, message: "cannot create accounts: the resource has no identityTemplate", accountID: id)
            }
            guard !id.isEmpty else { throw AdapterError(resource: name, message: "cannot create an account with an empty id") }
            let dn = identityTemplate.replacingOccurrences(of: "$accountId", with: Self.escapedDNValue(id))
            var entry = [(name: "objectClass", values: [objectClass]), (name: accountIdAttribute, values: [id])]
            for (attribute, values) in try modifications(attributes, account: id) where !values.isEmpty {
                if attribute.lowercased() == "objectclass" {
                    entry[0].values += values.filter { $0.lowercased() != objectClass.lowercased() }
                } else {
                    entry.append((attribute, values))
                }
            }
            try connection.add(dn, entry, account: id)
        case .update(_, let attributes):
            let replacements = try modifications(attributes, account: id)
            guard !replacements.isEmpty else { return }
            try connection.replace(dn(of: id, connection), replacements, account: id)
        case .delete:
            try connection.delete(dn(of: id, connection), account: id)
        case .disable, .enable:
            guard let disabledAttribute else {
                throw AdapterError(resource: name, message: "cannot disable or enable accounts: the resource has no disabledAttribute", accountID: id)
            }
            let values = if case .disable = change { [disabledValue] } else { [String]() }
            try connection.replace(dn(of: id, connection), [(disabledAttribute, values)], account: id)
        }
    }

    /// The values `attributes` set, without empty ones (no values removes an attribute), leaving
    /// out the id attribute, which must hold the account id.
    private func modifications(_ attributes: [(name: String, value: AttributeValue?)],
                               account id: String) throws -> [(name: String, values: [String])] {
        try attributes.compactMap { attribute, value in
            guard attribute.lowercased() != accountIdAttribute.lowercased() else {
                guard value == .single(id) else {
                    throw AdapterError(resource: name, message: "attribute '\(attribute)' holds the account id and cannot be given another value", accountID: id)
                }
                return nil
            }
            return (attribute, (value?.values ?? []).filter { !$0.isEmpty })
        }
    }

    /// The DN of the one entry of account `id`.
    private func dn(of id: String, _ connection: LDAPConnection) throws -> String {
        let entries = try connection.search(idFilter(id), account: id)
        guard entries.count == 1 else {
            let message = entries.isEmpty ? "account does not exist" : "the account id is in \(entries.count) entries"
            throw AdapterError(resource: name, message: message, accountID: id)
        }
        return entries[0].dn
    }

    /// The accounts' filter, AND-ed with `extra` filters.
    private func searchFilter(_ extra: String...) -> String {
        var filters = ["(objectClass=\(Self.escapedFilterValue(objectClass)))"]
        if let filter, !filter.isEmpty { filters.append(filter.hasPrefix("(") ? filter : "(\(filter))") }
        return "(&" + (filters + extra).joined() + ")"
    }

    private func idFilter(_ id: String) -> String {
        searchFilter("(\(accountIdAttribute)=\(Self.escapedFilterValue(id)))")
    }

    /// The account of the entry `dn` with these attributes, each with at least one value.
    fileprivate func account(dn: String, attributes: [(name: String, values: [String])]) throws -> Account {
        let idName = accountIdAttribute.lowercased(), disabledName = disabledAttribute?.lowercased()
        var id: String?
        var disabled = false
        var result: [(name: String, value: AttributeValue)] = []
        for (attribute, values) in attributes {
            let lowercased = attribute.lowercased()
            if lowercased == idName {
                guard values.count == 1 else {
                    throw AdapterError(resource: name, message: "entry '\(dn)' has \(values.count) values of '\(accountIdAttribute)'")
                }
                id = values[0]
            }
            if lowercased == disabledName && values.contains(disabledValue) { disabled = true }
            result.append((attribute, values.count > 1 || lowercasedMultiValued.contains(lowercased) ? .multi(values) : .single(values[0])))
        }
        guard let id else { throw AdapterError(resource: name, message: "entry '\(dn)' has no '\(accountIdAttribute)'") }
        return Account(id: id, attributes: result, disabled: disabled)
    }

    /// `value` escaped for an LDAP search filter (RFC 4515).
    static func escapedFilterValue(_ value: String) -> String {
        value.unicodeScalars.map { scalar in
            switch scalar {
            case "*": "\\2a"
            case "(": "\\28"
            case ")": "\\29"
            case "\\": "\\5c"
            case "\0": "\\00"
            default: String(scalar)
            }
        }.joined()
    }

    /// `value` escaped as the value of a DN's attribute (RFC 4514).
    static func escapedDNValue(_ value: String) -> String {
        let scalars = Array(value.unicodeScalars)
        return scalars.enumerated().map { index, scalar in
            switch scalar {
            case "\0": "\\00"
            case "\"", "+", ",", ";", "<", ">", "=", "\\": "\\" + String(scalar)
            case "#" where index == 0, " " where index == 0 || index == scalars.count - 1: "\\" + String(scalar)
            default: String(scalar)
            }
        }.joined()
    }
}

/// A connection to the adapter's server, bound as its `bindDN`; unbound when released.
private final class LDAPConnection {
    let adapter: LDAPAdapter
    let handle: OpaquePointer

    init(_ adapter: LDAPAdapter) throws {
        var handle: OpaquePointer?
        guard ldap_initialize(&handle, adapter.url) == LDAP_SUCCESS, let handle else {
            throw AdapterError(resource: adapter.name, message: "invalid LDAP URL '\(adapter.url)'")
        }
        self.adapter = adapter
        self.handle = handle
        var version = LDAP_VERSION3
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        ldap_set_option(handle, LDAP_OPT_PROTOCOL_VERSION, &version)
        ldap_set_option(handle, LDAP_OPT_NETWORK_TIMEOUT, &timeout)
        if let file = adapter.caCertFile {
            var isServer: Int32 = 0
            guard ldap_set_option(handle, LDAP_OPT_X_TLS_CACERTFILE, file) == LDAP_OPT_SUCCESS,
                  ldap_set_option(handle, LDAP_OPT_X_TLS_NEWCTX, &isServer) == LDAP_OPT_SUCCESS else {
                throw AdapterError(resource: adapter.name, message: "cannot use the CA certificate file '\(file)'")
            }
        }
        if adapter.startTLS { try check(ldap_start_tls_s(handle, nil, nil)) }
        if let bindDN = adapter.bindDN {
            var password = Array((adapter.password ?? "").utf8CString)
            let code = password.withUnsafeMutableBufferPointer { buffer in
                var credentials = berval(bv_len: ber_len_t(buffer.count - 1), bv_val: buffer.baseAddress)
                return ldap_sasl_bind_s(handle, bindDN, nil, &credentials, nil, nil, nil)
            }
            try check(code)
        }
    }

    deinit { ldap_unbind_ext_s(handle, nil, nil) }

    /// The entries `filter` matches, with their DNs.
    func search(_ filter: String, account: String?) throws -> [(dn: String, account: Account)] {
        try search(filter, controls: nil, account: account) { try entries(of: $0) }
    }

    /// The page of at most `size` accounts `filter` matches after the page that gave `cookie`
    /// (the first page for an empty one); `cookie` is then the next page's, empty after the last.
    func searchPage(_ filter: String, size: Int, cookie: inout berval) throws -> [Account] {
        var control: UnsafeMutablePointer<LDAPControl>?
        try check(ldap_create_page_control(handle, ber_int_t(clamping: size), &cookie, 1, &control))
        defer { ldap_control_free(control) }
        var controls = [control, nil]
        return try search(filter, controls: &controls, account: nil) { result in
            var code: Int32 = 0
            var responseControls: UnsafeMutablePointer<UnsafeMutablePointer<LDAPControl>?>?
            try check(ldap_parse_result(handle, result, &code, nil, nil, nil, &responseControls, 0))
            defer { ldap_controls_free(responseControls) }
            ber_memfree(cookie.bv_val)
            cookie = berval()
            if let response = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, responseControls, nil) {
                var estimate: ber_int_t = 0
                try check(ldap_parse_pageresponse_control(handle, response, &estimate, &cookie))
            }
            return try entries(of: result).map(\.account)
        }
    }

    func add(_ dn: String, _ attributes: [(name: String, values: [String])], account: String) throws {
        try check(withModifications(LDAP_MOD_ADD, attributes) { ldap_add_ext_s(handle, dn, $0, nil, nil) }, dn: dn, account: account)
    }

    /// Replaces the values of `attributes` (no values removes the attribute).
    func replace(_ dn: String, _ attributes: [(name: String, values: [String])], account: String) throws {
        try check(withModifications(LDAP_MOD_REPLACE, attributes) { ldap_modify_ext_s(handle, dn, $0, nil, nil) },
                  dn: dn, account: account)
    }

    func delete(_ dn: String, account: String) throws {
        try check(ldap_delete_ext_s(handle, dn, nil, nil), dn: dn, account: account)
    }

    private func search<T>(_ filter: String, controls: UnsafeMutablePointer<UnsafeMutablePointer<LDAPControl>?>?,
                           account: String?, _ body: (OpaquePointer) throws -> T) throws -> T {
        let scope = switch adapter.scope {
        case .one: LDAP_SCOPE_ONELEVEL
        case .sub: LDAP_SCOPE_SUBTREE
        }
        var result: OpaquePointer?
        let code = ldap_search_ext_s(handle, adapter.baseDN, scope, filter, nil, 0, controls, nil, nil, 0, &result)
        defer { ldap_msgfree(result) }
        try check(code, dn: adapter.baseDN, account: account)
        return try body(result!)
    }

    /// The entries of a search result, with their DNs.
    private func entries(of result: OpaquePointer) throws -> [(dn: String, account: Account)] {
        var entries: [(dn: String, account: Account)] = []
        var entry = ldap_first_entry(handle, result)
        while let current = entry {
            let dnText = ldap_get_dn(handle, current)
            defer { ldap_memfree(dnText) }
            let dn = dnText.map { String(cString: $0) } ?? ""
            entries.append((dn, try adapter.account(dn: dn, attributes: attributes(of: current))))
            entry = ldap_next_entry(handle, current)
        }
        return entries
    }

    /// The text values of an entry's attributes, without binary ones.
    private func attributes(of entry: OpaquePointer) -> [(name: String, values: [String])] {
        var attributes: [(name: String, values: [String])] = []
        var position: OpaquePointer?
        var attribute = ldap_first_attribute(handle, entry, &position)
        while let current = attribute {
            let name = String(cString: current)
            if !name.lowercased().split(separator: ";").dropFirst().contains("binary"),
               let values = ldap_get_values_len(handle, entry, current) {
                var texts: [String] = []
                var index = 0
                while let value = values[index] {
                    let bytes = UnsafeRawBufferPointer(start: value.pointee.bv_val, count: Int(value.pointee.bv_len))
                    if let text = String(validating: bytes, as: UTF8.self) { texts.append(text) }
                    index += 1
                }
                ldap_value_free_len(values)
                if !texts.isEmpty { attributes.append((name, texts)) }
            }
            ldap_memfree(current)
            attribute = ldap_next_attribute(handle, entry, position)
        }
        ber_free(position, 0)
        return attributes
    }

    /// Runs `body` with `attributes` as a NULL-terminated `LDAPMod` list of operation `operation`.
    private func withModifications(_ operation: Int32, _ attributes: [(name: String, values: [String])],
                                   _ body: (UnsafeMutablePointer<UnsafeMutablePointer<LDAPMod>?>) -> Int32) -> Int32 {
        func allocate<T>(_ count: Int, of type: T.Type) -> UnsafeMutablePointer<T> {
            ber_memcalloc(ber_len_t(count), ber_len_t(MemoryLayout<T>.stride)).assumingMemoryBound(to: T.self)
        }
        let modifications = allocate(attributes.count + 1, of: UnsafeMutablePointer<LDAPMod>?.self)
        defer { ldap_mods_free(modifications, 1) }
        for (index, attribute) in attributes.enumerated() {
            let values = allocate(attribute.values.count + 1, of: UnsafeMutablePointer<CChar>?.self)
            for (valueIndex, value) in attribute.values.enumerated() { values[valueIndex] = ber_strdup(value) }
            let modification = allocate(1, of: LDAPMod.self)
            modification.pointee.mod_op = operation
            modification.pointee.mod_type = ber_strdup(attribute.name)
            modification.pointee.mod_vals.modv_strvals = values
            modifications[index] = modification
        }
        return body(modifications)
    }

    /// Throws the error of an LDAP result `code` other than success, about the entry `dn` and
    /// `account` when given.
    private func check(_ code: Int32, dn: String? = nil, account: String? = nil) throws {
        guard code != LDAP_SUCCESS else { return }
        let ldaps = adapter.url.lowercased().hasPrefix("ldaps:")
        let message = switch code {
        case LDAP_INVALID_CREDENTIALS: "bad credentials for \(adapter.bindDN ?? "an anonymous bind")"
        case LDAP_SERVER_DOWN, 81: "cannot reach \(adapter.url)" + (ldaps ? " (or TLS failed: is its certificate trusted?)" : "")
        case LDAP_CONNECT_ERROR where ldaps || adapter.startTLS: "TLS with \(adapter.url) failed: is its certificate trusted?"
        case LDAP_NO_SUCH_OBJECT: "no such object" + (dn.map { " '\($0)'" } ?? "") + diagnostic
        case LDAP_ALREADY_EXISTS: "entry" + (dn.map { " '\($0)'" } ?? "") + " already exists"
        case LDAP_CONSTRAINT_VIOLATION: "constraint violation" + diagnostic
        case LDAP_OBJECT_CLASS_VIOLATION: "object class violation" + diagnostic
        default: "LDAP error \(code) (\(String(cString: ldap_err2string(code))))" + diagnostic
        }
        throw AdapterError(resource: adapter.name, message: message, accountID: account)
    }

    /// The server's (or the library's) message about the last error, after a colon; empty when none.
    private var diagnostic: String {
        var text: UnsafeMutablePointer<CChar>?
        ldap_get_option(handle, LDAP_OPT_DIAGNOSTIC_MESSAGE, &text)
        defer { ldap_memfree(text) }
        guard let text, text.pointee != 0 else { return "" }
        return ": " + String(cString: text)
    }
}

/// Streams the accounts a filter matches, a page at a time, over one connection that is
/// released (unbound) after the last page or with the stream.
private final class LDAPAccounts: AccountStream {
    private var connection: LDAPConnection?
    private let filter: String
    private let pageSize: Int
    private var cookie = berval()
    private var page: [Account] = []
    private var index = 0

    init(connection: LDAPConnection, filter: String, pageSize: Int) {
        self.connection = connection
        self.filter = filter
        self.pageSize = max(1, pageSize)
    }

    deinit { ber_memfree(cookie.bv_val) }

    func next() throws -> Account? {
        while index == page.count {
            guard let connection else { return nil }
            page = try connection.searchPage(filter, size: pageSize, cookie: &cookie)
            index = 0
            if cookie.bv_len == 0 { self.connection = nil }
        }
        defer { index += 1 }
        return page[index]
    }
}
