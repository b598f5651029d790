import Foundation
import XMLSource
import XPRESS

/// The checks that need more than the loader: scopes (XP0201, XP0203, XP0205), subtype
/// contracts (XP0301, XP0302), scripts (XP0501), deprecated elements (XP0601) and constant
/// conditions (XP0602). Works on the loader's XML tree; never evaluates anything.
///
/// A document is analysed on its own, so that its tree can be freed right after; a call to a
/// function the document does not define is kept in `unresolvedCalls` and reported once every
/// linted file's functions are known (`UnresolvedCall.finding(knownFunctions:)`).
struct DocumentAnalysis {
    private(set) var findings: [Diagnostic] = []
    private(set) var unresolvedCalls: [UnresolvedCall] = []

    private mutating func add(_ id: String, _ message: String, at location: SourcePosition) {
        findings.append(LintCatalogue.finding(id, message, at: location))
    }

    /// Whether the document may hold a `defun`, and a `set`, `setvar` or `script`: where not,
    /// the walks looking for them are skipped.
    private var mayDefineFunctions = true
    private var maySetVariables = true

    /// Analyses every object of a document.
    mutating func analyse(_ root: XMLElement) {
        mayDefineFunctions = root.documentMayHaveElement(named: "defun")
        maySetVariables = ["set", "setvar", "script"].contains(where: root.documentMayHaveElement(named:))
        for object in RuleLoader.objects(in: root) { visitObject(object) }
    }

    private mutating func visitObject(_ element: XMLElement) {
        if element.name == "Rule" { analyseRule(element); return }
        for child in element.elements {
            if XPRESSLanguage.isFunction(child.name) {
                var walker = ScopeWalker(rule: nil, definedInRoot: defunNames(in: child))
                walker.walk(child)
                findings += walker.findings
                unresolvedCalls += walker.unresolvedCalls
            } else {
                visitObject(child)
            }
        }
    }

    // MARK: Rules

    private mutating func analyseRule(_ element: XMLElement) {
        let name = element.attribute("name") ?? "?"
        let subtype = element.attribute("subtype").flatMap { $0.isEmpty ? nil : $0 }
        let localScope = element.attribute("localScope")?.lowercased() == "true"
        var arguments: [(String, XMLElement)] = []
        var bodies: [XMLElement] = []
        for child in element.elements {
            switch child.name {
            case "Description", "Comments", "MemberObjectGroups", "Properties", "RuleAccess", "RunAsUser": continue
            case "RuleArgument": if let argument = child.attribute("name") { arguments.append((argument, child)) }
            default: bodies.append(child)
            }
        }
        var inputs: [String] = []
        if let subtype {
            if let provided = XPRESSLanguage.subtypeInputs[subtype] {
                inputs = provided
            } else {
                add("XP0302", "rule '\(name)' has subtype '\(subtype)', which the project does not know; known: \(XPRESSLanguage.subtypeInputs.keys.sorted().joined(separator: ", "))", at: element.location)
            }
        }
        let context = ScopeWalker.RuleContext(name: name, localScope: localScope,
                                              bound: Set(arguments.map(\.0) + inputs), setTargets: setTargets(in: element))
        var walker = ScopeWalker(rule: context, definedInRoot: defunNames(in: element))
        for argument in arguments.map(\.1) { for value in argument.elements { walker.walk(value) } }
        for body in bodies { walker.walk(body) }
        findings += walker.findings
        unresolvedCalls += walker.unresolvedCalls
        let read = walker.referenced

        for (argument, declaration) in arguments where !read.contains(argument) {
            add("XP0205", "RuleArgument '\(argument)' of rule '\(name)' is never referenced in its body", at: declaration.location)
        }
        checkContract(name: name, subtype: subtype, element: element, arguments: arguments.map(\.0), read: read, body: bodies.first)
    }

