import Foundation

/// Finds the processes a soak left behind, by looking at every process in /proc.
///
/// A process is the soak's if its chain of parents leads to ps-soak, or if its environment carries the
/// soak's marker (`PS_SOAK_ID=...`, set on every child and inherited by theirs). The second catches
/// what the first cannot: a worker whose ps-fleet died is re-parented to init, and each worker has a
/// process group of its own, so neither its parent nor its group points back at the soak any more.
enum ProcessTree {
    /// A live process that belongs to the soak.
    struct Straggler: CustomStringConvertible {
        let pid: pid_t
        let commandLine: String

        var description: String { "pid \(pid): \(commandLine)" }
    }

    /// The environment variable that marks the soak's descendants.
    static let markerName = "PS_SOAK_ID"

    /// Every live (non-zombie) process other than ps-soak itself that belongs to the soak `root`
    /// marked with `marker` (the marker's value).
    static func stragglers(root: pid_t, marker: String) -> [Straggler] {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap { pid_t($0) } ?? []
        var parents: [pid_t: pid_t] = [:]
        var zombies = Set<pid_t>()
        for pid in pids {
            guard let (state, parent) = status(of: pid) else { continue }
            parents[pid] = parent
            if state == "Z" { zombies.insert(pid) }
        }
        let markerEntry = Array("\(markerName)=\(marker)".utf8)
        return pids.filter { pid in
            guard pid != root, parents[pid] != nil, !zombies.contains(pid) else { return false }
            return descends(pid, from: root, parents: parents) || environment(of: pid).contains(markerEntry)
        }.map { Straggler(pid: $0, commandLine: commandLine(of: $0)) }
    }

    /// The live children of `parent`, each with its arguments (`argv[0]` first).
    static func children(of parent: pid_t) -> [(pid: pid_t, arguments: [String])] {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap { pid_t($0) } ?? []
        return pids.compactMap { pid in
            guard let (state, parentPID) = status(of: pid), parentPID == parent, state != "Z" else { return nil }
            return (pid, arguments(of: pid))
        }
    }

    /// Whether `root` is among `pid`'s ancestors.
    private static func descends(_ pid: pid_t, from root: pid_t, parents: [pid_t: pid_t]) -> Bool {
        var current = pid
        // Bounded: a chain longer than the number of processes would be a loop.
        for _ in 0...parents.count {
            guard let parent = parents[current], parent > 0 else { return false }
            if parent == root { return true }
            current = parent
        }
        return false
    }

    /// The state letter and parent PID from /proc/PID/stat: `1234 (ps-worker) S 1200 ...`.
    private static func status(of pid: pid_t) -> (Character, pid_t)? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let endOfName = stat.lastIndex(of: ")") else { return nil }
        // The command name may contain spaces and parentheses; the fields after its last ")" do not.
        let fields = stat[stat.index(after: endOfName)...].split(separator: " ")
        guard fields.count > 1, let state = fields[0].first, let parent = pid_t(fields[1]) else { return nil }
        return (state, parent)
    }

    /// The NUL-separated entries of /proc/PID/environ (empty if unreadable).
    private static func environment(of pid: pid_t) -> [[UInt8]] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return [] }
        return data.split(separator: 0).map(Array.init)
    }

    /// /proc/PID/cmdline with spaces between the arguments.
    static func commandLine(of pid: pid_t) -> String {
        let arguments = arguments(of: pid)
        return arguments.isEmpty ? "?" : arguments.joined(separator: " ")
    }

    /// The NUL-separated arguments in /proc/PID/cmdline (empty if unreadable).
    private static func arguments(of pid: pid_t) -> [String] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return [] }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }
}
