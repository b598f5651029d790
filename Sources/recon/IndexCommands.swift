import ArgumentParser
import Connectors
import Deployment
import Foundation
import Reconciler
import Repository
import XPRESS

extension ReconCommand {
    struct Index: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "index", abstract: "Search, examine and show the Account Index.",
                                                        subcommands: [Search.self, Examine.self, Show.self, Repair.self, Reconcile.self])

        struct Repair: ParsableCommand {
            static let configuration = CommandConfiguration(commandName: "repair", abstract: "Apply one of the allowed responses of an account's situation by hand (without ACTION: list them).")
            @OptionGroup var global: GlobalOptions
            @Argument var resource: String
            @Argument var account: String
            @Argument(help: "A response allowed for the account's situation.") var action: String?

            func run() throws {
                let engine = try global.engine()
                guard engine.deployment.resources[resource] != nil else { throw usage("no resource named '\(resource)' is configured") }
                guard let entry = try engine.repository.indexEntry(resource: resource, accountID: account),
                      let situation = Situation(rawValue: entry.situation) else {
                    writeError("recon: account '\(account)' of '\(resource)' is not in the Account Index; run 'recon index reconcile \(resource) \(account)' first")
                    throw ExitCode(1)
                }
                let allowed = situation.allowedResponses
                guard let action else {
                    if global.json { printJSON(.map([("situation", .string(situation.rawValue)), ("actions", .list(allowed.map { .string($0.rawValue) }))])); return }
                    print(allowed.isEmpty ? "\(account) is \(situation.rawValue): nothing to repair" :
                        "\(account) is \(situation.rawValue); valid actions: \(allowed.map(\.rawValue).joined(separator: ", "))")
                    return
                }
                guard let response = Response(rawValue: action.uppercased()), allowed.contains(response) else {
                    throw usage("\(action) is not allowed for a \(situation.rawValue) account; valid actions: \(allowed.map(\.rawValue).joined(separator: ", "))")
                }
                var options = RunOptions()
                options.server = global.serverName
                options.accounts = [account]
                options.responseOverride = response
                try reconcile(engine, resource, options, json: global.json)
            }
        }

        struct Reconcile: ParsableCommand {
            static let configuration = CommandConfiguration(commandName: "reconcile", abstract: "Reconcile one account, or every account of one user.")
            @OptionGroup var global: GlobalOptions
            @Argument var resource: String?
            @Argument var account: String?
            @Option(help: "Every account of this user, on every resource it is assigned.") var user: String?

            func validate() throws {
                if user == nil && (resource == nil || account == nil) { throw ValidationError("give RESOURCE ACCOUNT, or --user NAME") }
            }

            func run() throws {
                let engine = try global.engine()
                var options = RunOptions()
                options.server = global.serverName
                if let user {
                    guard let found = try engine.repository.user(named: user) else { throw usage("no user named '\(user)'") }
                    let owned = try engine.repository.indexEntries(owner: user)
                    for resource in found.assignedResources.union(owned.map(\.resource)).sorted() where engine.deployment.resources[resource] != nil {
                        options.accounts = Set(found.accountIDs(on: resource) + owned.filter { $0.resource == resource }.map(\.accountID) + [user])
                        try reconcile(engine, resource, options, json: global.json)
                    }
                    return
                }
                guard let resource, let account, engine.deployment.resources[resource] != nil else { throw usage("no resource named '\(resource ?? "")' is configured") }
                options.accounts = [account]
                try reconcile(engine, resource, options, json: global.json)
            }
        }

        struct Search: ParsableCommand {
            static let configuration = CommandConfiguration(commandName: "search", abstract: "Account Index rows matching every given criterion.")
            @OptionGroup var global: GlobalOptions
            @Option(name: .customLong("name-is")) var nameIs: String?
            @Option(name: .customLong("name-starts-with")) var nameStartsWith: String?
            @Option(name: .customLong("name-contains")) var nameContains: String?
            @Option(name: .customLong("resource")) var resources: [String] = []
            @Option(name: .customLong("owner-is")) var ownerIs: String?
            @Option(name: .customLong("owner-starts-with")) var ownerStartsWith: String?
            @Option(name: .customLong("owner-contains")) var ownerContains: String?
            @Option(name: .customLong("situation")) var situations: [String] = []
            @Option var limit = 1000

            func validate() throws {
                for situation in situations where Situation(rawValue: situation.uppercased()) == nil {
                    throw ValidationError("unknown situation '\(situation)'; use \(Situation.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                if [nameIs, nameStartsWith, nameContains].compactMap({ $0 }).count > 1 { throw ValidationError("give one --name-... option") }
                if [ownerIs, ownerStartsWith, ownerContains].compactMap({ $0 }).count > 1 { throw ValidationError("give one --owner-... option") }
            }

            func run() throws {
                var query = IndexQuery()
                query.accountID = nameIs.map { .isEqual($0) } ?? nameStartsWith.map { .startsWith($0) } ?? nameContains.map { .contains($0) }
                query.owner = ownerIs.map { .isEqual($0) } ?? ownerStartsWith.map { .startsWith($0) } ?? ownerContains.map { .contains($0) }
                query.resources = resources
                query.situations = situations.map { $0.uppercased() }
                query.limit = limit
                let rows = try global.openRepository().searchIndex(query)
                if global.json { printJSON(.list(rows.map(SummaryJSON.indexRow))); return }
                for row in rows {
                    print("\(row.resource)  \(row.accountID)  \(row.situation)  owner: \(row.owner ?? "-")")
                }
                writeError("\(rows.count) account\(rows.count == 1 ? "" : "s")")
            }
        }

        struct Examine: ParsableCommand {
            static let configuration = CommandConfiguration(commandName: "examine", abstract: "The index grouped by resource, or by user (grouped by organization).")
            @OptionGroup var global: GlobalOptions
            @Option(help: "resource or user") var by = "resource"

            func validate() throws {
                if by != "resource" && by != "user" { throw ValidationError("--by takes resource or user") }
            }

            func run() throws {
                let repository = try global.openRepository()
                var query = IndexQuery()
                query.limit = Int.max
                let rows = try repository.searchIndex(query)
                if by == "resource" {
                    var groups: [(String, Value)] = []
                    for resource in Set(rows.map(\.resource)).sorted() {
                        let mine = rows.filter { $0.resource == resource }
                        let counts = Situation.allCases.map { s in (s.rawValue, Value.int(Int64(mine.filter { $0.situation == s.rawValue }.count))) }
                        groups.append((resource, .map([("accounts", .int(Int64(mine.count))), ("situations", .map(counts))])))
                        if !global.json {
                            print("\(resource): \(mine.count) accounts")
                            for (situation, count) in counts where count.stringValue != "0" { print("  \(situation): \(count.stringValue)") }
                        }
                    }
                    if global.json { printJSON(.map(groups)) }
                } else {
                    let users = try repository.allUsers()
                    var byOrganization: [String: [User]] = [:]
                    for user in users { byOrganization[user.attributes["organization"]?.values.first ?? "(no organization)", default: []].append(user) }
                    var groups: [(String, Value)] = []
                    for (organization, members) in byOrganization.sorted(by: { $0.key < $1.key }) {
                        var entries: [(String, Value)] = []
                        if !global.json { print(organization) }
                        for user in members {
                            let accounts = rows.filter { $0.owner == user.name }
                            entries.append((user.name, .list(accounts.map { .string("\($0.resource):\($0.accountID) \($0.situation)") })))
                            if !global.json {
                                print("  \(user.name): " + accounts.map { "\($0.resource):\($0.accountID) \($0.situation)" }.joined(separator: ", "))
                            }
                        }
                        groups.append((organization, .map(entries)))
                    }
                    if global.json { printJSON(.map(groups)) }
                }
            }
        }

        struct Show: ParsableCommand {
            static let configuration = CommandConfiguration(commandName: "show", abstract: "One account's owner, situation, last known values, explanation and history.")
            @OptionGroup var global: GlobalOptions
            @Argument var resource: String
            @Argument var account: String

            func run() throws {
                let repository = try global.openRepository()
                guard let entry = try repository.indexEntry(resource: resource, accountID: account) else {
                    writeError("recon: account '\(account)' of '\(resource)' is not in the Account Index")
                    throw ExitCode(1)
                }
                let history = try repository.history(resource: resource, accountID: account)
                if global.json {
                    var row = SummaryJSON.indexRow(entry)
                    if case .map(let map) = row {
                        map["attributes"] = .map(entry.attributes.map { ($0.name, $0.multi ? .list($0.values.map { .string($0) }) : .string($0.values.first ?? "")) })
                        map["history"] = .list(history.map { item in
                            .map([("at", iso(item.at)), ("task", item.task.map { .int($0) } ?? .null), ("situation", .string(item.situation)),
                                  ("owner", item.owner.map { .string($0) } ?? .null), ("action", item.action.map { .string($0) } ?? .null)])
                        })
                        row = .map(map)
                    }
                    printJSON(row)
                    return
                }
                print("\(entry.resource):\(entry.accountID)\n  situation: \(entry.situation)\n  owner: \(entry.owner ?? "-")")
                print("  last reconciled: \(CivilTime.isoString(millis: entry.lastReconciled))")
                if let seen = entry.lastSeen { print("  last seen: \(CivilTime.isoString(millis: seen))") }
                if let explanation = entry.explanation { print("  explanation: \(explanation)") }
                for attribute in entry.attributes { print("  \(attribute.name) = \(attribute.values.joined(separator: " | "))") }
                for item in history {
                    print("  \(CivilTime.isoString(millis: item.at))  \(item.situation)  \(item.owner ?? "-")\(item.action.map { "  \($0)" } ?? "")")
                }
            }
        }
    }

    struct Policy: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "policy", abstract: "Show a resource's effective policy.", subcommands: [Show.self])

        struct Show: ParsableCommand {
            static let configuration = CommandConfiguration(commandName: "show", abstract: "The effective policy and where each value came from.")
            @OptionGroup var global: GlobalOptions
            @Argument var resource: String

            func run() throws {
                let engine = try global.engine()
                let policy: EffectivePolicy
                do { policy = try engine.policy(for: resource) } catch { throw usage("\(error)") }
                if global.json {
                    printJSON(.list(policy.lines.map { .map([("setting", .string($0.0)), ("value", .string($0.1)), ("source", .string($0.2.description))]) }))
                    return
                }
                for (name, value, source) in policy.lines {
                    print("\(pad(name, 28)) \(pad(value, 34)) \(source)")
                }
            }
        }
    }
}

