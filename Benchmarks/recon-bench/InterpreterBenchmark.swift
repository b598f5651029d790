import Foundation
import XPRESS

/// Evaluations per second of the standard rules against the same logic written in Swift, in one
/// run, so that both figures come from the same machine state: the two alternate for `rounds`
/// rounds and each keeps its fastest, which evens out a noisy machine.
struct InterpreterBenchmark {
    struct Row {
        let name: String
        let xpressPerSecond: Double
        let swiftPerSecond: Double
        var ratio: Double { swiftPerSecond / xpressPerSecond }
    }

    let iterations: Int
    let rounds: Int
    /// Only the rules whose name contains this; nil for all.
    var only: String? = nil

    func run() throws -> [Row] {
        let evaluator = Evaluator(library: RuleLoader.link([]).0)
        let accounts = (0..<1000).map { index in
            Value.map([("accountId", .string("user\(index)")), ("email", .string("user\(index)@example.com")),
                       ("firstname", .string("First\(index)")), ("lastname", .string("Last\(index)"))])
        }
        let views = (0..<1000).map { index in
            Value.map([("global", .map([("email", .string("user\(index)@example.com")), ("firstname", .string("First\(index)")),
                                         ("lastname", .string("Last\(index % 2 == 0 ? index : -1)"))]))])
        }
        let dates = (0..<1000).map { Value.date(millis: 1_790_000_000_000 + Int64($0) * 60_000) }
        var rows: [Row] = []

        rows.appendIfPresent(try measure("USER_NAME_MATCHES_ACCOUNT_ID", evaluator, ["account"], { try $0.call(accounts[$1 % 1000]) }) {
            SwiftRules.userNameMatchesAccountID(accounts[$0 % 1000])
        })
        rows.appendIfPresent(try measure("USER_EMAIL_MATCHES_ACCOUNT_EMAIL_CORR", evaluator, ["account"], { try $0.call(accounts[$1 % 1000]) }) {
            SwiftRules.emailMatchesAccountEmail(accounts[$0 % 1000])
        })
        rows.appendIfPresent(try measure("USER_FIRST_AND_LAST_NAMES_MATCH_ACCOUNT", evaluator, ["userview", "account"],
                                         { try $0.call(views[$1 % 1000], accounts[$1 % 1000]) }) {
            SwiftRules.firstAndLastNamesMatch(views[$0 % 1000], accounts[$0 % 1000])
        })
        rows.appendIfPresent(try measure("SCHEDULING_RULE_ACCEPT_ALL_DATES", evaluator, ["calculatedNextDate"], { try $0.call(dates[$1 % 1000]) }) {
            SwiftRules.acceptAllDates(dates[$0 % 1000])
        })
        return rows
    }

    /// The standard rules written directly in Swift, each a function of the rule's arguments.
    /// They are never inlined into the measuring loop, as a rule is never inlined into the
    /// engine's: inlined, the measure depended on what the optimizer made of the loop (the
    /// scheduling rule's loop took 1 ns or 13 ns an iteration from one build to the next).
    enum SwiftRules {
        @inline(never) static func userNameMatchesAccountID(_ account: Value) -> Value {
            member(account, "accountId")
        }

        @inline(never) static func emailMatchesAccountEmail(_ account: Value) -> Value {
            let email = member(account, "email")
            guard !email.isNull else { return .null }
            return .list([.object(AttributeCondition(attrName: .string("email"), operatorName: .string("equals"), operand: email))])
        }

        @inline(never) static func firstAndLastNamesMatch(_ userview: Value, _ account: Value) -> Value {
            let global = member(userview, "global")
            let first = member(account, "firstname"), last = member(account, "lastname")
            guard !first.isNull, !last.isNull else { return .int(0) }
            return .int(member(global, "firstname").stringValue == first.stringValue
                        && member(global, "lastname").stringValue == last.stringValue ? 1 : 0)
        }

        @inline(never) static func acceptAllDates(_ calculatedNextDate: Value) -> Value { calculatedNextDate }

        static func member(_ value: Value, _ key: String) -> Value {
            if case .map(let map) = value { return map[key] ?? .null }
            return .null
        }
    }

    private func measure(_ rule: String, _ evaluator: Evaluator, _ names: [String], 
                         _ xpress: (PreparedRuleCall, Int) throws -> Value,
                         swift: (Int) -> Value) throws -> Row? {
        guard let call = evaluator.prepare(rule: rule, argumentNames: names) else { throw BenchmarkError("no rule \(rule)") }
        if let only, !rule.contains(only) { return nil }
        var sink = 0
        var xpressSeconds = Double.infinity, swiftSeconds = Double.infinity
        for _ in 0..<max(rounds, 1) {
            xpressSeconds = min(xpressSeconds, try time {
                for index in 0..<iterations { sink &+= Self.weight(try xpress(call, index)) }
            })
            swiftSeconds = min(swiftSeconds, time {
                for index in 0..<iterations { sink &+= Self.weight(swift(index)) }
            })
        }
        if sink == 42 { print("") }  // keeps the results alive
        return Row(name: rule, xpressPerSecond: Double(iterations) / xpressSeconds, swiftPerSecond: Double(iterations) / swiftSeconds)
    }

    private static func weight(_ value: Value) -> Int {
        switch value {
        case .null: 0
        case .int(let n): Int(n)
        case .string(let s): s.utf8.count
        case .list(let l): l.items.count
        default: 1
        }
    }
}

private extension Array {
    mutating func appendIfPresent(_ element: Element?) { if let element { append(element) } }
}

func time(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

struct BenchmarkError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
