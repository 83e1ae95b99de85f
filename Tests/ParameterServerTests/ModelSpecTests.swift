import Learning
import Messages
import Testing
@testable import ParameterServer

/// The handshake's description of a model: family and options for every model, and for MNIST's MLP and
/// CNN also the sizes spelled out as before `configuration` existed, for third-party workers.
@Suite struct ModelSpecTests {
    @Test func theBuiltInFamiliesKeepTheirOlderFields() {
        let mlp = ModelDescription(.mlp(hidden: [256, 128]))
        let spec = ModelSpec(configuration: mlp.configuration, layout: mlp.layout)
        #expect((spec.architecture, spec.configuration) == ("mlp", "256,128"))
        #expect(spec.hiddenSizes == [256, 128] && spec.convolutionFilters.isEmpty)
        #expect((spec.inputHeight, spec.inputWidth, spec.classes) == (28, 28, 10))
        #expect(spec.parameterCount == UInt64(mlp.parameterCount))

        let cnn = ModelDescription.defaultCNN
        let cnnSpec = ModelSpec(configuration: cnn.configuration, layout: cnn.layout)
        #expect((cnnSpec.architecture, cnnSpec.configuration) == ("cnn", "32,64:128"))
        #expect(cnnSpec.convolutionFilters == [32, 64] && cnnSpec.hiddenSizes == [128])
    }

    @Test func otherFamiliesTravelAsFamilyOptionsAndLayoutOnly() throws {
        let layout = [TensorView(name: "w", shape: [3, 2], offset: 0), TensorView(name: "b", shape: [2], offset: 6)]
        let spec = ModelSpec(configuration: ModelConfiguration(family: "spirals", options: "64,64"), layout: layout)
        #expect(spec.hiddenSizes.isEmpty && spec.inputHeight == 0 && spec.classes == 0)
        let decoded = try ModelSpec(serializedBytes: spec.serializedBytes())
        #expect(decoded.modelConfiguration == ModelConfiguration(family: "spirals", options: "64,64"))
        #expect(decoded.layout == layout)
        #expect(decoded.parameterCount == 8)
    }
}
