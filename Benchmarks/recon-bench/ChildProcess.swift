import Foundation

/// A program run to its end for a timing: started with `posix_spawn` and reaped with
/// `waitpid`, so the time ends when the program does. Foundation's `Process.waitUntilExit()`
/// notices an exit only at a later turn of its run loop, which rounded sub-second timings up to
/// a multiple of 50 ms (the linter benchmark measured xmllint's 0.085 s as 0.102 s).
enum ChildProcess {
    struct Outcome {
        let status: Int32
        let output: Data
    }

    /// Runs `path` with `arguments`, writes `input`
    /// to its standard input, and returns its exit status and standard output (discarded
    /// unless `captureOutput`). Standard error is discarded. `input` is written whole before
    /// the output is read: keep it small (a script), or a program that answers early blocks.
    static func run(_ path: String, _ arguments: [String], input: Data? = nil, captureOutput: Bool = false) throws -> Outcome {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }

        let inputPipe = input == nil ? nil : try pipe()
        let outputPipe = captureOutput ? try pipe() : nil
        if let inputPipe {
            posix_spawn_file_actions_adddup2(&actions, inputPipe.read, 0)
            posix_spawn_file_actions_addclose(&actions, inputPipe.write)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        if let outputPipe {
            posix_spawn_file_actions_adddup2(&actions, outputPipe.write, 1)
            posix_spawn_file_actions_addclose(&actions, outputPipe.read)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)

        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, path, &actions, nil, argv, environ)
        if let inputPipe { close(inputPipe.read) }
        if let outputPipe { close(outputPipe.write) }
        guard spawned == 0 else {
            [inputPipe?.write, outputPipe?.read].compactMap { $0 }.forEach { close($0) }
            throw BenchmarkError("cannot start \(path): \(String(cString: strerror(spawned)))")
        }

        if let input, let inputPipe {
            let writer = FileHandle(fileDescriptor: inputPipe.write, closeOnDealloc: true)
            try writer.write(contentsOf: input)
            try writer.close()
        }
        var output = Data()
        if let outputPipe {
            let reader = FileHandle(fileDescriptor: outputPipe.read, closeOnDealloc: true)
            output = try reader.readToEnd() ?? Data()
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let exited = status & 0x7f == 0
        return Outcome(status: exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), output: output)
    }

    private static func pipe() throws -> (read: Int32, write: Int32) {
        var ends: [Int32] = [0, 0]
        guard Glibc.pipe(&ends) == 0 else { throw BenchmarkError("pipe: \(String(cString: strerror(errno)))") }
        return (ends[0], ends[1])
    }
}
