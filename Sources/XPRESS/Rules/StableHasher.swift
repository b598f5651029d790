import XMLSource

/// A 64-bit FNV-1a hash that is the same in every process and every version, for digests that
/// are stored and compared later (Swift's `Hasher` is seeded afresh in each process). Not for
/// defending against deliberate collisions: for noticing that something changed.
public struct StableHasher: Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    /// Adds the UTF-8 bytes of `text`, then a byte no UTF-8 text holds, so that ("ab", "c")
    /// and ("a", "bc") differ.
    public mutating func combine(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            for byte in bytes { add(byte) }
        }
        add(0xFF)
    }

    /// Adds the eight bytes of `number`.
    public mutating func combine(_ number: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) { add(UInt8(truncatingIfNeeded: number >> UInt64(shift))) }
    }

    private mutating func add(_ byte: UInt8) {
        value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
    }
}

extension XMLElement {
    /// A digest of the element as written: its name, attributes (in order), text and child
    /// elements, recursively. Comments are left out, and so is text that is only white space
    /// beside child elements (indentation), so that neither changes the digest.
    var sourceDigest: UInt64 {
        var hasher = StableHasher()
        addSource(to: &hasher)
        return hasher.value
    }

    private func addSource(to hasher: inout StableHasher) {
        if let prefix { hasher.combine(prefix) }
        hasher.combine(name)
        for attribute in attributes {
            hasher.combine(attribute.name)
            hasher.combine(attribute.value)
        }
        let children = elements
        let text = self.text
        // Bytes, not characters: this runs for every rule a lint loads.
        let indentation = !children.isEmpty && text.utf8.allSatisfy { $0 == 0x20 || $0 == 0x0A || $0 == 0x09 || $0 == 0x0D }
        hasher.combine(indentation ? "" : text)
        hasher.combine(UInt64(children.count))
        for child in children { child.addSource(to: &hasher) }
    }
}
