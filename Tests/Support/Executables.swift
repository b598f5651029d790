import Foundation

/// The package's own executables (`recon`, `rulecheck`, `xpress`), which `swift build` puts
/// beside the test bundle.
public enum BuiltExecutable {
    /// The executable `name` beside the test bundle (or one folder up), nil when it is not built.
    public static func find(_ name: String) -> URL? {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [directory, directory.deletingLastPathComponent()] {
            let url = candidate.appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return nil
    }

    /// `url`, or an error saying to build the package first (tests that run an executable are
    /// enabled only when it was found, so this fails only if that guard is missing).
    public static func require(_ url: URL?) throws -> URL {
        guard let url else { throw NotBuilt() }
        return url
    }

    private struct NotBuilt: Error, CustomStringConvertible {
        var description: String { "the executable was not found beside the tests; run swift build first" }
    }
}
