/// Which model a session trains: a registered family and that family's options, as text.
///
/// Only the family reads its options; everything else (the handshake, checkpoints, logs) carries them
/// as they are, so a model of your own travels and resumes like the built-in ones. The text form is
/// `family` or `family:options`, such as `mlp:512`, `cnn:32,64:128` or `spirals:64,64`.
public struct ModelConfiguration: Sendable, Hashable, CustomStringConvertible {
    /// The registered family's name, such as `mlp`.
    public var family: String
    /// The family's options, opaque to everyone else; empty for the family's defaults.
    public var options: String

    public init(family: String, options: String = "") {
        self.family = family
        self.options = options
    }

    /// Parses `family[:options]`; `nil` when the family's name is empty.
    public init?(_ text: String) {
        let family = text.prefix { $0 != ":" }
        guard !family.isEmpty else { return nil }
        self.init(family: String(family), options: String(text.dropFirst(family.count + 1)))
    }

    /// `family:options`, or `family` alone when there are no options; `init?(_:)` parses it back.
    public var description: String { options.isEmpty ? family : "\(family):\(options)" }
}

/// A model configuration that cannot be built: an unknown family, or options its family refuses.
public struct ModelConfigurationError: Error, Equatable, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
