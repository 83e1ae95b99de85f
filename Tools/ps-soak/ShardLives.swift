import Foundation
import ProcessTooling

/// The fleet's `ps-shard` processes as the soak sees them: found among ps-fleet's children once a
/// second, each sampled (RSS, descriptors) for as long as it lives.
///
/// ps-fleet starts and replaces the shards, so the soak does not hold them as children; it finds them
/// by their parent and their `--name shard-K`, which is also how the server names them on `/metrics`
/// (the `holder` label), so a range's holder can be picked and killed by name.
final class ShardLives {
    /// One shard process, from when the soak first saw it to its end.
    final class Life {
        let pid: pid_t
        /// Its `--name`: `shard-3`.
        let name: String
        let firstSeen = ContinuousClock.now
        /// Its RSS and descriptors, once a second while it lives.
        private(set) var samples: [ResourceSample] = []
        /// Whether the soak killed it.
        var killed = false
        /// Set once it is gone.
        fileprivate(set) var ended = false

        init(pid: pid_t, name: String) {
            self.pid = pid
            self.name = name
        }

        /// Samples it now, its time counted from when the soak first saw it (a shard starts in well under
        /// a second: it loads no data); marks it ended when it is gone.
        fileprivate func sample() {
            guard let sample = ResourceSample.read(pid: pid, sinceTraining: (ContinuousClock.now - firstSeen).seconds) else {
                ended = true
                return
            }
            samples.append(sample)
        }
    }

    /// Every shard seen, in the order first seen.
    private(set) var lives: [Life] = []

    /// Finds the shards among `fleet`'s children, new ones included, and samples every live one.
    func refresh(fleet: ChildProcess) {
        guard fleet.reap() == nil else {
            for life in lives { life.ended = true }
            return
        }
        for child in ProcessTree.children(of: fleet.pid) {
            guard !lives.contains(where: { $0.pid == child.pid && !$0.ended }), let name = Self.shardName(child.arguments) else { continue }
            lives.append(Life(pid: child.pid, name: name))
        }
        for life in lives where !life.ended { life.sample() }
    }

    /// The live shard named `name`, if the soak knows it.
    func live(named name: String) -> Life? {
        lives.last { $0.name == name && !$0.ended }
    }

    /// `shard-3` from `ps-shard HOST PORT RETRY --name shard-3 ...`; nil for any other process (a worker
    /// is `fleet-N`).
    static func shardName(_ arguments: [String]) -> String? {
        guard let flag = arguments.firstIndex(of: "--name"), flag + 1 < arguments.count,
              arguments[flag + 1].hasPrefix("shard-") else { return nil }
        return arguments[flag + 1]
    }

    /// The holders named on a `/metrics` page: `holder="shard-2"` in the shards' series, each once,
    /// in order of their range.
    static func holders(metrics: String) -> [String] {
        var byRange: [Int: String] = [:]
        for line in metrics.split(separator: "\n") where line.hasPrefix("downpour_shard_workers{") {
            guard let range = label("shard", in: line).flatMap(Int.init), let holder = label("holder", in: line) else { continue }
            byRange[range] = holder
        }
        return byRange.keys.sorted().compactMap { byRange[$0] }
    }

    /// The value of label `name` in a sample line `metric{a="x",b="y"} 1`.
    private static func label(_ name: String, in line: Substring) -> String? {
        guard let start = line.range(of: "\(name)=\"") else { return nil }
        let rest = line[start.upperBound...]
        return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
    }
}
