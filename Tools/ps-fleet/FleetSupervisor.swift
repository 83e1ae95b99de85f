import Foundation
import Learning
import ProcessTooling
import Reactor

/// Keeps a fleet of `ps-worker` processes running, and with shards a set of `ps-shard` processes too,
/// churns them on seeded schedules and stops them cleanly.
///
/// Every action prints one line stamped with the time since the fleet started:
///
/// ```
/// +12.3s killed fleet-3 (pid 1234); started fleet-7 (pid 1250)
/// +20.1s killed shard-2 (pid 1240); started shard-4 (pid 1262)
/// ```
///
/// Children are reaped when SIGCHLD arrives. ``stop(reason:)`` sends SIGINT to every worker and shard,
/// SIGKILLs whoever is left after the stop timeout and calls ``onFinished`` once every child has been
/// reaped.
///
/// - Warning: Loop thread only: create it, start it and stop it on the loop's thread.
final class FleetSupervisor {
    /// One kind of process the fleet keeps running, and how it churns.
    struct Pool {
        /// The names' prefix, `fleet` or `shard`: `fleet-3`, `shard-2`.
        var prefix: String
        /// What one is called in the fleet's lines: `worker` or `shard`.
        var noun: String
        /// Processes to keep running.
        var size: Int
        /// The `ps-worker` or `ps-shard` executable.
        var executable: String
        /// Arguments every process gets before `--name` (host, port, retry interval).
        var arguments: [String]
        /// Further arguments, after `--name`.
        var extraArguments: [String]
        /// `--inject` values for every process; empty for none (workers only).
        var faults: [String] = []
        /// The mean interval between churn events, or nil for no churn.
        var churnEvery: Duration?
        /// The share of churn events that SIGKILL rather than SIGINT.
        var killFraction: Double
        /// The churn's stream of the fleet's seed (``ChurnSchedule/workerStream`` or ``ChurnSchedule/shardStream``).
        var stream: UInt64
    }

    /// What the fleet runs and how it churns.
    struct Configuration {
        /// The workers.
        var workers: Pool
        /// The shards, or nil for none.
        var shards: Pool?
        /// Where each process's log goes.
        var logDirectory: String
        /// Seeds the churn and the workers' fault seeds.
        var seed: UInt64
        /// Stop after this long, if set.
        var duration: Duration?
        /// Stop when this (local) process exits, if set.
        var serverPID: pid_t?
        /// How long a worker or shard has to leave after SIGINT before it is SIGKILLed.
        var stopTimeout: Duration
    }

    /// One pool's processes and what happened to them.
    private final class Running {
        let pool: Pool
        /// The processes that count towards the pool's size, by slot; a replacement takes its victim's slot.
        var slots: [ChildProcess] = []
        var nextNumber = 1
        /// Consecutive processes that exited within `quickExit` of starting.
        var quickExits = 0
        var schedule: ChurnSchedule?
        var counts = FleetTally.Counts()

        init(pool: Pool, seed: UInt64) {
            self.pool = pool
            counts.size = pool.size
            schedule = pool.churnEvery.map { ChurnSchedule(meanInterval: $0, killFraction: pool.killFraction, seed: seed, stream: pool.stream) }
        }
    }

    private enum State { case idle, running, stopping, finished }

    /// A process that exits this soon after starting counts as a failure to start.
    private static let quickExit: Duration = .seconds(1)
    /// How often the server's PID is checked; there is no event for another process's exit.
    private static let serverCheckInterval: Duration = .milliseconds(250)
    /// How long SIGKILLed stragglers have to be reaped before the fleet gives up on them.
    private static let reapTimeout: Duration = .seconds(5)

    private let configuration: Configuration
    private let loop: EventLoop
    private let print: (String) -> Void
    private var state = State.idle
    private let startTime = ContinuousClock.now
    /// The shards first (they must be there before workers can train), then the workers.
    private let pools: [Running]
    /// Processes the fleet asked to go, not reaped yet.
    private var leaving: [ChildProcess] = []
    private var timers: [TimerHandle] = []
    private var childWatcher: SignalWatcher?
    private var stragglers = 0
    private var reason = ""
    /// Set when the fleet stops because it could not keep workers or shards running.
    private(set) var failed = false

