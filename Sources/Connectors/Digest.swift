/// A digest of an account's attributes, to notice changes between runs. Attributes are hashed
/// one by one and summed, so that their order (a CSV file's columns) does not matter and no
/// account's attributes need sorting.
///
/// The digest is of UTF-8 bytes, so that a resource can compute it from the bytes it reads
/// (`StreamedAccount`) and get the number a built `Account` gives. Digests are stored in the
/// Account Index: the numbers must stay the same from version to version.
public enum Digest {
    /// The digest as the index stores it (hexadecimal).
    public static func of(_ account: Account) -> String { String(value(of: account), radix: 16) }

    /// The digest as a number (what a run compares).
    public static func value(of account: Account) -> UInt64 {
        var attributes = Attributes()
        for attribute in account.attributes {
            switch attribute.value {
            case .single(let value): attributes.add(name: attribute.name, values: CollectionOfOne(value))
            case .multi(let values): attributes.add(name: attribute.name, values: values)
            }
        }
        var id = account.id
        return id.withUTF8 { attributes.value(id: $0, disabled: account.disabled) }
    }

    /// What the hash of an attribute named `name` starts from: computed once for a column that
    /// every account of a resource has.
    public static func nameHash(_ name: UnsafeBufferPointer<UInt8>) -> UInt64 { fnv(name) }

    /// The attributes of one account, added in any order.
    public struct Attributes {
        private var sum: UInt64 = 0

        public init() {}

        /// Adds an attribute of one value, whose name gives `nameHash`.
        public mutating func add(nameHash: UInt64, value: UnsafeBufferPointer<UInt8>) {
            add(fnv(value, nameHash))
        }

        /// Adds an attribute of `values`, whose name gives `nameHash`.
        public mutating func add(nameHash: UInt64, values: some Sequence<UnsafeBufferPointer<UInt8>>) {
            var one = nameHash
            for value in values { one = fnv(value, one) }
            add(one)
        }

        mutating func add(name: String, values: some Sequence<String>) {
            var name = name
            var one = name.withUTF8 { fnv($0) }
            for value in values {
                var value = value
                one = value.withUTF8 { fnv($0, one) }
            }
            add(one)
        }

        private mutating func add(_ attribute: UInt64) {
            sum &+= (attribute ^ (attribute >> 29)) &* 0xbf58_476d_1ce4_e5b9
        }

        /// The digest of an account with these attributes.
        public func value(id: UnsafeBufferPointer<UInt8>, disabled: Bool) -> UInt64 {
            let flag = UInt8(ascii: disabled ? "1" : "0")
            let hash = withUnsafeBytes(of: flag) { fnv(id, fnv($0.bindMemory(to: UInt8.self))) }
            return (hash ^ sum) &* 0x100_0000_01b3
        }
    }

    /// FNV-1a of `bytes` and a terminator, continuing from `hash`. A run hashes every attribute
    /// of every account, in place (stepping through a string's `utf8` cost twice as much).
    private static func fnv(_ bytes: UnsafeBufferPointer<UInt8>, _ hash: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
        var hash = hash
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return (hash ^ 0xff) &* 0x100_0000_01b3
    }
}
