import Foundation
@_exported import TestSupport
@testable import Connectors

/// Runs `body` with a new empty directory, removed afterwards.
func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("connectors-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    return try body(directory)
}

func bytes(of path: String) throws -> Data {
    try Data(contentsOf: URL(fileURLWithPath: path))
}

/// Every account of `adapter`, in stream order.
func allAccounts(_ adapter: some ResourceAdapter) throws -> [Account] {
    var stream = try adapter.accounts()
    var accounts: [Account] = []
    while let account = try stream.next() { accounts.append(account) }
    return accounts
}

/// The error `body` throws, as an `AdapterError` (nil when it throws none or another kind).
func adapterError(_ body: () throws -> Void) -> AdapterError? {
    do {
        try body()
        return nil
    } catch {
        return error as? AdapterError
    }
}
