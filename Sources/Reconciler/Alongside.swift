import Connectors
import Foundation
import Synchronization

// Work a run hands to the other core: the index rows loading while links load, the resource's
// accounts read ahead while they are classified, the correlation of the accounts nobody owns.

/// Work started alongside now (`runAlongside`), its result collected later.
final class Background<Value>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    /// Written by the working thread before it signals `done`.
    private var result: Result<Value, any Error>?

    init(_ work: @escaping @Sendable () throws -> Value) {
        runAlongside(named: "recon.background") { [self] in
            result = Result(catching: work)
            done.signal()
        }
    }

    /// Waits for the work; its value, or its error thrown.
    func value() throws -> Value {
        done.wait()
        done.signal()  // later calls return at once
        return try result!.get()
    }
}

/// Runs `body` on a serial queue of its own, for work that others block on (`Background`, the
/// daemon's runs). Not on `DispatchQueue.global()`: that pool is only as wide as the machine
/// has cores and does not grow when its workers block, so if every worker is waiting for such
/// work (runs started by `recon serve`, parallel tests), the work stays queued behind them
/// forever. A queue of its own gets a thread whatever the pool is doing, and reuses Dispatch's
/// idle threads (and their malloc arenas) rather than starting one per call.
func runAlongside(named name: String, _ body: @escaping @Sendable () -> Void) {
    DispatchQueue(label: name).async(execute: body)
}

/// A stream read ahead on a queue of its own (`runAlongside`), a batch at a time, so that
/// reading and parsing a resource's accounts overlaps classifying them. Accounts come in the
/// source's order; the source's error comes after the accounts read before it. At most
/// `depth` batches wait, so memory stays small whatever the resource holds.
///
/// The reading side holds the source until it ends or `close()` is called: a consumer that
/// stops early must call `close()` (the reader then stops after its current batch).
///
/// With `building`, accounts that the source streams as rows are built on the reading side:
/// for a consumer that needs nearly every account (a first run), not the one thread that
/// records them all.
final class ReadAhead: AccountStream, @unchecked Sendable {
    private let condition = NSCondition()
    // Guarded by `condition`:
    private var ready: [[StreamedAccount]] = []
    private var finished = false
    private var failure: (any Error)?
    private var closed = false
    // The consuming thread's own:
    private var current: [StreamedAccount] = []
    private var index = 0

    init(_ source: any AccountStream, building: Bool = false, batchSize: Int = 512, depth: Int = 8) {
        let source = UncheckedSource(stream: source)
        runAlongside(named: "recon.read-ahead") { [self] in read(source, building: building, batchSize: batchSize, depth: depth) }
    }

    func next() throws -> Account? { try nextStreamed()?.account }

    func nextStreamed() throws -> StreamedAccount? {
        if index == current.count {
            condition.lock()
            while ready.isEmpty && !finished && !closed { condition.wait() }
            guard !ready.isEmpty && !closed else {
                let failure = self.failure
                condition.unlock()
                if let failure { throw failure }
                return nil
            }
            current = ready.removeFirst()
            index = 0
            condition.signal()  // room for the reader
            condition.unlock()
        }
        defer { index += 1 }
        return current[index]
    }

    /// Stops the reader after its current batch; the stream ends for the consumer, which
    /// calls this (from the thread that calls `next()`).
    func close() {
        current = []
        index = 0
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    private func read(_ source: UncheckedSource, building: Bool, batchSize: Int, depth: Int) {
        var stream = source.stream
        var batch: [StreamedAccount] = []
        batch.reserveCapacity(batchSize)
        var failure: (any Error)?
        do {
            while let account = try stream.nextStreamed() {
                batch.append(building ? account.built() : account)
                guard batch.count == batchSize else { continue }
                condition.lock()
                while ready.count >= depth && !closed { condition.wait() }
                if closed { condition.unlock(); return }
                ready.append(batch)
                condition.signal()
                condition.unlock()
                batch = []
                batch.reserveCapacity(batchSize)
            }
        } catch {
            failure = error
        }
        condition.lock()
        if !batch.isEmpty { ready.append(batch) }
        self.failure = failure
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// The source, handed to the reading queue; only that queue uses it from then on.
    private struct UncheckedSource: @unchecked Sendable {
        let stream: any AccountStream
    }
}

/// `transform` applied to every element, the elements shared among the machine's cores; the
/// results in the elements' order. The calling thread takes part (`concurrentPerform`), so the
/// work finishes even when no other thread is free. With fewer than `minimumPerCore` elements
/// for each core, the calling thread does it all: handing work over costs a few microseconds.
func mapOnAllCores<Element, Transformed>(_ elements: [Element], minimumPerCore: Int = 4,
                                         _ transform: (Element) -> Transformed) -> [Transformed] {
    let cores = min(processorCount, elements.count / max(1, minimumPerCore))
    guard cores > 1 else { return elements.map(transform) }
    return withoutActuallyEscaping(transform) { transform in
        let shared = SharedMap(elements: elements, transform: transform)
        DispatchQueue.concurrentPerform(iterations: cores) { _ in shared.work() }
        return shared.results()
    }
}

/// The cores this process may use, read once: `activeProcessorCount` asks the kernel each time.
private let processorCount = ProcessInfo.processInfo.activeProcessorCount

/// The state the threads of `mapOnAllCores` share: each takes the next element by an atomic
/// counter (correlating one account may cost ten times another) and writes its result in that
/// element's slot, which no other thread touches.
private final class SharedMap<Element, Transformed>: @unchecked Sendable {
    private let elements: [Element]
    private let transform: (Element) -> Transformed
    private let slots: UnsafeMutableBufferPointer<Transformed>
    private let next = Atomic<Int>(0)

    init(elements: [Element], transform: @escaping (Element) -> Transformed) {
        self.elements = elements
        self.transform = transform
        slots = .allocate(capacity: elements.count)
    }

    func work() {
        while case let index = next.add(1, ordering: .relaxed).oldValue, index < elements.count {
            (slots.baseAddress! + index).initialize(to: transform(elements[index]))
        }
    }

    /// The results, once every thread's `work` returned; the slots are moved out.
    func results() -> [Transformed] {
        defer { slots.deallocate() }
        return Array(unsafeUninitializedCapacity: elements.count) { buffer, count in
            _ = buffer.moveInitialize(fromContentsOf: slots)
            count = elements.count
        }
    }
}
