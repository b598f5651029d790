import XMLSource

/// One lint rule: a stable id, what it checks and why, and a failing and a passing example
/// (both run as tests).
public struct LintRule: Sendable {
    public let id: String
    public let name: String
    public let severity: Severity
    public let summary: String
    public let rationale: String
    public let badExample: String
    public let goodExample: String
}

/// Every rule `rulecheck` knows (ids are stable; see `../shared/spec/RULECHECK.md`).
public enum LintCatalogue {
    public static func rule(_ id: String) -> LintRule? { byID[id] }

    /// A finding of rule `id` at the rule's catalogued severity.
    static func finding(_ id: String, _ message: String, at location: SourcePosition) -> Diagnostic {
        Diagnostic(id: id, severity: rule(id)?.severity ?? .warning, message: message, location: location)
    }

    static let byID: [String: LintRule] = Dictionary(uniqueKeysWithValues: all.map { ($0.id, $0) })

    private static func doc(_ body: String) -> String { "<Waveset>\n\(body)\n</Waveset>\n" }

    public static let all: [LintRule] = [
        LintRule(id: "XML0001", name: "malformed-xml", severity: .error,
                 summary: "The file is not well-formed XML.",
                 rationale: "The engine cannot load a file libxml2 cannot parse; nothing in it takes effect.",
                 badExample: "<Waveset><Rule name='R'><s>x</s></Waveset>\n",
                 goodExample: doc("<Rule name='R'><s>x</s></Rule>")),
        LintRule(id: "XML0002", name: "forbidden-dtd-feature", severity: .error,
                 summary: "An <!ENTITY> declaration, or an entity other than the five predefined ones.",
                 rationale: "Entities let a file read other files or expand without bound (billion laughs); the loader refuses them. A DOCTYPE with only an external identifier is accepted and never read.",
                 badExample: "<?xml version='1.0'?>\n<!DOCTYPE Waveset [ <!ENTITY host SYSTEM 'file:///etc/hostname'> ]>\n<Waveset><Rule name='R'><s>&host;</s></Rule></Waveset>\n",
                 goodExample: "<?xml version='1.0'?>\n<!DOCTYPE Waveset PUBLIC 'waveset.dtd' 'waveset.dtd'>\n<Waveset><Rule name='R'><s>&lt;host&gt;</s></Rule></Waveset>\n"),
        LintRule(id: "XP0101", name: "unknown-element", severity: .error,
                 summary: "An element that is not XPRESS, an XML object or a known wrapper where an expression is expected.",
                 rationale: "The engine rejects the file at load; a misspelt function name never runs.",
                 badExample: doc("<Rule name='R'><concatenate><s>a</s></concatenate></Rule>"),
                 goodExample: doc("<Rule name='R'><concat><s>a</s></concat></Rule>")),
        LintRule(id: "XP0102", name: "wrong-argument-count", severity: .error,
                 summary: "Too few or too many children for the element.",
                 rationale: "Each function takes a fixed number of arguments (spec section 2); the engine rejects others at load.",
                 badExample: doc("<Rule name='R'><RuleArgument name='x'/><cond><ref>x</ref></cond></Rule>"),
                 goodExample: doc("<Rule name='R'><RuleArgument name='x'/><cond><ref>x</ref><s>yes</s></cond></Rule>")),
        LintRule(id: "XP0103", name: "missing-attribute", severity: .error,
                 summary: "A required attribute is absent (defvar name, dolist name, call name, Rule name, ...).",
                 rationale: "Without it the element has no meaning; the engine rejects it at load.",
                 badExample: doc("<Rule name='R'><block><defvar><i>1</i></defvar></block></Rule>"),
                 goodExample: doc("<Rule name='R'><block><defvar name='x'><i>1</i></defvar><ref>x</ref></block></Rule>")),
        LintRule(id: "XP0104", name: "bad-literal", severity: .error,
                 summary: "<i> text that is not an integer; a <map> with an odd number of children.",
                 rationale: "Literals are checked at load: `<i> 7</i>` or `<i>7x</i>` is not silently 0.",
                 badExample: doc("<Rule name='R'><add><i>7x</i><i>1</i></add></Rule>"),
                 goodExample: doc("<Rule name='R'><add><i>7</i><i>1</i></add></Rule>")),
        LintRule(id: "XP0105", name: "bad-reference", severity: .error,
                 summary: "A <break name=...> with no enclosing block of that name, or a malformed path.",
                 rationale: "The break could never reach its target; a malformed path never finds anything.",
                 badExample: doc("<Rule name='R'><block><break name='outer'/></block></Rule>"),
                 goodExample: doc("<Rule name='R'><block name='outer'><break name='outer'/></block></Rule>")),
        LintRule(id: "XP0201", name: "undefined-variable", severity: .warning,
                 summary: "A reference to a name never bound in scope.",
                 rationale: "An unbound name reads as null, which usually hides a typo. Names count as bound when they are RuleArguments, defvars, defargs, dolist variables, set targets, or inputs the rule's subtype provides. A rule that is not localScope may read its caller's variables, so this stays a warning.",
                 badExample: doc("<Rule name='R' localScope='true'><RuleArgument name='account'/><ref>acount.email</ref></Rule>"),
                 goodExample: doc("<Rule name='R' localScope='true'><RuleArgument name='account'/><ref>account.email</ref></Rule>")),
        LintRule(id: "XP0202", name: "unknown-rule", severity: .error,
                 summary: "<rule name='X'> or a policy naming a rule that no loaded file defines.",
                 rationale: "The call fails at load (literal names) and the policy is rejected.",
                 badExample: doc("<Rule name='R'><rule name='Does Not Exist'/></Rule>"),
                 goodExample: doc("<Rule name='R'><rule name='USER_NAME_MATCHES_ACCOUNT_ID'/></Rule>")),
        LintRule(id: "XP0203", name: "unknown-function", severity: .error,
                 summary: "<call name='f'> with no <defun name='f'> in scope.",
                 rationale: "The call fails every time it runs.",
                 badExample: doc("<Rule name='R'><call name='twice'><i>2</i></call></Rule>"),
                 goodExample: doc("<Rule name='R'><block><defun name='twice'><defarg name='n'/><mult><ref>n</ref><i>2</i></mult></defun><call name='twice'><i>2</i></call></block></Rule>")),
        LintRule(id: "XP0204", name: "duplicate-rule", severity: .error,
                 summary: "Two rules (or two library rules) with the same name.",
                 rationale: "Callers could not know which one runs; the engine rejects the configuration.",
                 badExample: doc("<Rule name='R'><s>a</s></Rule>\n<Rule name='R'><s>b</s></Rule>"),
                 goodExample: doc("<Rule name='R'><s>a</s></Rule>\n<Rule name='R2'><s>b</s></Rule>")),
        LintRule(id: "XP0205", name: "unused-argument", severity: .warning,
                 summary: "A RuleArgument the rule body never references.",
                 rationale: "Callers pass a value that changes nothing; usually the body reads a misspelt name. A reference is a ref, a set target, a $(path) in an argument value or expand string, or a literal env.get('x') in a script.",
                 badExample: doc("<Rule name='R'><RuleArgument name='first'/><RuleArgument name='last'/><ref>first</ref></Rule>"),
                 goodExample: doc("<Rule name='R'><RuleArgument name='first'/><RuleArgument name='last'/><concat><ref>first</ref><ref>last</ref></concat></Rule>")),
        LintRule(id: "XP0301", name: "subtype-contract", severity: .error,
                 summary: "A rule that cannot fulfil its subtype's contract.",
                 rationale: "A repetition rule needs a calculatedNextDate argument; a correlation rule must read account; a confirmation rule must read account or userview; a literal result must be of the kind the subtype returns.",
                 badExample: doc("<Rule name='R' subtype='SUBTYPE_ACCOUNT_CORRELATION_RULE'><s>jdoe</s></Rule>"),
                 goodExample: doc("<Rule name='R' subtype='SUBTYPE_ACCOUNT_CORRELATION_RULE'><ref>account.accountId</ref></Rule>")),
        LintRule(id: "XP0302", name: "unknown-subtype", severity: .warning,
                 summary: "A subtype the project does not know.",
                 rationale: "The engine gives the rule no inputs and never calls it for that purpose; a typo in a subtype hides the rule.",
                 badExample: doc("<Rule name='R' subtype='SUBTYPE_ACCOUNT_CORELATION_RULE'><ref>account.accountId</ref></Rule>"),
                 goodExample: doc("<Rule name='R' subtype='SUBTYPE_ACCOUNT_CORRELATION_RULE'><ref>account.accountId</ref></Rule>")),
        LintRule(id: "XP0401", name: "forbidden-class", severity: .error,
                 summary: "<new> or <invoke> of a class outside the built-in registry.",
                 rationale: "Rules reach only the documented host classes (Docs/HOST-CLASSES.md); nothing may touch files, processes or the network.",
                 badExample: doc("<Rule name='R'><new class='java.io.File'><s>/etc/passwd</s></new></Rule>"),
                 goodExample: doc("<Rule name='R'><new class='java.util.Date'/></Rule>")),
        LintRule(id: "XP0402", name: "unknown-method", severity: .error,
                 summary: "A literal method name the class does not have.",
                 rationale: "Where the class is known statically the method is checked against it; with an unknown target, against every registered class.",
                 badExample: doc("<Rule name='R'><invoke name='getWeekday'><new class='java.util.Date'/></invoke></Rule>"),
                 goodExample: doc("<Rule name='R'><invoke name='getDay'><new class='java.util.Date'/></invoke></Rule>")),
        LintRule(id: "XP0501", name: "script-syntax", severity: .error,
                 summary: "A <script> that does not compile as JavaScript.",
                 rationale: "The script fails every time it runs; the JavaScript engine's own message and line are reported.",
                 badExample: doc("<Rule name='R'><script>var x = ;</script></Rule>"),
                 goodExample: doc("<Rule name='R'><script>var x = 1; x + 1</script></Rule>")),
        LintRule(id: "XP0601", name: "deprecated-element", severity: .warning,
                 summary: "<match> or <o>.",
                 rationale: "They are kept for compatibility: <match> is <contains>; <o> wraps an XML object that needs no wrapper.",
                 badExample: doc("<Rule name='R'><match><s>abc</s><s>b</s></match></Rule>"),
                 goodExample: doc("<Rule name='R'><contains><s>abc</s><s>b</s></contains></Rule>")),
        LintRule(id: "XP0602", name: "constant-condition", severity: .warning,
                 summary: "A cond, if or while test that is a literal.",
                 rationale: "The branch is always or never taken (or the loop never ends without a break): usually left over from debugging.",
                 badExample: doc("<Rule name='R'><cond><i>1</i><s>always</s><s>never</s></cond></Rule>"),
                 goodExample: doc("<Rule name='R'><RuleArgument name='x'/><cond><ref>x</ref><s>set</s><s>unset</s></cond></Rule>")),
        LintRule(id: "RC0001", name: "policy-invalid", severity: .error,
                 summary: "A ReconcilePolicy, Resource or ReverseSyncPolicy problem.",
                 rationale: "Unknown resources or administrators, responses not allowed for their situation, incremental on a resource that cannot, bad schedules, percentages outside 0-100, and elements or attributes a policy does not take (a misspelt one would leave its value at the default without a word) make the engine reject the whole configuration.",
                 badExample: doc("<Resource name='HR' type='FlatFile'><ResourceAttribute name='file' value='hr.csv'/></Resource>\n<ReconcilePolicy name='HR' resource='HR'><Responses><Response situation='CONFIRMED' action='DELETE_ACCOUNT'/></Responses></ReconcilePolicy>"),
                 goodExample: doc("<Resource name='HR' type='FlatFile'><ResourceAttribute name='file' value='hr.csv'/></Resource>\n<ReconcilePolicy name='HR' resource='HR'><Responses><Response situation='UNMATCHED' action='DISABLE_ACCOUNT'/></Responses></ReconcilePolicy>")),
        LintRule(id: "RC0002", name: "bad-suppression", severity: .warning,
                 summary: "A suppression without a reason, or one that suppresses nothing.",
                 rationale: "Every silenced finding needs a recorded reason, and stale suppressions hide future problems.",
                 badExample: doc("<!-- rulecheck-disable-next-line XP0602 -->\n<Rule name='R'><cond><i>1</i><s>a</s></cond></Rule>"),
                 goodExample: doc("<!-- rulecheck-disable-next-line XP0602 -- kept on purpose while the feed is migrated -->\n<Rule name='R'><cond><i>1</i><s>a</s></cond></Rule>")),
    ]
}
