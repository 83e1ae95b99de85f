import Learning
import Reactor

/// A session put together from settings: its recipe with every default resolved (or the checkpoint's),
/// the model family's data, the server's model and configuration. What `ParameterServerHost` runs,
/// and what a test or benchmark can run on a loop of its own.
public struct SessionAssembly {
    public let recipe: SessionRecipe
    public let data: TrainingData
    /// The test samples the session evaluates on.
    public let test: Dataset
    public let configuration: ServerConfiguration
    public let model: TrainingServerModel
    /// The checkpoint resumed from, for messages.
    private let resumePath: String

    /// - Parameters:
    ///   - resumed: a checkpoint whose recipe replaces the settings' session-shaping ones.
    ///   - token: the token workers must prove they hold, if any.
    /// - Throws: ``SettingsError`` when the model is unknown, its data cannot be loaded, or the
    ///   checkpoint's session does not fit the data.
    public init(settings: ServerSettings, registry: ModelRegistry, resumed: SessionCheckpoint? = nil,
                token: AuthenticationToken? = nil) throws(SettingsError) {
        let resumePath = settings.resume ?? "the checkpoint"
        let configuration: ModelConfiguration
        let family: any ModelFamily
        let model: any Model
        do {
            configuration = try resumed?.recipe.model ?? registry.configuration(parsing: settings.model)
            family = try registry.family(named: configuration.family)
            model = try registry.makeModel(configuration)
        } catch {
            throw SettingsError(resumed == nil ? "--model: \(error)" : "cannot resume from \(resumePath): \(error)")
        }
        do {
            data = try family.loadData(directory: settings.data)
        } catch {
            throw SettingsError("cannot load the data of \(configuration): \(error)")
        }
        guard data.train.imageSize == model.inputSize, data.test.imageSize == model.inputSize else {
            throw SettingsError("\(configuration) takes \(model.inputSize) values per sample; its data has \(data.train.imageSize)")
        }
        let recipe = resumed?.recipe ?? settings.recipe(
            model: configuration, defaults: family.defaults, trainAvailable: data.train.count, testAvailable: data.test.count)
        guard recipe.trainSamples <= data.train.count, recipe.testSamples <= data.test.count else {
            throw SettingsError("the checkpoint's session trains on \(recipe.trainSamples) and tests on \(recipe.testSamples) "
                + "samples, but \(data.source) has \(data.train.count) and \(data.test.count)")
        }
        self.recipe = recipe
        self.resumePath = resumePath
        test = data.test.prefix(recipe.testSamples)
        var server = try ServerConfiguration(recipe: recipe, settings: settings, parameterCount: model.parameterCount)
        server.token = token
        self.configuration = server
        let (optimizer, schedule) = recipe.makeOptimizer()
        self.model = TrainingServerModel(
            configuration: configuration, model: model, seed: recipe.seed, optimizer: optimizer, schedule: schedule,
            totalSteps: recipe.scheduleSteps, testSet: test,
            // Periodic evaluations run beside epoch-end ones, each model with its own scratch.
            snapshotModel: server.evaluateEvery == nil && server.evaluateInterval == nil
                ? nil : try? registry.makeModel(configuration))
    }

    /// The server for this session on `loop`, carrying on from `checkpoint` if given.
    public func makeRuntime(loop: EventLoop, resuming checkpoint: SessionCheckpoint? = nil) throws(SettingsError) -> ParameterServerRuntime {
        let server: ParameterServerRuntime
        if let checkpoint {
            do {
                server = try ParameterServerRuntime(
                    configuration: configuration, model: model, loop: loop, permutation: recipe.permutation, resuming: checkpoint)
            } catch {
                throw SettingsError("cannot resume from \(resumePath): \(error)")
            }
        } else {
            server = ParameterServerRuntime(configuration: configuration, model: model, loop: loop, permutation: recipe.permutation)
        }
        server.history.configuration += [
            ("model", "\(recipe.model) (\(model.parameterCount) parameters)"),
            ("optimiser", recipe.optimizerSummary),
        ]
        if let schedule = configuration.checkpoint {
            server.history.configuration.append(("checkpoint", "\(schedule.path) every \(schedule.everyUpdates) updates or \(schedule.interval)"))
        }
        return server
    }
}
