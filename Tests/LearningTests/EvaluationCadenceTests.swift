import Testing
import Learning

@Suite struct EvaluationCadenceTests {
    /// The steps at which `cadence` falls due, fed steps 1, 2, ... at the given training seconds.
    private func dueSteps(_ cadence: EvaluationCadence, seconds: [Double]) -> [Int] {
        var cadence = cadence
        return seconds.enumerated().compactMap { index, trained in
            cadence.isDue(step: UInt64(index + 1), trainedSeconds: trained) ? index + 1 : nil
        }
    }

    @Test func withNeitherItIsNeverDue() {
        let cadence = EvaluationCadence()
        #expect(!cadence.isEnabled)
        #expect(dueSteps(cadence, seconds: (0..<50).map { Double($0) }).isEmpty)
    }

    @Test func byStepsItIsDueOnEveryMultiple() {
        let cadence = EvaluationCadence(everySteps: 4)
        #expect(cadence.isEnabled)
        #expect(dueSteps(cadence, seconds: Array(repeating: 0, count: 13)) == [4, 8, 12])
    }

    @Test func bySecondsItIsDueOnceEachMultipleIsPassed() {
        // Steps at 0.3 s apart, marks every second: the first step past 1, 2 and 3 s.
        let seconds = (1...12).map { 0.3 * Double($0) }  // 0.3, 0.6, 0.9, 1.2 (step 4), ... 2.1 (7), 3.0 (10)
        #expect(dueSteps(EvaluationCadence(intervalSeconds: 1), seconds: seconds) == [4, 7, 10])
    }

    @Test func aLongPauseGivesOneEvaluationNotOnePerMarkMissed() {
        // Marks at 0.5 s; a step 3 s after the last passes six marks and is due once, and the next
        // mark is the first after it (4 s), not the next of those passed (1.5 s).
        let seconds = [0.1, 0.6, 3.6, 3.7, 3.9, 4.05]
        #expect(dueSteps(EvaluationCadence(intervalSeconds: 0.5), seconds: seconds) == [2, 3, 6])
    }

    @Test func aResumedRunCountsFromWhereItResumed() {
        // Resumed 10.2 s into training: the first check sets the mark at 11 s instead of falling due
        // for the ten marks before it.
        #expect(dueSteps(EvaluationCadence(intervalSeconds: 1), seconds: [10.2, 10.5, 10.9, 11.0, 11.4]) == [4])
    }

    @Test func afterARestartItCountsFromTheTimeItWentBackTo() {
        var cadence = EvaluationCadence(intervalSeconds: 1)
        let first = cadence.isDue(step: 1, trainedSeconds: 4.2)  // sets the mark: 5 s
        #expect(!first)
        // Rolled back to 2.5 s: without a restart nothing would fall due until 5 s.
        cadence.restart()
        let due = [2.5, 2.9, 3.1, 3.5, 4.0].enumerated().filter { cadence.isDue(step: UInt64($0.offset + 2), trainedSeconds: $0.element) }
        #expect(due.map(\.element) == [3.1, 4.0])
    }

    @Test func stepsAndSecondsTogetherMakeOneEvaluationWhenBothFallDue() {
        // Every 2 steps, and every second: step 4 at 1.2 s is due both ways, once.
        let seconds = [0.3, 0.6, 0.9, 1.2, 1.5, 1.8, 2.4]
        #expect(dueSteps(EvaluationCadence(everySteps: 2, intervalSeconds: 1), seconds: seconds) == [2, 4, 6, 7])
    }
}
