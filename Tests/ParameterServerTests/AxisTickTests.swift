import Testing
@testable import ParameterServer

@Suite struct AxisTickTests {
    /// Whether `value` is a whole multiple of 1, 2 or 5 x 10^k steps.
    private func isRound(_ ticks: AxisTicks) -> Bool {
        var step = ticks.step
        while step >= 10 { step /= 10 }
        while step < 1 { step *= 10 }
        let leading = step.rounded()
        guard abs(step - leading) < 1e-9, [1, 2, 5].contains(leading) else { return false }
        return ticks.values.allSatisfy { value in
            let multiple = value / ticks.step
            return abs(multiple - multiple.rounded()) < 1e-6
        }
    }

    @Test(arguments: [
        (0.0, 1.0), (0, 97.34), (95.12, 97.34), (0.1, 0.4), (0, 7), (0, 123_456_789), (3, 3.0001),
        (-2.5, 7.25), (-1e-3, -1e-4), (12_345, 12_999), (0, 1e12), (0.731, 0.98),
    ])
    func ticksAreRoundCoverTheRangeAndAreAboutAsManyAsAskedFor(_ range: (Double, Double)) {
        for count in [3, 5, 6, 10] {
            let ticks = AxisTicks.nice(min: range.0, max: range.1, count: count)
            #expect(isRound(ticks), "\(range) \(count): \(ticks.values)")
            #expect(ticks.lower <= range.0 && ticks.upper >= range.1, "\(range) \(count): \(ticks.values)")
            // No more than one step of room on either side.
            #expect(ticks.lower > range.0 - ticks.step && ticks.upper < range.1 + ticks.step, "\(range) \(count): \(ticks.values)")
            #expect(ticks.values.count >= 2 && ticks.values.count <= count + 1, "\(range) \(count): \(ticks.values)")
            if count >= 5 { #expect(ticks.values.count >= 3, "\(range) \(count): \(ticks.values)") }
            #expect(zip(ticks.values, ticks.values.dropFirst()).allSatisfy { abs(($1 - $0) - ticks.step) < ticks.step * 1e-9 })
        }
    }

    @Test func familiarRangesGetTheTicksAPersonWouldDraw() {
        #expect(AxisTicks.nice(min: 0, max: 10, count: 6).values == [0, 2, 4, 6, 8, 10])
        #expect(AxisTicks.nice(min: 0, max: 0.8, count: 5).values == [0, 0.2, 0.4, 0.6, 0.8])
        #expect(AxisTicks.nice(min: 95.12, max: 97.34, count: 5).values == [95, 96, 97, 98])
        #expect(AxisTicks.nice(min: 95.12, max: 97.34, count: 6).values == [95, 95.5, 96, 96.5, 97, 97.5])
        #expect(AxisTicks.nice(min: 0, max: 0.3, count: 4).values == [0, 0.1, 0.2, 0.3])  // not 0.30000000000000004
        #expect(AxisTicks.nice(min: 0, max: 2_400_000, count: 6).values == [0, 500_000, 1_000_000, 1_500_000, 2_000_000, 2_500_000])
        #expect(AxisTicks.nice(min: 0, max: 2_600_000, count: 6).values == [0, 1_000_000, 2_000_000, 3_000_000])
    }

    @Test func degenerateRangesStillGiveAnAxis() {
        #expect(AxisTicks.nice(min: 0, max: 0).values == [0, 0.5, 1])
        let single = AxisTicks.nice(min: 97.34, max: 97.34)
        #expect(single.lower < 97.34 && single.upper > 97.34 && single.values.count >= 3)
        let negative = AxisTicks.nice(min: -5, max: -5, count: 5, integers: true)
        #expect(negative.lower < -5 && negative.upper > -5 && negative.step == 1)
        let reversed = AxisTicks.nice(min: 10, max: 0, count: 6)
        #expect(reversed.values == [0, 2, 4, 6, 8, 10])
        #expect(AxisTicks.nice(min: .nan, max: .infinity).values.count >= 2)
        #expect(AxisTicks.nice(min: .nan, max: 4, count: 5, integers: true).values == [3, 4, 5])
        #expect(AxisTicks.nice(min: 0, max: 1, count: 1).values == [0, 1])
        #expect(AxisTicks.nice(min: -.greatestFiniteMagnitude, max: .greatestFiniteMagnitude).values.count >= 2)
    }

    @Test func wholeThingsGetWholeSteps() {
        #expect(AxisTicks.nice(min: 0, max: 3, count: 6, integers: true).values == [0, 1, 2, 3])
        #expect(AxisTicks.nice(min: 0, max: 1, count: 5, integers: true).values == [0, 1])
    }

    @Test func labelsHaveNoNeedlessDecimals() {
        let halves = AxisTicks.nice(min: 95.12, max: 97.34, count: 6)
        #expect(halves.values.map { halves.label($0) } == ["95", "95.5", "96", "96.5", "97", "97.5"])
        let tenths = AxisTicks.nice(min: 0, max: 0.3, count: 4)
        #expect(tenths.values.map { tenths.label($0) } == ["0", "0.1", "0.2", "0.3"])
        let tiny = AxisTicks.nice(min: -0.002, max: 0.002, count: 5)
        #expect(tiny.values.map { tiny.label($0) } == ["-0.002", "-0.001", "0", "0.001", "0.002"])
        let seconds = AxisTicks.nice(min: 0, max: 250, count: 6)
        #expect(seconds.values.map { seconds.label($0) } == ["0", "50", "100", "150", "200", "250"])
    }

    @Test func countsAndBytesAreLabelledInOneUnitPerAxis() {
        let updates = AxisTicks.nice(min: 0, max: 2400, count: 6, integers: true)
        #expect(updates.values.map { updates.label($0, unit: .count) } == ["0", "0.5k", "1k", "1.5k", "2k", "2.5k"])
        let few = AxisTicks.nice(min: 0, max: 40, count: 5, integers: true)
        #expect(few.values.map { few.label($0, unit: .count) } == ["0", "10", "20", "30", "40"])
        let megabytes = AxisTicks.nice(min: 0, max: 2_400_000, count: 6, integers: true)
        #expect(megabytes.values.map { megabytes.label($0, unit: .bytes) } == ["0", "0.5 MB", "1 MB", "1.5 MB", "2 MB", "2.5 MB"])
        let gigabytes = AxisTicks.nice(min: 0, max: 8e9, count: 5, integers: true)
        #expect(gigabytes.values.map { gigabytes.label($0, unit: .bytes) } == ["0", "2 GB", "4 GB", "6 GB", "8 GB"])
        let kilobytes = AxisTicks.nice(min: 1200, max: 1900, count: 5, integers: true)
        #expect(kilobytes.values.map { kilobytes.label($0, unit: .bytes) } == ["1.2 KB", "1.4 KB", "1.6 KB", "1.8 KB", "2 KB"])
        let bytes = AxisTicks.nice(min: 0, max: 3, count: 4, integers: true)
        #expect(bytes.values.map { bytes.label($0, unit: .bytes) } == ["0", "1 B", "2 B", "3 B"])
    }
}
