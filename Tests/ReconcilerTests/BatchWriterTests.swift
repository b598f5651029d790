import Connectors
import Foundation
import Repository
import Testing
@testable import Reconciler

/// A run's batches are written on a thread of their own, one at a time and in order, with a
/// few queued behind the one being written; a failed batch fails the run at its next write or
/// wait, and nothing queued after it is written.
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
        for id in ["1", "2", "3", "4", "5", "6"] {
            try writer.submit(batch(id)) { batch in
                log.add("start \(batch.removals[0])")
                Thread.sleep(forTimeInterval: 0.01)
                log.add("end \(batch.removals[0])")
            }
        }
        try writer.wait()
        #expect(log.all == (1...6).flatMap { ["start \($0)", "end \($0)"] })
    }

    @Test func aFailedBatchStopsTheBatchesQueuedBehindIt() throws {
        let writer = BatchWriter(depth: 4), log = Log()
        try writer.submit(batch("1")) { _ in
            Thread.sleep(forTimeInterval: 0.05)
            throw RepositoryError("disk full")
        }
        for id in ["2", "3"] {  // queued while the first is being written
            try writer.submit(batch(id)) { batch in log.add("written \(batch.removals[0])") }
        }
        #expect(throws: RepositoryError.self) { try writer.wait() }
        #expect(throws: RepositoryError.self) { try writer.submit(batch("4")) { _ in log.add("written 4") } }
        #expect(throws: RepositoryError.self, "the failure stays") { try writer.wait() }
        #expect(log.all.isEmpty)
    }

    @Test func submittingWaitsWhileTheQueueIsFull() throws {
        let writer = BatchWriter(depth: 2), release = DispatchSemaphore(value: 0), returned = DispatchSemaphore(value: 0)
        try writer.submit(batch("1")) { _ in release.wait() }
        try writer.submit(batch("2")) { _ in }
        Thread.detachNewThread {
            try? writer.submit(batch("3")) { _ in }
            returned.signal()
        }
        #expect(returned.wait(timeout: .now() + 0.1) == .timedOut, "two batches wait already")
        release.signal()
        #expect(returned.wait(timeout: .now() + 5) == .success)
        try writer.wait()
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

/// The resource's accounts are read ahead on another queue: the run must see exactly what the
/// source gives, in order, its error after the accounts before it, and a run that stops early
/// must stop the reader.
@Suite struct ReadAheadTests {
    /// `count` accounts `a0`, `a1`, ..., then `failure` (if any), counting the reads.
    final class Source: AccountStream, @unchecked Sendable {
        let count: Int?
        let failure: (any Error)?
        private let lock = NSLock()
        private var produced = 0
        init(count: Int?, failure: (any Error)? = nil) { self.count = count; self.failure = failure }
        var reads: Int { lock.lock(); defer { lock.unlock() }; return produced }
        func next() throws -> Account? {
            lock.lock(); defer { lock.unlock() }
            if let count, produced == count {
                if let failure { throw failure }
                return nil
            }
            produced += 1
            return Account(id: "a\(produced - 1)", attributes: [], disabled: false)
        }
    }

    func drain(_ stream: ReadAhead) throws -> [String] {
        var ids: [String] = []
        while let account = try stream.next() { ids.append(account.id) }
        return ids
    }

    @Test(arguments: [(0, 512, 8), (1, 512, 8), (511, 512, 8), (512, 512, 8), (513, 512, 8), (5_000, 512, 8), (100, 1, 1), (100, 3, 1)])
    func accountsComeInTheSourcesOrder(count: Int, batchSize: Int, depth: Int) throws {
        let stream = ReadAhead(Source(count: count), batchSize: batchSize, depth: depth)
        #expect(try drain(stream) == (0..<count).map { "a\($0)" })
        #expect(try stream.next() == nil, "the end stays the end")
    }

    @Test func theSourcesErrorComesAfterTheAccountsBeforeIt() throws {
        let stream = ReadAhead(Source(count: 1_000, failure: AdapterError(resource: "R", message: "duplicate id")), batchSize: 64, depth: 2)
        var ids: [String] = []
        let error = #expect(throws: AdapterError.self) {
            while let account = try stream.next() { ids.append(account.id) }
        }
        #expect(ids == (0..<1_000).map { "a\($0)" })
        #expect(error?.message == "duplicate id")
    }

    @Test func closingStopsTheReader() throws {
        let source = Source(count: nil)  // endless
        let stream = ReadAhead(source, batchSize: 16, depth: 2)
        for _ in 0..<10 { _ = try stream.next() }
        stream.close()
        Thread.sleep(forTimeInterval: 0.05)
        let reads = source.reads
        Thread.sleep(forTimeInterval: 0.05)
        #expect(source.reads == reads, "the reader stopped")
        #expect(reads <= 16 * 4, "it read at most a few batches ahead")
        #expect(try stream.next() == nil)
    }
}
