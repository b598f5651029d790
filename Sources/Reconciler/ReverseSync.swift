import Connectors
import Deployment
import Foundation
import Repository
import XPRESS

/// What an explore found and did.
public struct ExploreSummary: Sendable {
    public var resource: String
    public var accounts = 0
    public var newAccounts = 0
    public var modifiedAccounts = 0
    public var workItems: [String] = []
    public var applied = 0
    public var errors: [String] = []
}

/// Reverse synchronization, Explore and Correlate (engine spec section 7): accounts created or
/// changed natively on a resource become work items for an approver, or are accepted, reverted,
/// deleted or suspended at once, as the resource's ReverseSyncPolicy says. Every applied decision
/// is a `Provisioning Activity` task.
public struct ReverseSync: Sendable {
    public let engine: Engine
    public let server: String

    public init(engine: Engine, server: String) {
        self.engine = engine
        self.server = server
    }

    private var repository: any IdentityRepository { engine.repository }

    private func policy(_ resource: String) -> ReverseSyncPolicyDefinition {
        engine.deployment.reverseSyncPolicies[resource] ?? ReverseSyncPolicyDefinition(
            resource: resource, defaultUser: nil, approver: nil, newAccounts: .approve, modifiedAccounts: .approve,
            capabilityAttributes: [], location: engine.deployment.resources[resource]?.location ?? .init(file: "", line: 1, column: 1))
    }

    // MARK: Explore

    public func explore(_ resourceName: String, correlate: Bool = true) throws -> ExploreSummary {
        guard let resource = engine.deployment.resources[resourceName] else { throw EngineError("no resource named '\(resourceName)' is configured") }
        let policy = policy(resourceName)
        let adapter = try engine.adapter(for: resourceName)
        let known = try repository.indexEntries(resource: resourceName, attributes: true)
        let firstExplore = known.isEmpty
        var owners: [String: String] = [:]
        for (accountID, user) in try repository.links(on: resourceName) { owners[accountID] = user }
        let capabilities = Set(policy.capabilityAttributes).union(resource.multiValuedAttributes.intersection(policy.capabilityAttributes))
        let open = try repository.workItems(includeDecided: false).filter { $0.resource == resourceName }
        var summary = ExploreSummary(resource: resourceName)
        var stream = try adapter.accounts()
        let now = currentMillis()
        while let account = try stream.next() {
            summary.accounts += 1
            let attributes = account.attributes.map { AccountAttribute(name: $0.name, value: $0.value) }
            guard let previous = known[account.id] else {
                let owner = owners[account.id]
                try record(account, attributes, resource: resourceName, owner: owner, situation: owner == nil ? .unmatched : .confirmed, at: now)
                guard owner == nil, correlate else { continue }
                summary.newAccounts += 1
                try handleNew(account, resource: resourceName, policy: policy, open: open, summary: &summary)
                continue
            }
            guard !firstExplore, correlate else {
                try record(account, attributes, resource: resourceName, owner: previous.owner,
                           situation: Situation(rawValue: previous.situation) ?? .unmatched, at: now)
                continue
            }
            let changes = Self.changes(from: previous.attributes, to: attributes)
            guard !changes.isEmpty else { continue }
            summary.modifiedAccounts += 1
            try handleModified(account, previous: previous, changes: changes, capabilities: capabilities, policy: policy, open: open, summary: &summary)
        }
        return summary
    }

    /// Records an account's values as last known in the Account Index.
    private func record(_ account: Account, _ attributes: [AccountAttribute], resource: String, owner: String?,
                        situation: Situation, at now: Int64) throws {
        try repository.write { writer in
            try writer.upsertIndex(IndexEntry(resource: resource, accountID: account.id, owner: owner, situation: situation.rawValue,
                                              attributes: attributes, digest: Digest.of(account), lastSeen: now, lastReconciled: now,
                                              explanation: nil))
        }
    }