    /// What the fleet did so far.
    var tally: FleetTally {
        FleetTally(workers: pools.last!.counts, shards: pools.count > 1 ? pools[0].counts : .init(),
                   stragglers: stragglers, reason: reason)
    }

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
        pools = ([configuration.shards].compactMap { $0 } + [configuration.workers]).map { Running(pool: $0, seed: configuration.seed) }
    }

    /// Seconds since the fleet started, as printed: `+12.3s`.
    private var stamp: String { "+\(String(format: "%.1f", elapsed))s" }

    /// Seconds since the fleet started.
    var elapsed: Double { (ContinuousClock.now - startTime).seconds }

    /// Starts the shards, the workers and the timers.
    ///
    /// A process that cannot be started is reported and stops the fleet (``failed`` is then set, and
    /// ``onFinished`` is called once the processes already started have been reaped).
    /// - Throws: ``ReactorError`` if SIGCHLD cannot be watched; nothing has been started then.
    func start() throws {
        precondition(state == .idle, "start() called twice")
        // Watch before spawning, so no exit goes unnoticed.
        childWatcher = try loop.watchSignal(SIGCHLD) { [unowned self] in self.reapChildren() }
        state = .running
        for running in pools {
            for _ in 0..<running.pool.size {
                do {
                    let process = try spawn(running)
                    running.slots.append(process)
                    print("\(stamp) started \(process.label)")
                } catch {
                    print("\(stamp) \(error)")
                    failed = true
                    stop(reason: "failed")
                    return
                }
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
        for running in pools { scheduleChurn(running) }
    }

    /// Stops the fleet: SIGINT to every worker and shard, SIGKILL to whoever is left after the stop timeout.
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
        self.reason = reason
        cancelTimers()
        var signalled: [String] = []
        for running in pools.reversed() {
            let processes = running.slots
            running.slots = []
            for process in processes { process.send(SIGINT) }
            leaving += processes
            signalled.append("\(processes.count) \(running.pool.noun)(s)")
        }
        reapChildren()
        guard !leaving.isEmpty else { return }
        print("\(stamp) stopping: SIGINT to \(signalled.joined(separator: " and ")), " +
              "\(leaving.count) to wait for (at most \(Self.format(configuration.stopTimeout)))")
        timers.append(loop.scheduleTimer(after: configuration.stopTimeout) { [unowned self] in
            self.killStragglers()
        })
    }

    // MARK: Churn

    private func scheduleChurn(_ running: Running) {
        guard state == .running, let interval = running.schedule?.nextInterval() else { return }
        timers.append(loop.scheduleTimer(after: interval) { [unowned self] in self.churn(running) })
    }

    /// One churn event: a random worker (or shard) is killed (or interrupted) and a new one takes its slot.
    private func churn(_ running: Running) {
        timers.removeAll { !$0.isActive }
        guard state == .running, running.schedule != nil, !running.slots.isEmpty else { return }
        let slot = running.schedule!.nextVictim(among: running.slots.count)
        let action = running.schedule!.nextAction()
        let victim = running.slots[slot]
        let verb: String
        switch action {
        case .kill:
            victim.send(SIGKILL)
            running.counts.killed += 1
            verb = "killed"
        case .interrupt:
            victim.send(SIGINT)
            running.counts.interrupted += 1
            verb = "interrupted"
            timers.append(loop.scheduleTimer(after: configuration.stopTimeout) { [unowned self] in
                guard self.state == .running, victim.reap() == nil else { return }
                victim.send(SIGKILL)
                self.print("\(self.stamp) \(victim.label) did not leave within \(Self.format(self.configuration.stopTimeout)); killed")
            })
        }
        leaving.append(victim)
        replace(slot: slot, in: running, saying: "\(verb) \(victim.label)")
        scheduleChurn(running)
    }

    /// Starts a process in `slot` of `running` and prints `what` with it, or stops the fleet if it cannot.
    private func replace(slot: Int, in running: Running, saying what: String) {
        do {
            let process = try spawn(running)
            running.slots[slot] = process
            print("\(stamp) \(what); started \(process.label)")
        } catch {
            running.slots.remove(at: slot)
            print("\(stamp) \(what); \(error)")
            failed = true
            stop(reason: "failed")
        }
    }

    private func spawn(_ running: Running) throws(SpawnError) -> ChildProcess {
        let pool = running.pool
        let number = running.nextNumber
        running.nextNumber += 1
        let name = "\(pool.prefix)-\(number)"
        var arguments = pool.arguments + ["--name", name] + pool.extraArguments
        if !pool.faults.isEmpty {
            arguments += pool.faults.flatMap { ["--inject", $0] }
            // Same faults, different dice: each worker draws its delays and drops from a seed of its own,
            // unless the operator fixed one.
            if !pool.faults.contains(where: { $0.contains("seed=") }) {
                arguments += ["--inject", "seed=\(SplitMix64.derive(configuration.seed, UInt64(number)))"]
            }
        }
        let process = try ChildProcess.spawn(
            executable: pool.executable, arguments: arguments, name: name,
            logPath: configuration.logDirectory + "/\(name).log")
        running.counts.started += 1
        return process
    }

    // MARK: Reaping

    /// Reaps every child that has exited; replaces the ones that exited by themselves.
    private func reapChildren() {
        leaving.removeAll { $0.reap() != nil }
        for running in pools {
            reapSlots(of: running)
        }
        if state == .stopping && leaving.isEmpty { finish() }
    }

    private func reapSlots(of running: Running) {
        for slot in running.slots.indices.reversed() {
            // A failed replacement stops the fleet, which empties the slots.
            guard state == .running, slot < running.slots.count else { return }
            let process = running.slots[slot]
            guard let termination = process.reap() else { continue }
            running.counts.exitedByThemselves += 1
            let what = "\(process.label) exited by itself (\(termination))"
            if ContinuousClock.now - process.started < Self.quickExit {
                running.quickExits += 1
            } else {
                running.quickExits = 0
            }
            // A process that cannot even start (bad arguments, no MNIST) would be restarted forever.
            if running.quickExits > running.pool.size {
                running.slots.remove(at: slot)
                print("\(stamp) \(what); \(running.quickExits) \(running.pool.noun)s in a row exited within "
                      + "\(Self.format(Self.quickExit)) of starting: giving up. End of \(process.logPath):")
                for line in process.logTail(5) { print("    \(line)") }
                failed = true
                stop(reason: "failed")
                return
            }
            replace(slot: slot, in: running, saying: what)
        }
    }

    // MARK: Stopping

    private func killStragglers() {
        guard state == .stopping else { return }
        leaving.removeAll { $0.reap() != nil }
        guard !leaving.isEmpty else { return finish() }
        cancelTimers()
        stragglers += leaving.count
        for process in leaving { process.send(SIGKILL) }
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
        if leaving.isEmpty { print("\(stamp) all workers\(pools.count > 1 ? " and shards" : "") have ended") }
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
