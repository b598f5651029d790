import Foundation
import XMLSource

/// Stable ids of the problems the language front end reports at load time. `rulecheck` uses
/// the same ids (see `../shared/spec/RULECHECK.md`).
public enum XPRESSDiagnosticID {
    public static let unknownElement = "XP0101"
    public static let wrongArgumentCount = "XP0102"
    public static let missingAttribute = "XP0103"
    public static let badLiteral = "XP0104"
    /// A `break name=` with no enclosing block of that name, or a malformed path.
    public static let badReference = "XP0105"
    public static let unknownRule = "XP0202"
    public static let duplicateRule = "XP0204"
    public static let forbiddenClass = "XP0401"
    public static let unknownMethod = "XP0402"
}

/// Turns XML elements into compiled nodes, once, reporting every structural problem with its
/// position instead of stopping at the first. The result never fails at run time for a reason
/// that could be seen at load time.
struct Lowering {
    let file: String
    private(set) var diagnostics: [Diagnostic] = []
    /// Literal rule names called (`<rule name='X'>`), checked once all files are loaded.
    private(set) var ruleReferences: [(name: String, location: SourcePosition)] = []
    /// The first element lowered since `rule(_:library:)` began (it clears this) whose
    /// evaluation may differ from one call to the next with the same arguments, or leave
    /// something behind (see `Rule.unrepeatableElement`).
    var unrepeatableElement: Rule.Unrepeatable?

    /// Whether each open scope-making construct received a declaration (innermost last).
    private var declaresInto: [Bool] = [false]
    /// Whether each open scope-making construct contains a `defun`.
    private var definesFunction: [Bool] = [false]
    /// Names of enclosing blocks, for `break name=`.
    private var blockLabels: [String] = []

    init(file: String) { self.file = file }

    // MARK: Diagnostics

    mutating func report(_ id: String, _ message: String, at element: XMLElement) {
        diagnostics.append(Diagnostic(id: id, message: message, location: element.location))
    }

    func placeholder(_ element: XMLElement) -> Node { ConstantNode(element.name, element.location, .null) }

    /// Notes `element` as one whose result or effect a repeated call cannot be trusted to repeat.
    private mutating func noteUnrepeatable(_ element: XMLElement, _ why: String) {
        if unrepeatableElement == nil { unrepeatableElement = Rule.Unrepeatable(element: element.name, why: why, location: element.location) }
    }

    /// Checks the element count of `element` against `range`; false (reported) when outside it.
    mutating func checkCount(_ element: XMLElement, _ count: Int, _ range: ClosedRange<Int>) -> Bool {
        if range.contains(count) { return true }
        let expected = range.lowerBound == range.upperBound ? "exactly \(range.lowerBound)"
            : range.upperBound == Int.max ? "at least \(range.lowerBound)" : "\(range.lowerBound) to \(range.upperBound)"
        report(XPRESSDiagnosticID.wrongArgumentCount,
               "<\(element.name)> takes \(expected) argument\(range.upperBound == 1 ? "" : "s"), found \(count)", at: element)
        return false
    }

    mutating func requiredAttribute(_ element: XMLElement, _ name: String) -> String? {
        if let value = element.attribute(name), !value.isEmpty { return value }
        report(XPRESSDiagnosticID.missingAttribute, "<\(element.name)> needs the attribute '\(name)'", at: element)
        return nil
    }

    // MARK: Expressions

    /// Lowers the argument elements of `element` (comments and white space are skipped).
    private mutating func arguments(_ element: XMLElement) -> [Node] {
        element.elements.map { expression($0) }
    }

