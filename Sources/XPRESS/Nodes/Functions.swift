import Foundation
import XMLSource

/// The implementations of the catalogue's functions of evaluated arguments (spec section 2).
/// Each takes the element (for error locations), the evaluation and the argument values.
enum Functions {
    typealias Implementation = BuiltinNode.Implementation
    typealias Unary = UnaryBuiltinNode.Implementation

    /// The longest string or list a single function may build (pad, setlist): memory is not
    /// covered by the step budget.
    static let maximumLength: Int64 = 10_000_000

    // MARK: Arithmetic

    /// `add sub mult div mod`: fold left after integer coercion, nulls skipped; overflow and
    /// division by zero are errors.
    static func arithmetic(_ name: String) -> Implementation {
        { (node, e, values) throws(Interrupt) -> Value in
            var result: Int64?
            for value in values {
                guard let n = try node.integer(value, e) else { continue }
                guard let accumulated = result else { result = n; continue }
                let (value, overflow): (Int64, Bool)
                switch name {
                case "add": (value, overflow) = accumulated.addingReportingOverflow(n)
                case "sub": (value, overflow) = accumulated.subtractingReportingOverflow(n)
                case "mult": (value, overflow) = accumulated.multipliedReportingOverflow(by: n)
                default:
                    if n == 0 { throw node.failure(e, name == "div" ? "division by zero" : "modulo by zero") }
                    if name == "mod" && n == -1 {
                        (value, overflow) = (0, false)  // Java: Long.MIN_VALUE % -1 == 0
                    } else {
                        (value, overflow) = name == "div" ? accumulated.dividedReportingOverflow(by: n)
                                                          : accumulated.remainderReportingOverflow(dividingBy: n)
                    }
                }
                if overflow { throw node.failure(e, "integer overflow") }
                result = value
            }
            return .int(result ?? 0)
        }
    }

    // MARK: Logic and comparison

    static let not: Unary = { .int($0.isTrue ? 0 : 1) }

    static func equality(negated: Bool) -> Implementation {
        { (node, e, values) throws(Interrupt) -> Value in
            var all = true
            for other in values.dropFirst() {
                let equal: Bool
                do throws(CoercionFailure) { equal = try values[0].looselyEquals(other) } catch { throw node.failure(e, error.message) }
                if !equal { all = false; break }
            }
            return .int(all != negated ? 1 : 0)
        }
    }

    static func comparison(_ compare: @escaping @Sendable (Int64, Int64) -> Bool) -> Implementation {
        { (node, e, v) throws(Interrupt) -> Value in
            .int(compare(try node.integerOrZero(v[0], e), try node.integerOrZero(v[1], e)) ? 1 : 0)
        }
    }

    static func cmp(ignoringCase: Bool) -> Implementation {
        { _, _, v in
            if case .int(let a) = v[0], case .int(let b) = v[1] { return .int(a < b ? -1 : a == b ? 0 : 1) }
            let a = v[0].stringValue, b = v[1].stringValue
            return .int(ignoringCase ? JavaString.compareIgnoringCase(a, b) : JavaString.compare(a, b))
        }
    }

    static let isnull: Unary = { .int($0.isNull ? 1 : 0) }
    static let notnull: Unary = { .int($0.isNull ? 0 : 1) }

    static let isTrue: Unary = { value in
        switch value {
        case .bool(let b): .int(b ? 1 : 0)
        case .string(let s): .int(s.lowercased() == "true" ? 1 : 0)
        case .int(let n): .int(n != 0 ? 1 : 0)
        default: .int(0)
        }
    }

    static let isFalse: Unary = { value in
        switch value {
        case .null: .int(1)
        case .bool(let b): .int(b ? 0 : 1)
        case .string(let s): .int(s.lowercased() == "false" ? 1 : 0)
        case .int(let n): .int(n == 0 ? 1 : 0)
        default: .int(0)
        }
    }

    // MARK: Strings

    static let concat: Implementation = { _, _, values in
        var result = ""
        for value in values where !value.isNull { result += value.stringValue }
        return .string(result)
    }

    static let upcase: Implementation = { _, _, v in v[0].isNull ? .null : .string(v[0].stringValue.uppercased()) }
    static let downcase: Implementation = { _, _, v in v[0].isNull ? .null : .string(v[0].stringValue.lowercased()) }

    static func trim(leading: Bool, trailing: Bool) -> Implementation {
        { _, _, v in v[0].isNull ? .null : .string(JavaString.trim(v[0].stringValue, leading: leading, trailing: trailing)) }
    }

    static let ztrim: Implementation = { _, _, v in
        v[0].isNull ? .null : .string(String(v[0].stringValue.drop { $0 == "0" }))
    }

