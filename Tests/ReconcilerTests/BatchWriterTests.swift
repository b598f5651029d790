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

/// Work a run waits for (its index rows loading beside it) starts even when every Dispatch
/// worker is busy waiting: `recon serve`'s runs and parallel tests block workers that way, and
/// the global pool, as wide as the machine, does not grow for them (CI once hung 90 minutes).
@Suite struct BackgroundTests {
    @Test func workStartsWhileEveryDispatchWorkerIsBlocked() throws {
        let release = DispatchSemaphore(value: 0)
        let blockers = ProcessInfo.processInfo.activeProcessorCount * 32
        for _ in 0..<blockers { DispatchQueue.global().async { release.wait() } }
        defer { for _ in 0..<blockers { release.signal() } }
        let finished = DispatchSemaphore(value: 0)
        let work = Background { 42 }
        Thread.detachNewThread {
            if (try? work.value()) == 42 { finished.signal() }
        }
        #expect(finished.wait(timeout: .now() + 5) == .success)
    }

    @Test func anErrorIsThrownByEveryCallForTheValue() {
        let work = Background { () throws -> Int in throw RepositoryError("lost") }
        #expect(throws: RepositoryError.self) { try work.value() }
        #expect(throws: RepositoryError.self) { try work.value() }
    }
}
