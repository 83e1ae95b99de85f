#if canImport(Glibc)
import Glibc
/// `RLIMIT_NOFILE` as `getrlimit` takes it (an enum case in Glibc's headers, an `Int32` in Darwin's).
private let openFilesResource = Int32(RLIMIT_NOFILE.rawValue)
#elseif canImport(Darwin)
import Darwin
private let openFilesResource = RLIMIT_NOFILE
#endif

/// The process's limit on open file descriptors, which bounds how many connections a server can hold.
///
/// Many systems start processes with a soft limit of 1024 under a much higher hard limit: a server
/// whose `--max-connections` is 1024 would then run out of descriptors (and fail `accept`) before it
/// could refuse the excess in plain words. Raising the soft limit to the hard one needs no privilege.
public enum FileDescriptorLimit {
    /// Descriptors a server needs beyond one per connection: the listener, the loop's own, standard
    /// streams, the metrics listener, data files being read, and connections still closing.
    static let headroom = 64

    /// Raises the soft limit on open descriptors to the hard limit, so that `connections` can be held.
    ///
    /// Call it at start-up, before listening.
    /// - Parameter connections: The most connections the server will hold at once.
    /// - Returns: A warning to print when even the hard limit is too low for `connections`, else `nil`.
    public static func raise(forConnections connections: Int) -> String? {
        var limit = rlimit()
        guard getrlimit(openFilesResource, &limit) == 0 else { return nil }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(openFilesResource, &raised) == 0 { limit = raised }
        }
        let needed = rlim_t(connections + headroom)
        guard limit.rlim_cur < needed else { return nil }
        return "warning: the open-file limit is \(limit.rlim_cur) descriptors; --max-connections \(connections) needs about \(needed) "
            + "(raise it with `ulimit -n`), or connections past the limit will fail to be accepted"
    }
}
