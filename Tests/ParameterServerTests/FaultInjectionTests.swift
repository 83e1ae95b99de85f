import Learning
import Testing
@testable import ParameterServer

@Suite struct FaultInjectionTests {
    @Test func parsesEveryFaultCommaSeparatedOrRepeated() throws {
        let faults = try FaultInjection(parsing: ["delay=50ms,jitter=20ms", "slowdown=3", "crash-after=1.5s", "hang-after=2s", "drop-connection=0.01", "seed=7"])
        #expect(faults.delay == .milliseconds(50))
        #expect(faults.jitter == .milliseconds(20))
        #expect(faults.slowdown == 3)
        #expect(faults.crashAfter == .milliseconds(1500))
        #expect(faults.hangAfter == .seconds(2))
        #expect(faults.dropConnection == 0.01)
        #expect(faults.seed == 7)
        #expect(!faults.isEmpty)
        #expect(try FaultInjection(parsing: ["seed=3"]).isEmpty)
    }

    @Test(arguments: [
        ("delay=fast", "delay=fast: expected a duration"),
        ("slowdown=0.5", "slowdown=0.5: expected a factor of at least 1"),
        ("drop-connection=2", "drop-connection=2: expected a probability"),
        ("explode=1", "unknown fault \"explode\""),
        ("delay", "\"delay\" is not key=value"),
    ])
    func badSpecificationsSayWhatIsWrong(text: String, message: String) {
        #expect {
            _ = try FaultInjection(parsing: [text])
        } throws: { error in
            String(describing: error).contains(message)
        }
    }

    @Test func extraTimeIsReproducibleFromTheSeed() throws {
        let faults = try FaultInjection(parsing: ["delay=10ms,jitter=5ms,slowdown=2,seed=9"])
        var first = Xoshiro256(seed: 9)
        var second = Xoshiro256(seed: 9)
        let a = (0..<5).map { _ in faults.extraTime(afterComputing: .milliseconds(4), using: &first) }
        let b = (0..<5).map { _ in faults.extraTime(afterComputing: .milliseconds(4), using: &second) }
        #expect(a == b)
        // delay + (slowdown - 1) x compute, plus up to the jitter.
        #expect(a.allSatisfy { $0 >= .milliseconds(14) && $0 < .milliseconds(19) })
        #expect(Set(a).count > 1)
    }

    @Test func dropsConnectionsAtTheConfiguredRate() throws {
        let faults = try FaultInjection(parsing: ["drop-connection=0.25"])
        var generator = Xoshiro256(seed: 1)
        let drops = (0..<10_000).filter { _ in faults.dropsConnection(using: &generator) }.count
        #expect((2_200...2_800).contains(drops))
    }
}
