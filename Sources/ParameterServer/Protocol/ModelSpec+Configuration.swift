import Learning
import Messages

extension ModelSpec {
    /// The handshake's description of a model: its family and options, and its parameter layout.
    ///
    /// For the built-in `mlp` and `cnn` families the sizes are also spelled out in the fields that
    /// predate `configuration`, so a worker written against the older protocol README still builds them.
    init(configuration: ModelConfiguration, layout: [TensorView]) {
        self.init(
            architecture: configuration.family,
            parameterCount: UInt64(layout.parameterCount),
            tensors: layout.map { TensorSpec(name: $0.name, shape: $0.shape.map { UInt32(clamping: $0) }, offset: UInt64($0.offset)) },
            configuration: configuration.options)
        guard ["mlp", "cnn"].contains(configuration.family), let description = ModelDescription(name: configuration.description) else { return }
        switch description.architecture {
        case .mlp(let hidden):
            hiddenSizes = hidden.map { UInt32(clamping: $0) }
        case .cnn(let filters, let dense):
            convolutionFilters = filters.map { UInt32(clamping: $0) }
            hiddenSizes = dense.map { UInt32(clamping: $0) }
        }
        inputHeight = UInt32(clamping: description.inputHeight)
        inputWidth = UInt32(clamping: description.inputWidth)
        classes = UInt32(clamping: description.classes)
    }

    /// The model's family and options.
    var modelConfiguration: ModelConfiguration { ModelConfiguration(family: architecture, options: configuration) }

    /// The parameter layout the server trains.
    var layout: [TensorView] {
        tensors.map { TensorView(name: $0.name, shape: $0.shape.map { Int($0) }, offset: Int(clamping: $0.offset)) }
    }
}
