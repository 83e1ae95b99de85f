import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Memory and CPU figures of a process, read from `/proc` (Linux).
enum FleetProcessStatus {
    /// This process's resident set now and its peak (`VmRSS`, `VmHWM`), in bytes; 0 when unknown.
    static func memory() -> (resident: Int, peak: Int) {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0) }
        var resident = 0, peak = 0
        for line in status.split(separator: "\n") {
            if line.hasPrefix("VmRSS:") { resident = kilobytes(line) * 1024 }
            if line.hasPrefix("VmHWM:") { peak = kilobytes(line) * 1024 }
        }
        return (resident, peak)
    }

    /// CPU time used by all of this process's threads, in seconds.
    static func cpuSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }

    /// CPU time (user and system) used by process `pid`, in seconds; 0 when it cannot be read.
    static func cpuSeconds(of pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        // After "pid (name)" come the state (field 3) ... utime (14) and stime (15).
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    private static func kilobytes(_ line: Substring) -> Int {
        Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
    }
}
