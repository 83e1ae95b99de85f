#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Prints a line at once: a pipe's reader (a test, `tee`, CI's log) sees each step as it happens, not
/// when a buffer fills.
public func say(_ line: String) {
    print(line)
    fflush(nil)
}

/// A tool could not start (no executable to run, no log directory, no free port, the process to watch
/// is gone); ArgumentParser prints it as "Error: ..." with exit status 1.
public struct StartupError: Error, CustomStringConvertible {
    /// What stopped the tool from starting.
    public let description: String

    /// Creates an error that says `description`.
    public init(_ description: String) {
        self.description = description
    }
}
