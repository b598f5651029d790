import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A private PostgreSQL server for one test: a cluster made by `initdb` in a new temporary
/// directory, with a superuser `recon` and a database `recon`, and the server listening on a free
/// port of 127.0.0.1 (and on a Unix socket in the directory). Connections need no password: any
/// password, such as that of `PGPASSWORD`, is accepted. The server is stopped and the directory
/// removed on release; `stop()` and `start()` take it off the network and back meanwhile.
///
/// PostgreSQL refuses to run as root, so as root every PostgreSQL program runs as the `postgres`
/// user (made by Debian's packages) through `runuser`, and the directory belongs to that user.
/// The data is a throwaway: the server neither syncs to disk nor waits for commits to be written.
public final class PostgresServer: Sendable {
    /// The directory of the PostgreSQL programs: that of the highest version in
    /// `/usr/lib/postgresql`, or else the first directory of `PATH` with `initdb` and `pg_ctl`.
    public static let binDirectory: String? = findBinDirectory()
    /// Whether a server can be made: `initdb` and `pg_ctl` are found and, as root, so is the
    /// `postgres` user to run them.
    public static var isInstalled: Bool { binDirectory != nil && (getuid() != 0 || getpwnam("postgres") != nil) }
    /// The superuser, which owns the database.
    public static let user = "recon"
    public static let database = "recon"

    public let port: UInt16
    private let cluster: Cluster

    public var url: String { "postgres://\(Self.user)@127.0.0.1:\(port)/\(Self.database)" }

    public init() throws {
        guard let programs = Self.binDirectory else {
            throw PostgresError(description: "PostgreSQL is not installed: no initdb and pg_ctl in /usr/lib/postgresql/*/bin or PATH")
        }
        var owner: passwd?
        if getuid() == 0 {
            guard let entry = getpwnam("postgres") else {
                throw PostgresError(description: "running as root, but there is no postgres user to run PostgreSQL as")
            }
            owner = entry.pointee
        }
        let directory = try Self.makeDirectory(traversableByOthers: owner != nil)
        let cluster = Cluster(programs: programs, directory: directory, user: owner.map { _ in "postgres" })
        do {
            if let owner, chown(directory, owner.pw_uid, owner.pw_gid) != 0 {
                throw PostgresError(description: "cannot give \(directory) to the postgres user: \(String(cString: strerror(errno)))")
            }
            try cluster.run("initdb", "-D", cluster.data, "-U", Self.user, "--auth=trust", "-E", "UTF8", "--locale=C")
            // Another process may take the free port before the server does: then try another.
            var port = try Slapd.freePort()
            for attempt in 1... {
                do {
                    try cluster.start(port: port)
                    break
                } catch where attempt < 3 && ((try? readFile(cluster.log)) ?? "").contains("could not bind") {
                    port = try Slapd.freePort()
                }
            }
            self.port = port
            try cluster.run("createdb", "-h", "127.0.0.1", "-p", String(port), "-U", Self.user, Self.database)
        } catch {
            cluster.destroy()
            throw error
        }
        self.cluster = cluster
    }

    deinit {
        cluster.destroy()
    }

    /// Stops the server (fast: open connections are ended), keeping its data.
    public func stop() throws {
        try cluster.run("pg_ctl", "-D", cluster.data, "-m", "fast", "-w", "stop")
    }

    /// Starts the server again after `stop()`, on the same port with the same data.
    public func start() throws {
        try cluster.start(port: port)
    }

    /// Runs SQL with `psql` in the database; the rows it prints, unaligned (columns separated by
    /// `|`), one a line, without headings or a final line break.
    @discardableResult
    public func execute(_ sql: String, database: String = PostgresServer.database) throws -> String {
        let output = try cluster.run("psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-p", String(port),
                                     "-U", Self.user, "-d", database, "-c", sql)
        return String(output.reversed().drop { $0 == "\n" }.reversed())
    }

    private static func findBinDirectory() -> String? {
        func hasPrograms(_ directory: String) -> Bool {
            ["initdb", "pg_ctl"].allSatisfy { FileManager.default.isExecutableFile(atPath: directory + "/" + $0) }
        }
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
            .sorted { $0.compare($1, options: .numeric) == .orderedDescending }
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        return (versions.map { "/usr/lib/postgresql/\($0)/bin" } + path).first(where: hasPrograms)
    }

