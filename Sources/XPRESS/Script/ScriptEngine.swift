import CJavaScriptCore
import Foundation
import XMLSource

/// The zone of JavaScript's local-time Date methods. JavaScriptCore reads the process's `TZ`,
/// so this is process-wide: commands set it once at start, before any script runs.
public enum JavaScriptTimeZone {
    public static func use(_ zone: TimeZone) {
        setenv("TZ", zone.identifier, 1)
        tzset()
    }
}

/// What a running script can reach of the evaluation that started it: `env.get`, `env.put` and
/// `env.call`.
protocol ScriptHost {
    func get(_ name: String) throws(ScriptFailure) -> Value
    func put(_ name: String, _ value: Value) throws(ScriptFailure)
    func call(_ rule: String, _ arguments: [(String, Value)]) throws(ScriptFailure) -> Value
}

/// Why a script failed: its JavaScript message, or an XPRESS error raised inside `env.call`.
enum ScriptFailure: Error {
    case javascript(String)
    case nested(Interrupt)
}

/// JavaScript for `<script>` through the WebKitGTK JavaScriptCore C API. One engine (context
/// group and global context) per thread, made on first use and kept for the thread's life.
/// Values are copied in and out (spec section 2); a script running past the time limit is
/// terminated by JavaScriptCore's watchdog and reported as an error.
final class ScriptEngine {
    private let group: JSContextGroupRef
    private let context: JSGlobalContextRef
    private let timeLimit: Double
    /// The hosts of the scripts running on this thread, innermost last (a script may call a
    /// rule that runs another script).
    private var hosts: [ScriptHost] = []

    private static let threadKey = "org.recon.xpress.ScriptEngine"

    /// Why JavaScriptCore could not be loaded, or nil once it is (it is loaded on first use).
    static let unavailable: String? = recon_javascriptcore_load().map {
        "JavaScript is unavailable: \(String(cString: $0)) (install the libjavascriptcoregtk-4.1-0 package)"
    }

    /// The engine of the calling thread; throws when JavaScriptCore cannot be loaded.
    static func forCurrentThread(timeLimit: Double) throws(ScriptFailure) -> ScriptEngine {
        if let unavailable { throw .javascript(unavailable) }
        let key = "\(threadKey).\(timeLimit)"
        if let engine = Thread.current.threadDictionary[key] as? ScriptEngine { return engine }
        let engine = ScriptEngine(timeLimit: timeLimit)
        Thread.current.threadDictionary[key] = engine
        return engine
    }

    private init(timeLimit: Double) {
        self.timeLimit = timeLimit
        group = JSContextGroupCreate()
        context = JSGlobalContextCreateInGroup(group, nil)
        JSContextGroupSetExecutionTimeLimit(group, timeLimit, { _, _ in true }, nil)
        installEnvironment()
        runner = makeRunner()
    }

    /// `function (source) { return eval(source); }`: each script runs as a direct eval inside a
    /// fresh function call, so its `var`, `let` and `const` bindings are its own and nothing
    /// carries over to the next script run on this thread. The value is the completion value of
    /// the script's last statement, as the spec asks.
    private var runner: JSObjectRef?

    private func makeRunner() -> JSObjectRef? {
        let name = Self.jsString("source")
        let body = Self.jsString("return eval(source);")
        defer { JSStringRelease(name); JSStringRelease(body) }
        var parameters: [JSStringRef?] = [name]
        let function = JSObjectMakeFunction(context, nil, 1, &parameters, body, nil, 1, nil)
        if let function { JSValueProtect(context, function) }
        return function
    }

    deinit {
        JSGlobalContextRelease(context)
        JSContextGroupRelease(group)
    }

    /// Runs `source` and converts its completion value.
    func run(_ source: String, host: ScriptHost, firstLine: Int) throws(ScriptFailure) -> Value {
        hosts.append(host)
        defer { hosts.removeLast() }
        let script = Self.jsString(source)
        defer { JSStringRelease(script) }
        var exception: JSValueRef?
        let started = DispatchTime.now().uptimeNanoseconds
        var arguments: [JSValueRef?] = [JSValueMakeString(context, script)]
        let result = JSObjectCallAsFunction(context, runner, nil, 1, &arguments, &exception)
        if let pending = pendingFailure { pendingFailure = nil; throw pending }
        if let exception {
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            if elapsed >= timeLimit * 0.9 {
                throw .javascript("script ran past its time limit of \(timeLimit) s and was stopped")
            }
            throw .javascript(describe(exception, firstLine: firstLine))
        }
        return try value(from: result, depth: 0)
    }

