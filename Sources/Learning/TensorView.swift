/// A named tensor inside a model's flat parameter (or gradient) buffer.
///
/// A whole model is one contiguous `[Float]`; a view says where one weight or bias lives in it, so the
/// buffer travels as one packed array and each layer reads its own part.
public struct TensorView: Sendable, Hashable, CustomStringConvertible {
    /// E.g. `"dense0.weight"`.
    public var name: String
    /// E.g. `[784, 128]` (row-major).
    public var shape: [Int]
    /// The index of the first element in the flat buffer.
    public var offset: Int

    public init(name: String, shape: [Int], offset: Int) {
        self.name = name
        self.shape = shape
        self.offset = offset
    }

    /// How many elements.
    public var count: Int { shape.reduce(1, *) }

    /// The element range in the flat buffer.
    public var range: Range<Int> { offset..<(offset + count) }

    public var description: String { "\(name)\(shape) @\(offset)" }
}

extension Array where Element == TensorView {
    /// Lays tensors out back to back from offset 0, in order.
    static func packed(_ tensors: [(name: String, shape: [Int])]) -> [TensorView] {
        var offset = 0
        return tensors.map { tensor in
            defer { offset += tensor.shape.reduce(1, *) }
            return TensorView(name: tensor.name, shape: tensor.shape, offset: offset)
        }
    }

    /// The tensors of `layers`, named with each layer's prefix, laid out back to back in order.
    static func packed(layers: [(prefix: String, layer: any Layer)]) -> [TensorView] {
        packed(layers.flatMap { entry in entry.layer.parameterShapes.map { (entry.prefix + $0.name, $0.shape) } })
    }

    /// How many elements the buffer these views lay out holds: the end of the last one.
    public var parameterCount: Int { last.map { $0.offset + $0.count } ?? 0 }

    /// The view called `name`, if any.
    public subscript(name: String) -> TensorView? { first { $0.name == name } }
}