    /// Lowers one element in expression position.
    mutating func expression(_ element: XMLElement) -> Node {
        let name = element.name
        switch Catalogue.kinds[name] {
        case .builtin(let builtin)?:
            let args = arguments(element)
            guard checkCount(element, args.count, builtin.arity) else { return placeholder(element) }
            switch builtin.form {
            case .unary(let implementation): return UnaryBuiltinNode(name, element.location, args[0], implementation)
            case .values(let implementation): return BuiltinNode(name, element.location, args, implementation)
            }
        case .listEdit(let edit)?: return listEdit(element, edit)
        case .xmlObject?: return xmlObject(element)
        case .specialForm?, nil: break
        }
        // Cases are compared in order, one call into the runtime each: the most common first.
        switch name {
        case "ref": return ref(element)
        case "s": return ConstantNode(name, element.location, .string(element.text))
        case "i":
            let text = element.text
            guard let n = Int64(text) else {
                report(XPRESSDiagnosticID.badLiteral, "<i> holds '\(text)', which is not a 64-bit integer (no spaces allowed)", at: element)
                return placeholder(element)
            }
            return ConstantNode(name, element.location, .int(n))
        case "list", "array":
            let keepNulls = name == "array"
            return BuiltinNode(name, element.location, arguments(element)) { _, _, values in
                .list(keepNulls || !values.contains(where: { $0.isNull }) ? values : values.filter { !$0.isNull })
            }
        case "map":
            let args = arguments(element)
            guard args.count % 2 == 0 else {
                report(XPRESSDiagnosticID.badLiteral, "<map> needs key/value pairs, found an odd number (\(args.count)) of children", at: element)
                return placeholder(element)
            }
            return BuiltinNode(name, element.location, args) { _, _, values in
                let map = MapBox()
                for index in stride(from: 0, to: values.count, by: 2) where !values[index].isNull {
                    map[values[index].stringValue] = values[index + 1]
                }
                return .map(map)
            }
        case "and": return AndNode(element.location, arguments(element))
        case "or": return OrNode(element.location, arguments(element))
        case "substr": return substr(element)
        case "message":
            guard let key = requiredAttribute(element, "name") else { return placeholder(element) }
            return BuiltinNode(name, element.location, arguments(element), Functions.message(name: key))
        case "index":
            let args = arguments(element)
            guard let text = requiredAttribute(element, "i"), checkCount(element, args.count, 1...1) else { return placeholder(element) }
            guard let position = Int(text) else {
                report(XPRESSDiagnosticID.badLiteral, "<index i='\(text)'>: 'i' must be an integer", at: element)
                return placeholder(element)
            }
            return BuiltinNode(name, element.location, args, Functions.index(position))
        case "expand":
            let args = arguments(element)
            guard checkCount(element, args.count, 1...1) else { return placeholder(element) }
            return ExpandNode(element.location, args[0])
        case "block": return block(element)
        case "cond":
            let args = arguments(element)
            guard checkCount(element, args.count, 2...3) else { return placeholder(element) }
            return CondNode(element.location, args[0], args[1], args.count > 2 ? args[2] : nil)
        case "if": return ifNode(element)
        case "switch": return switchNode(element)
        case "select": return SelectNode(element.location, arguments(element))
        case "dolist": return dolist(element)
        case "while":
            let args = arguments(element)
            guard checkCount(element, args.count, 1...Int.max) else { return placeholder(element) }
            return WhileNode(element.location, test: args[0], body: Array(args.dropFirst()))
        case "break": return breakNode(element)
        case "defvar":
            let args = arguments(element)
            guard let variable = requiredAttribute(element, "name"), checkCount(element, args.count, 0...1) else { return placeholder(element) }
            declaresInto[declaresInto.count - 1] = true
            return DefvarNode(element.location, Symbol(variable), args.first)
        case "set", "setvar": return set(element)
        case "defun": return defun(element)
        case "call":
            guard let function = requiredAttribute(element, "name") else { return placeholder(element) }
            return CallNode(element.location, name: Symbol(function), arguments: arguments(element))
        case "rule": return ruleCall(element)
        case "instanceof":
            let args = arguments(element)
            guard let type = requiredAttribute(element, "name"), checkCount(element, args.count, 1...1) else { return placeholder(element) }
            return InstanceofNode(element.location, typeName: type, value: args[0])
        case "new": return newNode(element)
        case "invoke": return invoke(element)
        case "script":
            noteUnrepeatable(element, "JavaScript may read the clock or random numbers")
            return ScriptNode(element.location, source: element.text, firstLine: element.contentLine)
        case "print", "trace", "breakpoint":
            noteUnrepeatable(element, "it writes to the log")
            let args = arguments(element)
            if name == "trace" && !checkCount(element, args.count, 0...1) { return placeholder(element) }
            return DebugNode(name, element.location, args)
        case "expression":
            let args = arguments(element)
            guard checkCount(element, args.count, 1...1) else { return placeholder(element) }
            return args[0]
        case "then", "else", "case", "argument", "defarg":
            report(XPRESSDiagnosticID.unknownElement, "<\(name)> may only appear inside <\(Catalogue.parentOf[name] ?? "?")>", at: element)
            return placeholder(element)
        default:
            report(XPRESSDiagnosticID.unknownElement, "unknown element <\(element.qualifiedName)>: it is neither an XPRESS function nor an XML object", at: element)
            return placeholder(element)
        }
    }