    /// The attributes whose values differ, as changes (values sorted for multi-valued ones).
    static func changes(from old: [AccountAttribute], to new: [AccountAttribute]) -> [WorkItem.Change] {
        let before = Dictionary(old.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let after = Dictionary(new.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var result: [WorkItem.Change] = []
        for name in Set(before.keys).union(after.keys).sorted() {
            let o = before[name], n = after[name]
            if o?.values == n?.values { continue }
            result.append(WorkItem.Change(attribute: name, old: o?.values, new: n?.values, multi: (o?.multi ?? false) || (n?.multi ?? false)))
        }
        return result
    }

    private func handleNew(_ account: Account, resource: String, policy: ReverseSyncPolicyDefinition, open: [WorkItem],
                           summary: inout ExploreSummary) throws {
        let suggested = try correlate(account, resource: resource) ?? policy.defaultUser
        switch policy.newAccounts {
        case .approve:
            guard !open.contains(where: { $0.accountID == account.id && $0.kind == .newAccount }) else { return }
            let id = try repository.addWorkItem(WorkItem(id: "", resource: resource, accountID: account.id, kind: .newAccount,
                                                         suggestedUser: suggested, approver: policy.approver, changes: []))
            summary.workItems.append(id)
        case .accept:
            apply(&summary, resource: resource, "accepted new account \(account.id)") {
                guard let user = suggested, try repository.user(named: user) != nil else {
                    throw EngineError("no user to link new account '\(account.id)' to: correlation found none and the default user '\(policy.defaultUser ?? "")' does not exist")
                }
                try link(account.id, to: user, resource: resource)
                return "linked \(account.id) to \(user)"
            }
        case .delete:
            apply(&summary, resource: resource, "deleted new account \(account.id)") {
                try gate(.deleteAccount, resource)
                try engine.adapter(for: resource).apply([.delete(id: account.id)])
                try repository.write { try $0.removeIndex(resource: resource, accountID: account.id) }
                return "deleted \(account.id)"
            }
        case .suspend:
            apply(&summary, resource: resource, "suspended new account \(account.id)") {
                try gate(.disableAccount, resource)
                try engine.adapter(for: resource).apply([.disable(id: account.id)])
                return "suspended \(account.id)"
            }
        }
    }

    private func handleModified(_ account: Account, previous: IndexEntry, changes: [WorkItem.Change], capabilities: Set<String>,
                                policy: ReverseSyncPolicyDefinition, open: [WorkItem], summary: inout ExploreSummary) throws {
        let resource = previous.resource
        let plain = changes.filter { !capabilities.contains($0.attribute) }
        var items: [(WorkItem.Kind, [WorkItem.Change])] = plain.isEmpty ? [] : [(.modifiedAccount, plain)]
        for change in changes where capabilities.contains(change.attribute) {
            let old = Set(change.old ?? []), new = Set(change.new ?? [])
            for added in new.subtracting(old).sorted() { items.append((.capability, [.init(attribute: change.attribute, old: nil, new: [added], multi: true)])) }
            for removed in old.subtracting(new).sorted() { items.append((.capability, [.init(attribute: change.attribute, old: [removed], new: nil, multi: true)])) }
        }
        for (kind, itemChanges) in items {
            let item = WorkItem(id: "", resource: resource, accountID: account.id, kind: kind, suggestedUser: previous.owner,
                                approver: policy.approver, changes: itemChanges)
            switch policy.modifiedAccounts {
            case .approve:
                guard !open.contains(where: { $0.accountID == account.id && $0.kind == kind && $0.changes == itemChanges }) else { continue }
                summary.workItems.append(try repository.addWorkItem(item))
            case .accept:
                apply(&summary, resource: resource, "accepted changes of \(account.id)") { try accept(item) }
            case .revert:
                apply(&summary, resource: resource, "reverted changes of \(account.id)") { try revert(item) }
            }
        }
    }

    /// Runs an immediate decision and records it as a Provisioning Activity task.
    private func apply(_ summary: inout ExploreSummary, resource: String, _ what: String, _ body: () throws -> String) {
        do {
            let details = try body()
            _ = try? repository.recordTask(name: "Provisioning Activity", resource: resource, status: "success", details: details, server: server)
            summary.applied += 1
        } catch {
            _ = try? repository.recordTask(name: "Provisioning Activity", resource: resource, status: "failed", details: "\(what): \(error)", server: server)
            summary.errors.append("\(what): \(error)")
        }
    }

    /// The one user the correlation and confirmation rules find, if exactly one.
    private func correlate(_ account: Account, resource: String) throws -> String? {
        let policy = try engine.policy(for: resource)
        let evaluator = Evaluator(library: engine.deployment.library)
        let accountValue = Values.account(account)
        let result = try evaluator.call(rule: policy.correlationRule.value, arguments: [("account", accountValue)])
        var names: [String] = []
        var conditions: [UserCondition] = []
        func add(_ item: Value) {
            switch item {
            case .object(let c as AttributeCondition):
                if let op = UserCondition.Operator(rawValue: c.operatorName.stringValue) {
                    conditions.append(UserCondition(attribute: c.attrName.stringValue, op: op, operand: c.operand.stringValue))
                }
            case .map(let map): for (k, v) in map.entries { conditions.append(UserCondition(attribute: k, op: .equals, operand: v.stringValue)) }
            case .list(let list): list.items.forEach(add)
            case .null: break
            default: names.append(item.stringValue)
            }
        }
        add(result)
        var candidates = conditions.isEmpty ? try repository.existingUsers(names) : try repository.findUsers(conditions)
        if let confirmation = policy.confirmationRule.value {
            candidates = try candidates.filter { name in
                guard let user = try repository.user(named: name) else { return false }
                let view = Values.userView(user, accounts: try repository.indexEntries(linkedBy: user))
                return Values.verdict(try evaluator.call(rule: confirmation, arguments: [("userview", view), ("account", accountValue)]))
            }
        }
        return candidates.count == 1 ? candidates[0] : nil
    }

    private func link(_ accountID: String, to user: String, resource: String) throws {
        try repository.write { writer in
            try writer.link(user: user, resource: resource, accountID: accountID)
        }
        if var entry = try repository.indexEntry(resource: resource, accountID: accountID) {
            entry.owner = user
            entry.situation = Situation.confirmed.rawValue
            try repository.write { try $0.upsertIndex(entry) }
        }
    }

    /// The proxy administrator of the resource's policy must hold `capability` to act on it.
    private func gate(_ response: Response, _ resource: String) throws {
        let policy = try engine.policy(for: resource)
        guard let needed = response.capability else { return }
        guard let name = policy.proxyAdministrator.value, let admin = engine.deployment.administrators[name] else {
            throw EngineError("acting on the resource needs a proxy administrator in the ReconcilePolicy of '\(resource)'")
        }
        guard admin.capabilities.contains(needed) else { throw EngineError("the proxy administrator '\(name)' lacks the capability \(needed.rawValue)") }
    }

    // MARK: Decisions

    /// Approves an open item: a new account is linked (to `user`, else the suggested user,
    /// else the default user); changes become the last known values and update the attributes
    /// the user form maps.
    public func approve(_ id: String, user: String? = nil) throws -> Int64 {
        let item = try openItem(id)
        return try decide(item, approved: true) {
            switch item.kind {
            case .newAccount:
                guard let target = user ?? item.suggestedUser ?? policy(item.resource).defaultUser else {
                    throw EngineError("no user to link to: give --user, or set defaultUser in the ReverseSyncPolicy")
                }
                guard try repository.user(named: target) != nil else { throw EngineError("no user named '\(target)'") }
                guard try engine.adapter(for: item.resource).account(id: item.accountID) != nil else {
                    throw EngineError("stale: account '\(item.accountID)' no longer exists on \(item.resource)")
                }
                try link(item.accountID, to: target, resource: item.resource)
                return "linked \(item.accountID) to \(target)"
            case .modifiedAccount, .capability:
                return try accept(item)
            }
        }
    }

    /// Rejects an open item: a new account is deleted or suspended (`action`); changes are
    /// written back to the resource as one change.
    public func reject(_ id: String, action: String? = nil) throws -> Int64 {
        let item = try openItem(id)
        if item.kind == .newAccount && action != "delete" && action != "suspend" {
            throw EngineError("rejecting a new account needs --action delete or --action suspend")
        }
        return try decide(item, approved: false) {
            switch item.kind {
            case .newAccount:
                try gate(action == "delete" ? .deleteAccount : .disableAccount, item.resource)
                try engine.adapter(for: item.resource).apply([action == "delete" ? .delete(id: item.accountID) : .disable(id: item.accountID)])
                if action == "delete" { try repository.write { try $0.removeIndex(resource: item.resource, accountID: item.accountID) } }
                return "\(action == "delete" ? "deleted" : "suspended") \(item.accountID)"
            case .modifiedAccount, .capability:
                return try revert(item)
            }
        }
    }

    private func openItem(_ id: String) throws -> WorkItem {
        guard let item = try repository.workItem(id: id) else { throw EngineError("no work item '\(id)'") }
        guard item.status == "open" else { throw EngineError("work item \(id) is already \(item.status)") }
        return item
    }

    private func decide(_ item: WorkItem, approved: Bool, _ body: () throws -> String) throws -> Int64 {
        do {
            let details = try body()
            try repository.decideWorkItem(id: item.id, status: approved ? "approved" : "rejected", message: details)
            return try repository.recordTask(name: "Provisioning Activity", resource: item.resource, status: "success",
                                             details: "\(item.id): \(details)", server: server)
        } catch {
            try repository.decideWorkItem(id: item.id, status: "failed", message: "\(error)")
            _ = try repository.recordTask(name: "Provisioning Activity", resource: item.resource, status: "failed",
                                          details: "\(item.id): \(error)", server: server)
            throw error
        }
    }

    /// The account's current value of each changed attribute must still be the item's `new`.
    private func current(_ item: WorkItem) throws -> Account {
        guard let account = try engine.adapter(for: item.resource).account(id: item.accountID) else {
            throw EngineError("stale: account '\(item.accountID)' no longer exists on \(item.resource)")
        }
        for change in item.changes {
            let values = account.attribute(change.attribute)?.values ?? []
            let holds = item.kind == .capability
                ? (change.new.map { values.contains($0[0]) } ?? true) && (change.old.map { !values.contains($0[0]) } ?? true)
                : values == (change.new ?? [])
            guard holds else { throw EngineError("stale: \(item.accountID).\(change.attribute) no longer holds the values of item \(item.id)") }
        }
        return account
    }

    /// Accepts changes: they become the last known values; the user form maps them to the owner.
    private func accept(_ item: WorkItem) throws -> String {
        let account = try current(item)
        guard var entry = try repository.indexEntry(resource: item.resource, accountID: item.accountID) else {
            throw EngineError("account '\(item.accountID)' is not in the Account Index")
        }
        var attributes = entry.attributes
        for change in item.changes {
            let now = account.attribute(change.attribute)
            if item.kind == .capability {
                var values = attributes.first { $0.name == change.attribute }?.values ?? []
                if let added = change.new?.first, !values.contains(added) { values.append(added) }
                if let removed = change.old?.first { values.removeAll { $0 == removed } }
                attributes.removeAll { $0.name == change.attribute }
                attributes.append(AccountAttribute(name: change.attribute, value: .multi(values)))
            } else {
                attributes.removeAll { $0.name == change.attribute }
                if let now { attributes.append(AccountAttribute(name: change.attribute, value: now)) }
            }
        }
        entry.attributes = attributes
        try repository.write { try $0.upsertIndex(entry) }
        if let owner = entry.owner { try mapToUser(account, owner: owner, resource: item.resource) }
        return "accepted \(item.changes.map(\.attribute).joined(separator: ", ")) of \(item.accountID)"
    }

    /// The proxy administrator's user form over the account, applied to the owner's attributes.
    private func mapToUser(_ account: Account, owner: String, resource: String) throws {
        let policy = try engine.policy(for: resource)
        guard let adminName = policy.proxyAdministrator.value, let admin = engine.deployment.administrators[adminName],
              let formName = admin.userForm, let form = engine.deployment.forms[formName],
              let user = try repository.user(named: owner) else { return }
        let view = Values.userView(user, accounts: try repository.indexEntries(linkedBy: user))
        let result = try FormRunner(form: form, evaluator: Evaluator(library: engine.deployment.library)).run(account: Values.account(account), view: view)
        var attributes: [String: AttributeValue] = [:]
        for (name, value) in result.userAttributes { if let value { attributes[name] = value } }
        if !attributes.isEmpty { try repository.write { try $0.setUserAttributes(owner, attributes) } }
    }

    /// Writes the known values back to the resource, all attributes as one change.
    private func revert(_ item: WorkItem) throws -> String {
        let account = try current(item)
        var updates: [(name: String, value: AttributeValue?)] = []
        for change in item.changes {
            if item.kind == .capability {
                var values = account.attribute(change.attribute)?.values ?? []
                if let added = change.new?.first { values.removeAll { $0 == added } }
                if let removed = change.old?.first, !values.contains(removed) { values.append(removed) }
                updates.append((change.attribute, values.isEmpty ? nil : .multi(values)))
            } else {
                updates.append((change.attribute, change.old.map { change.multi ? .multi($0) : .single($0.first ?? "") }))
            }
        }
        try engine.adapter(for: item.resource).apply([.update(id: item.accountID, attributes: updates)])
        return "reverted \(updates.map(\.name).joined(separator: ", ")) of \(item.accountID)"
    }
}
