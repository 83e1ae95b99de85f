import Testing
@testable import ParameterServer

@Suite struct PullSchedulerTests {
    @Test func autoWaitsUntilItHasMeasuredThenWhileTheWaitIsCheap() {
        var scheduler = PullScheduler(timing: .auto)
        #expect(scheduler.waitsAfterPush, "before any measurement it waits, and the first answers tell")
        scheduler.unitTrained(in: .milliseconds(12))
        scheduler.pullAnswered(after: .microseconds(300))
        #expect(scheduler.waitsAfterPush, "a LAN's round trip is a fortieth of a unit")
        // A long link: 50 ms round trips against 12 ms units; the average crosses a quarter of a unit.
        scheduler.pullAnswered(after: .milliseconds(50))
        #expect(!scheduler.waitsAfterPush, "\(scheduler.roundTrip ?? 0) s against units of \(scheduler.unitTime ?? 0) s")
        // Back to quick answers: it waits again once the average falls under the bound.
        var answers = 0
        while !scheduler.waitsAfterPush && answers < 100 {
            scheduler.pullAnswered(after: .microseconds(300))
            answers += 1
        }
        #expect(scheduler.waitsAfterPush && answers > 1, "after \(answers) quick answers")
        let bound = (scheduler.unitTime ?? 0) * PullScheduler.returnFraction
        #expect((scheduler.roundTrip ?? .infinity) <= bound)
    }

    /// A round trip between the two bounds keeps whatever the worker does: it does not switch at every
    /// unit while the link hovers near the bound.
    @Test func aRoundTripBetweenTheBoundsChangesNothing() {
        let unit = Duration.milliseconds(100)
        let between = Duration.microseconds(22_500)  // 0.225 of a unit: under 0.25, over 0.2
        var waiting = PullScheduler(timing: .auto)
        waiting.unitTrained(in: unit)
        for _ in 0..<50 { waiting.pullAnswered(after: between) }
        #expect(waiting.waitsAfterPush, "it waited, and 0.225 of a unit is under the bound to stop")

        var prefetching = PullScheduler(timing: .auto)
        prefetching.unitTrained(in: unit)
        prefetching.pullAnswered(after: .milliseconds(60))
        #expect(!prefetching.waitsAfterPush)
        for _ in 0..<50 { prefetching.pullAnswered(after: between) }
        #expect(!prefetching.waitsAfterPush, "it prefetched, and 0.225 of a unit is over the bound to wait again")
        for _ in 0..<50 { prefetching.pullAnswered(after: .milliseconds(15)) }
        #expect(prefetching.waitsAfterPush, "0.15 of a unit is under the bound to wait again")
    }

    @Test func longerUnitsAffordLongerWaits() {
        var scheduler = PullScheduler(timing: .auto)
        scheduler.pullAnswered(after: .milliseconds(50))
        scheduler.unitTrained(in: .milliseconds(100))
        #expect(!scheduler.waitsAfterPush, "50 ms is half a 100 ms unit")
        scheduler = PullScheduler(timing: .auto)
        scheduler.pullAnswered(after: .milliseconds(50))
        scheduler.unitTrained(in: .milliseconds(400))
        #expect(scheduler.waitsAfterPush, "50 ms is an eighth of a 400 ms unit")
    }

    @Test func theFixedTimingsIgnoreWhatIsMeasured() {
        for timing in [PullTiming.afterPush, .prefetch] {
            var scheduler = PullScheduler(timing: timing)
            scheduler.unitTrained(in: .milliseconds(1))
            scheduler.pullAnswered(after: .seconds(1))
            #expect(scheduler.waitsAfterPush == (timing == .afterPush))
            scheduler.pullAnswered(after: .nanoseconds(1))
            #expect(scheduler.waitsAfterPush == (timing == .afterPush))
        }
    }
}
