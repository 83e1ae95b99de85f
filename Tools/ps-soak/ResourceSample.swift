import Foundation

/// One reading of a process's resident memory and open file descriptors, from /proc.
struct ResourceSample {
    /// Seconds since the server started training (or resumed), nil while it was still starting up.
    var sinceTraining: Double?
    /// Resident set size (VmRSS), in bytes.
    var rssBytes: Int
    /// Entries in /proc/PID/fd.
    var descriptors: Int

    /// Reads `pid`'s figures now.
    /// - Returns: nil when the process is gone (or is a zombie, which has no memory or descriptors left).
    static func read(pid: pid_t, sinceTraining: Double?) -> ResourceSample? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              // "VmRSS:\t  231424 kB"
              let kilobytes = Int(line.split(whereSeparator: \.isWhitespace).dropFirst().first ?? ""),
              let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")
        else { return nil }
        return ResourceSample(sinceTraining: sinceTraining, rssBytes: kilobytes * 1024, descriptors: entries.count)
    }
}

extension Int {
    /// Bytes as MiB with one decimal: `231.4 MiB`.
    var mebibytes: String {
        String(format: "%.1f MiB", Double(self) / 1_048_576)
    }
}