    private mutating func substr(_ element: XMLElement) -> Node {
        let args = arguments(element)
        let start = element.attribute("s"), length = element.attribute("l")
        if start == nil && length == nil {
            guard checkCount(element, args.count, 1...3) else { return placeholder(element) }
            return BuiltinNode("substr", element.location, args, Functions.substr)
        }
        guard checkCount(element, args.count, 1...1) else { return placeholder(element) }
        var bounds: [Node] = []
        for (attribute, text, fallback) in [("s", start, "0"), ("l", length, nil)] {
            guard let text = text ?? fallback else { continue }
            guard let n = Int64(text) else {
                report(XPRESSDiagnosticID.badLiteral, "<substr \(attribute)='\(text)'>: must be an integer", at: element)
                return placeholder(element)
            }
            bounds.append(ConstantNode("i", element.location, .int(n)))
        }
        return BuiltinNode("substr", element.location, args + bounds, Functions.substr)
    }

    private mutating func listEdit(_ element: XMLElement, _ edit: @escaping Functions.ListEdit) -> Node {
        let args = arguments(element)
        let variable = element.attribute("name")
        let named: ClosedRange<Int>, copy: ClosedRange<Int>
        switch element.name {
        case "removeAll", "retainAll": (named, copy) = (1...1, 2...2)
        case "insert": (named, copy) = (1...2, 2...3)
        case "filterdup", "filternull": (named, copy) = (0...0, 1...1)
        default: (named, copy) = (0...Int.max, 1...Int.max)
        }
        guard checkCount(element, args.count, variable == nil ? copy : named) else { return placeholder(element) }
        guard let variable else { return ListEditNode(element.name, element.location, variable: nil, arguments: args, edit: edit) }
        guard let path = parsePath(variable, at: element) else { return placeholder(element) }
        return ListEditNode(element.name, element.location, variable: path, arguments: args, edit: edit)
    }

    // MARK: Control

    /// Lowers `body` as the content of a scope-making construct; reports whether anything
    /// declared into that scope and whether it defines functions.
    mutating func inScope<T>(_ body: (inout Lowering) -> T) -> (T, declares: Bool, defines: Bool) {
        declaresInto.append(false)
        definesFunction.append(false)
        let result = body(&self)
        let declares = declaresInto.removeLast(), defines = definesFunction.removeLast()
        return (result, declares, defines)
    }

    private mutating func block(_ element: XMLElement) -> Node {
        let label = element.attribute("name")
        if let label { blockLabels.append(label) }
        let (children, declares, _) = inScope { $0.arguments(element) }
        if label != nil { blockLabels.removeLast() }
        let trace = element.attribute("trace").map { $0.lowercased() == "true" } ?? false
        return BlockNode(element.location, children: children, label: label, opensScope: declares, trace: trace)
    }

    private mutating func ifNode(_ element: XMLElement) -> Node {
        let parts = element.elements
        guard checkCount(element, parts.count, 2...3) else { return placeholder(element) }
        let test = expression(parts[0])
        var branches: [String: Branch] = [:]
        for part in parts.dropFirst() {
            guard part.name == "then" || part.name == "else", branches[part.name] == nil else {
                report(XPRESSDiagnosticID.unknownElement, "<if> takes a test, then <then> and optionally <else>; found <\(part.name)>", at: part)
                continue
            }
            let (children, declares, _) = inScope { $0.arguments(part) }
            branches[part.name] = Branch(children: children, opensScope: declares)
        }
        return IfNode(element.location, test, branches["then"], branches["else"])
    }

