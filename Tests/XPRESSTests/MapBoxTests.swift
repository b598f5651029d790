import Testing
@testable import XPRESS

/// `MapBox` searches small maps key by key and indexes larger ones; both must behave as one
/// ordered map, across growing and shrinking past the limit.
@Suite struct MapBoxTests {
    @Test(arguments: [1, 8, 9, 30])
    func growsAndShrinksAsOneOrderedMap(size: Int) {
        let map = MapBox()
        var expected: [(String, Int64)] = []
        for index in 0..<size {
            map["key\(index)"] = .int(Int64(index))
            expected.append(("key\(index)", Int64(index)))
        }
        map["key0"] = .int(100)  // replacing keeps the position
        expected[0].1 = 100
        #expect(contents(map) == expected.map { "\($0.0)=\($0.1)" })
        #expect(map["missing"] == nil)

        // Remove every other key, from the back, crossing the limit on the way down.
        for index in stride(from: size - 1, through: 0, by: -2) {
            map["key\(index)"] = nil
            expected.removeAll { $0.0 == "key\(index)" }
            #expect(contents(map) == expected.map { "\($0.0)=\($0.1)" })
            for (key, value) in expected {
                guard case .int(let found)? = map[key] else { Issue.record("lost \(key) after removing key\(index)"); return }
                #expect(found == value)
            }
            #expect(map["key\(index)"] == nil)
        }
        map["again"] = .string("x")
        #expect(map.keys.last == "again" && map.count == expected.count + 1)
    }

    /// Keys compare unit by unit, as Java's do: precomposed and decomposed é are different keys.
    @Test func keysCompareExactly() {
        let map = MapBox()
        map["caf\u{E9}"] = .int(1)
        map["cafe\u{301}"] = .int(2)
        #expect(map.count == 2)
        guard case .int(1)? = map["caf\u{E9}"], case .int(2)? = map["cafe\u{301}"] else {
            Issue.record("the two spellings were merged")
            return
        }
    }

    private func contents(_ map: MapBox) -> [String] {
        map.entries.map { key, value in
            if case .int(let n) = value { "\(key)=\(n)" } else { "\(key)=?" }
        }
    }
}
