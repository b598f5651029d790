import Connectors
import CPrefetch

/// A map from account id to `Value` sized for a run over a million accounts.
///
/// The ids and values sit in two dense arrays in insertion order, found through a table of
/// positions probed by the id's fingerprint. At a million ids this takes about half the
/// memory of a `Dictionary`, which keeps a key and a value for each of its 2^21 buckets. Each
/// id also gets a position, which parallel arrays (what a run has seen) can share.
struct AccountTable<Value> {
    private(set) var ids: [String] = []
    private(set) var values: [Value] = []
    /// Per slot: the position + 1 in the low 32 bits (0 marks an empty slot), the high half of
    /// the id's fingerprint above, so that most mismatches are told without reading the id.
    private var slots: [UInt64]
    private var mask: Int

    init(capacity: Int = 0) { self.init(capacity: capacity, placing: capacity) }

    /// A table for `capacity` ids that `appendUnplaced(_:_:)` brings: its slots are made once,
    /// by `placeAll()`. Made here as well they were 16 MB at a million ids, thrown away unused,
    /// and fresh memory costs more to fault in than to fill (1.7-9 us a page on this host).
    static func unplaced(capacity: Int) -> AccountTable { AccountTable(capacity: capacity, placing: 0) }

    private init(capacity: Int, placing: Int) {
        ids.reserveCapacity(capacity)
        values.reserveCapacity(capacity)
        var size = 16
        while size < placing * 2 { size *= 2 }
        slots = Array(repeating: 0, count: size)
        mask = size - 1
    }

    var count: Int { ids.count }

    /// Where `id` is, nil when it is not in the table. A caller looking the same id up in
    /// several tables passes its fingerprint (`Fingerprint.of(id)`) to each.
    func position(of id: String, fingerprint: UInt64? = nil) -> Int? {
        let (slot, _) = probe(id, fingerprint ?? Fingerprint.of(id))
        return slots[slot] == 0 ? nil : Self.position(in: slots[slot])
    }

    /// Asks for the slot an id with `fingerprint` is probed at first. At a million ids the
    /// table is larger than the processor's caches and each probe misses twice (its slot, then
    /// its id): a loop over many ids calls this some ids ahead of `position(of:fingerprint:)`,
    /// and `prefetchID(_:)` a few ids ahead, so that the misses overlap.
    func prefetchSlot(_ fingerprint: UInt64) {
        slots.withUnsafeBufferPointer { recon_prefetch($0.baseAddress! + (Int(truncatingIfNeeded: fingerprint) & mask)) }
    }

    /// Asks for the id in the slot an id with `fingerprint` is probed at first (best once
    /// `prefetchSlot(_:)` has brought the slot in).
    func prefetchID(_ fingerprint: UInt64) {
        let slot = slots[Int(truncatingIfNeeded: fingerprint) & mask]
        guard slot != 0 else { return }
        ids.withUnsafeBufferPointer { recon_prefetch($0.baseAddress! + Self.position(in: slot)) }
    }

    /// The positions of `ids`, as `position(of:)` gives them, asking for each id's slot 16 ids
    /// ahead and for the id in it 8 ahead; `fingerprints` are theirs when the caller has them.
    func positions(of ids: [String], fingerprints: [UInt64]? = nil) -> [Int?] {
        let fingerprints = fingerprints ?? ids.map(Fingerprint.of)
        for fingerprint in fingerprints.prefix(Self.prefetchDistance) { prefetchSlot(fingerprint) }
        return ids.indices.map { index in
            if index + Self.prefetchDistance < ids.count { prefetchSlot(fingerprints[index + Self.prefetchDistance]) }
            if index + Self.prefetchDistance / 2 < ids.count { prefetchID(fingerprints[index + Self.prefetchDistance / 2]) }
            return position(of: ids[index], fingerprint: fingerprints[index])
        }
    }

    /// How many ids ahead `positions(of:)` and `place` ask for slots.
    private static var prefetchDistance: Int { 16 }

    /// A used slot: the high half of the id's fingerprint, and its position + 1 (0 is empty).
    private static func slot(_ fingerprint: UInt64, position: Int) -> UInt64 { (fingerprint >> 32) << 32 | UInt64(position + 1) }

    /// The position a used slot holds.
    private static func position(in slot: UInt64) -> Int { Int(truncatingIfNeeded: slot & 0xffff_ffff) - 1 }

