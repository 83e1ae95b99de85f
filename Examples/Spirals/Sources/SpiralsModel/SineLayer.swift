import Glibc
import Learning

/// `sin(x)` element-wise: a layer written outside Learning. An ``ElementwiseActivation`` needs only
/// the function and its derivative; a layer with parameters would implement ``Layer``'s forward and
/// backward itself (see `DenseLayer`), and `LayerGradientCheck` checks either.
///
/// Periodic activations suit coordinates in the plane (Sitzmann et al. 2020, "SIREN"): a spiral's arms
/// are bands that a sum of sines separates with fewer units than ReLU's pieces.
public final class SineLayer: ElementwiseActivation {
    public let size: Int

    public init(size: Int) {
        self.size = size
    }

    public func activate(_ x: Float) -> Float { sinf(x) }
    public func derivative(input x: Float, output y: Float) -> Float { cosf(x) }
}