    /// A failure inside `env.call`/`env.put` to rethrow as it was once the script unwinds.
    private var pendingFailure: ScriptFailure?

    /// Compiles (never runs) `source`; returns the JavaScript message and the line (counted
    /// from 1 in `source`) of a syntax error, or nil when it compiles.
    static func syntaxError(in source: String) -> (message: String, line: Int)? {
        do { return try forCurrentThread(timeLimit: 1).checkSyntax(source) } catch {
            guard case .javascript(let message) = error else { return nil }
            return ("the script could not be checked: \(message)", 1)
        }
    }

    private func checkSyntax(_ source: String) -> (message: String, line: Int)? {
        let script = Self.jsString(source)
        defer { JSStringRelease(script) }
        var exception: JSValueRef?
        if JSCheckScriptSyntax(context, script, nil, 1, &exception) { return nil }
        guard let exception else { return ("syntax error", 1) }
        var line = 1
        if let object = JSValueToObject(context, exception, nil) {
            let name = Self.jsString("line")
            defer { JSStringRelease(name) }
            let number = JSValueToNumber(context, JSObjectGetProperty(context, object, name, nil), nil)
            if number.isFinite && number >= 1 { line = Int(number) }
        }
        return (Self.string(context, exception), line)
    }

    // MARK: The env object

    private func installEnvironment() {
        var definition = JSClassDefinition()  // all zero: version 0, no callbacks (kJSClassDefinitionEmpty)
        let envClass = JSClassCreate(&definition)
        defer { JSClassRelease(envClass) }
        let env = JSObjectMake(context, envClass, Unmanaged.passUnretained(self).toOpaque())
        addFunction(env, "get") { engine, ctx, args throws(ScriptFailure) in
            guard let host = engine.hosts.last else { return JSValueMakeUndefined(ctx) }
            return try engine.jsValue(try host.get(engine.stringArgument(args, 0)))
        }
        addFunction(env, "put") { engine, ctx, args throws(ScriptFailure) in
            guard let host = engine.hosts.last else { return JSValueMakeUndefined(ctx) }
            let value = args.count > 1 ? try engine.value(from: args[1], depth: 0) : .null
            try host.put(engine.stringArgument(args, 0), value)
            return JSValueMakeUndefined(ctx)
        }
        addFunction(env, "call") { engine, ctx, args throws(ScriptFailure) in
            guard let host = engine.hosts.last else { return JSValueMakeUndefined(ctx) }
            var arguments: [(String, Value)] = []
            if args.count > 1, case .map(let map) = try engine.value(from: args[1], depth: 0) {
                arguments = Array(map.entries)
            }
            return try engine.jsValue(try host.call(engine.stringArgument(args, 0), arguments))
        }
        let global = JSContextGetGlobalObject(context)
        let name = Self.jsString("env")
        defer { JSStringRelease(name) }
        JSObjectSetProperty(context, global, name, env,
                            JSPropertyAttributes(kJSPropertyAttributeReadOnly | kJSPropertyAttributeDontDelete), nil)
    }

    private typealias EnvFunction = (ScriptEngine, JSContextRef, [JSValueRef?]) throws(ScriptFailure) -> JSValueRef?

    /// The Swift bodies of `env.get`, `env.put`, `env.call`, looked up by name from the C callback.
    private var functions: [String: EnvFunction] = [:]

    private func addFunction(_ env: JSObjectRef?, _ name: String, _ body: @escaping EnvFunction) {
        functions[name] = body
        let jsName = Self.jsString(name)
        defer { JSStringRelease(jsName) }
        let function = JSObjectMakeFunctionWithCallback(context, jsName) { ctx, function, this, count, arguments, exception in
            guard let ctx, let this, let raw = JSObjectGetPrivate(this) else {
                return JSValueMakeUndefined(ctx)
            }
            let engine = Unmanaged<ScriptEngine>.fromOpaque(raw).takeUnretainedValue()
            let name = engine.functionName(function)
            let args = (0..<count).map { arguments![$0] }
            do throws(ScriptFailure) {
                guard let body = engine.functions[name] else { return JSValueMakeUndefined(ctx) }
                return try body(engine, ctx, args)
            } catch {
                let message: String
                switch error {
                case .javascript(let text): message = text
                case .nested(let interrupt):
                    engine.pendingFailure = .nested(interrupt)
                    message = "env.\(name) failed"
                }
                exception?.pointee = engine.jsValue(message: message)
                return nil
            }
        }
        let slot = Self.jsString(name)
        defer { JSStringRelease(slot) }
        JSObjectSetProperty(context, env, slot, function, JSPropertyAttributes(kJSPropertyAttributeReadOnly), nil)
    }