    /// The slot holding `id`, or the empty slot where it would go.
    private func probe(_ id: String, _ fingerprint: UInt64) -> (slot: Int, fingerprint: UInt64) {
        let tag = fingerprint >> 32
        var index = Int(truncatingIfNeeded: fingerprint) & mask
        while true {
            let slot = slots[index]
            if slot == 0 { return (index, fingerprint) }
            if slot >> 32 == tag && ids[Self.position(in: slot)] == id { return (index, fingerprint) }
            index = (index + 1) & mask
        }
    }

    subscript(id: String) -> Value? { position(of: id).map { values[$0] } }

    subscript(position position: Int) -> Value {
        get { values[position] }
        set { values[position] = newValue }
    }

    /// Sets the value of `id`, adding it when it is new; its position.
    @discardableResult
    mutating func set(_ value: Value, for id: String) -> Int {
        let (position, added) = add(id, value)
        if !added { values[position] = value }
        return position
    }

    /// Adds `id` with `value` when it is new; its position, and whether it was added (an id
    /// already there keeps its value). One probe of the table either way.
    mutating func add(_ id: String, _ value: @autoclosure () -> Value) -> (position: Int, added: Bool) {
        if (ids.count + 1) * 2 > slots.count { grow() }
        let (slot, fingerprint) = probe(id, Fingerprint.of(id))
        if slots[slot] != 0 { return (Self.position(in: slots[slot]), false) }
        slots[slot] = Self.slot(fingerprint, position: ids.count)
        ids.append(id)
        values.append(value())
        return (ids.count - 1, true)
    }

    /// Adds each entry whose id is new, as `add` does one at a time, but asks for every entry's
    /// slot first: at a million ids each insertion misses the caches, and asked for together
    /// the misses overlap (a run loads its tables a few hundred rows at a time). The entries
    /// whose id was there already (the first of two equal ids in `entries` counts as there),
    /// with the position of that id.
    mutating func add(_ entries: [(id: String, value: Value)]) -> [(entry: Int, position: Int)] {
        while (ids.count + entries.count) * 2 > slots.count { grow() }
        let fingerprints = entries.map { Fingerprint.of($0.id) }
        for fingerprint in fingerprints { prefetchSlot(fingerprint) }
        var repeated: [(entry: Int, position: Int)] = []
        for (index, entry) in entries.enumerated() {
            let (slot, fingerprint) = probe(entry.id, fingerprints[index])
            if slots[slot] != 0 {
                repeated.append((index, Self.position(in: slots[slot])))
                continue
            }
            slots[slot] = Self.slot(fingerprint, position: ids.count)
            ids.append(entry.id)
            values.append(entry.value)
        }
        return repeated
    }

    /// Only the entries whose id `include` accepts, in the same order.
    func filter(_ include: (String) -> Bool) -> AccountTable {
        var kept = AccountTable()
        for (id, value) in zip(ids, values) where include(id) { kept.set(value, for: id) }
        return kept
    }

    /// Appends `id` and its value without placing the id in the table: for loading ids known
    /// to be distinct (an index's rows, one per id), which `placeAll()` then places together.
    /// Until then the id is not found.
    mutating func appendUnplaced(_ id: consuming String, _ value: consuming Value) {
        ids.append(id)
        values.append(value)
    }

    /// Places the ids `appendUnplaced` left, growing the table as needed.
    mutating func placeAll() {
        var size = slots.count
        while ids.count * 2 > size { size *= 2 }
        place(size: size)
    }

    private mutating func grow() { place(size: slots.count * 2) }

    /// Places every id afresh in a table of `size` slots, asking for the slot of the id a few
    /// places ahead of the one being placed so that the misses overlap (see `prefetchSlot`).
    private mutating func place(size: Int) {
        slots = Array(repeating: 0, count: size)
        mask = size - 1
        let ahead = Self.prefetchDistance
        var upcoming = [UInt64](repeating: 0, count: ahead)  // the fingerprints of the next ids, by position % ahead
        for position in ids.indices.prefix(ahead) { upcoming[position] = Fingerprint.of(ids[position]) }
        for position in ids.indices {
            let fingerprint = upcoming[position % ahead]
            if position + ahead < ids.count {
                let next = Fingerprint.of(ids[position + ahead])
                upcoming[position % ahead] = next
                prefetchSlot(next)
            }
            var index = Int(truncatingIfNeeded: fingerprint) & mask
            while slots[index] != 0 { index = (index + 1) & mask }
            slots[index] = Self.slot(fingerprint, position: position)
        }
    }
}
