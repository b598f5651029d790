/// How an adapter that stores each attribute as one text cell (a CSV cell, a table column)
/// turns a cell into an attribute value and back.
protocol CellCoding {
    var name: String { get }
    var multiValueSeparator: String { get }
}

extension CellCoding {
    /// The attribute value of `cell`, or nil for an absent attribute: an empty cell, or a
    /// multi-valued cell with nothing between its separators.
    func value(ofCell cell: String, multiValued: Bool) -> AttributeValue? {
        if cell.isEmpty { return nil }
        guard multiValued else { return .single(cell) }
        let values = split(cell)
        return values.isEmpty ? nil : .multi(values)
    }

    /// The non-empty pieces of `cell` between separators, found on its UTF-8 bytes.
    private func split(_ cell: String) -> [String] {
        var cell = cell
        return cell.withUTF8 { bytes in
            pieces(of: bytes).map { String(decoding: UnsafeBufferPointer(rebasing: bytes[$0]), as: UTF8.self) }
        }
    }

    /// Where the non-empty pieces of a multi-valued cell's bytes are, between separators.
    func pieces(of bytes: UnsafeBufferPointer<UInt8>) -> [Range<Int>] {
        let separator = Array(multiValueSeparator.utf8)
        guard let first = separator.first else { return [0..<bytes.count] }
        var pieces: [Range<Int>] = []
        var start = 0, index = 0
        while index + separator.count <= bytes.count {
            if bytes[index] == first && bytes[index..<index + separator.count].elementsEqual(separator) {
                if index > start { pieces.append(start..<index) }
                index += separator.count
                start = index
            } else {
                index += 1
            }
        }
        if bytes.count > start { pieces.append(start..<bytes.count) }
        return pieces
    }

    /// The cell text of `value`: a list is joined with the separator. A value of a list that
    /// holds the separator is refused, since it would be read back as several values.
    func cell(for value: AttributeValue, attribute: String, account: String) throws -> String {
        switch value {
        case .single(let text):
            return text
        case .multi(let values):
            if let bad = values.first(where: { $0.contains(multiValueSeparator) }) {
                throw AdapterError(resource: name, message: "value '\(bad)' of multi-valued attribute '\(attribute)' contains the separator '\(multiValueSeparator)'", accountID: account)
            }
            return values.joined(separator: multiValueSeparator)
        }
    }

    /// Refuses a change that gives the id attribute another value than the account id.
    func checkIDAttribute(_ value: AttributeValue?, attribute: String, account: String) throws {
        guard value == .single(account) else {
            throw AdapterError(resource: name, message: "attribute '\(attribute)' holds the account id and cannot be given another value", accountID: account)
        }
    }

    /// Whether a disabled-attribute cell marks the account disabled (`true`, any case).
    func isDisabledMark(_ cell: String) -> Bool {
        cell.lowercased() == "true"
    }
}
