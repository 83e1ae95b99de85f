#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// What a supervising tool does first thing in `main`, before any thread starts, so that every thread
// and every child it spawns inherits the result.

/// Marks every descriptor above standard error close-on-exec, so children do not inherit them.
///
/// A descriptor a supervisor inherited (a launcher's pipe, say) would otherwise stay open as long as any
/// child lives, and whoever waits for that pipe's end would wait for the children too. Call it before
/// any thread starts. (`posix_spawn_file_actions_addclosefrom_np` would do this per spawn, but
/// Swift's Glibc module does not import it.)
public func closeInheritedDescriptorsOnExec() {
    guard let directory = opendir("/proc/self/fd") else { return }
    defer { closedir(directory) }
    let own = dirfd(directory)
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard let descriptor = Int32(name), descriptor > 2, descriptor != own else { continue }
        let flags = fcntl(descriptor, F_GETFD)
        if flags >= 0 { _ = fcntl(descriptor, F_SETFD, flags | FD_CLOEXEC) }
    }
}

/// Makes SIGCHLD deliverable, so that a supervisor hears of its children's exits and reaps them.
///
/// Like SIGINT and SIGTERM, SIGCHLD can arrive blocked from the parent (a test runner's threads block it),
/// and then no child's exit would ever be noticed. Call it before any thread starts, so all inherit it.
public func unblockChildSignals() {
    var signals = sigset_t()
    sigemptyset(&signals)
    sigaddset(&signals, SIGCHLD)
    pthread_sigmask(SIG_UNBLOCK, &signals, nil)
}
