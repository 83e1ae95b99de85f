import Learning
import SpiralsModel

/// The model families this build of Downpour can train: the one place `ps-server`, `ps-worker` and
/// `ps-train` share. To train a model of your own, add its family to `registry` (and its target to
/// this target's dependencies in Package.swift); nothing in the parameter server changes.
public enum ModelCatalog {
    public static let registry = ModelRegistry([
        MLPFamily(),
        CNNFamily(),
        SpiralsFamily(),  // Examples/Spirals
    ])

    /// `mlp (MNIST MLP ...), cnn (...), ...` for --help.
    public static var listing: String {
        registry.families.map { "\($0.name) (\($0.summary))" }.joined(separator: "; ")
    }
}
