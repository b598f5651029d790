/// What tools built on the language (the linter, editors) need to know about it, without
/// evaluating anything.
public enum XPRESSLanguage {
    /// True for every XPRESS function element (`ref`, `concat`, `block`, ...): not XML objects,
    /// not wrappers.
    public static func isFunction(_ name: String) -> Bool { Catalogue.isExpressionElement(name) }

    /// XML objects and literal elements: their value is known without evaluation.
    public static let literalElements: Set<String> = Catalogue.xmlObjects.union(["s", "i", "null"])

    /// What to write instead of an element kept for compatibility, which `rulecheck` warns
    /// about; nil for every other element. (Asked for every element linted: two comparisons
    /// cost less than hashing the name for a dictionary.)
    public static func deprecationAdvice(for element: String) -> String? {
        switch element {
        case "match": "use <contains>"
        case "o": "write the XML object without the <o> wrapper"
        default: nil
        }
    }

    /// The variable a path starts from (`account` for `account.email[#0]`); nil for host-scope
    /// paths (`:x`), computed paths and malformed ones.
    public static func pathRoot(_ path: String) -> String? {
        guard !Template.mayHoldReferences(path), case .success(let parsed) = Path.parseParts(path, keepingSteps: false), !parsed.fromHost else { return nil }
        return parsed.rootName
    }

    /// True when `text` may hold a `$(...)` reference.
    public static func mayHoldReferences(_ text: String) -> Bool { Template.mayHoldReferences(text) }

    /// The variables that the `$(path)` references in `text` start from.
    public static func referencedRoots(inTemplate text: String) -> [String] {
        guard case .success(let template)? = Template.parse(text) else { return [] }
        return roots(of: template)
    }

    private static func roots(of template: Template) -> [String] {
        template.pieces.flatMap { piece -> [String] in
            switch piece {
            case .path(let path): return path.fromHost ? [] : [path.root.name]
            case .nested(let inner):
                // `$(l[#$(i)])` reads `l` (the text before the first step) and `i`.
                var names = roots(of: inner)
                if case .text(let head)? = inner.pieces.first, !head.hasPrefix(":") {
                    let name = head.prefix { $0 != "." && $0 != "[" }
                    if !name.isEmpty { names.insert(String(name), at: 0) }
                }
                return names
            case .text: return []
            }
        }
    }

    /// Compiles (never runs) a script; the JavaScript message and the line within `source` of a
    /// syntax error, or nil when it compiles.
    public static func scriptSyntaxError(_ source: String) -> (message: String, line: Int)? {
        ScriptEngine.syntaxError(in: source)
    }

    /// The subtypes the project gives meaning to, with the variables each provides.
    public static let subtypeInputs: [String: [String]] = [
        "SUBTYPE_ACCOUNT_CORRELATION_RULE": ["account"],
        "SUBTYPE_ACCOUNT_CONFIRMATION_RULE": ["account", "userview"],
        "SUBTYPE_TASKSCHEDULE_REPETITION_RULE": ["calculatedNextDate"],
        "SUBTYPE_RECONCILE_WORKFLOW": ["resourceName", "mode", "taskId", "accountId", "userName", "initialSituation",
                                       "response", "responseSuccess", "finalSituation"],
    ]
}
