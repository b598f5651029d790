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

    /// Reads the users of `file` and hands them to `body` `batchSize` at a time (fewer in the
    /// last batch), so that a million users never sit in memory at once. CSV is read as it
    /// streams; an XML document is parsed whole first.
    static func forEachBatch(of file: String, batchSize: Int = 5_000, _ body: ([User]) throws -> Void) throws {
        var batch: [User] = []
        batch.reserveCapacity(batchSize)
        func add(_ user: User) throws {
            batch.append(user)
            if batch.count == batchSize {
                try body(batch)
                batch.removeAll(keepingCapacity: true)
            }
        }
        if file.lowercased().hasSuffix(".csv") { try readCSV(file, add) } else { try readXML(file).forEach(add) }
        if !batch.isEmpty { try body(batch) }
    }

    private static func readXML(_ file: String) throws -> [User] {
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

    /// What a column of a users CSV file holds.
    private enum Column {
        case name, assignedResources, accounts
        case attribute(String)

        init(header: String) {
            switch header {
            case "name": self = .name
            case "assignedResources": self = .assignedResources
            case "accounts": self = .accounts
            default: self = .attribute(header)
            }
        }
    }

    private static func readCSV(_ file: String, _ body: (User) throws -> Void) throws {
        var reader: CSVReader
        do { reader = try CSVReader(path: file) } catch { throw ImportError(description: "\(file): \(error)") }
        func fail(_ line: Int, _ message: String) -> ImportError { ImportError(description: "\(file):\(line):1: error: \(message)") }
        do {
            guard let header = try reader.next() else { return }
            guard header.fields.contains("name") else { throw fail(header.line, "the header needs a 'name' column") }
            let columns = header.fields.map(Column.init(header:))
            let attributeCount = columns.filter { if case .attribute = $0 { true } else { false } }.count
            var seen = Set<String>()
            while let record = try reader.next() {
                var name = ""
                var attributes = [String: AttributeValue](minimumCapacity: attributeCount)
                var assigned: Set<String> = [], links: Set<AccountLink> = []
                for (index, cell) in record.fields.prefix(columns.count).enumerated() where !cell.isEmpty {
                    switch columns[index] {
                    case .name: name = cell
                    case .assignedResources:
                        for resource in cell.utf8.split(separator: UInt8(ascii: "|")) { assigned.insert(String(decoding: resource, as: UTF8.self)) }
                    case .accounts:
                        for pair in cell.utf8.split(separator: UInt8(ascii: "|")) {
                            guard let colon = pair.firstIndex(of: UInt8(ascii: ":")) else {
                                throw fail(record.line, "accounts takes resource:accountId pairs, got '\(String(decoding: pair, as: UTF8.self))'")
                            }
                            links.insert(AccountLink(resource: String(decoding: pair[..<colon], as: UTF8.self),
                                                     accountID: String(decoding: pair[pair.index(after: colon)...], as: UTF8.self)))
                        }
                    case .attribute(let key): attributes[key] = .single(cell)
                    }
                }
                guard !name.isEmpty else { throw fail(record.line, "the user has no name") }
                guard seen.insert(name).inserted else { throw fail(record.line, "user '\(name)' appears twice") }
                try body(User(name: name, attributes: attributes, assignedResources: assigned, accounts: links))
            }
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
