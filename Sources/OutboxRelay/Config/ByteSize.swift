/// Sizes as operators write them: plain bytes, or a whole number of KiB, MiB or GiB (binary
/// units only, so `16MiB` means what librdkafka's and PostgreSQL's sizes mean).
enum ByteSize {
    private static let units: [(name: String, shift: Int)] = [("GiB", 30), ("MiB", 20), ("KiB", 10), ("B", 0)]

    /// nil for anything else: decimal units (`MB`), fractions, negative or overflowing numbers.
    static func parse(_ text: String) -> Int? {
        let compact = text.filter { $0 != " " }
        let unit = units.first { compact.lowercased().hasSuffix($0.name.lowercased()) }
        let digits = compact.dropLast(unit?.name.count ?? 0)
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let number = Int(digits), number >= 0 else { return nil }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: 1 << (unit?.shift ?? 0))
        return overflow ? nil : bytes
    }

    /// In the largest unit that divides `bytes` exactly: `16MiB`; `1000` → `1000 B`.
    static func describe(_ bytes: Int) -> String {
        let unit = units.first { bytes != 0 && bytes % (1 << $0.shift) == 0 } ?? ("B", 0)
        return unit.shift == 0 ? "\(bytes) B" : "\(bytes >> unit.shift)\(unit.name)"
    }
}
