/// The 64-bit fingerprint of a string: a stand-in for an account id, in 8 bytes, for noticing
/// a repeated id among a million without keeping a million strings, or for probing a table.
///
/// Two different strings share a fingerprint with a chance of about one in 2^64 a pair, so a
/// repeated fingerprint means "probably seen": the caller confirms with the strings themselves.
public enum Fingerprint {
    /// FNV-1a over the UTF-8 bytes, then mixed so that the low bits (which pick a slot) depend
    /// on every byte.
    public static func of(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        hash = (hash ^ (hash >> 30)) &* 0xbf58_476d_1ce4_e5b9
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
