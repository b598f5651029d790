import Foundation
import XMLSource

/// `<ref>path</ref>` with a literal path, parsed at load time.
final class RefNode: Node, @unchecked Sendable {
    let path: Path
    init(_ location: SourcePosition, _ path: Path) { self.path = path; super.init("ref", location) }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        path.read(e, scope)
    }
}

/// A path whose text is only known at run time: `<ref>` with a child, or a path holding
/// `$(x)`, which is replaced by the string value of `x` first.
struct DynamicPath: Sendable {
    enum Source: Sendable {
        case computed(Node)
        case template(Template)
    }
    let source: Source

    func resolve(_ node: Node, _ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Path? {
        let text: String
        switch source {
        case .computed(let child): text = try child.run(e, scope).stringValue
        case .template(let template): text = template.expand(e, scope)
        }
        if text.isEmpty { return nil }
        switch Path.parse(text) {
        case .success(let path): return path
        case .failure(let error): throw node.failure(e, "bad path '\(text)': \(error.message)")
        }
    }
}

/// `<ref>` whose path is computed at run time.
final class DynamicRefNode: Node, @unchecked Sendable {
    let path: DynamicPath
    init(_ location: SourcePosition, _ path: DynamicPath) { self.path = path; super.init("ref", location) }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        try path.resolve(self, e, scope)?.read(e, scope) ?? .null
    }
}

/// Text with `$(path)` references (`expand`, dynamic paths): literal pieces and paths.
struct Template: Sendable {
    enum Piece: Sendable {
        case text(String)
        case path(Path)
        /// A reference whose path holds references itself.
        indirect case nested(Template)
    }
    let pieces: [Piece]

    /// Splits `text` at its `$(...)` references; nil when it has none. A reference may itself
    /// hold references (`$(l[#$(i)])`): the inner ones are replaced first.
    static func parse(_ text: String) -> Result<Template, PathError>? {
        guard Template.mayHoldReferences(text) else { return nil }
        var pieces: [Piece] = []
        var rest = Substring(text)
        while let start = rest.range(of: "$(") {
            if start.lowerBound > rest.startIndex { pieces.append(.text(String(rest[..<start.lowerBound]))) }
            guard let end = closingParenthesis(rest, from: start.upperBound) else {
                return .failure(PathError("'$(' without a closing ')'"))
            }
            let inner = String(rest[start.upperBound..<end])
            switch Template.parse(inner) {
            case .success(let nested)?: pieces.append(.nested(nested))
            case .failure(let error)?: return .failure(error)
            case nil:
                switch Path.parse(inner) {
                case .success(let path): pieces.append(.path(path))
                case .failure(let error): return .failure(error)
                }
            }
            rest = rest[rest.index(after: end)...]
        }
        if !rest.isEmpty { pieces.append(.text(String(rest))) }
        return .success(Template(pieces: pieces))
    }

    /// A fast test for `$(` (most text has none).
    static func mayHoldReferences(_ text: String) -> Bool {
        // The UTF-8 buffer itself (a native string's storage), not the string's iterator.
        var text = text
        return text.withUTF8 { bytes in
            var previousWasDollar = false
            for byte in bytes {
                if previousWasDollar && byte == UInt8(ascii: "(") { return true }
                previousWasDollar = byte == UInt8(ascii: "$")
            }
            return false
        }
    }


    /// The `)` that closes the `$(` opened just before `start`, counting nested parentheses.
    private static func closingParenthesis(_ text: Substring, from start: Substring.Index) -> Substring.Index? {
        var depth = 1
        var index = start
        while index < text.endIndex {
            if text[index] == "(" { depth += 1 }
            if text[index] == ")" {
                depth -= 1
                if depth == 0 { return index }
            }
            index = text.index(after: index)
        }
        return nil
    }

    func expand(_ e: Evaluation, _ scope: Scope) -> String {
        var result = ""
        for piece in pieces {
            switch piece {
            case .text(let text): result += text
            case .path(let path): result += path.read(e, scope).stringValue
            case .nested(let template): result += Template.read(template.expand(e, scope), e, scope).stringValue
            }
        }
        return result
    }

    /// The value of a path known only now; null when it is malformed.
    static func read(_ text: String, _ e: Evaluation, _ scope: Scope) -> Value {
        guard case .success(let path) = Path.parse(text) else { return .null }
        return path.read(e, scope)
    }
}

/// `<defvar name='x'>`: binds in the enclosing scope; null.
final class DefvarNode: Node, @unchecked Sendable {
    let variable: Symbol
    let value: Node?
    init(_ location: SourcePosition, _ variable: Symbol, _ value: Node?) {
        self.variable = variable; self.value = value
        super.init("defvar", location)
    }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        scope.bind(variable, try value?.run(e, scope) ?? .null)
        return .null
    }
}

