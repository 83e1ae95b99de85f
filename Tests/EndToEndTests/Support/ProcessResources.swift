import Foundation

/// What `/proc` says about a process's resources, for tests that check a server gives back what an
/// attack made it take.
enum ProcessResources {
    /// How many file descriptors `pid` has open.
    static func openDescriptors(of pid: Int32) throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count
    }

    /// A `kB` figure from `/proc/PID/status`, such as `VmRSS` (resident memory) or `VmPeak` (the most
    /// address space ever mapped, which a transient multi-gigabyte allocation would raise for good).
    /// - Returns: The figure in bytes, or `nil` when the process or the field is missing.
    static func status(_ field: String, of pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("\(field):") }),
              let kilobytes = Int(line.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "")
        else { return nil }
        return kilobytes * 1024
    }

    /// The soft and hard limits on open files of `pid`, from `/proc/PID/limits`.
    static func openFileLimits(of pid: Int32) -> (soft: String, hard: String)? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Max open files") })
        else { return nil }
        let columns = line.dropFirst("Max open files".count).split(separator: " ")
        guard columns.count >= 2 else { return nil }
        return (String(columns[0]), String(columns[1]))
    }

    /// Raises this process's soft limit on open files to its hard limit, for tests that open thousands
    /// of sockets; processes it starts afterwards inherit the raised limit.
    /// - Returns: The soft limit now in force.
    @discardableResult
    static func raiseOwnOpenFileLimit() -> Int {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        return Int(clamping: limit.rlim_cur)
    }
}

/// Waits until `condition` holds, checking every 50 ms, for resources that change with no event to
/// wait on (a process's descriptor count).
/// - Returns: Whether it held before `timeout`.
func eventually(within timeout: Duration, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: 0.05)
    }
    return try condition()
}