    static let pad: Implementation = { (node, e, v) throws(Interrupt) -> Value in
        let text = v[0].stringValue
        let length = try node.integerOrZero(v[1], e)
        guard length <= Functions.maximumLength else { throw node.failure(e, "cannot pad to \(length) characters (the limit is \(Functions.maximumLength))") }
        let padding = v.count > 2 && !v[2].stringValue.isEmpty ? v[2].stringValue : " "
        var result = text
        var units = Int64(text.utf16.count)
        while units < length {
            result += padding
            units += Int64(padding.utf16.count)
        }
        return .string(JavaString.substring(result, start: 0, length: max(length, Int64(text.utf16.count))))
    }

    static let length: Implementation = { _, _, v in
        switch v[0] {
        case .null: .int(0)
        case .list(let l): .int(Int64(l.items.count))
        case .map(let m): .int(Int64(m.count))
        default: .int(Int64(v[0].stringValue.utf16.count))
        }
    }

    static let indexOf: Implementation = { (node, e, v) throws(Interrupt) -> Value in
        let start = v.count > 2 ? try node.integerOrZero(v[2], e) : 0
        switch v[0] {
        case .null: return .int(-1)
        case .list(let l):
            let from = Int(min(max(start, 0), Int64(l.items.count)))
            for index in from..<l.items.count where l.items[index].strictlyEquals(v[1]) { return .int(Int64(index)) }
            return .int(-1)
        default:
            return .int(JavaString.indexOf(v[0].stringValue, v[1].stringValue, from: start))
        }
    }

    /// Java `StringTokenizer`: the second argument is a set of delimiter characters.
    static let split: Implementation = { _, _, v in
        guard !v[0].isNull else { return .null }
        let delimiters = Set(v[1].stringValue.unicodeScalars)
        var tokens: [Value] = []
        var current = String.UnicodeScalarView()
        for scalar in v[0].stringValue.unicodeScalars {
            if delimiters.contains(scalar) {
                if !current.isEmpty { tokens.append(.string(String(current))); current = String.UnicodeScalarView() }
            } else {
                current.append(scalar)
            }
        }
        if !current.isEmpty { tokens.append(.string(String(current))) }
        return .list(tokens)
    }

    static let join: Implementation = { _, _, v in
        let separator = v.count > 1 ? v[1].stringValue : ","
        let items: [Value]
        switch v[0] {
        case .null: return .null
        case .list(let l): items = l.items
        default: items = [v[0]]
        }
        return .string(items.filter { !$0.isNull }.map(\.stringValue).joined(separator: separator))
    }

    static let substr: Implementation = { (node, e, v) throws(Interrupt) -> Value in
        guard !v[0].isNull else { return .null }
        let start = v.count > 1 ? try node.integerOrZero(v[1], e) : 0
        let length = v.count > 2 ? try node.integer(v[2], e) : nil
        return .string(JavaString.substring(v[0].stringValue, start: start, length: length))
    }

    static func message(name: String) -> Implementation {
        { _, e, parameters in
            guard let pattern = e.options.messageCatalog[name] else {
                return .string(([name] + parameters.map(\.stringValue)).joined(separator: " "))
            }
            var result = pattern
            for (index, parameter) in parameters.enumerated() {
                result = result.replacingOccurrences(of: "{\(index)}", with: parameter.stringValue)
            }
            return .string(result)
        }
    }

    // MARK: Lists

    /// The elements of a list argument: a list's items, nothing for null, else the value alone.
    @inline(__always)
    static func elements(_ value: Value) -> [Value] {
        switch value {
        case .list(let l): l.items
        case .null: []
        default: [value]
        }
    }

    static func contains(_ items: [Value], _ value: Value) -> Bool {
        items.contains { $0.strictlyEquals(value) }
    }

    static let contains: Implementation = { _, _, v in
        switch v[0] {
        case .list(let l): .int(contains(l.items, v[1]) ? 1 : 0)
        case .null: .int(0)
        case .map(let m): .int(m[v[1].stringValue] != nil ? 1 : 0)
        default: .int(JavaString.indexOf(v[0].stringValue, v[1].stringValue) >= 0 ? 1 : 0)
        }
    }

    static let containsAll: Implementation = { _, _, v in
        let items = elements(v[0])
        return .int(elements(v[1]).allSatisfy { contains(items, $0) } ? 1 : 0)
    }

    static let containsAny: Implementation = { _, _, v in
        let items = elements(v[0])
        return .int(elements(v[1]).contains { contains(items, $0) } ? 1 : 0)
    }

    static let get: Implementation = { (node, e, v) throws(Interrupt) -> Value in
        switch v[0] {
        case .list(let l):
            guard let index = try node.integer(v[1], e), index >= 0, index < l.items.count else { return .null }
            return l.items[Int(index)]
        case .map(let m): return m[v[1].stringValue] ?? .null
        case .object(let o): return o.property(v[1].stringValue) ?? .null
        default: return .null
        }
    }