    private mutating func switchNode(_ element: XMLElement) -> Node {
        let parts = element.elements
        guard checkCount(element, parts.count, 1...Int.max) else { return placeholder(element) }
        let subject = expression(parts[0])
        var cases: [SwitchNode.Case] = []
        var fallback: Node?
        var hasDefault = false
        for part in parts.dropFirst() {
            guard part.name == "case" else {
                report(XPRESSDiagnosticID.unknownElement, "<switch> takes a value followed by <case> elements; found <\(part.name)>", at: part)
                continue
            }
            let args = arguments(part)
            if part.attribute("default")?.lowercased() == "true" {
                guard checkCount(part, args.count, 0...1) else { continue }
                if hasDefault { report(XPRESSDiagnosticID.wrongArgumentCount, "<switch> has more than one default <case>", at: part) }
                hasDefault = true
                fallback = args.first
            } else {
                guard checkCount(part, args.count, 1...2) else { continue }
                cases.append(.init(match: args[0], result: args.count > 1 ? args[1] : nil, location: part.location))
            }
        }
        return SwitchNode(element.location, subject: subject, cases: cases, fallback: fallback, hasDefault: hasDefault)
    }

    private mutating func dolist(_ element: XMLElement) -> Node {
        let parts = element.elements
        let variable = requiredAttribute(element, "name")
        guard checkCount(element, parts.count, 1...Int.max) else { return placeholder(element) }
        let list = expression(parts[0])
        let (body, _, defines) = inScope { lowering in parts.dropFirst().map { lowering.expression($0) } }
        guard let variable else { return placeholder(element) }
        return DolistNode(element.location, variable: Symbol(variable), list: list, body: body, freshScopePerPass: defines)
    }

    private mutating func breakNode(_ element: XMLElement) -> Node {
        let args = arguments(element)
        guard checkCount(element, args.count, 0...1) else { return placeholder(element) }
        let label = element.attribute("name")
        if let label, !blockLabels.contains(label) {
            report(XPRESSDiagnosticID.badReference, "<break name='\(label)'> has no enclosing <block name='\(label)'>", at: element)
        }
        return BreakNode(element.location, label: label, value: args.first)
    }

    // MARK: Variables and calls

    private mutating func parsePath(_ text: String, at element: XMLElement) -> Path? {
        switch Path.parse(text) {
        case .success(let path): return path
        case .failure(let error):
            report(XPRESSDiagnosticID.badReference, "bad path '\(text)': \(error.message)", at: element)
            return nil
        }
    }

    /// A literal path, or a dynamic one when it holds `$(...)`.
    private mutating func pathTarget(_ text: String, at element: XMLElement) -> SetNode.Target? {
        switch Template.parse(text) {
        case .success(let template)?: return .dynamic(DynamicPath(source: .template(template)))
        case .failure(let error)?:
            report(XPRESSDiagnosticID.badReference, "bad path '\(text)': \(error.message)", at: element)
            return nil
        case nil: return parsePath(text, at: element).map { .literal($0) }
        }
    }

    private mutating func ref(_ element: XMLElement) -> Node {
        let children = element.elements
        if !children.isEmpty {
            guard checkCount(element, children.count, 1...1) else { return placeholder(element) }
            return DynamicRefNode(element.location, DynamicPath(source: .computed(expression(children[0]))))
        }
        let text = element.text.trimmingXMLWhitespace
        guard !text.isEmpty else {
            report(XPRESSDiagnosticID.wrongArgumentCount, "<ref> needs a path or one child computing it", at: element)
            return placeholder(element)
        }
        switch pathTarget(text, at: element) {
        case .literal(let path)?: return RefNode(element.location, path)
        case .dynamic(let dynamic)?: return DynamicRefNode(element.location, dynamic)
        case nil: return placeholder(element)
        }
    }

    private mutating func set(_ element: XMLElement) -> Node {
        let args = arguments(element)
        if let name = element.attribute("name") {
            guard checkCount(element, args.count, 0...1), let target = pathTarget(name, at: element) else { return placeholder(element) }
            return SetNode(element.name, element.location, target, args.first)
        }
        if args.count == 3 {
            // Waveset's three-child form: (map or object, key, value), as <putmap>.
            return BuiltinNode(element.name, element.location, args, Functions.putmap)
        }
        guard element.name == "setvar" || args.count == 2 else {
            report(XPRESSDiagnosticID.missingAttribute,
                   "<\(element.name)> needs the attribute 'name' (or children: name and value, or map, key and value)", at: element)
            return placeholder(element)
        }
        guard checkCount(element, args.count, 2...2) else { return placeholder(element) }
        return SetNode(element.name, element.location, .dynamic(DynamicPath(source: .computed(args[0]))), args[1])
    }

