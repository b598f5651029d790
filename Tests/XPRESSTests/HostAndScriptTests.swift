import Foundation
import Testing
@testable import XPRESS

@Suite struct HostClassTests {
    static let saturday = [("d", #"{"$date": "2026-11-21T02:00:00.000Z"}"#)]

    @Test func dateLocalTimeFollowsTheConfiguredZone() throws {
        var options = EvaluationOptions()
        options.timeZone = TimeZone(identifier: "America/Chicago")!
        let xml = "<list><invoke name='getDay'><ref>d</ref></invoke><invoke name='getHours'><ref>d</ref></invoke><invoke name='getDate'><ref>d</ref></invoke><invoke name='getMonth'><ref>d</ref></invoke><invoke name='getYear'><ref>d</ref></invoke></list>"
        #expect(try eval(xml, variables: Self.saturday, options: options) == "[5, 20, 20, 10, 126]")
        #expect(try eval(xml, variables: Self.saturday) == "[6, 2, 21, 10, 126]")
    }

    @Test func dateSettersChangeTheDateInPlaceLeniently() throws {
        var options = EvaluationOptions()
        options.timeZone = TimeZone(identifier: "Europe/Paris")!
        let xml = "<block><invoke name='setHours'><ref>d</ref><i>25</i></invoke><invoke name='setMonth'><ref>d</ref><i>0</i></invoke><ref>d</ref></block>"
        // 2026-11-21 03:00 Paris -> hours 25 -> 2026-11-22 01:00 local -> January: 2026-01-22 01:00 (UTC+1).
        #expect(try eval(xml, variables: Self.saturday, options: options) == #"{"$date": "2026-01-22T00:00:00.000Z"}"#)
    }

    @Test func collectionAndStringClasses() throws {
        #expect(try eval("<block><defvar name='l'><new class='java.util.ArrayList'/></defvar><invoke name='add'><ref>l</ref><s>a</s></invoke><invoke name='size'><ref>l</ref></invoke></block>") == "1")
        #expect(try eval("<block><defvar name='m'><new class='java.util.HashMap'/></defvar><invoke name='put'><ref>m</ref><s>k</s><i>1</i></invoke><list><invoke name='containsKey'><ref>m</ref><s>k</s></invoke><ref>m</ref></list></block>") == #"[true, {"k": 1}]"#)
        #expect(try eval("<list><invoke name='toUpperCase'><s>abc</s></invoke><invoke name='substring'><s>abcdef</s><i>1</i><i>3</i></invoke><invoke name='equalsIgnoreCase'><s>A</s><s>a</s></invoke><invoke name='replace'><s>a-b-c</s><s>-</s><s>+</s></invoke></list>") == #"["ABC", "bc", true, "a+b+c"]"#)
        // List.remove(int) removes by position and returns the element; remove(Object) by value.
        let list = "<defvar name='l'><list><s>a</s><s>b</s><s>a</s></list></defvar>"
        #expect(try eval("<block>\(list)<list><invoke name='remove'><ref>l</ref><i>1</i></invoke><ref>l</ref></list></block>") == #"["b", ["a", "a"]]"#)
        #expect(try eval("<block>\(list)<list><invoke name='remove'><ref>l</ref><s>a</s></invoke><invoke name='remove'><ref>l</ref><s>z</s></invoke><ref>l</ref></list></block>") == #"[true, false, ["b", "a"]]"#)
        #expect(try eval("<block>\(list)<list><invoke name='get'><ref>l</ref><i>2</i></invoke><invoke name='set'><ref>l</ref><i>0</i><s>c</s></invoke><ref>l</ref></list></block>") == #"["a", "a", ["c", "b", "a"]]"#)
        #expect(try eval("<invoke class='java.lang.Integer' name='parseInt'><s>-42</s></invoke>") == "-42")
        #expect(try eval("<invoke name='getOperand'><new class='com.waveset.object.AttributeCondition'><s>a</s><s>equals</s><i>3</i></new></invoke>") == "3")
        #expect(try eval("<invoke name='getValue'><new class='com.waveset.object.WSAttribute'><s>n</s><s>v</s></new></invoke>") == #""v""#)
    }

    @Test(arguments: ["java.io.File", "java.lang.Runtime", "java.lang.System", "java.lang.Class", "java.net.URL",
                      "java.lang.ProcessBuilder", "java.lang.reflect.Method"])
    func classesOutsideTheRegistryAreRefusedAtLoad(_ className: String) {
        let problems = compileProblems("<new class='\(className)'><s>/etc/passwd</s></new>")
        #expect(problems.map(\.id) == ["XP0401"])
        let staticCall = compileProblems("<invoke class='\(className)' name='getRuntime'/>")
        #expect(staticCall.map(\.id) == ["XP0401"])
    }

    @Test func computedClassNamesAreCheckedAtRunTime() throws {
        let error = try #require(try runtimeError("<new><concat><s>java.io.</s><s>File</s></concat></new>"))
        #expect(error.message.contains("class 'java.io.File' is not available to rules"))
        #expect(try eval("<new><s>java.util.ArrayList</s></new>") == "[]")
    }
}

@Suite struct ScriptTests {
    @Test func scriptsSeeVariablesAndReturnTheirLastValue() throws {
        #expect(try eval("<script>env.get('xs').length + env.get('m').k</script>", variables: [("xs", "[1, 2]"), ("m", #"{"k": 40}"#)]) == "42")
        #expect(try eval("<script>[1, 'a', null, true, {b: [2]}]</script>") == #"[1, "a", null, true, {"b": [2]}]"#)
        #expect(try eval("<script>undefined</script>") == "null")
    }

    @Test func envPutAssignsLikeSet() throws {
        #expect(try eval("<block><script>env.put('user.email', 'a@b'); env.put('n', 7)</script><list><ref>user</ref><ref>n</ref></list></block>") == #"[{"email": "a@b"}, 7]"#)
    }

    @Test func envCallEvaluatesRules() throws {
        let rules = "<Rule name='Twice'><RuleArgument name='n'/><mult><ref>n</ref><i>2</i></mult></Rule>"
        #expect(try eval("<script>env.call('Twice', {n: 21})</script>", rules: rules) == "42")
    }

    @Test func hostObjectsAndDatesCrossBothWays() throws {
        #expect(try eval("<script>var d = env.get('d'); d.getUTCFullYear() * 100 + d.getUTCMonth()</script>", variables: [("d", #"{"$date": "2026-11-21T02:00:00.000Z"}"#)]) == "202610")
        #expect(try eval("<script>new Date(0)</script>") == #"{"$date": "1970-01-01T00:00:00.000Z"}"#)
        #expect(try eval("<script>var c = env.get('c'); c.operand = 'x'; c</script>", variables: [("c", #"{"$class": "AttributeCondition", "attrName": "a", "operator": "equals", "operand": "y"}"#)])
                == #"{"$class": "AttributeCondition", "attrName": "a", "operator": "equals", "operand": "x"}"#)
    }

    @Test(arguments: [
        ("<script>throw new Error('boom')</script>", "boom"),
        ("<script>1.5</script>", "not an integer"),
        ("<script>Math.pow(2, 60)</script>", "not an integer"),
        ("<script>function (</script>", "SyntaxError"),
        ("<script>env.call('Nope', {})</script>", "no rule named 'Nope'"),
    ])
    func scriptFailuresAreRuntimeErrors(_ xml: String, _ message: String) throws {
        let error = try #require(try runtimeError(xml))
        #expect(error.message.contains(message), "\(error.message)")
    }

    @Test func aRunawayScriptIsStoppedAndTheProcessLivesOn() throws {
        var options = EvaluationOptions()
        options.scriptTimeLimit = 0.2
        let started = ContinuousClock.now
        let error = try #require(try runtimeError("<script>while (true) {}</script>", options: options))
        #expect(ContinuousClock.now - started < .seconds(3))
        #expect(error.message.contains("time limit"))
        #expect(try eval("<script>'still alive'</script>", options: options) == #""still alive""#)
    }

    @Test func syntaxCheckingReportsTheLine() {
        #expect(ScriptEngine.syntaxError(in: "var a = 1;\nvar b = ;") != nil)
        #expect(ScriptEngine.syntaxError(in: "var a = 1;\nvar b = ;")?.line == 2)
        #expect(ScriptEngine.syntaxError(in: "var a = 1; a + 1") == nil)
    }
}

@Suite struct RuleTests {
    @Test func argumentsDefaultsLockingAndScope() throws {
        let rules = """
        <Rule name='R'><RuleArgument name='a' value='dflt'/><RuleArgument name='b' value='fixed' locked='true'/><list><ref>a</ref><ref>b</ref><ref>undeclared</ref></list></Rule>
        """
        #expect(try eval("<rule name='R'><argument name='undeclared' value='u'/></rule>", rules: rules) == #"["dflt", "fixed", "u"]"#)
        #expect(try eval("<rule name='R'><argument name='a'><null/></argument></rule>", rules: rules) == #"["fixed"]"#)
        #expect(try eval("<rule name='R'><argument name='a' value='a$(b)'/></rule>", rules: rules) == #"["a$(b)", "fixed"]"#)
    }

    /// A prepared call given one or two values binds them as the array form does: defaults
    /// first, a locked argument keeps its value, and an error names the rule.
    @Test func preparedCallsWithOneOrTwoValuesBindLikeTheArrayForm() throws {
        let rules = """
        <Rule name='R'><RuleArgument name='a' value='dflt'/><RuleArgument name='b' value='fixed' locked='true'/><list><ref>a</ref><ref>b</ref></list></Rule>
        <Rule name='Fails'><RuleArgument name='n'/><div><ref>n</ref><i>0</i></div></Rule>
        """
        let evaluator = Evaluator(library: try library(rules))
        let two = try #require(evaluator.prepare(rule: "R", argumentNames: ["a", "b"]))
        #expect(ValueJSON.encode(try two.call(.string("x"), .string("y"))) == #"["x", "fixed"]"#)
        #expect(ValueJSON.encode(try two.call([.string("x"), .string("y")])) == #"["x", "fixed"]"#)
        #expect(ValueJSON.encode(try two.call(.string("x"))) == #"["x", "fixed"]"#)
        let one = try #require(evaluator.prepare(rule: "R", argumentNames: ["b"]))
        #expect(ValueJSON.encode(try one.call(.string("y"))) == #"["dflt", "fixed"]"#)
        #expect(ValueJSON.encode(try one.call(.string("y"), .string("ignored"))) == #"["dflt", "fixed"]"#)
        let none = try #require(evaluator.prepare(rule: "R", argumentNames: []))
        #expect(ValueJSON.encode(try none.call(.string("ignored"))) == #"["dflt", "fixed"]"#)
        let failing = try #require(evaluator.prepare(rule: "Fails", argumentNames: ["n"]))
        for _ in 0..<2 {  // the second call reuses the first's evaluation
            #expect(throws: RuntimeError.self) { try failing.call(.int(1)) }
            do { _ = try failing.call(.int(1)) } catch { #expect(error.ruleName == "Fails", "\(error)") }
        }
        #expect(ValueJSON.encode(try two.call(.string("again"), .null)) == #"["again", "fixed"]"#)
    }

    @Test func setOfAnUnboundNameBindsInTheRulesScopeNotTheCallers() throws {
        let rules = "<Rule name='Setter'><set name='leak'><i>1</i></set></Rule>"
        #expect(try eval("<block><rule name='Setter'/><ref>leak</ref></block>", rules: rules) == "null")
    }

    @Test func standardLibraryRules() throws {
        let evaluator = Evaluator(library: try library())
        let account = try ValueJSON.decode(#"{"accountId": "jdoe", "email": "j@x", "firstname": "J", "lastname": "Doe"}"#)
        let userview = try ValueJSON.decode(#"{"global": {"email": "j@x", "firstname": "J", "lastname": "Doe"}}"#)
        func run(_ rule: String) throws -> String {
            ValueJSON.encode(try evaluator.call(rule: rule, arguments: [("account", account), ("userview", userview)]))
        }
        #expect(try run("USER_NAME_MATCHES_ACCOUNT_ID") == #""jdoe""#)
        #expect(try run("USER_OWNS_MATCHING_ACCOUNT_ID") == #"[{"$class": "AttributeCondition", "attrName": "linkedAccountId", "operator": "equals", "operand": "jdoe"}]"#)
        #expect(try run("USER_EMAIL_MATCHES_ACCOUNT_EMAIL_CORR") == #"[{"$class": "AttributeCondition", "attrName": "email", "operator": "equals", "operand": "j@x"}]"#)
        #expect(try run("USER_EMAIL_MATCHES_ACCOUNT_EMAIL_CONF") == "1")
        #expect(try run("USER_FIRST_AND_LAST_NAMES_MATCH_ACCOUNT") == "1")
        let other = try ValueJSON.decode(#"{"global": {"email": "other@x"}}"#)
        #expect(ValueJSON.encode(try evaluator.call(rule: "USER_EMAIL_MATCHES_ACCOUNT_EMAIL_CONF", arguments: [("account", account), ("userview", other)])) == "0")
    }

    @Test func evaluationIsReentrantAcrossThreads() async throws {
        let evaluator = Evaluator(library: try library(Self.countRule))
        try await Self.countOnManyThreads(tasks: 16, rounds: 200) { items in
            try evaluator.call(rule: "Count", arguments: [("n", .list(items))])
        }
    }

    /// A rule that counts its list argument element by element.
    static let countRule = "<Rule name='Count'><RuleArgument name='n'/><block><defvar name='acc'><list/></defvar><dolist name='i'><ref>n</ref><append name='acc'><ref>i</ref></append></dolist><length><ref>acc</ref></length></block></Rule>"

    /// Runs `count` on lists of varying lengths from `tasks` tasks at once; every result must be
    /// its list's length.
    static func countOnManyThreads(tasks: Int, rounds: Int, _ count: @escaping @Sendable ([Value]) throws -> Value) async throws {
        try await withThrowingTaskGroup(of: Int64.self) { group in
            for task in 0..<tasks {
                group.addTask {
                    var mismatches: Int64 = 0
                    for round in 0..<rounds {
                        let items = (0..<(task + round % 7)).map { Value.int(Int64($0)) }
                        guard case .int(let n) = try count(items) else { return -1 }
                        if n != Int64(items.count) { mismatches += 1 }
                    }
                    return mismatches
                }
            }
            for try await mismatches in group { #expect(mismatches == 0) }
        }
    }

    /// A prepared call reuses a finished evaluation: nothing of one call (host bindings, rule
    /// bindings, functions, the step count, a failure) may show in the next.
    @Test func preparedCallsStartClean() throws {
        let rules = """
            <Rule name='Visits'><RuleArgument name='n'/><block>
              <set name=':visits'><add><ref>:visits</ref><i>1</i></add></set>
              <cond><isnull><ref>local</ref></isnull><set name='local'><ref>n</ref></set></cond>
              <cond><eq><ref>n</ref><i>-1</i></eq><while><i>1</i><i>0</i></while></cond>
              <list><ref>:visits</ref><ref>local</ref></list>
            </block></Rule>
            """
        var options = EvaluationOptions()
        options.stepLimit = 10_000
        let call = try #require(Evaluator(library: try library(rules), options: options).prepare(rule: "Visits", argumentNames: ["n"]))
        for n in [Int64(3), 4, -1, 5] {
            do {
                let value = try call.call([.int(n)])
                #expect(ValueJSON.encode(value) == "[1, \(n)]")
                #expect(n != -1, "the runaway call should have failed")
            } catch {
                #expect(n == -1 && error.message.contains("step limit"), "\(error)")
            }
        }
    }

    /// One prepared call shared by many threads at once gives each its own evaluation.
    @Test func preparedCallsRunOnManyThreadsAtOnce() async throws {
        let call = try #require(Evaluator(library: try library(Self.countRule)).prepare(rule: "Count", argumentNames: ["n"]))
        try await Self.countOnManyThreads(tasks: 8, rounds: 500) { items in try call.call([.list(items)]) }
    }

    @Test func scriptsRunOnManyThreadsAtOnce() async throws {
        let evaluator = Evaluator(library: try library())
        let expression = try compile("<script>env.get('n') * 2</script>")
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for round in 0..<50 {
                        let n = Int64(task * 100 + round)
                        guard case .int(let doubled) = try evaluator.evaluate(expression, variables: [("n", .int(n))]), doubled == n * 2 else { return false }
                    }
                    return true
                }
            }
            for try await ok in group { #expect(ok) }
        }
    }
}