    private mutating func checkContract(name: String, subtype: String?, element: XMLElement, arguments: [String],
                                        read: Set<String>, body: XMLElement?) {
        guard let subtype, XPRESSLanguage.subtypeInputs[subtype] != nil else { return }
        let literal = body.map(unwrapped).flatMap { XPRESSLanguage.literalElements.contains($0.name) ? $0 : nil }
        switch subtype {
        case "SUBTYPE_TASKSCHEDULE_REPETITION_RULE":
            if !arguments.contains("calculatedNextDate") {
                add("XP0301", "repetition rule '\(name)' needs <RuleArgument name='calculatedNextDate'/>", at: element.location)
            }
            if let literal, literal.name != "Date" {
                add("XP0301", "repetition rule '\(name)' returns a literal <\(literal.name)>; it must return a date", at: literal.location)
            }
        case "SUBTYPE_ACCOUNT_CORRELATION_RULE":
            if !read.contains("account") {
                add("XP0301", "correlation rule '\(name)' never reads 'account', so it finds the same users for every account", at: element.location)
            }
            if let literal, ["i", "Integer", "Long", "Boolean", "Date"].contains(literal.name) {
                add("XP0301", "correlation rule '\(name)' returns a literal <\(literal.name)>; it must return user names, AttributeConditions or an attribute map", at: literal.location)
            }
        case "SUBTYPE_ACCOUNT_CONFIRMATION_RULE":
            if !read.contains("account") && !read.contains("userview") {
                add("XP0301", "confirmation rule '\(name)' reads neither 'account' nor 'userview', so its verdict is the same for every candidate", at: element.location)
            }
            if let literal, ["List", "Map", "Date", "AttributeCondition"].contains(literal.name) {
                add("XP0301", "confirmation rule '\(name)' returns a literal <\(literal.name)>; it must return true or false", at: literal.location)
            }
        default: break
        }
    }

    private func unwrapped(_ element: XMLElement) -> XMLElement {
        element.name == "expression" ? (element.elements.first.map(unwrapped) ?? element) : element
    }

    /// Every `set`/`setvar` target root in the object: `set` binds in the rule's top scope, so
    /// a set anywhere makes the name bound.
    private func setTargets(in element: XMLElement) -> Set<String> {
        var names: Set<String> = []
        guard maySetVariables else { return names }
        func visit(_ e: XMLElement) {
            if e.name == "set" || e.name == "setvar", let target = e.attribute("name"), let root = XPRESSLanguage.pathRoot(target) {
                names.insert(root)
            }
            if e.name == "script" { names.formUnion(ScriptReferences.names(in: e.text, call: "put")) }
            e.elements.forEach(visit)
        }
        visit(element)
        return names
    }

    private func defunNames(in element: XMLElement) -> Set<String> {
        var names: Set<String> = []
        guard mayDefineFunctions else { return names }
        func visit(_ e: XMLElement) {
            if e.name == "defun", let name = e.attribute("name") { names.insert(name) }
            e.elements.forEach(visit)
        }
        visit(element)
        return names
    }
}

/// A `<call>` of a function its object does not define (XP0203). Whether that is an error
/// depends on the other linted files: when one of them defines the function and the caller
/// may provide it (the call is not in a localScope rule), it is only a warning.
struct UnresolvedCall: Sendable {
    let name: String
    let location: SourcePosition
    /// False inside a localScope rule, which sees no caller's functions.
    let callerMayProvide: Bool

    /// `knownFunctions`: the `defun` names of every linted and context file.
    func finding(knownFunctions: Set<String>) -> Diagnostic {
        if callerMayProvide && knownFunctions.contains(name) {
            return Diagnostic(id: "XP0203", severity: .warning,
                              message: "no <defun name='\(name)'> here; another file defines one, so this works only if the caller's scope has it",
                              location: location)
        }
        return LintCatalogue.finding("XP0203", "no <defun name='\(name)'> is in scope", at: location)
    }
}

/// Literal names passed to `env.get('x')` / `env.put('x', ...)` in a script.
enum ScriptReferences {
    static func names(in source: String, call: String) -> Set<String> {
        var names: Set<String> = []
        var rest = Substring(source)
        let marker = "env.\(call)("
        while let range = rest.range(of: marker) {
            var after = rest[range.upperBound...].drop(while: \.isWhitespace)
            if let quote = after.first, quote == "'" || quote == "\"" {
                after = after.dropFirst()
                if let end = after.firstIndex(of: quote), let root = XPRESSLanguage.pathRoot(String(after[..<end])) {
                    names.insert(root)
                }
            }
            rest = rest[range.upperBound...]
        }
        return names
    }
}

/// Walks one expression tree keeping the lexical scopes, reporting unbound names, unknown
/// functions, script syntax, deprecated elements and constant conditions, and collecting every
/// name read. Calls of functions not defined in the walked object are left in `unresolvedCalls`.
struct ScopeWalker {
    struct RuleContext {
        let name: String
        let localScope: Bool
        let bound: Set<String>
        let setTargets: Set<String>
    }

    let rule: RuleContext?
    let definedInRoot: Set<String>
    private var scopes: [Set<String>] = [[]]
    private(set) var referenced: Set<String> = []
    private(set) var findings: [Diagnostic] = []
    private(set) var unresolvedCalls: [UnresolvedCall] = []