    private mutating func defun(_ element: XMLElement) -> Node {
        let name = requiredAttribute(element, "name")
        declaresInto[declaresInto.count - 1] = true
        definesFunction[definesFunction.count - 1] = true
        var parameters: [Symbol] = []
        var bodyElements: [XMLElement] = []
        for child in element.elements {
            if child.name == "defarg" {
                if let parameter = requiredAttribute(child, "name") { parameters.append(Symbol(parameter)) }
            } else {
                bodyElements.append(child)
            }
        }
        let outerLabels = blockLabels
        blockLabels = []  // a break never crosses a call
        let (body, _, _) = inScope { lowering in bodyElements.map { lowering.expression($0) } }
        blockLabels = outerLabels
        guard let name else { return placeholder(element) }
        return DefunNode(element.location, name: Symbol(name), parameters: parameters, body: body)
    }

    private mutating func ruleCall(_ element: XMLElement) -> Node {
        var arguments: [(Symbol, ArgumentSource)] = []
        var nameNodes: [Node] = []
        for child in element.elements {
            guard child.name == "argument" else { nameNodes.append(expression(child)); continue }
            guard let argumentName = requiredAttribute(child, "name") else { continue }
            let values = child.elements
            if let literal = child.attribute("value") {
                if !values.isEmpty { report(XPRESSDiagnosticID.wrongArgumentCount, "<argument> has both a 'value' and a child; use one", at: child) }
                arguments.append((Symbol(argumentName), argumentValue(literal, at: child)))
            } else {
                guard checkCount(child, values.count, 0...1) else { continue }
                // <argument name='x'/> passes null explicitly.
                arguments.append((Symbol(argumentName), .expression(values.first.map { expression($0) }
                                                                    ?? ConstantNode("argument", child.location, .null))))
            }
        }
        if let literal = element.attribute("name") {
            if !nameNodes.isEmpty { report(XPRESSDiagnosticID.wrongArgumentCount, "<rule name='\(literal)'> takes only <argument> children", at: element) }
            ruleReferences.append((literal, element.location))
            return RuleCallNode(element.location, name: .literal(literal), arguments: arguments)
        }
        guard nameNodes.count == 1 else {
            report(XPRESSDiagnosticID.missingAttribute, "<rule> needs the attribute 'name' or one child computing the name", at: element)
            return placeholder(element)
        }
        noteUnrepeatable(element, "the rule it calls is known only when it runs")
        return RuleCallNode(element.location, name: .computed(nameNodes[0]), arguments: arguments)
    }

    /// `value='$(path)'` (the whole value) is a reference; anything else is a literal string.
    private mutating func argumentValue(_ text: String, at element: XMLElement) -> ArgumentSource {
        guard text.hasPrefix("$("), text.hasSuffix(")") else { return .literal(text) }
        switch Template.parse(text) {
        case .success(let template)?:
            guard template.pieces.count == 1 else { return .literal(text) }
            switch template.pieces[0] {
            case .path(let path): return .reference(path)
            case .nested(let inner): return .dynamicReference(inner)
            case .text: return .literal(text)
            }
        case .failure(let error)?:
            report(XPRESSDiagnosticID.badReference, "bad reference '\(text)': \(error.message)", at: element)
            return .literal(text)
        case nil:
            return .literal(text)
        }
    }

    // MARK: Host classes

    private mutating func newNode(_ element: XMLElement) -> Node {
        let args = arguments(element)
        guard let className = element.attribute("class") else {
            // No literal class: the first child computes the class name, checked at run time.
            guard checkCount(element, args.count, 1...Int.max) else { return placeholder(element) }
            noteUnrepeatable(element, "the class it makes is known only when it runs")
            return NewNode(element.location, className: .computed(args[0]), arguments: Array(args.dropFirst()))
        }
        guard let hostClass = HostClass(named: className) else {
            report(XPRESSDiagnosticID.forbiddenClass, "class '\(className)' is not available to rules; the registry holds \(HostClass.allCases.map(\.rawValue).joined(separator: ", "))", at: element)
            return placeholder(element)
        }
        if hostClass == .date && args.isEmpty { noteUnrepeatable(element, "it reads the clock") }
        return NewNode(element.location, className: .known(hostClass), arguments: args)
    }

