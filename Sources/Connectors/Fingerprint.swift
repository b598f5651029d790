import CPrefetch

/// The 64-bit fingerprint of a string: a stand-in for an account id, in 8 bytes, for noticing
/// a repeated id among a million without keeping a million strings, or for probing a table.
///
/// Two different strings share a fingerprint with a chance of about one in 2^64 a pair, so a
/// repeated fingerprint means "probably seen": the caller confirms with the strings themselves.
public enum Fingerprint {
    /// The UTF-8 bytes eight at a time, each word multiplied in, then mixed so that the low
    /// bits (which pick a slot) depend on every byte. A run fingerprints each account id four
    /// times; byte at a time through `utf8`, that was 4% of an unchanged run's instructions.
    public static func of(_ text: String) -> UInt64 {
        text.utf8.withContiguousStorageIfAvailable(of) ?? of(Array(text.utf8))
    }

    /// The fingerprint of a string's UTF-8 bytes (what `of(_:)` gives for the string).
    public static func of(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var hash = 0xcbf2_9ce4_8422_2325 ^ UInt64(truncatingIfNeeded: bytes.count)
        guard let base = bytes.baseAddress else { return mixed(hash) }
        var offset = 0
        while offset + 8 <= bytes.count {
            let word = UInt64(littleEndian: UnsafeRawPointer(base + offset).loadUnaligned(as: UInt64.self))
            hash = (hash ^ word) &* 0x9e37_79b9_7f4a_7c15
            hash ^= hash >> 32
            offset += 8
        }
        if offset < bytes.count {
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while offset < bytes.count {
                tail |= UInt64(base[offset]) << shift
                shift += 8
                offset += 1
            }
            hash = (hash ^ tail) &* 0x9e37_79b9_7f4a_7c15
        }
        return mixed(hash)
    }

    private static func of(_ bytes: [UInt8]) -> UInt64 { bytes.withUnsafeBufferPointer(of) }

    /// The finalizer of SplitMix64: every input bit reaches every output bit.
    private static func mixed(_ value: UInt64) -> UInt64 {
        var hash = (value ^ (value >> 30)) &* 0xbf58_476d_1ce4_e5b9
        hash = (hash ^ (hash >> 27)) &* 0x94d0_49bb_1331_11eb
        return hash ^ (hash >> 31)
    }
}

/// A set of fingerprints in one open-addressed table. Fingerprints are already well mixed, so
/// unlike `Set<UInt64>` it does not hash them again: noting a million account ids took a
/// quarter of a second of a flat-file run's reading thread that way.
public struct FingerprintSet {
    /// The fingerprints, each at its low bits' slot or the next free one; 0 marks a free slot
    /// (the fingerprint 0 itself is noted in `containsZero`).
    private var slots = [UInt64](repeating: 0, count: 1024)
    private var count = 0
    private var containsZero = false

    public init() {}

    /// Asks for the slot `insert` looks at first for `fingerprint` (see `AccountTable`'s
    /// prefetching): at a million ids the table is larger than the caches.
    public func prefetch(_ fingerprint: UInt64) {
        slots.withUnsafeBufferPointer { recon_prefetch($0.baseAddress! + (Int(truncatingIfNeeded: fingerprint) & ($0.count - 1))) }
    }

    /// Adds `fingerprint`; false when it was in the set already.
    public mutating func insert(_ fingerprint: UInt64) -> Bool {
        if fingerprint == 0 {
            defer { containsZero = true }
            return !containsZero
        }
        if (count + 1) * 2 > slots.count { grow() }
        let mask = slots.count - 1
        var index = Int(truncatingIfNeeded: fingerprint) & mask
        while slots[index] != 0 {
            if slots[index] == fingerprint { return false }
            index = (index + 1) & mask
        }
        slots[index] = fingerprint
        count += 1
        return true
    }

    private mutating func grow() {
        let old = slots
        slots = [UInt64](repeating: 0, count: old.count * 2)
        let mask = slots.count - 1
        for fingerprint in old where fingerprint != 0 {
            var index = Int(truncatingIfNeeded: fingerprint) & mask
            while slots[index] != 0 { index = (index + 1) & mask }
            slots[index] = fingerprint
        }
    }
}
