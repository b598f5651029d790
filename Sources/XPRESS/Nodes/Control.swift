import XMLSource

/// Runs `body` and turns a `break` aimed at this construct into its value. An unlabelled break
/// stops at the nearest catching construct; a labelled one only at the block of that name.
@inline(__always)
private func catchingBreak(_ e: Evaluation, label: String?, _ body: () throws(Interrupt) -> Value) throws(Interrupt) -> Value {
    do {
        return try body()
    } catch .breakOut(let target) where target == nil || target == label {
        return e.breakValue
    }
}

/// `<block>`: the last child's value; opens a scope when something declares into it.
final class BlockNode: Node, @unchecked Sendable {
    let children: [Node]
    let label: String?
    let opensScope: Bool
    let traceOn: Bool

    init(_ location: SourcePosition, children: [Node], label: String?, opensScope: Bool, trace: Bool) {
        self.children = children
        self.label = label
        self.opensScope = opensScope
        self.traceOn = trace
        super.init("block", location)
    }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        let inner = opensScope ? Scope(parent: scope) : scope
        let wasTracing = e.tracing
        if traceOn { e.tracing = true }
        defer { e.tracing = wasTracing }
        return try catchingBreak(e, label: label) { () throws(Interrupt) -> Value in try children.sequence(e, inner) }
    }
}

/// `<and>`: 0 at the first false argument, else the last argument's value.
final class AndNode: Node, @unchecked Sendable {
    let children: [Node]
    init(_ location: SourcePosition, _ children: [Node]) { self.children = children; super.init("and", location) }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        try catchingBreak(e, label: nil) { () throws(Interrupt) -> Value in
            var last = Value.int(1)
            for child in children {
                last = try child.run(e, scope)
                if !last.isTrue { return .int(0) }
            }
            return last
        }
    }
}

/// `<or>`: the first true argument's value, else 0.
final class OrNode: Node, @unchecked Sendable {
    let children: [Node]
    init(_ location: SourcePosition, _ children: [Node]) { self.children = children; super.init("or", location) }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        try catchingBreak(e, label: nil) { () throws(Interrupt) -> Value in
            for child in children {
                let value = try child.run(e, scope)
                if value.isTrue { return value }
            }
            return .int(0)
        }
    }
}

/// `<cond>`: (test, then, else?).
final class CondNode: Node, @unchecked Sendable {
    let test: Node, then: Node, otherwise: Node?
    init(_ location: SourcePosition, _ test: Node, _ then: Node, _ otherwise: Node?) {
        self.test = test; self.then = then; self.otherwise = otherwise
        super.init("cond", location)
    }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        if try test.run(e, scope).isTrue { return try then.run(e, scope) }
        return try otherwise?.run(e, scope) ?? .null
    }
}

/// A `<then>` or `<else>` branch of `<if>`: expressions evaluated like a block.
struct Branch: Sendable {
    let children: [Node]
    let opensScope: Bool

    func run(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        try children.sequence(e, opensScope ? Scope(parent: scope) : scope)
    }
}

/// `<if>` with `<then>` and an optional `<else>`.
final class IfNode: Node, @unchecked Sendable {
    let test: Node, then: Branch?, otherwise: Branch?
    init(_ location: SourcePosition, _ test: Node, _ then: Branch?, _ otherwise: Branch?) {
        self.test = test; self.then = then; self.otherwise = otherwise
        super.init("if", location)
    }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        if try test.run(e, scope).isTrue { return try then?.run(e, scope) ?? .null }
        return try otherwise?.run(e, scope) ?? .null
    }
}

/// `<switch>`: the first case whose value `eq`s the subject, else the default case, else null.
final class SwitchNode: Node, @unchecked Sendable {
    struct Case: Sendable {
        let match: Node
        let result: Node?
        let location: SourcePosition
    }
    let subject: Node
    let cases: [Case]
    let fallback: Node?
    let hasDefault: Bool

    init(_ location: SourcePosition, subject: Node, cases: [Case], fallback: Node?, hasDefault: Bool) {
        self.subject = subject; self.cases = cases; self.fallback = fallback; self.hasDefault = hasDefault
        super.init("switch", location)
    }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        let value = try subject.run(e, scope)
        for item in cases {
            let candidate = try item.match.run(e, scope)
            let equal: Bool
            do throws(CoercionFailure) { equal = try value.looselyEquals(candidate) } catch { throw failure(e, error.message) }
            if equal { return try item.result?.run(e, scope) ?? .null }
        }
        return try fallback?.run(e, scope) ?? .null
    }
}

/// `<select>`: the first true argument, later ones not evaluated.
final class SelectNode: Node, @unchecked Sendable {
    let children: [Node]
    init(_ location: SourcePosition, _ children: [Node]) { self.children = children; super.init("select", location) }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        for child in children {
            let value = try child.run(e, scope)
            if value.isTrue { return value }
        }
        return .null
    }
}

/// `<dolist name='x'>`: the body once per element with `x` bound in a per-pass scope; the
/// result lists each pass's last value, nulls dropped.
final class DolistNode: Node, @unchecked Sendable {
    let variable: Symbol
    let list: Node
    let body: [Node]
    /// A body that defines functions captures its pass's scope, so each pass needs a new one.
    let freshScopePerPass: Bool

    init(_ location: SourcePosition, variable: Symbol, list: Node, body: [Node], freshScopePerPass: Bool) {
        self.variable = variable; self.list = list; self.body = body; self.freshScopePerPass = freshScopePerPass
        super.init("dolist", location)
    }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        let source = try list.run(e, scope)
        let items: [Value]
        switch source {
        case .null: items = []
        case .list(let l): items = l.items
        default: items = [source]
        }
        return try catchingBreak(e, label: nil) { () throws(Interrupt) -> Value in
            var results: [Value] = []
            var pass = Scope(parent: scope)
            for item in items {
                if freshScopePerPass { pass = Scope(parent: scope) } else { pass.reset() }
                pass.bind(variable, item)
                let value = try body.sequence(e, pass)
                if !value.isNull { results.append(value) }
            }
            return .list(results)
        }
    }
}

/// `<while>`: the test before each pass; the last body value of the last pass.
final class WhileNode: Node, @unchecked Sendable {
    let test: Node
    let body: [Node]
    init(_ location: SourcePosition, test: Node, body: [Node]) {
        self.test = test; self.body = body
        super.init("while", location)
    }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        try catchingBreak(e, label: nil) { () throws(Interrupt) -> Value in
            var last = Value.null
            while try test.run(e, scope).isTrue {
                last = try body.sequence(e, scope)
                e.steps &+= 1  // an empty body still spends the budget
                if e.steps > e.stepLimit { throw e.stepLimitExceeded(location) }
            }
            return last
        }
    }
}

/// `<break>`: leaves the nearest block/dolist/while/and/or (or the named block) with a value.
final class BreakNode: Node, @unchecked Sendable {
    let label: String?
    let value: Node?
    init(_ location: SourcePosition, label: String?, value: Node?) {
        self.label = label; self.value = value
        super.init("break", location)
    }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        e.breakValue = try value?.run(e, scope) ?? .null
        throw .breakOut(label: label)
    }
}
