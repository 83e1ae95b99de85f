import Foundation
import Learning
import ProcessTooling
import Reactor

/// Keeps a fleet of `ps-worker` processes running, churns it on a seeded schedule and stops it cleanly.
///
/// Every action prints one line stamped with the time since the fleet started:
///
/// ```
/// +12.3s killed fleet-3 (pid 1234); started fleet-7 (pid 1250)
/// ```
///
/// Children are reaped when SIGCHLD arrives. ``stop(reason:)`` sends SIGINT to every worker, SIGKILLs
/// whoever is left after the stop timeout and calls ``onFinished`` once every child has been reaped.
///
/// - Warning: Loop thread only: create it, start it and stop it on the loop's thread.
final class FleetSupervisor {
    /// What the fleet runs and how it churns.
    struct Configuration {
        /// Workers to keep running.
        var size: Int
        /// The `ps-worker` executable.
        var executable: String
        /// Arguments every worker gets before `--name` (host, port, retry interval).
        var workerArguments: [String]
        /// Further arguments, after `--name`.
        var extraArguments: [String]
        /// `--inject` values for every worker; empty for none.
        var faults: [String]
        /// Where each worker's log goes.
        var logDirectory: String
        /// The mean interval between churn events, or nil for no churn.
        var churnEvery: Duration?
        /// The share of churn events that SIGKILL rather than SIGINT.
        var killFraction: Double
        /// Seeds the churn and the workers' fault seeds.
        var seed: UInt64
        /// Stop after this long, if set.
        var duration: Duration?
        /// Stop when this (local) process exits, if set.
        var serverPID: pid_t?
        /// How long a worker has to leave after SIGINT before it is SIGKILLed.
        var stopTimeout: Duration
    }

    private enum State { case idle, running, stopping, finished }

    /// A worker that exits this soon after starting counts as a failure to start.
    private static let quickExit: Duration = .seconds(1)
    /// How often the server's PID is checked; there is no event for another process's exit.
    private static let serverCheckInterval: Duration = .milliseconds(250)
    /// How long SIGKILLed stragglers have to be reaped before the fleet gives up on them.
    private static let reapTimeout: Duration = .seconds(5)

    private let configuration: Configuration
    private let loop: EventLoop
    private let print: (String) -> Void
    private var schedule: ChurnSchedule?
    private var state = State.idle
    private let startTime = ContinuousClock.now
    /// The workers that count towards the fleet's size, by slot; a replacement takes its victim's slot.
    private var slots: [ChildProcess] = []
    /// Workers the fleet asked to go, not reaped yet.
    private var leaving: [ChildProcess] = []
    private var nextNumber = 1
    /// Consecutive workers that exited within `quickExit` of starting.
    private var quickExits = 0
    private var timers: [TimerHandle] = []
    private var childWatcher: SignalWatcher?
    private(set) var tally = FleetTally()
    /// Set when the fleet stops because it could not keep workers running.
    private(set) var failed = false

    /// Called once, on the loop thread, after every worker has been reaped (or given up on).
    var onFinished: (() -> Void)?

    /// - Parameters:
    ///   - configuration: What to run.
    ///   - loop: The loop whose thread runs the fleet.
    ///   - print: Where the fleet's lines go.
    init(configuration: Configuration, loop: EventLoop, print: @escaping (String) -> Void) {
        self.configuration = configuration
        self.loop = loop
        self.print = print
        tally.size = configuration.size
        schedule = configuration.churnEvery.map {
            ChurnSchedule(meanInterval: $0, killFraction: configuration.killFraction, seed: configuration.seed)
        }
    }

    /// Seconds since the fleet started, as printed: `+12.3s`.
    private var stamp: String { "+\(String(format: "%.1f", elapsed))s" }

    /// Seconds since the fleet started.
    var elapsed: Double { (ContinuousClock.now - startTime).seconds }