/// `text` padded to `width` columns; longer text is kept whole.
func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text.padding(toLength: width, withPad: " ", startingAt: 0)
}

/// The JSON and text forms of runs, tasks and index rows (engine spec section 5).
enum SummaryJSON {
    static func run(_ summary: RunSummary) -> Value {
        .map([
            ("taskId", summary.taskID.map { .int($0) } ?? .null), ("resource", .string(summary.resource)),
            ("mode", .string(summary.mode.rawValue)), ("status", .string(summary.status)), ("dryRun", .bool(summary.dryRun)),
            ("situations", .map(Situation.allCases.map { ($0.rawValue, .int(Int64(summary.situations[$0] ?? 0))) })),
            ("responses", .map(Response.allCases.compactMap { r in summary.responses[r].map { (r.rawValue, .int(Int64($0))) } })),
            ("errors", .list(summary.errors.map { .map([("accountId", $0.accountID.map { .string($0) } ?? .null), ("message", .string($0.message))]) })),
        ])
    }

    static func task(_ task: TaskRecord) -> Value {
        .map([
            ("taskId", .int(task.id)), ("resource", .string(task.resource)), ("mode", .string(task.mode)), ("status", .string(task.status)),
            ("cancelled", .bool(task.cancelled)),
            ("situations", .map(Situation.allCases.map { ($0.rawValue, .int(Int64(task.situations[$0.rawValue] ?? 0))) })),
            ("responses", .map(task.responses.sorted(by: { $0.key < $1.key }).map { ($0.key, .int(Int64($0.value))) })),
            ("errors", .list(task.errors.map { .map([("accountId", $0.accountID.map { .string($0) } ?? .null), ("message", .string($0.message))]) })),
        ])
    }

