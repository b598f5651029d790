import ArgumentParser
import Foundation

/// `recon-bench`: the project's performance figures, each against a baseline measured in the
/// same run.
@main
struct ReconBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recon-bench",
        abstract: "Measure the project against baselines taken in the same run (use a release build).",
        subcommands: [Interpreter.self])

    struct Interpreter: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Evaluations per second of the standard rules against the same logic in Swift.")

        @Option(help: "Evaluations per rule.") var iterations = 1_000_000

        func run() throws {
            let rows = try InterpreterBenchmark(iterations: iterations).run()
            print("rule                                      XPRESS eval/s     Swift eval/s   Swift/XPRESS")
            for row in rows {
                print(row.name.padding(toLength: 40, withPad: " ", startingAt: 0)
                      + String(format: "%15.0f  %15.0f  %12.1fx", row.xpressPerSecond, row.swiftPerSecond, row.ratio))
            }
        }
    }
}
