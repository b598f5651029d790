import Connectors
import Foundation
import Repository
import XMLSource
import XPRESS

/// `recon users import`: `<User>` objects (XML) or CSV with a header row: `name` (required),
/// `assignedResources` (`|`-separated), `accounts` (`resource:accountId` pairs, `|`-separated),
/// every other column an attribute (empty cells are absent attributes).
enum UserImport {
    struct ImportError: Error, CustomStringConvertible {
        let description: String
    }

    static func read(_ file: String) throws -> [User] {
        file.lowercased().hasSuffix(".csv") ? try readCSV(file) : try readXML(file)
    }

    static func readXML(_ file: String) throws -> [User] {
        guard let data = FileManager.default.contents(atPath: file) else { throw ImportError(description: "\(file): cannot read the file") }
        let document = XMLParser.parse([UInt8](data), file: file)
        guard let root = document.root else {
            throw ImportError(description: document.diagnostics.map(\.description).joined(separator: "\n"))
        }
        let elements = root.name == "User" ? [root] : root.elements.filter { $0.name == "User" }
        return try elements.map { element in
            guard let name = element.attribute("name"), !name.isEmpty else {
                throw ImportError(description: "\(element.location): error: <User> needs a 'name'")
            }
            var attributes: [String: AttributeValue] = [:]
            var assigned: Set<String> = []
            var links: Set<AccountLink> = []
            for child in element.elements {
                switch child.name {
                case "Attribute":
                    guard let key = child.attribute("name") else { throw ImportError(description: "\(child.location): error: <Attribute> needs a 'name'") }
                    let values = child.elements.filter { $0.name == "Value" }.map(\.text)
                    if !values.isEmpty {
                        attributes[key] = .multi(values)
                    } else if let value = child.attribute("value"), !value.isEmpty {
                        attributes[key] = .single(value)
                    }
                case "AssignedResource":
                    if let resource = child.attribute("name") { assigned.insert(resource) }
                case "Account":
                    guard let resource = child.attribute("resource"), let id = child.attribute("accountId") else {
                        throw ImportError(description: "\(child.location): error: <Account> needs 'resource' and 'accountId'")
                    }
                    links.insert(AccountLink(resource: resource, accountID: id))
                default:
                    throw ImportError(description: "\(child.location): error: <User> holds <Attribute>, <AssignedResource> and <Account>, not <\(child.name)>")
                }
            }
            return User(name: name, attributes: attributes, assignedResources: assigned, accounts: links)
        }
    }

    static func readCSV(_ file: String) throws -> [User] {
        var reader: CSVReader
        do { reader = try CSVReader(path: file) } catch { throw ImportError(description: "\(file): \(error)") }
        func fail(_ line: Int, _ message: String) -> ImportError { ImportError(description: "\(file):\(line):1: error: \(message)") }
        do {
            guard let header = try reader.next() else { return [] }
            guard let nameColumn = header.fields.firstIndex(of: "name") else { throw fail(header.line, "the header needs a 'name' column") }
            var users: [User] = []
            var seen = Set<String>()
            while let record = try reader.next() {
                var user = User(name: "")
                var assigned: Set<String> = [], links: Set<AccountLink> = []
                for (index, column) in header.fields.enumerated() where index < record.fields.count {
                    let cell = record.fields[index]
                    guard !cell.isEmpty else { continue }
                    switch column {
                    case "name": user.name = cell
                    case "assignedResources": assigned.formUnion(cell.split(separator: "|").map { String($0) })
                    case "accounts":
                        for pair in cell.split(separator: "|") {
                            guard let colon = pair.firstIndex(of: ":") else { throw fail(record.line, "accounts takes resource:accountId pairs, got '\(pair)'") }
                            links.insert(AccountLink(resource: String(pair[..<colon]), accountID: String(pair[pair.index(after: colon)...])))
                        }
                    default: user.attributes[column] = .single(cell)
                    }
                }
                guard nameColumn < record.fields.count, !user.name.isEmpty else { throw fail(record.line, "the user has no name") }
                guard seen.insert(user.name).inserted else { throw fail(record.line, "user '\(user.name)' appears twice") }
                users.append(User(name: user.name, attributes: user.attributes, assignedResources: assigned, accounts: links))
            }
            return users
        } catch let error as CSVError {
            throw ImportError(description: "\(file): \(error)")
        }
    }

    /// A user as `recon users list/show --json` prints it.
    static func json(_ user: User) -> Value {
        .map([
            ("name", .string(user.name)),
            ("attributes", .map(user.attributes.sorted(by: { $0.key < $1.key }).map { key, value in
                switch value {
                case .single(let text): (key, .string(text))
                case .multi(let texts): (key, .list(texts.map { .string($0) }))
                }
            })),
            ("assignedResources", .list(user.assignedResources.sorted().map { .string($0) })),
            ("accounts", .list(user.accounts.sorted().map { .map([("resource", .string($0.resource)), ("accountId", .string($0.accountID))]) })),
        ])
    }
}
