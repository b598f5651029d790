import Synchronization

/// An interned variable or function name. Names in rules are interned once, at load time, so
/// that evaluation compares integers instead of strings.
public struct Symbol: Hashable, Sendable {
    let id: Int32

    /// The symbol of `name`, interning it when new.
    public init(_ name: String) { self = SymbolTable.shared.intern(name) }

    fileprivate init(id: Int32) { self.id = id }

    /// The symbol of `name` if some rule or binding ever used it; nil means nothing can be
    /// bound under that name, so a lookup can stop at once.
    static func existing(_ name: String) -> Symbol? { SymbolTable.shared.existing(name) }

    public var name: String { SymbolTable.shared.name(of: self) }
}

/// The process-wide table behind `Symbol`. Interning takes a lock; it happens at load time and
/// for names computed at run time.
final class SymbolTable: Sendable {
    static let shared = SymbolTable()

    private struct Storage {
        var ids: [String: Int32] = [:]
        var names: [String] = []
    }

    private let storage = Mutex(Storage())

    func intern(_ name: String) -> Symbol {
        storage.withLock { storage in
            if let id = storage.ids[name] { return Symbol(id: id) }
            let id = Int32(storage.names.count)
            storage.ids[name] = id
            storage.names.append(name)
            return Symbol(id: id)
        }
    }

    func existing(_ name: String) -> Symbol? {
        storage.withLock { storage in storage.ids[name].map { Symbol(id: $0) } }
    }

    func name(of symbol: Symbol) -> String {
        storage.withLock { $0.names[Int(symbol.id)] }
    }
}

/// A function defined by `defun`, with the scope it was defined in (free names in its body
/// resolve there first).
final class FunctionValue {
    let definition: DefunNode
    let scope: Scope

    init(definition: DefunNode, scope: Scope) {
        self.definition = definition
        self.scope = scope
    }
}

/// One level of variable bindings: a block, a dolist pass, a function call or a rule call.
/// Scopes hold few names, so a linear search over interned symbols beats hashing. The first two
/// bindings live in the scope itself (most rule and function calls bind one or two names), so
/// making such a scope is one allocation; more go to an array.
final class Scope {
    private struct Binding {
        let symbol: Symbol
        var value: Value
    }

    let parent: Scope?
    // Read for every variable reference. Only ever accessed in place inside this class, never
    // across a call, so the run-time exclusivity check of a class's stored `var` is switched off.
    @exclusivity(unchecked) private var first: Binding?
    @exclusivity(unchecked) private var second: Binding?
    @exclusivity(unchecked) private var more: ContiguousArray<Binding> = []
    @exclusivity(unchecked) private var functions: [(Symbol, FunctionValue)] = []

    init(parent: Scope?) { self.parent = parent }

    /// Binds `symbol` in this scope (rebinding it when already bound here).
    func bind(_ symbol: Symbol, _ value: Value) {
        if let slot = slot(of: symbol) {
            set(at: slot, value)
        } else if first == nil {
            first = Binding(symbol: symbol, value: value)
        } else if second == nil {
            second = Binding(symbol: symbol, value: value)
        } else {
            more.append(Binding(symbol: symbol, value: value))
        }
    }

    /// Where this scope binds `symbol`: 0 and 1 are the inline bindings, 2... the array's.
    @inline(__always)
    private func slot(of symbol: Symbol) -> Int? {
        guard let first else { return nil }
        if first.symbol == symbol { return 0 }
        guard let second else { return nil }
        if second.symbol == symbol { return 1 }
        return more.withUnsafeBufferPointer { buffer in
            for index in buffer.indices where buffer[index].symbol == symbol { return index + 2 }
            return nil
        }
    }

    /// The scope along the chain that binds `symbol` and its slot, or nil.
    @inline(__always)
    func find(_ symbol: Symbol) -> (Scope, Int)? {
        var scope: Scope? = self
        while let current = scope {
            if let slot = current.slot(of: symbol) { return (current, slot) }
            scope = current.parent
        }
        return nil
    }

    /// The value bound to `symbol` in the nearest scope of the chain that binds it, or nil.
    @inline(__always)
    func lookup(_ symbol: Symbol) -> Value? {
        var scope = Unmanaged.passUnretained(self)
        while true {
            // A closure, not `.map($0.value(at:))`: a method reference captures (retains) the scope.
            if let value = scope._withUnsafeGuaranteedRef({ scope in scope.slot(of: symbol).map { scope.value(at: $0) } }) { return value }
            guard let parent = scope._withUnsafeGuaranteedRef({ $0.parent }) else { return nil }
            scope = Unmanaged.passUnretained(parent)
        }
    }

    func value(at slot: Int) -> Value {
        switch slot {
        case 0: first!.value
        case 1: second!.value
        default: more[slot - 2].value
        }
    }

    func set(at slot: Int, _ value: Value) {
        switch slot {
        case 0: first!.value = value
        case 1: second!.value = value
        default: more[slot - 2].value = value
        }
    }

    /// Removes every binding (a scope reused for the next pass of a loop).
    /// Cheap for a scope that bound little: emptying an empty array still costs a new buffer.
    func reset() {
        first = nil
        second = nil
        if !more.isEmpty { more.removeAll(keepingCapacity: true) }
        if !functions.isEmpty { functions.removeAll(keepingCapacity: true) }
    }

    func define(_ symbol: Symbol, _ function: FunctionValue) {
        if let index = functions.firstIndex(where: { $0.0 == symbol }) {
            functions[index].1 = function
        } else {
            functions.append((symbol, function))
        }
    }

    func findFunction(_ symbol: Symbol) -> FunctionValue? {
        var scope: Scope? = self
        while let current = scope {
            for (name, function) in current.functions where name == symbol { return function }
            scope = current.parent
        }
        return nil
    }
}
