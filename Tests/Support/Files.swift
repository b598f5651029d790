import Foundation

/// Writes `text` to the file at `path`.
public func writeFile(_ path: String, _ text: String) throws {
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
}

/// The text of the file at `path`.
public func readFile(_ path: String) throws -> String {
    String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self)
}

/// Starts `process`, its standard output written to the file at `output` and its standard error
/// to the file at `errors` (by default, the same file), each emptied first.
func launch(_ process: Process, output: String, errors: String? = nil) throws {
    try writeFile(output, "")
    let outputHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
    process.standardOutput = outputHandle
    if let errors {
        try writeFile(errors, "")
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errors))
    } else {
        process.standardError = outputHandle
    }
    try process.run()
}

/// A folder of the test process's own for the files tests make (SQLite repositories, say),
/// removed with everything in it when the process exits: a test need not clean up after itself,
/// and a run of the suite leaves nothing behind in the system's temporary folder.
public enum Scratch {
    public static let directory: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("recon-tests-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        atexit(removeScratch)
        return path
    }()

    /// A path in the folder for a new file: `prefix`, a unique part, then `suffix`.
    public static func newPath(_ prefix: String, _ suffix: String = "") -> String {
        directory + "/" + prefix + UUID().uuidString + suffix
    }
}

private func removeScratch() { try? FileManager.default.removeItem(atPath: Scratch.directory) }