    private mutating func invoke(_ element: XMLElement) -> Node {
        let args = arguments(element)
        guard let method = requiredAttribute(element, "name") else { return placeholder(element) }
        if let className = element.attribute("class") {
            guard let hostClass = HostClass(named: className) else {
                report(XPRESSDiagnosticID.forbiddenClass, "class '\(className)' is not available to rules; the registry holds \(HostClass.allCases.map(\.rawValue).joined(separator: ", "))", at: element)
                return placeholder(element)
            }
            guard hostClass.staticMethods.contains(method) else {
                report(XPRESSDiagnosticID.unknownMethod, "\(hostClass.rawValue) has no static method '\(method)'", at: element)
                return placeholder(element)
            }
            return InvokeNode(element.location, staticClass: hostClass, method: method, target: nil, arguments: args)
        }
        guard checkCount(element, args.count, 1...Int.max) else { return placeholder(element) }
        if let targetClass = staticClass(of: args[0]) {
            guard targetClass.instanceMethods.contains(method) else {
                report(XPRESSDiagnosticID.unknownMethod, "\(targetClass.rawValue) has no method '\(method)'", at: element)
                return placeholder(element)
            }
        } else if !HostClass.anyClassHasMethod(method) {
            report(XPRESSDiagnosticID.unknownMethod, "no class available to rules has a method '\(method)'", at: element)
            return placeholder(element)
        }
        return InvokeNode(element.location, staticClass: nil, method: method, target: args[0], arguments: Array(args.dropFirst()))
    }

    /// The class of a target whose class is known without running it.
    private func staticClass(of node: Node) -> HostClass? {
        if let new = node as? NewNode, case .known(let c) = new.className { return c }
        if let constant = node as? ConstantNode { return HostClass.of(constant.value) }
        if let literal = node as? LiteralNode {
            switch literal.literal {
            case .list: return .arrayList
            case .map: return .hashMap
            case .date: return .date
            default: return nil
            }
        }
        return nil
    }

    // MARK: XML objects

    /// An XML object in expression position: evaluates to itself.
    private mutating func xmlObject(_ element: XMLElement) -> Node {
        guard let literal = literal(element) else { return placeholder(element) }
        if case .scalar(let scalar) = literal {
            let value: Value
            switch scalar {
            case .null: value = .null
            case .int(let n): value = .int(n)
            case .string(let s): value = .string(s)
            case .bool(let b): value = .bool(b)
            }
            return ConstantNode(element.name, element.location, value)
        }
        return LiteralNode(element.name, element.location, literal)
    }

