import Foundation

/// A value behind a lock, for the little process-wide state the learning core keeps (BLAS settings).
// @unchecked Sendable: every access to `value` goes through `lock`.
final class LockedValue<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