    private func functionName(_ function: JSObjectRef?) -> String {
        let key = Self.jsString("name")
        defer { JSStringRelease(key) }
        return Self.string(context, JSObjectGetProperty(context, function, key, nil))
    }

    private func stringArgument(_ args: [JSValueRef?], _ index: Int) -> String {
        index < args.count ? Self.string(context, args[index]) : ""
    }

    // MARK: Value conversion

    private func jsValue(message: String) -> JSValueRef? {
        var args = [jsValue(string: message)]
        return JSObjectMakeError(context, 1, &args, nil)
    }

    private func jsValue(string: String) -> JSValueRef? {
        let s = Self.jsString(string)
        defer { JSStringRelease(s) }
        return JSValueMakeString(context, s)
    }

    /// A copy of `value` as a JavaScript value.
    func jsValue(_ value: Value, depth: Int = 0) throws(ScriptFailure) -> JSValueRef? {
        guard depth <= Value.maximumNesting else { throw .javascript("a value passed to the script nests too deeply (does a list hold itself?)") }
        switch value {
        case .null: return JSValueMakeNull(context)
        case .int(let n): return JSValueMakeNumber(context, Double(n))
        case .bool(let b): return JSValueMakeBoolean(context, b)
        case .string(let s): return jsValue(string: s)
        case .date(let d):
            var args: [JSValueRef?] = [JSValueMakeNumber(context, Double(d.millis))]
            return JSObjectMakeDate(context, 1, &args, nil)
        case .list(let l):
            var items: [JSValueRef?] = []
            for item in l.items { items.append(try jsValue(item, depth: depth + 1)) }
            return JSObjectMakeArray(context, items.count, items, nil)
        case .map(let m):
            return try jsObject(Array(m.entries), depth: depth)
        case .object(let o):
            return try jsObject([("$class", .string(o.className))] + o.properties, depth: depth)
        }
    }

    private func jsObject(_ entries: [(String, Value)], depth: Int) throws(ScriptFailure) -> JSValueRef? {
        let object = JSObjectMake(context, nil, nil)
        for (key, item) in entries {
            let name = Self.jsString(key)
            defer { JSStringRelease(name) }
            JSObjectSetProperty(context, object, name, try jsValue(item, depth: depth + 1), JSPropertyAttributes(kJSPropertyAttributeNone), nil)
        }
        return object
    }

