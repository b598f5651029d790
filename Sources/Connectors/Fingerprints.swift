/// The 64-bit fingerprints of the strings seen so far, in 8 bytes each: a way to notice a
/// repeated account id among a million without keeping a million strings.
///
/// Two different strings share a fingerprint with a chance of about one in 2^64 a pair. So an
/// insertion that finds its fingerprint already there means "probably seen": the caller
/// confirms with the strings themselves (for a file, by reading it again up to that point),
/// which is needed only for a real repeat or that rare coincidence.
public struct Fingerprints {
    /// Open addressing with linear probing; 0 marks an empty slot.
    private var slots: [UInt64]
    private var mask: Int
    public private(set) var count = 0

    public init(capacity: Int = 1024) {
        var size = 16
        while size < capacity * 2 { size *= 2 }
        slots = Array(repeating: 0, count: size)
        mask = size - 1
    }

    /// Adds `fingerprint`; false when it was there already.
    public mutating func insert(_ fingerprint: UInt64) -> Bool {
        let key = fingerprint == 0 ? 1 : fingerprint
        if (count + 1) * 2 > slots.count { grow() }
        var index = Int(truncatingIfNeeded: key) & mask
        while true {
            let slot = slots[index]
            if slot == key { return false }
            if slot == 0 {
                slots[index] = key
                count += 1
                return true
            }
            index = (index + 1) & mask
        }
    }

    private mutating func grow() {
        let old = slots
        slots = Array(repeating: 0, count: old.count * 2)
        mask = slots.count - 1
        count = 0
        for key in old where key != 0 { _ = insert(key) }
    }

    /// The fingerprint of `text`: FNV-1a over its UTF-8 bytes, then mixed so that the low bits
    /// (which pick the slot) depend on every byte.
    public static func of(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        hash = (hash ^ (hash >> 30)) &* 0xbf58_476d_1ce4_e5b9
        hash = (hash ^ (hash >> 27)) &* 0x94d0_49bb_1331_11eb
        return hash ^ (hash >> 31)
    }
}
