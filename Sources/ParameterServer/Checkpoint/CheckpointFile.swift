import CZlib
import FoundationEssentials
import Glibc

/// The framing of a checkpoint file: a fixed header that identifies the format and checks the body,
/// then the body (a `CheckpointFormat.Checkpoint` in protobuf's wire format).
///
/// Header, 32 bytes, integers little-endian:
///
/// | offset | size | field |
/// | --- | --- | --- |
/// | 0 | 8 | magic `DPCKPT\r\n` |
/// | 8 | 4 | format version (1) |
/// | 12 | 4 | reserved, 0 |
/// | 16 | 8 | body length in bytes |
/// | 24 | 4 | CRC-32 of the body (zlib's polynomial) |
/// | 28 | 4 | reserved, 0 |
///
/// The length catches a truncated file and the CRC a corrupt one before a byte of the body is
/// decoded, so a damaged checkpoint is refused whole, never half-loaded. The `\r\n` in the magic
/// catches a file that went through a newline-translating copy.
public enum CheckpointFile {
    /// The format version this build writes and reads.
    public static let formatVersion: UInt32 = 1
    static let magic = Array("DPCKPT\r\n".utf8)
    static let headerSize = 32

    /// The file's bytes for `body`.
    public static func frame(_ body: [UInt8]) -> [UInt8] {
        var bytes = magic
        bytes.reserveCapacity(headerSize + body.count)
        append(formatVersion, to: &bytes)
        append(UInt32(0), to: &bytes)
        append(UInt64(body.count), to: &bytes)
        append(checksum(body), to: &bytes)
        append(UInt32(0), to: &bytes)
        bytes += body
        return bytes
    }

    /// The body inside a checkpoint file's bytes, once the header vouches for it.
    /// - Throws: `CheckpointError` naming what is wrong: not a checkpoint, another format version,
    ///   truncated, trailing bytes, or a checksum mismatch.
    public static func body(of bytes: [UInt8]) throws(CheckpointError) -> ArraySlice<UInt8> {
        guard bytes.count >= magic.count, Array(bytes[0..<magic.count]) == magic else {
            throw .notACheckpoint
        }
        guard bytes.count >= headerSize else {
            throw .truncated(expectedBytes: headerSize, actualBytes: bytes.count)
        }
        let version: UInt32 = read(bytes, at: 8)
        guard version == formatVersion else { throw .unsupportedVersion(version, supported: formatVersion) }
        let length: UInt64 = read(bytes, at: 16)
        let expected = UInt64(headerSize) + length
        guard expected >= length, UInt64(bytes.count) >= expected else {
            throw .truncated(expectedBytes: Int(clamping: expected), actualBytes: bytes.count)
        }
        guard UInt64(bytes.count) == expected else {
            throw .trailingBytes(expectedBytes: Int(expected), actualBytes: bytes.count)
        }
        let body = bytes[headerSize...]
        let stored: UInt32 = read(bytes, at: 24)
        let computed = checksum(body)
        guard stored == computed else { throw .checksumMismatch(stored: stored, computed: computed) }
        return body
    }

    /// Writes `bytes` to `path` so that, whenever the process or the machine stops, `path` holds
    /// either its previous contents or all of `bytes`: a temporary file in the same directory,
    /// fsync'd, renamed over `path`, then the directory fsync'd so the rename itself is durable.
    /// - Throws: `CheckpointError.io` with the step and the system's reason.
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws(CheckpointError) {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let temporary = directory + "/." + url.lastPathComponent + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .io(step: "create \(temporary)", errno: errno) }
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if result < 0 {
                if errno == EINTR { continue }
                let code = errno
                close(fd)
                unlink(temporary)
                throw .io(step: "write \(temporary)", errno: code)
            }
            written += result
        }
        guard fsync(fd) == 0 else {
            let code = errno
            close(fd)
            unlink(temporary)
            throw .io(step: "fsync \(temporary)", errno: code)
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            throw .io(step: "rename \(temporary) to \(path)", errno: code)
        }
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directoryFD >= 0 else { throw .io(step: "open directory \(directory)", errno: errno) }
        defer { close(directoryFD) }
        guard fsync(directoryFD) == 0 else { throw .io(step: "fsync directory \(directory)", errno: errno) }
    }

    /// The whole file at `path`.
    /// - Throws: `CheckpointError.io` when it cannot be read.
    public static func read(path: String) throws(CheckpointError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .io(step: "open \(path)", errno: errno) }
        defer { close(descriptor) }
        guard let bytes = readToEnd(descriptor) else { throw .io(step: "read \(path)", errno: errno) }
        return bytes
    }

    // MARK: Private

    /// zlib's CRC-32 of `bytes`.
    private static func checksum(_ bytes: some ContiguousBytes) -> UInt32 {
        bytes.withUnsafeBytes { buffer in
            var crc: uLong = 0
            var offset = 0
            // zlib's length argument is 32-bit: feed large bodies in pieces.
            while offset < buffer.count {
                let piece = min(buffer.count - offset, 1 << 30)
                crc = crc32(crc, buffer.baseAddress!.assumingMemoryBound(to: UInt8.self) + offset, uInt(piece))
                offset += piece
            }
            return UInt32(truncatingIfNeeded: crc)
        }
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }

    private static func read<T: FixedWidthInteger>(_ bytes: [UInt8], at offset: Int) -> T {
        var value: T = 0
        for index in (0..<MemoryLayout<T>.size).reversed() {
            value = value << 8 | T(bytes[offset + index])
        }
        return value
    }
}

/// Why a checkpoint could not be written or loaded. Every case says which file and what to do.
public enum CheckpointError: Error, Equatable, CustomStringConvertible {
    /// The file does not start with the checkpoint magic.
    case notACheckpoint
    /// Written by a format this build does not read.
    case unsupportedVersion(UInt32, supported: UInt32)
    /// Shorter than its header says.
    case truncated(expectedBytes: Int, actualBytes: Int)
    /// Longer than its header says.
    case trailingBytes(expectedBytes: Int, actualBytes: Int)
    /// The body's CRC-32 is not the one in the header.
    case checksumMismatch(stored: UInt32, computed: UInt32)
    /// The body is not a valid checkpoint message, or its contents contradict each other.
    case invalidContents(String)
    /// A system call failed.
    case io(step: String, errno: Int32)

    public var description: String {
        switch self {
        case .notACheckpoint:
            "not a Downpour checkpoint (no DPCKPT header)"
        case .unsupportedVersion(let version, let supported):
            "checkpoint format version \(version); this ps-server reads version \(supported)"
        case .truncated(let expected, let actual):
            "truncated: the header promises \(expected) bytes but the file has \(actual)"
        case .trailingBytes(let expected, let actual):
            "corrupt: the header promises \(expected) bytes but the file has \(actual)"
        case .checksumMismatch(let stored, let computed):
            "corrupt: checksum mismatch (header \(String(stored, radix: 16)), contents \(String(computed, radix: 16)))"
        case .invalidContents(let reason):
            "invalid contents: \(reason)"
        case .io(let step, let code):
            "cannot \(step): \(String(cString: strerror(code)))"
        }
    }
}