    static func taskRow(_ task: TaskRecord) -> Value {
        .map([("taskId", .int(task.id)), ("name", .string(task.name)), ("resource", .string(task.resource)), ("status", .string(task.status)),
              ("started", iso(task.started)), ("finished", iso(task.finished)), ("details", task.details.map { .string($0) } ?? .null)])
    }

    static func indexRow(_ entry: IndexEntry) -> Value {
        .map([("resource", .string(entry.resource)), ("accountId", .string(entry.accountID)),
              ("owner", entry.owner.map { .string($0) } ?? .null), ("situation", .string(entry.situation)),
              ("lastReconciled", iso(entry.lastReconciled)), ("explanation", entry.explanation.map { .string($0) } ?? .null)])
    }

    static func printText(_ summary: RunSummary) {
        let counts = Situation.allCases.compactMap { s in (summary.situations[s] ?? 0) > 0 ? "\(s.rawValue) \(summary.situations[s]!)" : nil }
        let responses = Response.allCases.compactMap { r in summary.responses[r].map { "\(r.rawValue) \($0)" } }
        print("\(summary.resource): \(summary.status)\(summary.dryRun ? " (dry run)" : "")\(summary.taskID.map { ", task \($0)" } ?? "")")
        print("  situations: \(counts.isEmpty ? "none" : counts.joined(separator: ", "))")
        if !responses.isEmpty { print("  responses\(summary.dryRun ? " it would take" : ""): \(responses.joined(separator: ", "))") }
        for error in summary.errors.prefix(10) { print("  error: \(error.accountID.map { "\($0): " } ?? "")\(error.message)") }
        if summary.errors.count > 10 { print("  ... \(summary.errors.count - 10) more errors (recon status \(summary.resource))") }
        for line in summary.details where line.hasPrefix("safeguard:") { print("  \(line)") }
    }

    static func printText(_ task: TaskRecord) {
        let counts = Situation.allCases.compactMap { s in (task.situations[s.rawValue] ?? 0) > 0 ? "\(s.rawValue) \(task.situations[s.rawValue]!)" : nil }
        print("  task \(task.id) \(task.mode) \(task.status): \(counts.joined(separator: ", "))")
        for error in task.errors.prefix(10) { print("  error: \(error.accountID.map { "\($0): " } ?? "")\(error.message)") }
    }
}