    /// Starts the workers and the timers.
    ///
    /// A worker that cannot be started is reported and stops the fleet (``failed`` is then set, and
    /// ``onFinished`` is called once the workers already started have been reaped).
    /// - Throws: ``ReactorError`` if SIGCHLD cannot be watched; nothing has been started then.
    func start() throws {
        precondition(state == .idle, "start() called twice")
        // Watch before spawning, so no exit goes unnoticed.
        childWatcher = try loop.watchSignal(SIGCHLD) { [unowned self] in self.reapChildren() }
        state = .running
        for _ in 0..<configuration.size {
            do {
                let worker = try spawnWorker()
                slots.append(worker)
                print("\(stamp) started \(worker.label)")
            } catch {
                print("\(stamp) \(error)")
                failed = true
                stop(reason: "failed")
                return
            }
        }
        if let duration = configuration.duration {
            timers.append(loop.scheduleTimer(after: duration) { [unowned self] in
                self.print("\(self.stamp) duration reached")
                self.stop(reason: "duration")
            })
        }
        if let serverPID = configuration.serverPID {
            timers.append(loop.scheduleTimer(after: Self.serverCheckInterval, repeating: Self.serverCheckInterval) { [unowned self] in
                guard !processIsAlive(serverPID) else { return }
                self.print("\(self.stamp) the server (pid \(serverPID)) exited")
                self.stop(reason: "server-exited")
            })
        }
        scheduleChurn()
    }

    /// Stops the fleet: SIGINT to every worker, SIGKILL to whoever is left after the stop timeout.
    ///
    /// Called again while stopping (a second Ctrl-C), it SIGKILLs the stragglers at once.
    func stop(reason: String) {
        switch state {
        case .idle, .finished:
            return
        case .stopping:
            killStragglers()
            return
        case .running:
            break
        }
        state = .stopping
        tally.reason = reason
        cancelTimers()
        let workers = slots
        slots = []
        for worker in workers { worker.send(SIGINT) }
        leaving += workers
        reapChildren()
        guard !leaving.isEmpty else { return }
        print("\(stamp) stopping: SIGINT to \(workers.count) worker(s), " +
              "\(leaving.count) to wait for (at most \(Self.format(configuration.stopTimeout)))")
        timers.append(loop.scheduleTimer(after: configuration.stopTimeout) { [unowned self] in
            self.killStragglers()
        })
    }

    // MARK: Churn

    private func scheduleChurn() {
        guard state == .running, var schedule else { return }
        let interval = schedule.nextInterval()
        self.schedule = schedule
        timers.append(loop.scheduleTimer(after: interval) { [unowned self] in self.churn() })
    }

    /// One churn event: a random worker is killed (or interrupted) and a new one takes its slot.
    private func churn() {
        timers.removeAll { !$0.isActive }
        guard state == .running, var schedule, !slots.isEmpty else { return }
        let slot = schedule.nextVictim(among: slots.count)
        let action = schedule.nextAction()
        self.schedule = schedule
        let victim = slots[slot]
        let verb: String
        switch action {
        case .kill:
            victim.send(SIGKILL)
            tally.killed += 1
            verb = "killed"
        case .interrupt:
            victim.send(SIGINT)
            tally.interrupted += 1
            verb = "interrupted"
            timers.append(loop.scheduleTimer(after: configuration.stopTimeout) { [unowned self] in
                guard self.state == .running, victim.reap() == nil else { return }
                victim.send(SIGKILL)
                self.print("\(self.stamp) \(victim.label) did not leave within \(Self.format(self.configuration.stopTimeout)); killed")
            })
        }
        leaving.append(victim)
        replace(slot: slot, saying: "\(verb) \(victim.label)")
        scheduleChurn()
    }

    /// Starts a worker in `slot` and prints `what` with it, or stops the fleet if it cannot.
    private func replace(slot: Int, saying what: String) {
        do {
            let worker = try spawnWorker()
            slots[slot] = worker
            print("\(stamp) \(what); started \(worker.label)")
        } catch {
            slots.remove(at: slot)
            print("\(stamp) \(what); \(error)")
            failed = true
            stop(reason: "failed")
        }
    }

