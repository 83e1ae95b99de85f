import FoundationEssentials
import Glibc
import Learning

/// Faults a worker injects into itself, to demonstrate stragglers and failures reproducibly.
///
/// Parsed from `key=value` pairs, comma-separated or given one per `--inject` flag:
/// `delay=50ms`, `jitter=20ms`, `slowdown=3`, `crash-after=30s`, `hang-after=10s`, `drop-connection=0.01`
/// and `seed=7`.
/// Every random choice comes from `seed`, so the same flags give the same faults.
public struct FaultInjection: Sendable, Equatable {
    /// Added to every unit's compute time.
    public var delay: Duration = .zero
    /// A further uniform random delay in `0..<jitter` per unit.
    public var jitter: Duration = .zero
    /// Compute takes this many times as long (a straggler); 1 is normal speed.
    public var slowdown: Double = 1
    /// The process kills itself with SIGKILL this long after it starts.
    public var crashAfter: Duration?
    /// This long after it starts, the worker stops delivering results but stays connected and keeps
    /// sending heartbeats: a stuck worker, which only a lease deadline can catch.
    public var hangAfter: Duration?
    /// The chance, per finished unit, that the worker drops its connection instead of pushing.
    public var dropConnection: Double = 0
    /// Seeds the random choices.
    public var seed: UInt64 = 1

    public init() {}

    /// Whether any fault is configured.
    public var isEmpty: Bool { self == FaultInjection(seed: seed) }

    private init(seed: UInt64) {
        self.seed = seed
    }

    /// Parses `key=value` pairs.
    /// - Parameter specifications: each holds one or more pairs separated by commas.
    /// - Throws: `FaultInjectionError` naming the pair that is wrong and why.
    public init(parsing specifications: [String]) throws(FaultInjectionError) {
        for pair in specifications.flatMap({ $0.split(separator: ",") }) {
            let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingWhitespace() }
            guard parts.count == 2, !parts[1].isEmpty else {
                throw FaultInjectionError("\"\(pair)\" is not key=value")
            }
            let (key, value) = (parts[0], parts[1])
            switch key {
            case "delay": delay = try Self.duration(value, key)
            case "jitter": jitter = try Self.duration(value, key)
            case "crash-after": crashAfter = try Self.duration(value, key)
            case "hang-after": hangAfter = try Self.duration(value, key)
            case "slowdown":
                guard let factor = Double(value), factor >= 1, factor.isFinite else {
                    throw FaultInjectionError("slowdown=\(value): expected a factor of at least 1, such as 3")
                }
                slowdown = factor
            case "drop-connection":
                guard let chance = Double(value), (0...1).contains(chance) else {
                    throw FaultInjectionError("drop-connection=\(value): expected a probability from 0 to 1, such as 0.01")
                }
                dropConnection = chance
            case "seed":
                guard let number = UInt64(value) else {
                    throw FaultInjectionError("seed=\(value): expected a whole number")
                }
                seed = number
            default:
                throw FaultInjectionError("unknown fault \"\(key)\" (known: delay, jitter, slowdown, crash-after, hang-after, drop-connection, seed)")
            }
        }
    }

    /// Parses `50ms`, `2s`, `1.5s`, `250us` or `1m`.
    static func duration(_ text: String, _ key: String) throws(FaultInjectionError) -> Duration {
        let units: [(String, Double)] = [("ms", 1e-3), ("us", 1e-6), ("s", 1), ("m", 60)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            if let number = Double(text.dropLast(suffix.count)), number >= 0, number.isFinite {
                return .nanoseconds(Int64((number * scale * 1e9).rounded()))
            }
        }
        throw FaultInjectionError("\(key)=\(text): expected a duration such as 50ms, 2s or 1m")
    }

    /// The extra time to spend on a unit whose computation took `compute`.
    func extraTime(afterComputing compute: Duration, using generator: inout Xoshiro256) -> Duration {
        var extra = delay + compute * (slowdown - 1)
        if jitter > .zero { extra += jitter * generator.nextUnit() }
        return extra
    }

    /// Whether to drop the connection instead of pushing this unit.
    func dropsConnection(using generator: inout Xoshiro256) -> Bool {
        dropConnection > 0 && generator.nextUnit() < dropConnection
    }
}

extension FaultInjection: CustomStringConvertible {
    public var description: String {
        var parts: [String] = []
        if delay > .zero { parts.append("delay=\(delay)") }
        if jitter > .zero { parts.append("jitter=\(jitter)") }
        if slowdown != 1 { parts.append("slowdown=\(slowdown)") }
        if let crashAfter { parts.append("crash-after=\(crashAfter)") }
        if let hangAfter { parts.append("hang-after=\(hangAfter)") }
        if dropConnection > 0 { parts.append("drop-connection=\(dropConnection)") }
        parts.append("seed=\(seed)")
        return parts.joined(separator: ", ")
    }
}

/// A `--inject` flag that could not be understood.
public struct FaultInjectionError: Error, CustomStringConvertible, Sendable {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
