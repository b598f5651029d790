/// How a resource that stores each attribute as one text cell (a CSV file, a database table)
/// lays out a row: its columns, which holds the id, which are multi-valued, which marks a
/// disabled account.
final class RowLayout: Sendable {
    let coding: any CellCoding & Sendable
    let columns: [String]
    /// Each column's name as the digest starts from it (`Digest.nameHash`).
    let nameHashes: [UInt64]
    let multiValued: [Bool]
    let idIndex: Int
    let disabledIndex: Int?

    init(coding: any CellCoding & Sendable, columns: [String], idIndex: Int, multiValued: [Bool], disabledIndex: Int?) {
        self.coding = coding
        self.columns = columns
        self.idIndex = idIndex
        nameHashes = columns.map { Array($0.utf8).withUnsafeBufferPointer(Digest.nameHash) }
        self.multiValued = multiValued
        self.disabledIndex = disabledIndex
    }
}

/// Rows as read from a resource: every cell's bytes in one array (`CSVCells`; an empty cell
/// for a missing or NULL one), and where each row's cells start. Shared, unchanged, by the
/// accounts streamed from it, which are built from it when asked for.
final class RowBatch: AccountRows {
    private let layout: RowLayout
    private let cells: CSVCells
    /// Where each row's cells start among `cells`; last, where the last row's end.
    private let firstCells: [Int]

    init(layout: RowLayout, cells: CSVCells, firstCells: [Int]) {
        self.layout = layout
        self.cells = cells
        self.firstCells = firstCells
    }

    var count: Int { firstCells.count - 1 }

    func cellCount(of row: Int) -> Int { firstCells[row + 1] - firstCells[row] }

    /// Cell `column` of `row` (which has it).
    func cell(_ column: Int, of row: Int) -> String { cells.text(of: firstCells[row] + column) }

    func cells(of row: Int) -> [String] { (0..<cellCount(of: row)).map { cell($0, of: row) } }

    /// The account of `row`: every non-empty cell an attribute (the id column's holding `id`).
    func account(at row: Int, id: String) -> Account {
        cells.bytes.withUnsafeBufferPointer { bytes in
            let first = firstCells[row], count = cellCount(of: row)
            var attributes: [(name: String, value: AttributeValue)] = []
            attributes.reserveCapacity(count)
            var disabled = false
            for column in 0..<count {
                let range = cells.range(of: first + column)
                if range.isEmpty { continue }  // an absent attribute
                let cell = column == layout.idIndex ? id : String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
                if column == layout.disabledIndex { disabled = layout.coding.isDisabledMark(cell) }
                if let value = layout.coding.value(ofCell: cell, multiValued: layout.multiValued[column]) {
                    attributes.append((layout.columns[column], value))
                }
            }
            return Account(id: id, attributes: attributes, disabled: disabled)
        }
    }

    /// `Digest.value(of: account(at: row, id: id))`, from the row's bytes: cells are UTF-8,
    /// and a string's UTF-8 is the bytes it was made from.
    func digest(of row: Int, id: String) -> UInt64 {
        cells.bytes.withUnsafeBufferPointer { bytes in
            var attributes = Digest.Attributes()
            let first = firstCells[row], count = cellCount(of: row)
            for column in 0..<count {
                let range = cells.range(of: first + column)
                if range.isEmpty { continue }  // an absent attribute
                let value = UnsafeBufferPointer(rebasing: bytes[range])
                if layout.multiValued[column] {
                    let pieces = layout.coding.pieces(of: value)
                    if !pieces.isEmpty {
                        attributes.add(nameHash: layout.nameHashes[column], values: pieces.lazy.map { UnsafeBufferPointer(rebasing: value[$0]) })
                    }
                } else {
                    attributes.add(nameHash: layout.nameHashes[column], value: value)
                }
            }
            let disabled = layout.disabledIndex.map { $0 < count && layout.coding.isDisabledMark(cell($0, of: row)) } ?? false
            var id = id
            return id.withUTF8 { attributes.value(id: $0, disabled: disabled) }
        }
    }
}
