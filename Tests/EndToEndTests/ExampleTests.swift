import Foundation
import Testing

/// Examples/Spirals, run as its README says: a model family that is not MNIST's, registered in the
/// model catalogue, trained through real ps-server and ps-worker processes.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct ExampleTests {
    @Test func theSpiralsExampleTrainsAsItsReadmeSays() throws {
        let (server, port) = try startServer(["--model", "spirals", "--epochs", "20", "--workers", "2"])
        defer { server.end() }
        let workers = try (1...2).map { try startWorker(port: port, name: "spirals-\($0)", ["--once"]) }
        defer { workers.forEach { $0.end() } }
        let fields = try summary(of: server)
        // The README's lines, with ps-server's default unit and the spirals' local rate scaled to it.
        #expect(server.output.contains { $0.hasPrefix("model spirals:64,64 with 4547 parameters") && $0.hasSuffix("units of 32 x 16") })
        #expect(server.output.contains { $0.hasPrefix("exchange: 16 local steps per push (lr 0.071,") })
        #expect(fields.int("units") == fields.int("units_expected"))
        // ps-train reaches 96.3% on this data; the fleet lands within a point of it.
        #expect(fields.double("test_accuracy") >= 0.95, "test accuracy \(fields["test_accuracy"] ?? "?")")
        for worker in workers {
            #expect(try worker.waitForExit(timeout: .seconds(60)) == 0)
            #expect(worker.output.contains { $0.contains("joined session") && $0.contains("spirals:64,64") })
        }
    }

    @Test func aWorkerOfferingOnlyMNISTModelsIsRefusedByASpiralsSession() throws {
        let (server, port) = try startServer(["--model", "spirals", "--epochs", "1", "--workers", "1"])
        defer { server.end() }
        let older = try startWorker(port: port, name: "mnist-only", ["--once", "--models", "mlp,cnn"])
        defer { older.end() }
        try older.waitForLine(containing: "this session trains a spirals model; the worker can build only mlp, cnn", timeout: .seconds(60))
        let worker = try startWorker(port: port, name: "current", ["--once"])
        defer { worker.end() }
        let fields = try summary(of: server)
        #expect(fields.int("units") == fields.int("units_expected"))
        #expect(server.output.contains { $0.contains("mnist-only") && $0.contains("can build only mlp, cnn") })
    }
}
