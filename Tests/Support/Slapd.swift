import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A private OpenLDAP server for one test: its database (suffix `dc=example,dc=com`) in a new
/// temporary directory, loaded from an LDIF fixture, and `slapd` listening on a free port of
/// 127.0.0.1 as a child process. The server is stopped and the directory removed on release.
///
/// Anonymous searches may return at most 10 entries (paged or not), so that reading more
/// anonymously takes the paged results control. With TLS, the server also takes StartTLS and
/// listens for `ldaps://` on a second port, with a self-signed certificate made by `openssl`.
public final class Slapd {
    public static let executable = "/usr/sbin/slapd"
    public static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: executable) }
    public static let rootDN = "cn=admin,dc=example,dc=com"
    public static let rootPassword = "secret"
    /// The suffix entry and `ou=people` below it, in LDIF: the start of every fixture.
    public static let baseEntries = """
        dn: dc=example,dc=com
        objectClass: dcObject
        objectClass: organization
        dc: example
        o: Example

        dn: ou=people,dc=example,dc=com
        objectClass: organizationalUnit
        ou: people


        """

    public let port: UInt16
    /// The port of `ldaps://` connections; nil without TLS.
    public let tlsPort: UInt16?
    private let directory: String
    private let process = Process()

    public var url: String { "ldap://127.0.0.1:\(port)/" }
    public var tlsURL: String? { tlsPort.map { "ldaps://127.0.0.1:\($0)/" } }
    /// The server's certificate (for 127.0.0.1), which TLS clients must trust.
    public var certificateFile: String { directory + "/certificate.pem" }

    public init(fixture ldif: String, tls: Bool = false) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("slapd-\(UUID().uuidString)").path
        port = try Self.freePort()
        tlsPort = tls ? try Self.freePort() : nil
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if tls {
            try run("/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", directory + "/key.pem", "-out", certificateFile, "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1")
        }
        let tlsSettings = tls ? "TLSCertificateFile \(certificateFile)\nTLSCertificateKeyFile \(directory)/key.pem" : ""
        try writeFile(directory + "/slapd.conf", """
            include /etc/ldap/schema/core.schema
            include /etc/ldap/schema/cosine.schema
            include /etc/ldap/schema/inetorgperson.schema
            include /etc/ldap/schema/nis.schema
            pidfile \(directory)/slapd.pid
            \(tlsSettings)
            modulepath /usr/lib/ldap
            moduleload back_mdb
            database mdb
            suffix "dc=example,dc=com"
            rootdn "\(Self.rootDN)"
            rootpw \(Self.rootPassword)
            directory \(directory)
            limits anonymous size.soft=10 size.hard=10 size.pr=10 size.prtotal=unlimited

            """)
        try writeFile(directory + "/fixture.ldif", ldif)
        try run("/usr/sbin/slapadd", "-f", directory + "/slapd.conf", "-l", directory + "/fixture.ldif")

        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = ["-f", directory + "/slapd.conf", "-h", [url, tlsURL].compactMap { $0 }.joined(separator: " "), "-d", "0"]
        try launch(process, output: directory + "/output.log")
        let deadline = Date().addingTimeInterval(10)
        while !Self.accepts(port: port) {
            guard process.isRunning, Date() < deadline else {
                throw SlapdError(description: "slapd did not start on port \(port): \((try? readFile(directory + "/output.log")) ?? "")")
            }
            usleep(20_000)
        }
    }

    deinit {
        if process.isRunning {
            // Not `terminate()`: slapd inherits the test thread's signal mask, which blocks SIGTERM.
            // Its database is a throwaway, so it may be killed.
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs a tool, its output in `output.log`.
    private func run(_ tool: String, _ arguments: String...) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        try launch(process, output: directory + "/output.log")
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw SlapdError(description: "\(tool) failed: \((try? readFile(directory + "/output.log")) ?? "")")
        }
    }

    /// A TCP port of 127.0.0.1 that nothing listens on (the system's pick of a free one).
    public static func freePort() throws -> UInt16 {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0
            }
        }
        guard socket >= 0, bound else { throw SlapdError(description: "cannot find a free port") }
        return UInt16(bigEndian: address.sin_port)
    }

    /// Whether a TCP connection to `port` of 127.0.0.1 is accepted.
    private static func accepts(port: UInt16) -> Bool {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = loopback(port: port)
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    private static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }
}

struct SlapdError: Error, CustomStringConvertible {
    let description: String
}
