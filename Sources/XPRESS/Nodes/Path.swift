/// A path expression of `ref`, `set` and `$(...)` (spec section 3): a variable name followed by
/// steps (`.key`, `[#n]`, `[token]`, `[k=v]`, `[k==v]`, `[*]`). A leading `:` starts at the
/// outermost (host) scope.
struct Path: Sendable, CustomStringConvertible {
    enum Step: Sendable {
        case key(String)
        case index(Int)
        case named(String)
        case filter(key: String, value: String, firstOnly: Bool)
        case all
    }

    let text: String
    let fromHost: Bool
    let root: Symbol
    let steps: [Step]
    /// The key of a path that is one `.key` step (`account.email`, the common case), read
    /// without going through `steps`.
    private let onlyKey: String?

    init(text: String, fromHost: Bool, root: Symbol, steps: [Step]) {
        self.text = text
        self.fromHost = fromHost
        self.root = root
        self.steps = steps
        if steps.count == 1, case .key(let key) = steps[0] { onlyKey = key } else { onlyKey = nil }
    }

    var description: String { text }

    /// Parses a path; a failure says why it is malformed. Works on UTF-8 bytes: paths are
    /// parsed for every `ref` at load time and for every computed path at run time.
    static func parse(_ text: String) -> Result<Path, PathError> {
        parseParts(text).map { Path(text: text, fromHost: $0.fromHost, root: Symbol($0.rootName), steps: $0.steps) }
    }

    /// What `parse` finds, before the root name is interned: tools that only look at a path's
    /// root (the linter, for every `ref`) need not take the symbol table's lock, and pass
    /// `keepingSteps: false` to have the path checked without its steps being built.
    static func parseParts(_ text: String, keepingSteps: Bool = true) -> Result<(fromHost: Bool, rootName: String, steps: [Step]), PathError> {
        var text = text  // parsed in place: a native string's UTF-8 buffer, not a copy of it
        return text.withUTF8 { parseParts($0, keepingSteps: keepingSteps) }
    }

    private static func parseParts(_ bytes: UnsafeBufferPointer<UInt8>,
                                   keepingSteps: Bool) -> Result<(fromHost: Bool, rootName: String, steps: [Step]), PathError> {
        var start = 0, end = bytes.count
        while start < end, isSpace(bytes[start]) { start += 1 }
        while end > start, isSpace(bytes[end - 1]) { end -= 1 }
        let fromHost = start < end && bytes[start] == UInt8(ascii: ":")
        if fromHost { start += 1 }
        var steps: [Step] = []
        var rootName: String?
        var nameStart = start
        var index = start
        func closeName(_ upTo: Int) {
            guard upTo > nameStart, rootName == nil || keepingSteps else { return }
            let name = String(decoding: bytes[nameStart..<upTo], as: UTF8.self)
            if rootName == nil { rootName = name } else { steps.append(.key(name)) }
        }
        while index < end {
            switch bytes[index] {
            case UInt8(ascii: "."):
                closeName(index)
                index += 1
                nameStart = index
            case UInt8(ascii: "["):
                closeName(index)
                guard rootName != nil else { return .failure(PathError("a path must start with a variable name")) }
                guard let close = bytes[(index + 1)..<end].firstIndex(of: UInt8(ascii: "]")) else {
                    return .failure(PathError("'[' without a closing ']'"))
                }
                switch parseSelector(bytes[(index + 1)..<close]) {
                case .success(let step): if keepingSteps { steps.append(step) }
                case .failure(let error): return .failure(error)
                }
                index = close + 1
                nameStart = index
            default:
                index += 1
            }
        }
        closeName(end)
        guard let rootName, !rootName.isEmpty else { return .failure(PathError("empty path")) }
        return .success((fromHost, rootName, steps))
    }

