import Foundation

/// The repository back ends every repository test runs against.
public enum Backend: String, CaseIterable, Sendable, CustomStringConvertible {
    case sqlite, postgres
    public var description: String { rawValue }

    /// The address of a new, empty repository of this back end: an SQLite file in `directory`,
    /// or a new database on the test process's PostgreSQL server.
    public func newRepositoryURL(in directory: String) throws -> String {
        switch self {
        case .sqlite: return "sqlite:" + directory + "/recon-\(UUID().uuidString).db"
        case .postgres: return try SharedPostgres.newDatabase()
        }
    }
}

/// One PostgreSQL server for the whole test process, started on first use and stopped when the
/// process exits; each test takes a database of its own on it.
public enum SharedPostgres {
    nonisolated(unsafe) private static var server: PostgresServer?
    private static let lock = NSLock()

    /// The server, started if need be.
    public static func shared() throws -> PostgresServer {
        lock.lock()
        defer { lock.unlock() }
        if let server { return server }
        let started = try PostgresServer()
        server = started
        atexit(stopSharedPostgres)
        return started
    }

    /// A new empty database on the shared server; its address.
    public static func newDatabase() throws -> String {
        let server = try shared()
        let name = "t" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
        try server.execute("CREATE DATABASE \(name)")
        return "postgres://\(PostgresServer.user)@127.0.0.1:\(server.port)/\(name)"
    }

    fileprivate static func stop() {
        lock.lock()
        server = nil
        lock.unlock()
    }
}

private func stopSharedPostgres() { SharedPostgres.stop() }
