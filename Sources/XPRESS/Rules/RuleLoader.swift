import Foundation
import XMLSource

/// One loaded file: its XML tree (every object kept, known or not), the rules it defines, and
/// every problem found in it.
public struct LoadedDocument: Sendable {
    public let file: String
    public let root: XMLElement?
    public let rules: [Rule]
    public let diagnostics: [Diagnostic]
    /// Literal rule names called from this file, resolved by `RuleLoader.link`.
    let ruleReferences: [(name: String, location: SourcePosition)]

    /// The same document without its XML tree: its rules, diagnostics and references still
    /// link. For callers that hold thousands of documents and are done with their trees, which
    /// take far more memory than the files (about ten times, for small rule files).
    public var withoutTree: LoadedDocument {
        LoadedDocument(file: file, root: nil, rules: rules, diagnostics: diagnostics, ruleReferences: ruleReferences)
    }
}

/// Loads rule files: `<Waveset>` documents or single objects. Rules become `Rule`s (library
/// rules as `Library:Rule`); XPRESS embedded in other objects (forms, workflows, configuration)
/// is lowered too, so every structural error is found at load time.
public enum RuleLoader {
    /// The file name diagnostics use for the built-in standard library.
    public static let standardLibraryFile = "rules/ReconRules.xml"

    /// The standard library (`rules/ReconRules.xml`), compiled into the binaries.
    public static let standardLibrary: LoadedDocument = load(PackageResources.ReconRules_xml, file: standardLibraryFile)

    /// True when `bytes` are the standard library itself (a checkout's `rules/ReconRules.xml`),
    /// which tools then load in place of the built-in copy rather than beside it.
    public static func isStandardLibrary(_ bytes: [UInt8]) -> Bool { bytes == PackageResources.ReconRules_xml }

    /// Reads and loads one file; an unreadable file is a diagnostic, not a crash.
    public static func load(path: String) -> LoadedDocument {
        guard let data = FileManager.default.contents(atPath: path) else {
            let problem = Diagnostic(id: XMLDiagnosticID.malformed, message: "cannot read the file",
                                     location: SourcePosition(file: path, line: 1, column: 1))
            return LoadedDocument(file: path, root: nil, rules: [], diagnostics: [problem], ruleReferences: [])
        }
        return load([UInt8](data), file: path)
    }

    /// Loads a document held in memory.
    public static func load(_ bytes: [UInt8], file: String) -> LoadedDocument {
        load(XMLParser.parse(bytes, file: file))
    }

    /// Loads a parsed document.
    public static func load(_ document: XMLDocument) -> LoadedDocument {
        let file = document.file
        guard let root = document.root else {
            return LoadedDocument(file: file, root: nil, rules: [], diagnostics: document.diagnostics, ruleReferences: [])
        }
        var lowering = Lowering(file: file)
        var rules: [Rule] = []
        for object in objects(in: root) { lowering.scanObject(object, library: nil, into: &rules) }
        return LoadedDocument(file: file, root: root, rules: rules, diagnostics: document.diagnostics + lowering.diagnostics,
                              ruleReferences: lowering.ruleReferences)
    }

    /// Files named by `paths`: files as given, directories searched recursively for `*.xml`
    /// (sorted, so that loading is deterministic). Throws for a path that does not exist.
    public static func files(in paths: [String]) throws -> [String] {
        var result: [String] = []
        for path in paths {
            // stat(2) itself: FileManager's check costs several times the system call, and a
            // lint of thousands of files named one by one made them all wait on it.
            var status = stat()
            guard stat(path, &status) == 0 else {
                throw LoadError(message: "\(path): no such file or directory")
            }
            guard status.st_mode & S_IFMT == S_IFDIR else { result.append(path); continue }
            var found: [String] = []
            let prefix = path.hasSuffix("/") ? path : path + "/"
            if let walker = FileManager.default.enumerator(atPath: path) {
                for case let relative as String in walker where relative.lowercased().hasSuffix(".xml") {
                    found.append(prefix + relative)
                }
            }
            result.append(contentsOf: found.sorted())
        }
        return result
    }

    /// The objects a document holds: the children of a `<Waveset>` root, or the root itself.
    public static func objects(in root: XMLElement) -> [XMLElement] {
        root.name == "Waveset" ? Array(root.elements) : [root]
    }

