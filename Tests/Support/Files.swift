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