    /// A new directory in the temporary directory, or in `/tmp` if the `postgres` user must reach
    /// it and cannot reach the temporary directory. Its name is short: the path of the server's
    /// Unix socket in it must fit in 107 bytes.
    private static func makeDirectory(traversableByOthers: Bool) throws -> String {
        var base = FileManager.default.temporaryDirectory.resolvingSymlinksInPath().path
        if traversableByOthers {
            var ancestor = ""
            let reachable = base.split(separator: "/").allSatisfy { component in
                ancestor += "/" + component
                var status = stat()
                return stat(ancestor, &status) == 0 && status.st_mode & 0o001 != 0
            }
            if !reachable { base = "/tmp" }
        }
        var template = Array((base + "/postgres-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw PostgresError(description: "cannot make a directory in \(base): \(String(cString: strerror(errno)))")
        }
        return String(cString: made)
    }
}

/// A cluster's directory, with its data, log and socket, and the running of its programs.
private struct Cluster: Sendable {
    let programs: String
    let directory: String
    /// The user to run the programs as, through `runuser`; nil to run them as ourselves.
    let user: String?

    var data: String { directory + "/data" }
    var log: String { directory + "/log" }

    func start(port: UInt16) throws {
        let options = ["-p \(port)", "-k '\(directory)'", "-c listen_addresses=127.0.0.1", "-c fsync=off",
                       "-c synchronous_commit=off", "-c full_page_writes=off", "-c max_connections=100"]
        try run("pg_ctl", "-D", data, "-l", log, "-w", "-o", options.joined(separator: " "), "start")
    }

    /// Stops the server, if running, at once, and removes the directory.
    func destroy() {
        let pidFile = data + "/postmaster.pid"
        if FileManager.default.fileExists(atPath: pidFile) {
            _ = try? run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
            // Should pg_ctl fail, the server must not outlive the test.
            if let text = try? readFile(pidFile), let line = text.split(separator: "\n").first, let pid = pid_t(line),
               pid > 0 {
                kill(pid, SIGKILL)
            }
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs a PostgreSQL program to its end, in the directory, without the `PG…` variables of
    /// our environment (such as `PGHOST` or `PGSSLMODE`); its standard output.
    @discardableResult
    func run(_ program: String, _ arguments: String...) throws -> String {
        var command = [FileManager.default.isExecutableFile(atPath: programs + "/" + program)
                       ? programs + "/" + program : program] + arguments
        let process = Process()
        if let user {
            command = ["/usr/sbin/runuser", "-u", user, "--"] + command
        }
        let shown = command.joined(separator: " ")
        if program == "pg_ctl" {
            // Foundation's Process (on Linux) hands its child one end of a socket pair, and takes the
            // child to have ended when every copy of it is closed. The server that `pg_ctl start`
            // leaves running would inherit a copy, and `waitUntilExit()` never return: close every
            // descriptor but the standard ones first. (`bash`: `dash` redirects descriptors 0 to 9 only.)
            command = ["/bin/bash", "-c", #"for fd in /proc/$$/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done; exec "$@""#,
                       "bash"] + command
        } else if !command[0].hasPrefix("/") {
            command = ["/usr/bin/env"] + command
        }
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        // Not the current directory, which the postgres user may not reach.
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PG") }
        process.standardInput = FileHandle.nullDevice
        let output = directory + "/\(program)-\(UUID().uuidString)"
        defer {
            try? FileManager.default.removeItem(atPath: output + ".out")
            try? FileManager.default.removeItem(atPath: output + ".err")
        }
        try launch(process, output: output + ".out", errors: output + ".err")
        process.waitUntilExit()
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            var description = "\(shown) failed with \(process.terminationReason == .exit ? "status" : "signal") \(process.terminationStatus)"
            for (name, file) in [("errors", output + ".err"), ("server log", program == "pg_ctl" ? log : nil)] {
                if let file, let text = try? readFile(file), !text.isEmpty {
                    description += "\n\(name):\n" + text.split(separator: "\n").suffix(30).joined(separator: "\n")
                }
            }
            throw PostgresError(description: description)
        }
        return (try? readFile(output + ".out")) ?? ""
    }
}

struct PostgresError: Error, CustomStringConvertible {
    let description: String
}