/// `<set name='path'>` / `<setvar>`: assigns as the spec's section 3 says; null.
final class SetNode: Node, @unchecked Sendable {
    enum Target: Sendable {
        case literal(Path)
        case dynamic(DynamicPath)
    }
    let target: Target
    let value: Node?

    init(_ element: String, _ location: SourcePosition, _ target: Target, _ value: Node?) {
        self.target = target; self.value = value
        super.init(element, location)
    }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        let path: Path
        switch target {
        case .literal(let p): path = p
        case .dynamic(let dynamic):
            guard let p = try dynamic.resolve(self, e, scope) else { throw failure(e, "the variable name is empty") }
            path = p
        }
        let newValue = try value?.run(e, scope) ?? .null
        do { try path.write(newValue, e, scope) } catch { throw failure(e, error.message) }
        return .null
    }
}

/// `<defun name='f'>`: defines a function in the enclosing scope; null.
final class DefunNode: Node, @unchecked Sendable {
    let name: Symbol
    let parameters: [Symbol]
    let body: [Node]
    init(_ location: SourcePosition, name: Symbol, parameters: [Symbol], body: [Node]) {
        self.name = name; self.parameters = parameters; self.body = body
        super.init("defun", location)
    }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        scope.define(name, FunctionValue(definition: self, scope: scope))
        return .null
    }
}

/// `<call name='f'>`: calls a visible `defun`; missing arguments are null, extra ones an error.
final class CallNode: Node, @unchecked Sendable {
    let name: Symbol
    let arguments: [Node]
    init(_ location: SourcePosition, name: Symbol, arguments: [Node]) {
        self.name = name; self.arguments = arguments
        super.init("call", location)
    }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        guard let function = scope.findFunction(name) ?? e.host.findFunction(name) else {
            throw failure(e, "no function '\(name.name)' is defined (defun) in scope")
        }
        let definition = function.definition
        guard arguments.count <= definition.parameters.count else {
            throw failure(e, "function '\(name.name)' takes \(definition.parameters.count) argument(s), \(arguments.count) given")
        }
        let values = try arguments.values(e, scope)
        let callScope = Scope(parent: function.scope)
        for (index, parameter) in definition.parameters.enumerated() {
            callScope.bind(parameter, index < values.count ? values[index] : .null)
        }
        try e.push("function", name.name, at: location)
        defer { e.pop() }
        do {
            return try definition.body.sequence(e, callScope)
        } catch .breakOut {
            return e.breakValue  // a break never crosses a call
        }
    }
}

/// How an `<argument>` of `<rule>` gets its value.
enum ArgumentSource: Sendable {
    case literal(String)
    case reference(Path)
    /// `value='$(a[#$(i)])'`: a reference whose path is known only at run time.
    case dynamicReference(Template)
    case expression(Node)
}

/// `<rule name='X'>` (or a child computing the name) with `<argument>`s.
final class RuleCallNode: Node, @unchecked Sendable {
    enum Name: Sendable {
        case literal(String)
        case computed(Node)
    }
    let name: Name
    let arguments: [(Symbol, ArgumentSource)]
    /// The argument names alone, in order, as `Rule.invoke` takes them.
    let argumentSymbols: [Symbol]

    init(_ location: SourcePosition, name: Name, arguments: [(Symbol, ArgumentSource)]) {
        self.name = name; self.arguments = arguments
        self.argumentSymbols = arguments.map(\.0)
        super.init("rule", location)
    }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        let ruleName: String
        switch name {
        case .literal(let n): ruleName = n
        case .computed(let node): ruleName = try node.run(e, scope).stringValue
        }
        guard let rule = e.library.rule(named: ruleName) else {
            throw failure(e, "no rule named '\(ruleName)' is loaded")
        }
        var values: [Value] = []
        values.reserveCapacity(arguments.count)
        for (_, source) in arguments {
            switch source {
            case .literal(let text): values.append(.string(text))
            case .reference(let path): values.append(path.read(e, scope))
            case .dynamicReference(let template): values.append(Template.read(template.expand(e, scope), e, scope))
            case .expression(let node): values.append(try node.run(e, scope))
            }
        }
        return try rule.invoke(e, symbols: argumentSymbols, values: values, caller: scope, callSite: location)
    }
}

/// `<instanceof name='Type'>`.
final class InstanceofNode: Node, @unchecked Sendable {
    let typeName: String
    let value: Node
    init(_ location: SourcePosition, typeName: String, value: Node) {
        self.typeName = typeName; self.value = value
        super.init("instanceof", location)
    }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        let value = try self.value.run(e, scope)
        return .int(HostClassRegistry.isInstance(value, of: typeName) ? 1 : 0)
    }
}