    init(rule: RuleContext?, definedInRoot: Set<String>) {
        self.rule = rule
        self.definedInRoot = definedInRoot
    }

    private mutating func add(_ id: String, _ message: String, at location: SourcePosition) {
        findings.append(LintCatalogue.finding(id, message, at: location))
    }

    /// A name read at `location`: recorded, and reported when nothing binds it.
    private mutating func read(_ name: String, at location: SourcePosition) {
        referenced.insert(name)
        guard let rule else { return }  // forms and workflows: their host objects provide names
        if rule.bound.contains(name) || rule.setTargets.contains(name) || scopes.contains(where: { $0.contains(name) }) { return }
        if rule.localScope {
            add("XP0201", "'\(name)' is never bound in rule '\(rule.name)': it is not an argument, defvar, defarg, dolist variable or set target, and a localScope rule sees nothing else, so it is always null", at: location)
        } else {
            add("XP0201", "'\(name)' is not bound in rule '\(rule.name)' (not an argument, defvar, defarg, dolist variable, set target or subtype input); since the rule is not localScope it can only come from the caller's scope", at: location)
        }
    }

    private mutating func readTemplate(_ text: String, at location: SourcePosition) {
        for root in XPRESSLanguage.referencedRoots(inTemplate: text) { read(root, at: location) }
    }

    private mutating func bind(_ name: String) { scopes[scopes.count - 1].insert(name) }

    private mutating func inScope(_ names: [String] = [], _ body: (inout ScopeWalker) -> Void) {
        scopes.append(Set(names))
        body(&self)
        scopes.removeLast()
    }

    mutating func walk(_ element: XMLElement) {
        if let advice = XPRESSLanguage.deprecationAdvice(for: element.name) {
            add("XP0601", "<\(element.name)> is deprecated: \(advice)", at: element.location)
        }
        let children = element.elements
        switch element.name {
        case "ref":
            if children.isEmpty {
                let path = element.text.trimmingXMLWhitespace
                if XPRESSLanguage.mayHoldReferences(path) { readTemplate(path, at: element.location) } else if let root = XPRESSLanguage.pathRoot(path) { read(root, at: element.location) }
            }
            children.forEach { walk($0) }
        case "set", "setvar":
            if let target = element.attribute("name") {
                if XPRESSLanguage.mayHoldReferences(target) { readTemplate(target, at: element.location) } else if let root = XPRESSLanguage.pathRoot(target) { referenced.insert(root) }
            }
            children.forEach { walk($0) }
        case "defvar":
            children.forEach { walk($0) }
            if let name = element.attribute("name") { bind(name) }
        case "block":
            inScope { walker in children.forEach { walker.walk($0) } }
        case "then", "else":
            inScope { walker in children.forEach { walker.walk($0) } }
        case "dolist":
            if let list = children.first { walk(list) }
            inScope([element.attribute("name")].compactMap { $0 }) { walker in children.dropFirst().forEach { walker.walk($0) } }
        case "defun":
            if let name = element.attribute("name") { bind(name) }
            let parameters = children.filter { $0.name == "defarg" }.compactMap { $0.attribute("name") }
            inScope(parameters) { walker in children.filter { $0.name != "defarg" }.forEach { walker.walk($0) } }
        case "call":
            if let name = element.attribute("name"), !definedInRoot.contains(name) {
                unresolvedCalls.append(UnresolvedCall(name: name, location: element.location, callerMayProvide: rule.map { !$0.localScope } ?? true))
            }
            children.forEach { walk($0) }
        case "argument":
            if let value = element.attribute("value") { readTemplate(value, at: element.location) }
            children.forEach { walk($0) }
        case "expand":
            for child in children where child.name == "s" { readTemplate(child.text, at: child.location) }
            children.forEach { walk($0) }
        case "script":
            for name in ScriptReferences.names(in: element.text, call: "get") { read(name, at: element.location) }
            if let error = XPRESSLanguage.scriptSyntaxError(element.text) {
                let line = element.contentLine + error.line - 1
                add("XP0501", "the script does not compile: \(error.message)",
                    at: SourcePosition(file: element.location.file, line: line, column: line == element.location.line ? element.location.column : 1))
            }
        case "cond", "if", "while":
            if let test = children.first, XPRESSLanguage.literalElements.contains(test.name) {
                add("XP0602", "the test of <\(element.name)> is the literal <\(test.name)>, so it never changes", at: test.location)
            }
            children.forEach { walk($0) }
        default:
            children.forEach { walk($0) }
        }
    }
}
