import Foundation
import Repository
import Testing
@testable import Reconciler

/// A run's batches are written on a thread of their own, one at a time and in order; a failed
/// batch fails the run at its next write or wait, and nothing after it is written.
@Suite struct BatchWriterTests {
    final class Log: @unchecked Sendable {
        private let lock = NSLock()
        private var entries: [String] = []
        func add(_ entry: String) { lock.lock(); entries.append(entry); lock.unlock() }
        var all: [String] { lock.lock(); defer { lock.unlock() }; return entries }
    }

    func batch(_ id: String) -> Batch { Batch(writes: IndexWrites(), removals: [id]) }

    @Test func batchesAreWrittenOneAtATimeInOrder() throws {
        let writer = BatchWriter(), log = Log()
        for id in ["1", "2", "3"] {
            try writer.submit(batch(id)) { batch in
                log.add("start \(batch.removals[0])")
                Thread.sleep(forTimeInterval: 0.01)
                log.add("end \(batch.removals[0])")
            }
        }
        try writer.wait()
        #expect(log.all == ["start 1", "end 1", "start 2", "end 2", "start 3", "end 3"])
    }

    @Test func aFailedBatchIsReportedAndStopsTheNextOne() throws {
        let writer = BatchWriter(), log = Log()
        try writer.submit(batch("1")) { _ in throw RepositoryError("disk full") }
        #expect(throws: RepositoryError.self) { try writer.submit(batch("2")) { _ in log.add("written 2") } }
        try writer.wait()
        #expect(log.all.isEmpty)
    }
}
