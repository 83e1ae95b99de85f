import CZlib
import FoundationEssentials
import Glibc

/// An IDX file (the format MNIST ships in): a big-endian header of magic number and dimensions, then
/// unsigned bytes. Read through zlib, so gzipped and plain files both work.
public struct IDXFile: Sendable {
    /// The dimensions from the header, outermost first (e.g. `[60000, 28, 28]`).
    public var dimensions: [Int]
    /// The data bytes, `dimensions.reduce(1, *)` of them.
    public var bytes: [UInt8]

    /// The magic number of a file of unsigned bytes with `rank` dimensions (2049 for 1, 2051 for 3).
    public static func magic(rank: Int) -> UInt32 { 0x0000_0800 | UInt32(rank) }

    /// Reads an IDX file of unsigned bytes with `rank` dimensions, gzipped or plain.
    ///
    /// - Parameters:
    ///   - path: the file.
    ///   - rank: how many dimensions the header must declare (1 for labels, 3 for images).
    /// - Returns: the dimensions and every data byte.
    /// - Throws: `MNISTError` naming the file when it is missing, corrupt, truncated, has the wrong magic
    ///   number, or has bytes after its data.
    public static func read(path: String, rank: Int) throws -> IDXFile {
        guard let file = gzopen(path, "rb") else {
            throw MNISTError(file: path, problem: "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { gzclose(file) }

        func readExactly(_ count: Int, what: String) throws -> [UInt8] {
            var buffer = [UInt8](repeating: 0, count: count)
            var done = 0
            while done < count {
                let chunk = min(count - done, 1 << 30)
                let read = buffer.withUnsafeMutableBytes { gzread(file, $0.baseAddress! + done, UInt32(chunk)) }
                if read < 0 { throw MNISTError(file: path, problem: "corrupt \(what): \(zlibMessage(file))") }
                if read == 0 {
                    throw MNISTError(file: path, problem: "truncated \(what): expected \(count) bytes, found \(done)")
                }
                done += Int(read)
            }
            return buffer
        }

        let header = try readExactly(4, what: "header")
        let magic = header.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard magic == Self.magic(rank: rank) else {
            throw MNISTError(
                file: path, problem: "bad magic number \(magic), expected \(Self.magic(rank: rank)) "
                    + "(unsigned bytes, \(rank) dimension\(rank == 1 ? "" : "s"))")
        }
        let dimensionBytes = try readExactly(4 * rank, what: "header")
        let dimensions = (0..<rank).map { index in
            dimensionBytes[(4 * index)..<(4 * index + 4)].reduce(0) { $0 << 8 | Int($1) }
        }
        let count = dimensions.reduce(1, *)
        guard count > 0, count <= 1 << 31 else {
            throw MNISTError(file: path, problem: "implausible dimensions \(dimensions)")
        }
        let bytes = try readExactly(count, what: "data")
        var probe: UInt8 = 0
        let extra = gzread(file, &probe, 1)
        if extra < 0 { throw MNISTError(file: path, problem: "corrupt data: \(zlibMessage(file))") }
        if extra > 0 {
            throw MNISTError(file: path, problem: "trailing bytes after the \(count) data bytes of \(dimensions)")
        }
        return IDXFile(dimensions: dimensions, bytes: bytes)
    }

    /// Writes an IDX file of unsigned bytes, gzipped or plain (for tests and fixtures).
    ///
    /// - Throws: `MNISTError` when the file cannot be written.
    public static func write(path: String, dimensions: [Int], bytes: [UInt8], gzip: Bool) throws {
        var data: [UInt8] = [0, 0, 0x08, UInt8(dimensions.count)]
        for dimension in dimensions { data += (0..<4).map { UInt8(truncatingIfNeeded: dimension >> (24 - 8 * $0)) } }
        data += bytes
        guard let file = gzopen(path, gzip ? "wb" : "wbT") else {
            throw MNISTError(file: path, problem: "cannot create: \(String(cString: strerror(errno)))")
        }
        let written = data.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
        let closed = gzclose(file)
        guard written == data.count, closed == Z_OK else {
            throw MNISTError(file: path, problem: "cannot write")
        }
    }

    private static func zlibMessage(_ file: gzFile) -> String {
        var code: Int32 = 0
        guard let message = gzerror(file, &code) else { return "zlib error \(code)" }
        return String(cString: message)
    }
}

/// A problem with an MNIST file or directory, naming the file.
public struct MNISTError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file (or directory) at fault.
    public var file: String
    /// What is wrong with it.
    public var problem: String

    public init(file: String, problem: String) {
        self.file = file
        self.problem = problem
    }

    public var description: String { "\(file): \(problem)" }
}
