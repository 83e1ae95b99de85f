/// A single machine-readable line of `key=value` pairs, the last line a command prints.
///
/// Keys keep the order they were added in; values never contain spaces (they are replaced by `_`), so a
/// script can split the line on spaces and then on the first `=`.
public struct SummaryLine: CustomStringConvertible, Sendable {
    private var pairs: [(String, String)] = []

    public init() {}

    /// Adds a pair; floating-point values get `digits` decimals.
    public mutating func add(_ key: String, _ value: Double, digits: Int = 4) {
        pairs.append((key, Self.format(value, digits: digits)))
    }

    public mutating func add(_ key: String, _ value: some BinaryInteger) {
        pairs.append((key, String(value)))
    }

    public mutating func add(_ key: String, _ value: String) {
        pairs.append((key, value.isEmpty ? "-" : String(value.map { $0 == " " ? "_" : $0 })))
    }

    public var description: String {
        pairs.map { "\($0)=\($1)" }.joined(separator: " ")
    }

    /// Formats with a fixed number of decimals, without Foundation.
    public static func format(_ value: Double, digits: Int) -> String {
        guard value.isFinite else { return value.isNaN ? "nan" : (value < 0 ? "-inf" : "inf") }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let rounded = (abs(value) * scale).rounded()
        let whole = Int(rounded / scale)
        let fraction = Int(rounded - Double(whole) * scale)
        let sign = value < 0 && rounded != 0 ? "-" : ""
        guard digits > 0 else { return "\(sign)\(whole)" }
        let fractionText = String(fraction)
        return "\(sign)\(whole).\(String(repeating: "0", count: digits - fractionText.count))\(fractionText)"
    }

    /// Parses a summary line back into a dictionary (for tests and tools that read another command's output).
    public static func parse(_ line: Substring) -> [String: String] {
        var result: [String: String] = [:]
        for field in line.split(separator: " ") {
            guard let equals = field.firstIndex(of: "=") else { continue }
            result[String(field[..<equals])] = String(field[field.index(after: equals)...])
        }
        return result
    }
}
