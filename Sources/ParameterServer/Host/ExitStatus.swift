/// A process's exit status, set from loop callbacks and read once the loop has stopped.
public final class ExitStatus: @unchecked Sendable {
    // Only touched on the loop thread, and read after the loop has stopped.
    public var code: Int32 = 0

    public init() {}
}