    /// Builds the library of `documents` plus the standard library, reporting rules defined
    /// twice and literal calls of rules that no document defines.
    public static func link(_ documents: [LoadedDocument], includeStandardLibrary: Bool = true) -> (RuleLibrary, [Diagnostic]) {
        let all = (includeStandardLibrary ? [standardLibrary] : []) + documents
        var diagnostics: [Diagnostic] = []
        var byName: [String: Rule] = [:]
        byName.reserveCapacity(all.reduce(0) { $0 + $1.rules.count })
        for document in all {
            for rule in document.rules {
                if let first = byName[rule.name] {
                    diagnostics.append(Diagnostic(id: XPRESSDiagnosticID.duplicateRule, message: "rule '\(rule.name)' is defined twice",
                                                  location: rule.location,
                                                  notes: [.init(location: first.location, message: "first defined here")]))
                    continue
                }
                byName[rule.name] = rule
            }
        }
        for document in all {
            for reference in document.ruleReferences where byName[reference.name] == nil {
                diagnostics.append(Diagnostic(id: XPRESSDiagnosticID.unknownRule,
                                              message: "no loaded file defines a rule named '\(reference.name)'",
                                              location: reference.location))
            }
        }
        return (RuleLibrary(byName: byName), diagnostics)
    }
}

/// A path that could not be loaded at all.
public struct LoadError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

extension Lowering {
    /// Elements of a form `<Field>` whose content is an expression.
    static let fieldExpressionHolders: Set<String> = [
        "Expansion", "Derivation", "Default", "Disable", "Enable", "Validation", "Constraints", "FieldAction",
    ]

    /// Walks an object: rules are compiled, `Library` rules qualified by their Configuration's
    /// name, XPRESS found elsewhere is lowered for its diagnostics, other content is kept as is.
    mutating func scanObject(_ element: XMLElement, library: String?, into rules: inout [Rule]) {
        switch element.name {
        case "Rule":
            if let rule = rule(element, library: library) { rules.append(rule) }
            return
        case "Configuration":
            let name = element.attribute("name")
            for child in element.elements { scanConfiguration(child, name: name, into: &rules) }
            return
        default: break
        }
        for child in element.elements {
            if child.name == "Rule" {
                scanObject(child, library: library, into: &rules)
            } else if element.name == "Field" && Lowering.fieldExpressionHolders.contains(child.name) {
                for expressionElement in child.elements { _ = expression(expressionElement) }
            } else if Catalogue.isExpressionElement(child.name) {
                _ = expression(child)
            } else {
                scanObject(child, library: library, into: &rules)
            }
        }
    }

    private mutating func scanConfiguration(_ element: XMLElement, name: String?, into rules: inout [Rule]) {
        if element.name == "Library" {
            for child in element.elements { scanObject(child, library: name ?? "", into: &rules) }
        } else if element.name == "Extension" {
            for child in element.elements { scanConfiguration(child, name: name, into: &rules) }
        } else {
            scanObject(element, library: nil, into: &rules)
        }
    }

    /// Compiles a `<Rule>` object.
    mutating func rule(_ element: XMLElement, library: String?) -> Rule? {
        let name = requiredAttribute(element, "name")
        let firstReference = ruleReferences.count
        unrepeatableElement = nil
        var arguments: [Rule.Argument] = []
        var bodies: [Node] = []
        for child in element.elements {
            switch child.name {
            case "Description", "Comments", "MemberObjectGroups", "Properties", "RuleAccess", "RunAsUser":
                continue
            case "RuleArgument":
                guard let argumentName = requiredAttribute(child, "name") else { continue }
                var defaultValue: Node? = child.attribute("value").map { ConstantNode("RuleArgument", child.location, .string($0)) }
                let values = child.elements
                if !values.isEmpty, checkCount(child, values.count, 1...1) { defaultValue = expression(values[0]) }
                arguments.append(Rule.Argument(name: argumentName, symbol: Symbol(argumentName), defaultValue: defaultValue,
                                               locked: child.attribute("locked")?.lowercased() == "true"))
            case "Value":
                bodies.append(contentsOf: child.elements.map { expression($0) })
            default:
                bodies.append(expression(child))
            }
        }
        guard checkCount(element, bodies.count, 1...1) else { return nil }
        guard let name else { return nil }
        let qualified = library.map { "\($0):\(name)" } ?? name
        return Rule(name: qualified, subtype: element.attribute("subtype"),
                    localScope: element.attribute("localScope")?.lowercased() == "true",
                    arguments: arguments, body: bodies[0], location: element.location,
                    calledRules: ruleReferences[firstReference...].map(\.name), unrepeatableElement: unrepeatableElement,
                    sourceDigest: element.sourceDigest)
    }
}
