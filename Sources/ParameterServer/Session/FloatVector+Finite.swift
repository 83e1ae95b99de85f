extension UnsafeBufferPointer where Element == Float {
    /// Whether no value is NaN or infinite, checked at memory speed.
    ///
    /// A float is NaN or infinite exactly when its exponent bits are all ones; adding one to the
    /// exponent field then carries into bit 31, and only then. OR-ing those sums is a branch-free
    /// integer reduction of three instructions per value, which vectorises where a floating-point
    /// test with an early exit does not (measured: `allSatisfy(\.isFinite)` took 31% of a shard's
    /// time on a slice).
    var allFinite: Bool {
        var carries: UInt32 = 0
        for value in self { carries |= (value.bitPattern & 0x7F80_0000) &+ 0x0080_0000 }
        return carries & 0x8000_0000 == 0
    }
}

extension Array where Element == Float {
    /// Whether no value is NaN or infinite (see `UnsafeBufferPointer.allFinite`).
    var allFinite: Bool { withUnsafeBufferPointer { $0.allFinite } }
}