    private func spawnWorker() throws(SpawnError) -> ChildProcess {
        let number = nextNumber
        nextNumber += 1
        let name = "fleet-\(number)"
        var arguments = configuration.workerArguments + ["--name", name] + configuration.extraArguments
        if !configuration.faults.isEmpty {
            arguments += configuration.faults.flatMap { ["--inject", $0] }
            // Same faults, different dice: each worker draws its delays and drops from a seed of its own,
            // unless the operator fixed one.
            if !configuration.faults.contains(where: { $0.contains("seed=") }) {
                arguments += ["--inject", "seed=\(SplitMix64.derive(configuration.seed, UInt64(number)))"]
            }
        }
        let worker = try ChildProcess.spawn(
            executable: configuration.executable, arguments: arguments, name: name,
            logPath: configuration.logDirectory + "/\(name).log")
        tally.started += 1
        return worker
    }

    // MARK: Reaping

    /// Reaps every child that has exited; replaces the ones that exited by themselves.
    private func reapChildren() {
        leaving.removeAll { $0.reap() != nil }
        for slot in slots.indices.reversed() {
            // A failed replacement stops the fleet, which empties the slots.
            guard state == .running, slot < slots.count else { break }
            let worker = slots[slot]
            guard let termination = worker.reap() else { continue }
            tally.exitedByThemselves += 1
            let what = "\(worker.label) exited by itself (\(termination))"
            if ContinuousClock.now - worker.started < Self.quickExit {
                quickExits += 1
            } else {
                quickExits = 0
            }
            // A worker that cannot even start (bad arguments, no MNIST) would be restarted forever.
            if quickExits > configuration.size {
                slots.remove(at: slot)
                print("\(stamp) \(what); \(quickExits) workers in a row exited within "
                      + "\(Self.format(Self.quickExit)) of starting: giving up. End of \(worker.logPath):")
                for line in worker.logTail(5) { print("    \(line)") }
                failed = true
                stop(reason: "failed")
                return
            }
            replace(slot: slot, saying: what)
        }
        if state == .stopping && leaving.isEmpty { finish() }
    }

    // MARK: Stopping

    private func killStragglers() {
        guard state == .stopping else { return }
        leaving.removeAll { $0.reap() != nil }
        guard !leaving.isEmpty else { return finish() }
        cancelTimers()
        tally.stragglers += leaving.count
        for worker in leaving { worker.send(SIGKILL) }
        print("\(stamp) SIGKILL to \(leaving.count) straggler(s): \(leaving.map(\.label).joined(separator: ", "))")
        timers.append(loop.scheduleTimer(after: Self.reapTimeout) { [unowned self] in
            self.leaving.removeAll { $0.reap() != nil }
            if !self.leaving.isEmpty {
                self.print("\(self.stamp) not reaped after SIGKILL: \(self.leaving.map(\.label).joined(separator: ", "))")
                self.failed = true
            }
            self.finish()
        })
    }

    private func finish() {
        guard state == .stopping else { return }
        state = .finished
        cancelTimers()
        childWatcher?.cancel()
        childWatcher = nil
        if leaving.isEmpty { print("\(stamp) all workers have ended") }
        onFinished?()
    }

    private func cancelTimers() {
        for timer in timers { timer.cancel() }
        timers = []
    }

    static func format(_ duration: Duration) -> String {
        let seconds = duration.seconds
        return seconds == seconds.rounded() ? "\(Int(seconds))s" : String(format: "%.1fs", seconds)
    }
}

/// Whether `pid` names a live process: not gone, and not a zombie waiting for its parent to reap it
/// (which still answers `kill(pid, 0)`).
func processIsAlive(_ pid: pid_t) -> Bool {
    guard kill(pid, 0) == 0 || errno == EPERM else { return false }
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let endOfName = stat.lastIndex(of: ")") else { return true }
    // The state follows the command name in parentheses: "1234 (ps-server) S ...".
    return stat[endOfName...].dropFirst(2).first != "Z"
}
