import Connectors
import Deployment
import XPRESS

/// Evaluates a `<Form>` over an account and a user view: each field in order, its value stored
/// at the field's path (`global.X`, `accounts[R].X`, `waveset.accountId`); later fields see the
/// values earlier ones stored.
struct FormRunner {
    let form: FormDefinition
    let evaluator: Evaluator

    struct Result {
        var userName: String?
        var userAttributes: [String: AttributeValue?] = [:]
        var accountAttributes: [String: [(String, AttributeValue?)]] = [:]
    }

    func run(account: Value, view: Value) throws -> Result {
        guard case .map(let viewMap) = view, case .map(let global)? = viewMap["global"],
              case .map(let waveset)? = viewMap["waveset"], case .list(let accounts)? = viewMap["accounts"] else {
            throw RuntimeError(message: "the user view is malformed", location: form.location, ruleName: nil, frames: [])
        }
        var result = Result()
        let variables: [(String, Value)] = [("account", account), ("global", .map(global)), ("waveset", .map(waveset)),
                                            ("accounts", .list(accounts)), ("userview", view)]
        for field in form.fields {
            if let disable = field.disable, Values.verdict(try evaluator.evaluate(disable, variables: variables)) { continue }
            guard let expression = field.value else { continue }
            let value = try evaluator.evaluate(expression, variables: variables)
            if value.isNull { continue }
            if field.name == "waveset.accountId" {
                result.userName = value.stringValue
                waveset["accountId"] = value
            } else if field.name.hasPrefix("global.") {
                let name = String(field.name.dropFirst("global.".count))
                global[name] = value
                result.userAttributes[name] = Values.attribute(value)
            } else if field.name.hasPrefix("accounts["), let close = field.name.firstIndex(of: "]") {
                let resource = String(field.name[field.name.index(field.name.startIndex, offsetBy: 9)..<close])
                let name = String(field.name[field.name.index(after: close)...].drop { $0 == "." })
                result.accountAttributes[resource, default: []].append((name, Values.attribute(value)))
                let entry: MapBox
                if let existing = accounts.items.lazy.compactMap({ item -> MapBox? in
                    if case .map(let m) = item, m["name"]?.stringValue == resource { return m }
                    return nil
                }).first {
                    entry = existing
                } else {
                    entry = MapBox([("name", .string(resource))])
                    accounts.items.append(.map(entry))
                }
                entry[name] = value
            }
        }
        return result
    }
}
