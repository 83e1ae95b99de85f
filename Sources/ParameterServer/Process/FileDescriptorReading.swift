import Glibc

/// Reads `descriptor` to its end, or until `limit` bytes have been read, in 64 KiB reads.
///
/// - Returns: the bytes read, or nil when a read fails (with `errno` saying why); interrupted reads
///   are retried.
func readToEnd(_ descriptor: Int32, limit: Int = .max) -> [UInt8]? {
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while bytes.count < limit {
        let wanted = min(chunk.count, limit - bytes.count)
        let n = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, wanted) }
        if n == 0 { break }
        if n < 0 {
            if errno == EINTR { continue }
            return nil
        }
        bytes.append(contentsOf: chunk[..<n])
    }
    return bytes
}