    private mutating func literal(_ element: XMLElement) -> Literal? {
        switch element.name {
        case "String": return .scalar(.string(element.text))
        case "Integer", "Long":
            let text = element.text.trimmingXMLWhitespace
            guard let n = Int64(text) else {
                report(XPRESSDiagnosticID.badLiteral, "<\(element.name)> holds '\(text)', which is not a 64-bit integer", at: element)
                return nil
            }
            return .scalar(.int(n))
        case "Boolean":
            let text = element.text.trimmingXMLWhitespace.lowercased()
            guard text == "true" || text == "false" else {
                report(XPRESSDiagnosticID.badLiteral, "<Boolean> holds '\(text)'; use true or false", at: element)
                return nil
            }
            return .scalar(.bool(text == "true"))
        case "null": return .scalar(.null)
        case "Date":
            let text = element.text
            guard CivilTime.parse(text, zone: .gmt) != nil else {
                report(XPRESSDiagnosticID.badLiteral, "<Date> holds '\(text)'; write ISO-8601 (2026-11-21T02:00:00Z) or yyyyMMdd HH:mm:ss", at: element)
                return nil
            }
            return .date(text)
        case "List":
            return .list(element.elements.compactMap { literal($0) })
        case "Map":
            var entries: [(String, Literal)] = []
            for entry in element.elements {
                guard entry.name == "MapEntry" else {
                    report(XPRESSDiagnosticID.unknownElement, "<Map> holds only <MapEntry> elements; found <\(entry.name)>", at: entry)
                    continue
                }
                var key = entry.attribute("key")
                var value: Literal? = entry.attribute("value").map { .scalar(.string($0)) }
                for part in entry.elements {
                    switch part.name {
                    case "MapKey": key = part.elements.first.flatMap { literal($0) }.flatMap(\.keyText) ?? part.text
                    case "MapValue": value = part.elements.first.flatMap { literal($0) }
                    default: value = literal(part)
                    }
                }
                guard let key else {
                    report(XPRESSDiagnosticID.missingAttribute, "<MapEntry> needs the attribute 'key'", at: entry)
                    continue
                }
                entries.append((key, value ?? .scalar(.null)))
            }
            return .map(entries)
        case "AttributeCondition":
            let operand: Literal = element.attribute("operand").map { .scalar(.string($0)) }
                ?? element.elements.first.flatMap { literal($0) } ?? .scalar(.null)
            return .condition(.scalar(element.attribute("attrName").map { .string($0) } ?? .null),
                              .scalar(element.attribute("operator").map { .string($0) } ?? .null), operand)
        case "WSAttribute":
            let value: Literal = element.attribute("value").map { .scalar(.string($0)) }
                ?? element.elements.first.flatMap { literal($0) } ?? .scalar(.null)
            return .attribute(.scalar(element.attribute("name").map { .string($0) } ?? .null), value)
        case "o":
            let children = element.elements
            guard checkCount(element, children.count, 1...1) else { return nil }
            return literal(children[0])
        default:
            if Catalogue.isExpressionElement(element.name) {
                report(XPRESSDiagnosticID.unknownElement, "XPRESS <\(element.name)> may not appear inside an XML object", at: element)
                return nil
            }
            // An object the project does not model (ObjectRef, Object, ...): kept as a map of
            // its attributes, so that configuration data loads.
            return .map(element.attributes.map { ($0.name, .scalar(.string($0.value))) })
        }
    }
}

private extension Literal {
    var keyText: String? {
        if case .scalar(let s) = self {
            switch s {
            case .string(let t): return t
            case .int(let n): return String(n)
            case .bool(let b): return String(b)
            case .null: return nil
            }
        }
        return nil
    }
}

/// What the language knows about element names.
enum Catalogue {
    struct Builtin: Sendable {
        enum Form: Sendable {
            /// A function of the argument values.
            case values(BuiltinNode.Implementation)
            /// A function of one value that cannot fail, evaluated without an argument array.
            case unary(UnaryBuiltinNode.Implementation)
        }
        let arity: ClosedRange<Int>
        let form: Form

        init(arity: ClosedRange<Int>, implementation: @escaping BuiltinNode.Implementation) {
            self.arity = arity
            self.form = .values(implementation)
        }

        init(unary: @escaping UnaryBuiltinNode.Implementation) {
            self.arity = 1...1
            self.form = .unary(unary)
        }
    }

    static let any = 0...Int.max