    @inline(__always) private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }

    private static func parseSelector(_ raw: Slice<UnsafeBufferPointer<UInt8>>) -> Result<Step, PathError> {
        var selector = raw
        while let first = selector.first, isSpace(first) { selector = selector.dropFirst() }
        while let last = selector.last, isSpace(last) { selector = selector.dropLast() }
        let text = String(decoding: selector, as: UTF8.self)
        if text == "*" { return .success(.all) }
        if selector.first == UInt8(ascii: "#") {
            guard let n = Int(String(decoding: selector.dropFirst(), as: UTF8.self)), n >= 0 else {
                return .failure(PathError("'[\(text)]' needs a non-negative index after '#'"))
            }
            return .success(.index(n))
        }
        if let equals = selector.firstIndex(of: UInt8(ascii: "=")) {
            let key = String(decoding: selector[selector.startIndex..<equals], as: UTF8.self)
            let firstOnly = equals + 1 < selector.endIndex && selector[equals + 1] == UInt8(ascii: "=")
            let value = String(decoding: selector[(equals + (firstOnly ? 2 : 1))...], as: UTF8.self)
            return .success(.filter(key: key, value: value, firstOnly: firstOnly))
        }
        guard !selector.isEmpty else { return .failure(PathError("empty '[]' in a path")) }
        return .success(.named(text))
    }

    // MARK: Reading

    /// The value at this path from `scope` (null wherever the walk finds nothing).
    @inline(__always)
    func read(_ e: Evaluation, _ scope: Scope) -> Value {
        // Two calls, not `(fromHost ? e.host : scope).lookup(root)`: the chosen scope would be
        // retained and released around every variable reference.
        guard let value = fromHost ? e.host.lookup(root) : scope.lookup(root) else { return .null }
        if let onlyKey { return Path.member(value, onlyKey) }
        if steps.isEmpty { return value }
        return Path.walk(value, steps[...])
    }

    /// Follows `steps` from `value`.
    static func walk(_ value: Value, _ steps: ArraySlice<Step>) -> Value {
        var current = value
        var index = steps.startIndex
        while index < steps.endIndex {
            switch steps[index] {
            case .key(let key): current = member(current, key)
            case .index(let n):
                guard case .list(let list) = current, n < list.items.count else { return .null }
                current = list.items[n]
            case .named(let token): current = named(current, token)
            case .filter(let key, let wanted, let firstOnly):
                guard case .list(let list) = current else { return .null }
                let matches = list.items.filter { member($0, key).strictlyEquals(.string(wanted)) }
                if firstOnly {
                    guard let first = matches.first else { return .null }
                    current = first
                } else {
                    return mapRest(matches, steps[(index + 1)...])
                }
            case .all:
                guard case .list(let list) = current else { return .null }
                return mapRest(list.items, steps[(index + 1)...])
            }
            index += 1
        }
        return current
    }

    private static func mapRest(_ items: [Value], _ rest: ArraySlice<Step>) -> Value {
        if rest.isEmpty { return .list(items) }
        return .list(items.map { walk($0, rest) }.filter { !$0.isNull })
    }

    /// `value.key`: a map entry or a host object property.
    static func member(_ value: Value, _ key: String) -> Value {
        switch value {
        case .map(let map): map[key] ?? .null
        case .object(let object): object.property(key) ?? .null
        default: .null
        }
    }

    /// `value[token]`: the list element whose `name` is the token (or a map's entry).
    static func named(_ value: Value, _ token: String) -> Value {
        switch value {
        case .list(let list): list.items.first { JavaString.equals(member($0, "name").stringValue, token) } ?? .null
        case .map(let map): map[token] ?? .null
        default: .null
        }
    }

    // MARK: Writing

    /// Assigns `newValue` at this path (`set`): to the nearest visible binding of the root, else a
    /// new binding in the rule's top scope; inner steps create maps on the way.
    func write(_ newValue: Value, _ e: Evaluation, _ scope: Scope) throws(PathError) {
        let start = fromHost ? e.host : scope
        let found = start.find(root)
        if steps.isEmpty {
            if let (holder, slot) = found { holder.set(at: slot, newValue) } else { (fromHost ? e.host : e.ruleScope).bind(root, newValue) }
            return
        }
        if let (holder, slot) = found, !holder.value(at: slot).isNull {
            var container = holder.value(at: slot)
            try Path.assign(newValue, into: &container, steps[...], path: text)
            return
        }
        // An unbound or null root becomes a new map, bound only once the assignment succeeded.
        var container = Value.map(MapBox())
        try Path.assign(newValue, into: &container, steps[...], path: text)
        if let (holder, slot) = found { holder.set(at: slot, container) } else { (fromHost ? e.host : e.ruleScope).bind(root, container) }
    }

    private static func assign(_ newValue: Value, into container: inout Value, _ steps: ArraySlice<Step>, path: String) throws(PathError) {
        let step = steps.first!
        let rest = steps.dropFirst()
        func descend(_ child: inout Value) throws(PathError) {
            if rest.isEmpty { child = newValue } else { try assign(newValue, into: &child, rest, path: path) }
        }
        switch (step, container) {
        case (.key(let key), .map(let map)):
            var child = map[key] ?? .null
            if !rest.isEmpty, child.isNull { child = .map(MapBox()) }
            try descend(&child)
            map[key] = child
        case (.key(let key), .object(let object)):
            var child = object.property(key) ?? .null
            if !rest.isEmpty, child.isNull { child = .map(MapBox()) }
            try descend(&child)
            guard object.setProperty(key, child) else {
                throw PathError("cannot set '\(key)' in '\(path)': \(object.className) has no such property")
            }
        case (.index(let n), .list(let list)):
            guard n < list.items.count else { throw PathError("cannot set '\(path)': the list has no element #\(n)") }
            try descend(&list.items[n])
        case (.named(let token), .list(let list)):
            guard let position = list.items.firstIndex(where: { JavaString.equals(member($0, "name").stringValue, token) }) else {
                throw PathError("cannot set '\(path)': no element named '\(token)'")
            }
            try descend(&list.items[position])
        case (.named(let token), .map(let map)):
            var child = map[token] ?? .null
            try descend(&child)
            map[token] = child
        case (.filter(let key, let wanted, let firstOnly), .list(let list)):
            let positions = list.items.indices.filter { member(list.items[$0], key).strictlyEquals(.string(wanted)) }
            if firstOnly && positions.isEmpty { throw PathError("cannot set '\(path)': no element with \(key)==\(wanted)") }
            for position in firstOnly ? [positions[0]] : positions { try descend(&list.items[position]) }
        case (.all, .list(let list)):
            for position in list.items.indices { try descend(&list.items[position]) }
        default:
            throw PathError("cannot set '\(path)': a \(container.kindName) cannot be walked into there")
        }
    }
}

/// Why a path could not be parsed or assigned.
struct PathError: Error, Sendable {
    let message: String
    init(_ message: String) { self.message = message }
}
