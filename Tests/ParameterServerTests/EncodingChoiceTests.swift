import Learning
import Messages
import TensorEncoding
import Testing
@testable import ParameterServer

@Suite struct EncodingChoiceTests {
    @Test(arguments: [
        ("fp32", TensorEncoding.fp32), ("fp16", .fp16), ("bf16", .bf16), ("q8", .q8(blockSize: 256)), ("q8:64", .q8(blockSize: 64)),
        ("sign", .sign(blockSize: 4096)), ("sign:1024", .sign(blockSize: 1024)), ("topk:0.01", .topK(count: 4071)),
        ("topk:0.0000001", .topK(count: 1)), ("topk:1", .topK(count: 407_050)),
    ])
    func parsesAnOperatorsChoice(choice: String, expected: TensorEncoding) throws {
        #expect(try TensorEncoding(choice: choice, count: 407_050) == expected)
    }

    @Test(arguments: ["", "fp8", "topk", "topk:0", "topk:1.5", "topk:x", "q8:0", "q8:-4", "sign:big"])
    func refusesWhatItCannotUse(choice: String) {
        #expect(throws: EncodingChoiceError.self) { try TensorEncoding(choice: choice, count: 1000) }
    }

    @Test(arguments: [TensorEncoding.fp16, .bf16, .q8(blockSize: 128), .sign(blockSize: 512), .topK(count: 10)])
    func travelsInAWelcomeAndBack(encoding: TensorEncoding) throws {
        #expect(try TensorEncoding(wire: encoding.wire, count: 1000) == encoding)
    }

    @Test func fp32IsTheAbsenceOfAnEncoding() throws {
        #expect(TensorEncoding.fp32.wire == nil)
        #expect(try TensorEncoding(wire: nil, count: 10) == .fp32)
        #expect(try TensorEncoding(wire: Messages.Encoding(name: "fp32"), count: 10) == .fp32)
    }

    /// The session's delta encoding for `--pull-delta-encoding` (nil: not given), with or without
    /// `--uncompressed`.
    static func deltaEncoding(_ flag: String?, uncompressed: Bool = false, push: String? = nil) throws(SettingsError) -> TensorEncoding? {
        var settings = ServerSettings()
        (settings.pullDeltaEncoding, settings.uncompressed, settings.pushEncoding) = (flag, uncompressed, push)
        let recipe = settings.recipe(model: ModelConfiguration(family: "mlp"), defaults: ModelTrainingDefaults(),
                                     trainAvailable: 1000, testAvailable: 100)
        return try ServerConfiguration(recipe: recipe, settings: settings, parameterCount: 1000).deltaEncoding
    }

    @Test func deltasAreSignByDefaultTopkForTopkPushesAndOffWithNoneOrUncompressed() throws {
        #expect(try Self.deltaEncoding(nil) == .sign(blockSize: 256))
        #expect(try Self.deltaEncoding("none") == nil)
        #expect(try Self.deltaEncoding(nil, uncompressed: true) == nil, "--uncompressed is the exchange before encodings")
        #expect(try Self.deltaEncoding("q8:64", uncompressed: true) == .q8(blockSize: 64))
        #expect(try Self.deltaEncoding("topk:0.01") == .topK(count: 10))
        // Sparse pushes make sparse changes: topk deltas, at twice the pushes' fraction.
        #expect(try Self.deltaEncoding(nil, push: "topk:0.01") == .topK(count: 20))
        #expect(try Self.deltaEncoding(nil, push: "topk:0.8") == .topK(count: 1000))
        #expect(try Self.deltaEncoding("sign", push: "topk:0.01") == .sign())
    }

    @Test(arguments: ["fp32", "zstd", "topk"])
    func aDeltaEncodingThatCannotBeUsedIsRefusedNamingTheFlag(flag: String) {
        #expect {
            try Self.deltaEncoding(flag)
        } throws: { error in
            "\(error)".hasPrefix("--pull-delta-encoding")
        }
    }

    @Test func aWelcomeNamingWhatTheWorkerCannotUseIsRefused() {
        #expect(throws: EncodingChoiceError.self) { try TensorEncoding(wire: Messages.Encoding(name: "zstd"), count: 10) }
        #expect(throws: EncodingChoiceError.self) { try TensorEncoding(wire: Messages.Encoding(name: "topk", parameter: 11), count: 10) }
        #expect(throws: EncodingChoiceError.self) { try TensorEncoding(wire: Messages.Encoding(name: "topk", parameter: 0), count: 10) }
    }
}