    static let setlist: Implementation = { (node, e, v) throws(Interrupt) -> Value in
        guard case .list(let l) = v[0] else { throw node.failure(e, "the first argument must be a list, not a \(v[0].kindName)") }
        guard let index = try node.integer(v[1], e), index >= 0, index < Functions.maximumLength else {
            throw node.failure(e, "bad list index \(v[1].stringValue)")
        }
        while l.items.count <= index { l.items.append(.null) }
        l.items[Int(index)] = v[2]
        return .null
    }

    static let putmap: Implementation = { (node, e, v) throws(Interrupt) -> Value in
        switch v[0] {
        case .map(let m): m[v[1].stringValue] = v[2]
        case .object(let o):
            guard o.setProperty(v[1].stringValue, v[2]) else { throw node.failure(e, "\(o.className) has no property '\(v[1].stringValue)'") }
        default: throw node.failure(e, "the first argument must be a map, not a \(v[0].kindName)")
        }
        return .null
    }

    static let lconcat: Implementation = { _, _, values in
        var result: [Value] = []
        for value in values {
            if case .list(let l) = value { result.append(contentsOf: l.items) } else { result.append(value) }
        }
        return .list(result)
    }

    static func index(_ position: Int) -> Implementation {
        { _, _, v in
            guard case .list(let l) = v[0], position >= 0, position < l.items.count else { return .null }
            return l.items[position]
        }
    }

    /// Edits of `append appendAll remove removeAll retainAll insert filterdup filternull`:
    /// change `items` given the arguments after the list.
    typealias ListEdit = @Sendable (inout [Value], [Value], Node, Evaluation) throws(Interrupt) -> Void

    static let listEdits: [String: ListEdit] = [
        "append": { items, args, _, _ in items.append(contentsOf: args) },
        "appendAll": { items, args, _, _ in for arg in args { items.append(contentsOf: elements(arg)) } },
        "remove": { items, args, _, _ in items.removeAll { item in args.contains { $0.strictlyEquals(item) } } },
        "removeAll": { items, args, _, _ in
            let removed = args.flatMap(elements)
            items.removeAll { contains(removed, $0) }
        },
        "retainAll": { items, args, _, _ in
            let kept = args.flatMap(elements)
            items.removeAll { !contains(kept, $0) }
        },
        "insert": { (items, args, node, e) throws(Interrupt) in
            guard let first = args.first else { return }
            let position = Int(min(max(try node.integerOrZero(first, e), 0), Int64(items.count)))
            items.insert(args.count > 1 ? args[1] : .null, at: position)
        },
        "filterdup": { items, _, _, _ in
            var kept: [Value] = []
            for item in items where !contains(kept, item) { kept.append(item) }
            items = kept
        },
        "filternull": { items, _, _, _ in items.removeAll { $0.isNull } },
    ]
}

/// A list function in either form: without `name`, a new list from the first argument; with
/// `name='var'`, the list held in `var` is changed in place and returned.
final class ListEditNode: Node, @unchecked Sendable {
    let variable: Path?
    let arguments: [Node]
    let edit: Functions.ListEdit

    init(_ element: String, _ location: SourcePosition, variable: Path?, arguments: [Node], edit: @escaping Functions.ListEdit) {
        self.variable = variable
        self.arguments = arguments
        self.edit = edit
        super.init(element, location)
    }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        guard let variable else {
            let values = try arguments.values(e, scope)
            var items = values.isEmpty ? [] : Functions.elements(values[0])
            try edit(&items, Array(values.dropFirst()), self, e)
            return .list(items)
        }
        let values = try arguments.values(e, scope)
        if case .list(let list) = variable.read(e, scope) {
            try edit(&list.items, values, self, e)
            return .list(list)
        }
        let current = variable.read(e, scope)
        var items = Functions.elements(current)
        try edit(&items, values, self, e)
        let list = Value.list(items)
        do { try variable.write(list, e, scope) } catch { throw failure(e, error.message) }
        return list
    }
}

/// `<expand>`: replaces each `$(path)` in the string by that path's value.
final class ExpandNode: Node, @unchecked Sendable {
    let text: Node
    init(_ location: SourcePosition, _ text: Node) { self.text = text; super.init("expand", location) }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        let value = try text.run(e, scope)
        guard case .string(let s) = value else { return value }
        switch Template.parse(s) {
        case nil: return value
        case .success(let template)?: return .string(template.expand(e, scope))
        case .failure(let error)?: throw failure(e, "bad reference in '\(s)': \(error.message)")
        }
    }
}

/// `<print>`, `<trace>` and `<breakpoint>`: the debugging elements.
final class DebugNode: Node, @unchecked Sendable {
    let arguments: [Node]
    init(_ element: String, _ location: SourcePosition, _ arguments: [Node]) {
        self.arguments = arguments
        super.init(element, location)
    }

    override func evaluate(_ e: Evaluation, _ scope: Scope) throws(Interrupt) -> Value {
        let values = try arguments.values(e, scope)
        switch element {
        case "print": e.trace(values.map(\.stringValue).joined(separator: " "))
        case "trace": e.tracing = values.first?.isTrue ?? true
        default: break
        }
        return .null
    }
}
