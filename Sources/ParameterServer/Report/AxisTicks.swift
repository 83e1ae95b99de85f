import FoundationEssentials
import Glibc

/// Round tick values for a chart's axis: multiples of a step of 1, 2 or 5 x 10^k that cover the data,
/// the first at or below its least value and the last at or above its greatest, so the axis runs
/// from the first tick to the last.
public struct AxisTicks: Sendable, Equatable {
    /// How tick labels are written.
    public enum Unit: Sendable {
        /// Plain numbers: seconds, percentages, losses.
        case plain
        /// Counts, with k, M and G for thousands, millions and billions.
        case count
        /// Bytes, in B, KB, MB or GB (powers of 1000, which keep round ticks round).
        case bytes
    }

    /// The ticks, ascending; at least two.
    public let values: [Double]
    /// The distance between neighbouring ticks: 1, 2 or 5 x 10^exponent.
    public let step: Double
    /// The step's leading digit (1, 2 or 5) and power of ten.
    let mantissa: Int
    let exponent: Int

    /// Where the axis starts and ends.
    public var lower: Double { values[0] }
    public var upper: Double { values[values.count - 1] }

    /// About `count` round ticks covering `min...max` (never more than `count + 1`, and at least
    /// two). With `integers`, the step is at least 1, for things that come in whole numbers. A range
    /// of one value is widened around it (to 0...1 for zero); values that are not finite are left out
    /// (0...1 when none is left).
    public static func nice(min: Double, max: Double, count: Int = 5, integers: Bool = false) -> AxisTicks {
        var (low, high) = (Swift.min(min, max), Swift.max(min, max))
        if !low.isFinite || !high.isFinite {
            let finite = [min, max].filter(\.isFinite)
            (low, high) = finite.isEmpty ? (0, 1) : (finite.min()!, finite.max()!)
        }
        if high - low <= Swift.max(abs(low), abs(high)) * 1e-12 {
            if low == 0 && high == 0 {
                (low, high) = (0, 1)
            } else {
                // Half a unit of the value's leading digit either side: 97.3 gives 92.3...102.3.
                let unit = power(Int(log10(Swift.max(abs(low), abs(high))).rounded(.down)))
                (low, high) = (low - unit / 2, high + unit / 2)
            }
        }
        let span = high - low
        guard span.isFinite else { return AxisTicks(lowIndex: 0, highIndex: 1, mantissa: 1, exponent: 0) }
        let raw = span / Double(Swift.max(1, count - 1))
        var exponent = Int(log10(raw).rounded(.down))
        let fraction = raw / power(exponent)
        var mantissa: Int
        switch fraction {
        case ...(1 + 1e-9): mantissa = 1
        case ...(2 + 1e-9): mantissa = 2
        case ...(5 + 1e-9): mantissa = 5
        default: (mantissa, exponent) = (1, exponent + 1)
        }
        if integers && exponent < 0 { (mantissa, exponent) = (1, 0) }
        let step = Double(mantissa) * power(exponent)
        // A little slack, so that 0.3 / 0.1 = 2.9999999999999996 still counts as the third tick.
        let first = (low / step + 1e-9).rounded(.down)
        let last = (high / step - 1e-9).rounded(.up)
        guard abs(first) < 1e15, abs(last) < 1e15 else {
            return AxisTicks(lowIndex: 0, highIndex: 1, mantissa: 1, exponent: 0)
        }
        return AxisTicks(lowIndex: Int(first), highIndex: Swift.max(Int(last), Int(first) + 1), mantissa: mantissa, exponent: exponent)
    }

    private init(lowIndex: Int, highIndex: Int, mantissa: Int, exponent: Int) {
        self.mantissa = mantissa
        self.exponent = exponent
        step = Self.value(1, mantissa: mantissa, exponent: exponent)
        values = (lowIndex...highIndex).map { Self.value($0, mantissa: mantissa, exponent: exponent) }
    }

    /// `index` steps from zero, computed so that 3 x 0.1 is 0.3, not 0.30000000000000004.
    private static func value(_ index: Int, mantissa: Int, exponent: Int) -> Double {
        let multiple = Double(index * mantissa)
        return exponent >= 0 ? multiple * power(exponent) : multiple / power(-exponent)
    }

    private static func power(_ exponent: Int) -> Double {
        pow(10, Double(exponent))
    }

    /// A tick's label: as many decimals as the step needs and no more (0, 0.5, 1, 1.5), in `unit`
    /// scaled for the axis's largest tick, so every label of an axis has the same unit (zero has none).
    public func label(_ value: Double, unit: Unit = .plain) -> String {
        if value == 0 { return "0" }  // in any unit
        let largest = values.map(abs).max() ?? 0
        var scale = 0
        var suffix = ""
        switch unit {
        case .plain:
            break
        case .count:
            scale = largest >= 1000 ? Swift.min(3, Int(log10(largest).rounded(.down)) / 3) : 0
            suffix = ["", "k", "M", "G"][scale]
        case .bytes:
            scale = largest >= 1000 ? Swift.min(3, Int(log10(largest).rounded(.down)) / 3) : 0
            suffix = [" B", " KB", " MB", " GB"][scale]
        }
        let decimals = Swift.max(0, 3 * scale - exponent)
        let scaled = value / Self.power(3 * scale)
        var text = SummaryLine.format(scaled, digits: decimals)
        if text.contains(".") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        if text == "-0" { text = "0" }
        return text + suffix
    }
}
