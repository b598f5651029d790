import ArgumentParser
import Foundation
import Reconciler
import Repository
import XPRESS

extension ReconCommand {
    struct Explore: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "explore", abstract: "Explore and Correlate: record the resource's accounts, correlate new ones, and handle new and changed accounts as the ReverseSyncPolicy says.")
        @OptionGroup var global: GlobalOptions
        @Argument var resource: String
        @Flag(name: .customLong("no-correlate"), help: "Only record the accounts in the Account Index.") var noCorrelate = false

        func run() throws {
            let engine = try global.engine()
            guard engine.deployment.resources[resource] != nil else { throw usage("no resource named '\(resource)' is configured") }
            let summary: ExploreSummary
            do { summary = try ReverseSync(engine: engine, server: global.serverName).explore(resource, correlate: !noCorrelate) } catch {
                writeError("recon: \(error)")
                throw ExitCode(1)
            }
            if global.json {
                printJSON(.map([("resource", .string(resource)), ("accounts", .int(Int64(summary.accounts))),
                                ("newAccounts", .int(Int64(summary.newAccounts))), ("modifiedAccounts", .int(Int64(summary.modifiedAccounts))),
                                ("workItems", .list(summary.workItems.map { .string($0) })), ("applied", .int(Int64(summary.applied))),
                                ("errors", .list(summary.errors.map { .string($0) }))]))
            } else {
                print("\(resource): \(summary.accounts) accounts, \(summary.newAccounts) new, \(summary.modifiedAccounts) modified; \(summary.workItems.count) work items, \(summary.applied) applied")
                for error in summary.errors { print("  error: \(error)") }
            }
            if !summary.errors.isEmpty { throw ExitCode(1) }
        }
    }

    struct Worklist: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "worklist", abstract: "Approval work items: open ones, or all with --all.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only items for this approver.") var approver: String?
        @Flag(help: "Decided items too.") var all = false

        func run() throws {
            let items = try global.openRepository().workItems(includeDecided: all).filter { approver == nil || $0.approver == approver }
            if global.json { printJSON(.list(items.map(Self.json))); return }
            for item in items {
                let changes = item.changes.map { "\($0.attribute): \(Self.text($0.old)) -> \(Self.text($0.new))" }.joined(separator: "; ")
                print("\(item.id)  \(item.kind.rawValue)  \(item.resource):\(item.accountID)  \(item.status)  suggested: \(item.suggestedUser ?? "-")  \(changes)")
            }
        }

        static func text(_ values: [String]?) -> String { values.map { $0.count == 1 ? $0[0] : "[" + $0.joined(separator: ", ") + "]" } ?? "(none)" }

        static func value(_ values: [String]?, multi: Bool) -> Value {
            guard let values else { return .null }
            return multi ? .list(values.map { .string($0) }) : .string(values.first ?? "")
        }

        static func json(_ item: WorkItem) -> Value {
            var entries: [(String, Value)] = [
                ("id", .string(item.id)), ("resource", .string(item.resource)), ("accountId", .string(item.accountID)),
                ("kind", .string(item.kind.rawValue)), ("suggestedUser", item.suggestedUser.map { .string($0) } ?? .null),
                ("changes", .list(item.changes.map { change in
                    // A capability item names one value; a modified multi-valued attribute lists its values.
                    let multi = change.multi && item.kind != .capability
                    return .map([("attribute", .string(change.attribute)), ("old", value(change.old, multi: multi)), ("new", value(change.new, multi: multi))])
                })),
            ]
            if item.status != "open" { entries.append(("status", .string(item.status))) }
            return .map(entries)
        }
    }

    struct Approve: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "approve", abstract: "Approve a work item.")
        @OptionGroup var global: GlobalOptions
        @Argument var item: String
        @Option(help: "Link a new account to this user (default: the suggested user, else the default user).") var user: String?

        func run() throws {
            let engine = try global.engine()
            do {
                let task = try ReverseSync(engine: engine, server: global.serverName).approve(item, user: user)
                if global.json { printJSON(.map([("item", .string(item)), ("taskId", .int(task)), ("status", .string("approved"))])) } else { print("approved \(item) (task \(task))") }
            } catch {
                writeError("recon: \(error)")
                throw ExitCode(1)
            }
        }
    }

    struct Reject: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "reject", abstract: "Reject a work item: a new account is deleted or suspended; changes are written back.")
        @OptionGroup var global: GlobalOptions
        @Argument var item: String
        @Option(help: "delete or suspend (new accounts).") var action: String?

        func validate() throws {
            if let action, action != "delete" && action != "suspend" { throw ValidationError("--action takes delete or suspend") }
        }

        func run() throws {
            let engine = try global.engine()
            do {
                let task = try ReverseSync(engine: engine, server: global.serverName).reject(item, action: action)
                if global.json { printJSON(.map([("item", .string(item)), ("taskId", .int(task)), ("status", .string("rejected"))])) } else { print("rejected \(item) (task \(task))") }
            } catch {
                writeError("recon: \(error)")
                throw ExitCode(1)
            }
        }
    }
}