    /// A copy of a JavaScript value as an XPRESS value.
    func value(from js: JSValueRef?, depth: Int) throws(ScriptFailure) -> Value {
        guard let js, depth < Value.maximumNesting else {
            if depth >= Value.maximumNesting { throw .javascript("the script's value nests too deeply (a cycle?)") }
            return .null
        }
        switch JSValueGetType(context, js) {
        case kJSTypeUndefined, kJSTypeNull: return .null
        case kJSTypeBoolean: return .bool(JSValueToBoolean(context, js))
        case kJSTypeString: return .string(Self.string(context, js))
        case kJSTypeNumber:
            let number = JSValueToNumber(context, js, nil)
            guard number.isFinite, number.rounded() == number, abs(number) <= 9_007_199_254_740_992 else {
                throw .javascript("the script returned the number \(number), which is not an integer within ±2^53")
            }
            return .int(Int64(number))
        case kJSTypeObject:
            if JSValueIsDate(context, js) {
                let millis = JSValueToNumber(context, js, nil)
                guard millis.isFinite, DateBox.range.contains(Int64(millis)) else { throw .javascript("the script returned an invalid Date") }
                return .date(millis: Int64(millis))
            }
            guard let object = JSValueToObject(context, js, nil) else { return .null }
            if JSValueIsArray(context, js) {
                let lengthName = Self.jsString("length")
                defer { JSStringRelease(lengthName) }
                let length = JSValueToNumber(context, JSObjectGetProperty(context, object, lengthName, nil), nil)
                guard length.isFinite, length <= Double(Functions.maximumLength) else {
                    throw .javascript("the script returned an array of \(length) elements (the limit is \(Functions.maximumLength))")
                }
                var items: [Value] = []
                for index in 0..<max(Int(length), 0) {
                    items.append(try value(from: JSObjectGetPropertyAtIndex(context, object, UInt32(index), nil), depth: depth + 1))
                }
                return .list(items)
            }
            if JSObjectIsFunction(context, object) { throw .javascript("the script returned a function") }
            let names = JSObjectCopyPropertyNames(context, object)
            defer { JSPropertyNameArrayRelease(names) }
            var entries: [(String, Value)] = []
            for index in 0..<JSPropertyNameArrayGetCount(names) {
                let name = JSPropertyNameArrayGetNameAtIndex(names, index)
                entries.append((Self.string(name), try value(from: JSObjectGetProperty(context, object, name, nil), depth: depth + 1)))
            }
            if let first = entries.first, first.0 == "$class", case .string(let className) = first.1 {
                let rest = Dictionary(entries.dropFirst().map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a })
                switch className {
                case "AttributeCondition":
                    return .object(AttributeCondition(attrName: rest["attrName"] ?? .null, operatorName: rest["operator"] ?? .null,
                                                      operand: rest["operand"] ?? .null))
                case "WSAttribute":
                    return .object(WSAttribute(name: rest["name"] ?? .null, value: rest["value"] ?? .null))
                default: break
                }
            }
            return .map(entries)
        default:
            throw .javascript("the script returned a value XPRESS cannot hold (a symbol or BigInt)")
        }
    }

    // MARK: Strings

    static func jsString(_ s: String) -> JSStringRef {
        let units = Array(s.utf16)
        return units.withUnsafeBufferPointer { JSStringCreateWithCharacters($0.baseAddress, $0.count) }
    }

    static func string(_ s: JSStringRef?) -> String {
        guard let s, let characters = JSStringGetCharactersPtr(s) else { return "" }
        return String(decoding: UnsafeBufferPointer(start: characters, count: JSStringGetLength(s)), as: UTF16.self)
    }

    static func string(_ context: JSContextRef?, _ value: JSValueRef?) -> String {
        guard let s = JSValueToStringCopy(context, value, nil) else { return "" }
        defer { JSStringRelease(s) }
        return string(s)
    }

    /// The exception's message, with the file line it was thrown on when JavaScript knows it.
    private func describe(_ exception: JSValueRef, firstLine: Int) -> String {
        let message = Self.string(context, exception)
        guard let object = JSValueToObject(context, exception, nil) else { return message }
        let name = Self.jsString("line")
        defer { JSStringRelease(name) }
        let line = JSValueToNumber(context, JSObjectGetProperty(context, object, name, nil), nil)
        guard line.isFinite, line >= 1 else { return message }
        return "\(message) (file line \(firstLine + Int(line) - 1))"
    }
}

/// `<script>`: JavaScript whose value is its last statement's.
final class ScriptNode: Node, @unchecked Sendable {
    let source: String
    let firstLine: Int

    init(_ location: SourcePosition, source: String, firstLine: Int) {
        self.source = source
        self.firstLine = firstLine
        super.init("script", location)
    }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        let host = EvaluationScriptHost(evaluation: e, scope: scope, node: self)
        do {
            return try e.scriptEngine().run(source, host: host, firstLine: firstLine)
        } catch {
            switch error {
            case .nested(let interrupt): throw interrupt
            case .javascript(let message): throw failure(e, "JavaScript: \(message)")
            }
        }
    }
}

/// `env` for a script: reads and writes the variables visible where the script runs and calls
/// rules from there.
private struct EvaluationScriptHost: ScriptHost {
    let evaluation: Evaluation
    let scope: Scope
    let node: Node

    func path(_ name: String) throws(ScriptFailure) -> Path {
        switch Path.parse(name) {
        case .success(let path): return path
        case .failure(let error): throw .javascript("bad variable name '\(name)': \(error.message)")
        }
    }

    func get(_ name: String) throws(ScriptFailure) -> Value {
        try path(name).read(evaluation, scope)
    }

    func put(_ name: String, _ value: Value) throws(ScriptFailure) {
        let target = try path(name)
        do { try target.write(value, evaluation, scope) } catch { throw .javascript(error.message) }
    }

    func call(_ ruleName: String, _ arguments: [(String, Value)]) throws(ScriptFailure) -> Value {
        guard let rule = evaluation.library.rule(named: ruleName) else {
            throw .nested(node.failure(evaluation, "env.call: no rule named '\(ruleName)' is loaded"))
        }
        do {
            return try rule.invoke(evaluation, symbols: arguments.map { Symbol($0.0) }, values: arguments.map(\.1), caller: scope, callSite: node.location)
        } catch {
            throw .nested(error)
        }
    }
}
