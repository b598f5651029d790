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

        rows.append(try measure("USER_NAME_MATCHES_ACCOUNT_ID", evaluator, ["account"], { try $0.call(accounts[$1 % 1000]) }) { index in
            Self.member(accounts[index % 1000], "accountId")
        })
        rows.append(try measure("USER_EMAIL_MATCHES_ACCOUNT_EMAIL_CORR", evaluator, ["account"], { try $0.call(accounts[$1 % 1000]) }) { index in
            let email = Self.member(accounts[index % 1000], "email")
            guard !email.isNull else { return .null }
            return .list([.object(AttributeCondition(attrName: .string("email"), operatorName: .string("equals"), operand: email))])
        })
        rows.append(try measure("USER_FIRST_AND_LAST_NAMES_MATCH_ACCOUNT", evaluator, ["userview", "account"],
                                { try $0.call(views[$1 % 1000], accounts[$1 % 1000]) }) { index in
            let account = accounts[index % 1000]
            let global = Self.member(views[index % 1000], "global")
            let first = Self.member(account, "firstname"), last = Self.member(account, "lastname")
            guard !first.isNull, !last.isNull else { return .int(0) }
            return .int(Self.member(global, "firstname").stringValue == first.stringValue
                        && Self.member(global, "lastname").stringValue == last.stringValue ? 1 : 0)
        })
        rows.append(try measure("SCHEDULING_RULE_ACCEPT_ALL_DATES", evaluator, ["calculatedNextDate"], { try $0.call(dates[$1 % 1000]) }) { index in
            dates[index % 1000]
        })
        return rows
    }

    static func member(_ value: Value, _ key: String) -> Value {
        if case .map(let map) = value { return map[key] ?? .null }
        return .null
    }

    private func measure(_ rule: String, _ evaluator: Evaluator, _ names: [String], 
                         _ xpress: (PreparedRuleCall, Int) throws -> Value,
                         swift: (Int) -> Value) throws -> Row {
        guard let call = evaluator.prepare(rule: rule, argumentNames: names) else { throw BenchmarkError("no rule \(rule)") }
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

func time(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

struct BenchmarkError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
