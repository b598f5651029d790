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
/// Scopes hold few names, so a linear search over interned symbols beats hashing.
final class Scope {
    let parent: Scope?
    private(set) var symbols: ContiguousArray<Symbol> = []
    private(set) var values: ContiguousArray<Value> = []
    private var functions: [(Symbol, FunctionValue)] = []

    init(parent: Scope?) { self.parent = parent }

    /// Binds `symbol` in this scope (rebinding it when already bound here).
    func bind(_ symbol: Symbol, _ value: Value) {
        if let index = symbols.firstIndex(of: symbol) {
            values[index] = value
        } else {
            symbols.append(symbol)
            values.append(value)
        }
    }

    /// The scope along the chain that binds `symbol` and its slot, or nil.
    @inline(__always)
    func find(_ symbol: Symbol) -> (Scope, Int)? {
        var scope: Scope? = self
        while let current = scope {
            if let index = current.symbols.firstIndex(of: symbol) { return (current, index) }
            scope = current.parent
        }
        return nil
    }

    func value(at index: Int) -> Value { values[index] }
    func set(at index: Int, _ value: Value) { values[index] = value }

    /// Removes every binding (a scope reused for the next pass of a loop).
    func reset() {
        symbols.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
        functions.removeAll(keepingCapacity: true)
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
