import Learning

extension ModelDescription {
    /// The handshake's description of this model, with its parameter layout.
    public var specification: ModelSpecification {
        let (name, hidden, filters): (String, [Int], [Int]) = switch architecture {
        case .mlp(let hidden): ("mlp", hidden, [])
        case .cnn(let filters, let dense): ("cnn", dense, filters)
        }
        return ModelSpecification(
            architecture: name, hiddenSizes: hidden, convolutionFilters: filters,
            inputHeight: inputHeight, inputWidth: inputWidth, classes: classes,
            parameterCount: parameterCount,
            tensors: layout.map { ModelSpecification.Tensor(name: $0.name, shape: $0.shape, offset: $0.offset) })
    }

    /// Rebuilds a description from a handshake's specification.
    ///
    /// - Throws: `ModelMismatch` when the architecture is unknown, or when the model this build makes
    ///   from it would not have exactly the specification's parameter layout.
    public init(specification: ModelSpecification) throws(ModelMismatch) {
        let architecture: Architecture
        switch specification.architecture {
        case "mlp": architecture = .mlp(hidden: specification.hiddenSizes)
        case "cnn": architecture = .cnn(filters: specification.convolutionFilters, dense: specification.hiddenSizes)
        default: throw ModelMismatch("unknown architecture \"\(specification.architecture)\" (this worker knows mlp and cnn)")
        }
        guard specification.inputHeight > 0, specification.inputWidth > 0, specification.classes > 0,
              (specification.hiddenSizes + specification.convolutionFilters).allSatisfy({ $0 > 0 && $0 <= 1 << 16 }) else {
            throw ModelMismatch("the model's sizes are not positive or are out of range")
        }
        self.init(architecture, inputHeight: specification.inputHeight, inputWidth: specification.inputWidth,
                  classes: specification.classes)
        let mine = self.specification
        guard mine.parameterCount == specification.parameterCount else {
            throw ModelMismatch("the server's \(specification.architecture) has \(specification.parameterCount) parameters; "
                + "the same model built here has \(mine.parameterCount)")
        }
        guard mine.tensors == specification.tensors else {
            throw ModelMismatch("the server's parameter layout differs from this build's for \(self)")
        }
    }
}

/// A worker cannot build the model a session trains.
public struct ModelMismatch: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
