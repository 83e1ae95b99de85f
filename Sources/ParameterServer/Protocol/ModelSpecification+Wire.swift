import Messages

extension ModelSpecification {
    /// The handshake's form of this specification.
    var wire: ModelSpec {
        ModelSpec(
            architecture: architecture,
            hiddenSizes: hiddenSizes.map { UInt32(clamping: $0) },
            parameterCount: UInt64(parameterCount),
            tensors: tensors.map { TensorSpec(name: $0.name, shape: $0.shape.map { UInt32(clamping: $0) }, offset: UInt64($0.offset)) },
            convolutionFilters: convolutionFilters.map { UInt32(clamping: $0) },
            inputHeight: UInt32(clamping: inputHeight),
            inputWidth: UInt32(clamping: inputWidth),
            classes: UInt32(clamping: classes)
        )
    }

    /// Reads a specification from the handshake.
    init(wire: ModelSpec) {
        self.init(
            architecture: wire.architecture,
            hiddenSizes: wire.hiddenSizes.map { Int($0) },
            convolutionFilters: wire.convolutionFilters.map { Int($0) },
            inputHeight: Int(wire.inputHeight),
            inputWidth: Int(wire.inputWidth),
            classes: Int(wire.classes),
            parameterCount: Int(clamping: wire.parameterCount),
            tensors: wire.tensors.map { Tensor(name: $0.name, shape: $0.shape.map { Int($0) }, offset: Int(clamping: $0.offset)) }
        )
    }
}
