import Testing
@testable import XPRESS

/// Every element group of the catalogue (spec section 2), case by case.
@Suite struct ElementTests {
    static let values: [Case] = [
        Case("<s>a &amp; b</s>", #""a & b""#),
        Case("<s/>", #""""#),
        Case("<i>9223372036854775807</i>", "9223372036854775807"),
        Case("<list><null/><i>1</i><array><null/></array></list>", "[1, [null]]"),
        Case("<map><s>a</s><i>1</i><null/><i>2</i><s>b</s><null/></map>", #"{"a": 1, "b": null}"#),
        Case("<Integer> 42 </Integer>", "42"),
        Case("<Long>-7</Long>", "-7"),
        Case("<Date>2026-11-21T02:00:00Z</Date>", #"{"$date": "2026-11-21T02:00:00.000Z"}"#),
        Case("<Date>20261121 02:00:00</Date>", #"{"$date": "2026-11-21T02:00:00.000Z"}"#),
        Case("<Map><MapEntry key='k'><List><String>x</String></List></MapEntry></Map>", #"{"k": ["x"]}"#),
        Case("<o><Boolean>false</Boolean></o>", "false"),
        Case("<AttributeCondition attrName='email' operator='equals' operand='a@b'/>",
             #"{"$class": "AttributeCondition", "attrName": "email", "operator": "equals", "operand": "a@b"}"#),
        Case("<expression><i>3</i></expression>", "3"),
    ]

    static let arithmetic: [Case] = [
        Case("<add/>", "0"),
        Case("<sub><i>5</i></sub>", "5"),
        Case("<div><i>-7</i><i>2</i></div>", "-3"),
        Case("<mod><i>-7</i><i>2</i></mod>", "-1"),
        Case("<add><s> 40 </s><Boolean>true</Boolean><s>x</s><i>1</i></add>", "42"),
        Case("<mult><null/><i>6</i><i>7</i></mult>", "42"),
    ]

    static let logic: [Case] = [
        Case("<and/>", "1"),
        Case("<and><i>1</i><s></s></and>", #""""#),
        Case("<or><null/><s>0</s><list/></or>", "[]"),
        Case("<not><s>false</s></not>", "0"),
        Case("<eq><i>1</i><s>1</s><s> 1</s></eq>", "1"),
        Case("<eq><i>1</i><null/></eq>", "0"),
        Case("<eq><s>a</s><s>a</s><s>b</s></eq>", "0"),
        Case("<neq><null/><null/></neq>", "0"),
        Case("<eq><list><i>2</i></list><list><s>2</s></list></eq>", "0"),
        Case("<gt><null/><i>-1</i></gt>", "1"),
        Case("<lte><s>10</s><i>10</i></lte>", "1"),
        Case("<cmp><s>é</s><s>e</s></cmp>", "132"),
        Case("<ncmp><s>ABC</s><s>abd</s></ncmp>", "-1"),
        Case("<isTrue><i>5</i></isTrue>", "1"),
        Case("<isFalse><null/></isFalse>", "1"),
        Case("<isTrue><list/></isTrue>", "0"),
    ]

    static let strings: [Case] = [
        Case("<upcase><s>straße</s></upcase>", #""STRASSE""#),
        Case("<length><s>😀a</s></length>", "3"),
        Case("<substr><s>😀abc</s><i>2</i><i>2</i></substr>", #""ab""#),
        Case("<substr><s>abc</s><i>-3</i><i>-1</i></substr>", #""""#),
        Case("<indexOf><s>a😀b</s><s>b</s></indexOf>", "3"),
        Case("<ztrim><s>000</s></ztrim>", #""""#),
        Case("<pad><s>abcdef</s><i>3</i></pad>", #""abcdef""#),
        Case("<trim><s>\t x \n</s></trim>", #""x""#),
        Case("<split><s>,,a,,b,</s><s>,</s></split>", #"["a", "b"]"#),
        Case("<join><array><s>a</s><null/><i>2</i></array></join>", #""a,2""#),
        Case("<join><list><s>a</s><s>b</s></list><s> - </s></join>", #""a - b""#),
        Case("<match><s>hello</s><s>ell</s></match>", "1"),
        Case("<concat><map><s>k</s><array><null/></array></map><Boolean>true</Boolean></concat>", #""{k=[null]}true""#),
        Case("<message name='greeting'><s>Ada</s></message>", #""greeting Ada""#),
        Case("<expand><s>$(a.b)-$(c)</s></expand>", #""x-""#, [("a", #"{"b": "x"}"#)]),
    ]

    static let lists: [Case] = [
        Case("<appendAll><list><s>a</s></list><s>b</s><list><s>c</s></list></appendAll>", #"["a", "b", "c"]"#),
        Case("<remove><list><i>2</i><s>2</s></list><i>2</i></remove>", #"["2"]"#),
        Case("<insert><list/><i>9</i><s>x</s></insert>", #"["x"]"#),
        Case("<containsAny><list><s>a</s></list><s>a</s></containsAny>", "1"),
        Case("<containsAll><list><s>a</s></list><list/></containsAll>", "1"),
        Case("<filterdup><list><list><s>a</s></list><list><s>a</s></list></list></filterdup>", #"[["a"]]"#),
        Case("<lconcat><list><s>a</s></list><s>b</s><null/><list><s>c</s></list></lconcat>", #"["a", "b", null, "c"]"#),
        Case("<index i='1'><list><s>a</s><s>b</s></list></index>", #""b""#),
        Case("<get><map><s>k</s><i>1</i></map><s>nope</s></get>", "null"),
        Case("<block><defvar name='l'><list><i>3</i><i>1</i></list></defvar><removeAll name='l'><list><i>3</i></list></removeAll><ref>l</ref></block>", "[1]"),
        Case("<block><insert name='l'><i>0</i><s>first</s></insert><ref>l</ref></block>", #"["first", "x"]"#, [("l", #"["x"]"#)]),
        Case("<block><append name='fresh'><s>a</s></append><ref>fresh</ref></block>", #"["a"]"#),
        Case("<block><filternull name='l'/><ref>l</ref></block>", #"["a"]"#, [("l", #"[null, "a", null]"#)]),
    ]

    static let control: [Case] = [
        Case("<block/>", "null"),
        Case("<if><i>1</i><then/></if>", "null"),
        Case("<if><s>0</s><then><s>a</s></then></if>", "null"),
        Case("<switch><i>2</i><case><s>2</s><s>string two</s></case></switch>", #""string two""#),
        Case("<switch><s>x</s></switch>", "null"),
        Case("<select><null/><i>0</i></select>", "null"),
        Case("<dolist name='x'><s>one</s><concat><ref>x</ref><s>!</s></concat></dolist>", #"["one!"]"#),
        Case("<dolist name='x'><null/><ref>x</ref></dolist>", "[]"),
        Case("<dolist name='x'><list><i>1</i><i>2</i></list><list><ref>x</ref></list></dolist>", "[[1], [2]]"),
        Case("<block><defvar name='x'><s>outer</s></defvar><dolist name='x'><list><i>1</i></list><ref>x</ref></dolist><ref>x</ref></block>", #""outer""#),
        Case("<while><i>0</i><i>1</i></while>", "null"),
        Case("<and><i>1</i><break><s>out</s></break><i>2</i></and>", #""out""#),
        Case("<block><i>1</i><break/><i>2</i></block>", "null"),
        Case("<block name='a'><dolist name='x'><list><i>1</i></list><break name='a'><s>far</s></break></dolist><s>not reached</s></block>", #""far""#),
    ]

    static let variables: [Case] = [
        Case("<block><defvar name='x'><i>1</i></defvar><block><defvar name='x'><i>2</i></defvar></block><ref>x</ref></block>", "1"),
        Case("<block><defvar name='x'><i>1</i></defvar><block><set name='x'><i>2</i></set></block><ref>x</ref></block>", "2"),
        Case("<block><block><set name='fresh'><i>5</i></set></block><ref>fresh</ref></block>", "5"),
        Case("<block><setvar><s>dyn</s><i>3</i></setvar><ref>dyn</ref></block>", "3"),
        Case("<block><set name='m.a[#0].b'><i>9</i></set><ref>m</ref></block>", #"{"a": [{"b": 9}]}"#, [("m", #"{"a": [{"b": 1}]}"#)]),
        Case("<block><set name='users[ada].email'><s>new</s></set><ref>users[ada].email</ref></block>", #""new""#,
             [("users", #"[{"name": "ada", "email": "old"}]"#)]),
        Case("<ref>:top</ref>", #""host""#, [("top", #""host""#)]),
        Case("<ref>x.$(k)</ref>", #""v""#, [("x", #"{"key": "v"}"#), ("k", #""key""#)]),
        Case("<ref>xs[*].n</ref>", "[1]", [("xs", #"[{"n": 1}, {"m": 2}]"#)]),
        Case("<ref>xs[n=1]</ref>", "[]", [("xs", #"[{"n": 1}]"#)]),
        Case("<ref>xs[n=1]</ref>", #"[{"n": "1"}]"#, [("xs", #"[{"n": "1"}, {"n": "2"}]"#)]),
        Case("<ref>s.length</ref>", "null", [("s", #""scalar""#)]),
        Case("<block><defun name='f'><defarg name='a'/><defarg name='b'/><list><ref>a</ref><ref>b</ref></list></defun><call name='f'><i>1</i></call></block>", "[1]"),
        Case("<block><defvar name='n'><i>10</i></defvar><defun name='f'><ref>n</ref></defun><block><defvar name='n'><i>20</i></defvar><call name='f'/></block></block>", "10"),
        Case("<block><defun name='f'><break><s>b</s></break><s>no</s></defun><list><call name='f'/><s>after</s></list></block>", #"["b", "after"]"#),
        Case("<instanceof name='java.util.Map'><map/></instanceof>", "1"),
        Case("<instanceof name='String'><null/></instanceof>", "0"),
        Case("<instanceof name='AttributeCondition'><new class='com.waveset.object.AttributeCondition'/></instanceof>", "1"),
    ]

    @Test(arguments: values) func valueElements(_ c: Case) throws { #expect(try eval(c.xml, variables: c.variables) == c.expected) }
    @Test(arguments: arithmetic) func arithmeticElements(_ c: Case) throws { #expect(try eval(c.xml, variables: c.variables) == c.expected) }
    @Test(arguments: logic) func logicElements(_ c: Case) throws { #expect(try eval(c.xml, variables: c.variables) == c.expected) }
    @Test(arguments: strings) func stringElements(_ c: Case) throws { #expect(try eval(c.xml, variables: c.variables) == c.expected) }
    @Test(arguments: lists) func listElements(_ c: Case) throws { #expect(try eval(c.xml, variables: c.variables) == c.expected) }
    @Test(arguments: control) func controlElements(_ c: Case) throws { #expect(try eval(c.xml, variables: c.variables) == c.expected) }
    @Test(arguments: variables) func variableElements(_ c: Case) throws { #expect(try eval(c.xml, variables: c.variables) == c.expected) }

    @Test func listsAreSharedByReferenceButCopiedByTheCopyForm() throws {
        #expect(try eval("<block><defvar name='a'><list><i>1</i></list></defvar><defvar name='b'><ref>a</ref></defvar><append name='b'><i>2</i></append><list><ref>a</ref><append><ref>a</ref><i>3</i></append><ref>a</ref></list></block>")
                == "[[1, 2], [1, 2, 3], [1, 2]]")
    }

    @Test func xmlObjectValuesAreFreshOnEachEvaluation() throws {
        let rules = "<Rule name='L'><List><String>a</String></List></Rule>"
        #expect(try eval("<block><defvar name='l'><rule name='L'/></defvar><append name='l'><s>b</s></append><rule name='L'/></block>", rules: rules) == #"["a"]"#)
    }
}

/// Runtime errors: each names the element's position.
@Suite struct RuntimeErrorTests {
    @Test(arguments: [
        ("<div><i>1</i><i>0</i></div>", "division by zero"),
        ("<mod><i>1</i><i>0</i></mod>", "modulo by zero"),
        ("<add><i>9223372036854775807</i><i>1</i></add>", "integer overflow"),
        ("<mult><i>-9223372036854775808</i><i>-1</i></mult>", "integer overflow"),
        ("<add><list/></add>", "a list cannot be used as an integer"),
        ("<call name='nope'/>", "no function 'nope'"),
        ("<block><defun name='f'/><call name='f'><i>1</i></call></block>", "takes 0 argument(s), 1 given"),
        ("<invoke name='getDay'><ref>l</ref></invoke>", "java.util.ArrayList has no method 'getDay'"),
        ("<invoke name='parseInt' class='Integer'><s>x1</s></invoke>", "not a 32-bit integer"),
        ("<block><set name='l[#3]'><i>1</i></set></block>", "no element #3"),
        ("<setlist><s>x</s><i>0</i><i>1</i></setlist>", "must be a list"),
    ])
    func runtimeErrorsCarryAMessageAndThePosition(_ xml: String, _ message: String) throws {
        let error = try #require(try runtimeError(xml, variables: [("l", "[]")]))
        #expect(error.message.contains(message), "\(error.message)")
        #expect(error.location.file == "expr.xml")
        #expect(error.location.line == 1)
    }

    @Test func errorsShowTheChainOfRuleAndCallFrames() throws {
        let rules = """
        <Rule name='Outer'>
          <rule name='Inner'/>
        </Rule>
        <Rule name='Inner'>
          <block>
            <defun name='explode'><div><i>1</i><i>0</i></div></defun>
            <call name='explode'/>
          </block>
        </Rule>
        """
        let error = try #require(try runtimeError("<rule name='Outer'/>", rules: rules))
        #expect(error.ruleName == "Inner")
        #expect(error.location.line == 6)
        #expect(error.frames.map(\.message) == ["in function 'explode' called from here", "in rule 'Inner' called from here",
                                                 "in rule 'Outer' called from here"])
        #expect(error.frames.map { $0.location?.line } == [7, 2, 1])
        #expect(error.diagnostic.description.hasPrefix("rules.xml:6:"))
    }

    @Test func aRunawayLoopStopsAtTheStepBudget() throws {
        var options = EvaluationOptions()
        options.stepLimit = 10_000
        let error = try #require(try runtimeError("<while><i>1</i></while>", options: options))
        #expect(error.message.contains("step limit of 10000"))
    }

    @Test func runawayRecursionStopsAtTheDepthLimitNamingTheRule() throws {
        var options = EvaluationOptions()
        options.callDepthLimit = 50
        let error = try #require(try runtimeError("<rule name='Loop'/>", rules: "<Rule name='Loop'><rule name='Loop'/></Rule>", options: options))
        #expect(error.message.contains("call depth limit of 50"))
        #expect(error.ruleName == "Loop")
        #expect(error.frames.first?.message == "in rule 'Loop' called from here (49 times)")
    }
}
