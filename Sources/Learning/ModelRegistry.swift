/// The model families a build can train, by name: what `ps-server`, `ps-worker` and `ps-train` share,
/// so a family registered once is trainable, servable and resumable by all three.
///
/// ```swift
/// let registry = ModelRegistry([MLPFamily(), CNNFamily(), MyFamily()])
/// let configuration = try registry.configuration(parsing: "mlp:256,128")
/// let model = try registry.makeModel(configuration)
/// ```
public struct ModelRegistry: Sendable {
    /// The families, in the order listings show them.
    public let families: [any ModelFamily]

    /// - Precondition: names are unique, non-empty and without a colon.
    public init(_ families: [any ModelFamily]) {
        for family in families {
            precondition(!family.name.isEmpty && !family.name.contains(":"), "model family name \"\(family.name)\"")
        }
        precondition(Set(families.map(\.name)).count == families.count, "model family names must be unique")
        self.families = families
    }

    /// The families' names, as a worker advertises them.
    public var names: [String] { families.map(\.name) }

    /// The family called `name`.
    /// - Throws: ``ModelConfigurationError`` naming the families this build knows.
    public func family(named name: String) throws(ModelConfigurationError) -> any ModelFamily {
        guard let family = families.first(where: { $0.name == name }) else {
            throw ModelConfigurationError("unknown model \"\(name)\" (this build knows \(names.joined(separator: ", ")))")
        }
        return family
    }

    /// Builds the model `configuration` names.
    public func makeModel(_ configuration: ModelConfiguration) throws(ModelConfigurationError) -> any Model {
        let family = try family(named: configuration.family)
        do {
            return try family.makeModel(options: configuration.options)
        } catch {
            throw ModelConfigurationError("model \(configuration): \(error.description)")
        }
    }

    /// Parses `family[:options]` from a command line, filling in the family's default options, and
    /// checks that it builds.
    public func configuration(parsing text: String) throws(ModelConfigurationError) -> ModelConfiguration {
        guard var configuration = ModelConfiguration(text) else {
            throw ModelConfigurationError("\"\(text)\" names no model; use NAME or NAME:OPTIONS (\(names.joined(separator: ", ")))")
        }
        if configuration.options.isEmpty { configuration.options = try family(named: configuration.family).defaultOptions }
        _ = try makeModel(configuration)
        return configuration
    }
}