    /// Functions of evaluated arguments with a fixed arity.
    static let builtins: [String: Builtin] = [
        "add": Builtin(arity: any, implementation: Functions.arithmetic("add")),
        "sub": Builtin(arity: any, implementation: Functions.arithmetic("sub")),
        "mult": Builtin(arity: any, implementation: Functions.arithmetic("mult")),
        "div": Builtin(arity: any, implementation: Functions.arithmetic("div")),
        "mod": Builtin(arity: any, implementation: Functions.arithmetic("mod")),
        "not": Builtin(unary: Functions.not),
        "eq": Builtin(arity: 2...Int.max, implementation: Functions.equality(negated: false)),
        "neq": Builtin(arity: 2...Int.max, implementation: Functions.equality(negated: true)),
        "gt": Builtin(arity: 2...2, implementation: Functions.comparison(>)),
        "gte": Builtin(arity: 2...2, implementation: Functions.comparison(>=)),
        "lt": Builtin(arity: 2...2, implementation: Functions.comparison(<)),
        "lte": Builtin(arity: 2...2, implementation: Functions.comparison(<=)),
        "cmp": Builtin(arity: 2...2, implementation: Functions.cmp(ignoringCase: false)),
        "ncmp": Builtin(arity: 2...2, implementation: Functions.cmp(ignoringCase: true)),
        "isnull": Builtin(unary: Functions.isnull),
        "notnull": Builtin(unary: Functions.notnull),
        "isTrue": Builtin(unary: Functions.isTrue),
        "isFalse": Builtin(unary: Functions.isFalse),
        "concat": Builtin(arity: any, implementation: Functions.concat),
        "upcase": Builtin(arity: 1...1, implementation: Functions.upcase),
        "downcase": Builtin(arity: 1...1, implementation: Functions.downcase),
        "trim": Builtin(arity: 1...1, implementation: Functions.trim(leading: true, trailing: true)),
        "ltrim": Builtin(arity: 1...1, implementation: Functions.trim(leading: true, trailing: false)),
        "rtrim": Builtin(arity: 1...1, implementation: Functions.trim(leading: false, trailing: true)),
        "ztrim": Builtin(arity: 1...1, implementation: Functions.ztrim),
        "pad": Builtin(arity: 2...3, implementation: Functions.pad),
        "length": Builtin(arity: 1...1, implementation: Functions.length),
        "indexOf": Builtin(arity: 2...3, implementation: Functions.indexOf),
        "split": Builtin(arity: 2...2, implementation: Functions.split),
        "join": Builtin(arity: 1...2, implementation: Functions.join),
        "match": Builtin(arity: 2...2, implementation: Functions.contains),
        "contains": Builtin(arity: 2...2, implementation: Functions.contains),
        "containsAll": Builtin(arity: 2...2, implementation: Functions.containsAll),
        "containsAny": Builtin(arity: 2...2, implementation: Functions.containsAny),
        "get": Builtin(arity: 2...2, implementation: Functions.get),
        "setlist": Builtin(arity: 3...3, implementation: Functions.setlist),
        "putmap": Builtin(arity: 3...3, implementation: Functions.putmap),
        "lconcat": Builtin(arity: any, implementation: Functions.lconcat),
        "null": Builtin(arity: 0...0, implementation: { _, _, _ in .null }),
    ]

    /// Elements lowered by hand in `Lowering.expression`.
    static let specialForms: Set<String> = [
        "s", "i", "list", "array", "map", "and", "or", "substr", "message", "index", "expand", "block", "cond", "if",
        "then", "else", "switch", "case", "select", "dolist", "while", "break", "ref", "defvar", "set", "setvar",
        "defun", "defarg", "call", "rule", "argument", "instanceof", "new", "invoke", "script", "print", "trace",
        "breakpoint",
    ]

    /// XML objects that may appear where an expression is expected.
    static let xmlObjects: Set<String> = [
        "String", "Integer", "Long", "Boolean", "List", "Map", "Date", "AttributeCondition", "WSAttribute", "o",
    ]

    /// Where the elements that only make sense inside another belong.
    static let parentOf = ["then": "if", "else": "if", "case": "switch", "argument": "rule", "defarg": "defun"]

    /// What an element name is to the lowering.
    enum ElementKind {
        case builtin(Builtin)
        case listEdit(Functions.ListEdit)
        case xmlObject
        case specialForm
    }

    /// The names of `builtins`, `Functions.listEdits`, `xmlObjects` and `specialForms` (no name
    /// is in two), so that each element is looked up once: loading thousands of files looks up
    /// every element's name.
    static let kinds: [String: ElementKind] = {
        var kinds: [String: ElementKind] = [:]
        for (name, builtin) in builtins { kinds[name] = .builtin(builtin) }
        for (name, edit) in Functions.listEdits { kinds[name] = .listEdit(edit) }
        for name in xmlObjects { kinds[name] = .xmlObject }
        for name in specialForms { kinds[name] = .specialForm }
        assert(kinds.count == builtins.count + Functions.listEdits.count + xmlObjects.count + specialForms.count,
               "an element name is in two of the catalogue's tables")
        return kinds
    }()

    /// True for every XPRESS function name (not XML objects, not wrappers).
    static func isExpressionElement(_ name: String) -> Bool {
        switch kinds[name] {
        case .builtin?, .listEdit?, .specialForm?: true
        case .xmlObject?, nil: false
        }
    }
}
