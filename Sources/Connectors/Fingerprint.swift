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
