import Messages
import TensorEncoding

extension TensorEncoding {
    /// The encodings a worker built from this library can write and read besides fp32, as
    /// `Capabilities.encodings` lists them.
    public static let wireNames = ["fp16", "bf16", "q8", "topk", "sign"]

    /// The word a worker adds to `Capabilities.encodings` when it can apply deltas (`Weights` with
    /// `base_version`): not an encoding, the deltas' own encoding is one of the others.
    public static let deltaCapability = "delta"

    /// The encoding a Welcome names, for vectors of `count` values; `.fp32` when it names none.
    /// - Throws: `EncodingChoiceError` for an unknown name or a parameter out of range.
    public init(wire: Messages.Encoding?, count: Int) throws(EncodingChoiceError) {
        guard let wire, !wire.name.isEmpty, wire.name != "fp32" else {
            self = .fp32
            return
        }
        let parameter = Int(wire.parameter)
        switch wire.name {
        case "fp16": self = .fp16
        case "bf16": self = .bf16
        case "q8": self = .q8(blockSize: parameter == 0 ? Self.defaultQ8BlockSize : parameter)
        case "sign": self = .sign(blockSize: parameter == 0 ? Self.defaultSignBlockSize : parameter)
        case "topk":
            guard (1...max(1, count)).contains(parameter) else {
                throw EncodingChoiceError("topk keeps \(parameter) entries of \(count); expected 1 to \(count)")
            }
            self = .topK(count: parameter)
        default:
            throw EncodingChoiceError("unknown encoding \"\(wire.name.prefix(40))\" (known: fp32, \(Self.wireNames.joined(separator: ", ")))")
        }
    }

    /// The encoding as a Welcome carries it; nil for fp32, which a Welcome leaves unset.
    public var wire: Messages.Encoding? {
        guard self != .fp32 else { return nil }
        return Messages.Encoding(name: name, parameter: UInt32(clamping: parameter ?? 0))
    }

    /// Parses an operator's choice, such as `fp32`, `fp16`, `bf16`, `q8`, `q8:64`, `sign`, `sign:1024`
    /// or `topk:0.01` (the fraction of `count` values kept, at least one).
    /// - Throws: `EncodingChoiceError` naming what is wrong.
    public init(choice: String, count: Int) throws(EncodingChoiceError) {
        let parts = choice.split(separator: ":", maxSplits: 1).map(String.init)
        let name = parts.first ?? ""
        let argument = parts.count > 1 ? parts[1] : nil
        func blockSize(default value: Int) throws(EncodingChoiceError) -> Int {
            guard let argument else { return value }
            guard let size = Int(argument), size >= 1, size <= 1 << 20 else {
                throw EncodingChoiceError("\(choice): the block size must be a whole number from 1 to 1048576")
            }
            return size
        }
        switch name {
        case "fp32": self = .fp32
        case "fp16": self = .fp16
        case "bf16": self = .bf16
        case "q8": self = .q8(blockSize: try blockSize(default: Self.defaultQ8BlockSize))
        case "sign": self = .sign(blockSize: try blockSize(default: Self.defaultSignBlockSize))
        case "topk":
            guard let fraction = argument.flatMap(Double.init), fraction > 0, fraction <= 1 else {
                throw EncodingChoiceError("\(choice): give the fraction of values kept, such as topk:0.01")
            }
            self = .topK(count: max(1, min(count, Int((fraction * Double(count)).rounded()))))
        default:
            throw EncodingChoiceError("unknown encoding \"\(choice)\" (known: fp32, fp16, bf16, q8[:BLOCK], sign[:BLOCK], topk:FRACTION)")
        }
    }
}

extension TensorEncoding {
    /// Decodes `bytes` into `output`, whose count is the number of values; nil when it worked, else
    /// the refusal (`output` then untouched). A value, not a throw: arrays' closure-taking methods
    /// rethrow untyped errors, and both runtimes turn the refusal into a message of their own.
    func decodeRefusal(_ bytes: [UInt8], into output: inout [Float]) -> TensorDecodingError? {
        bytes.withUnsafeBytes { bytes in
            output.withUnsafeMutableBufferPointer { output in
                do throws(TensorDecodingError) {
                    try decode(bytes, into: output)
                    return nil
                } catch {
                    return error
                }
            }
        }
    }
}

/// An encoding that cannot be used, and why.
public struct EncodingChoiceError: Error, CustomStringConvertible, Sendable {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
