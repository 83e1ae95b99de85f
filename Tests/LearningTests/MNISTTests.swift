import Foundation
import Testing

@testable import Learning

/// A temporary directory of small IDX files, removed when the test ends.
final class FixtureDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "downpour-mnist-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    /// Writes a consistent pair of `count` 28x28 images and labels under the training names.
    func writeValidPair(count: Int, gzip: Bool) throws {
        let suffix = gzip ? ".gz" : ""
        let pixels = (0..<(count * 784)).map { UInt8(truncatingIfNeeded: $0 * 7) }
        try IDXFile.write(path: file(MNIST.trainImages + suffix), dimensions: [count, 28, 28], bytes: pixels, gzip: gzip)
        let labels = (0..<count).map { UInt8($0 % 10) }
        try IDXFile.write(path: file(MNIST.trainLabels + suffix), dimensions: [count], bytes: labels, gzip: gzip)
    }

    func load() throws -> Dataset {
        try MNIST.load(directory: path, images: MNIST.trainImages, labels: MNIST.trainLabels)
    }
}

@Suite struct MNISTTests {
    @Test(arguments: [false, true])
    func readsPlainAndGzippedFiles(gzip: Bool) throws {
        let fixture = try FixtureDirectory()
        try fixture.writeValidPair(count: 5, gzip: gzip)
        let dataset = try fixture.load()
        #expect(dataset.count == 5)
        #expect(dataset.imageSize == 784)
        #expect(dataset.labels == [0, 1, 2, 3, 4])
        #expect(abs(dataset.images[1] - (Float(7) / 255 - Dataset.mean) / Dataset.standardDeviation) < 1e-6)
    }

    /// Expects loading to fail with an error that names `file` and mentions `words`.
    func expectFailure(_ fixture: FixtureDirectory, file: String, mentions words: String) {
        do {
            _ = try fixture.load()
            Issue.record("loading succeeded; expected an error about \(file)")
        } catch let error as MNISTError {
            #expect(error.file.hasSuffix(file), "\(error)")
            #expect(error.description.contains(words), "\(error)")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func missingFile() throws {
        let fixture = try FixtureDirectory()
        expectFailure(fixture, file: MNIST.trainImages + ".gz", mentions: "missing")
    }

    @Test func badMagicNumber() throws {
        let fixture = try FixtureDirectory()
        try fixture.writeValidPair(count: 2, gzip: false)
        // A label file (rank 1) where images belong.
        try IDXFile.write(path: fixture.file(MNIST.trainImages), dimensions: [2], bytes: [1, 2], gzip: false)
        expectFailure(fixture, file: MNIST.trainImages, mentions: "bad magic number 2049, expected 2051")
    }

    @Test func truncatedData() throws {
        let fixture = try FixtureDirectory()
        try fixture.writeValidPair(count: 3, gzip: false)
        let path = fixture.file(MNIST.trainImages)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(data.count - 100).write(to: URL(fileURLWithPath: path))
        expectFailure(fixture, file: MNIST.trainImages, mentions: "truncated data: expected 2352 bytes, found 2252")
    }

    @Test func truncatedHeader() throws {
        let fixture = try FixtureDirectory()
        try fixture.writeValidPair(count: 3, gzip: false)
        try Data([0, 0, 8, 3, 0, 0]).write(to: URL(fileURLWithPath: fixture.file(MNIST.trainImages)))
        expectFailure(fixture, file: MNIST.trainImages, mentions: "truncated header")
    }

    @Test func truncatedGzipStream() throws {
        let fixture = try FixtureDirectory()
        try fixture.writeValidPair(count: 20, gzip: true)
        let path = fixture.file(MNIST.trainImages + ".gz")
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: path))
        expectFailure(fixture, file: MNIST.trainImages + ".gz", mentions: "data")
    }

    @Test func corruptGzipStream() throws {
        let fixture = try FixtureDirectory()
        try fixture.writeValidPair(count: 20, gzip: true)
        let path = fixture.file(MNIST.trainLabels + ".gz")
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        // Damage the CRC-32 in the gzip trailer.
        data[data.count - 6] ^= 0xFF
        try data.write(to: URL(fileURLWithPath: path))
        expectFailure(fixture, file: MNIST.trainLabels + ".gz", mentions: "corrupt")
    }

    @Test func trailingBytes() throws {
        let fixture = try FixtureDirectory()
        try fixture.writeValidPair(count: 2, gzip: false)
        try IDXFile.write(path: fixture.file(MNIST.trainLabels), dimensions: [2], bytes: [1, 2, 3], gzip: false)
        expectFailure(fixture, file: MNIST.trainLabels, mentions: "trailing bytes")
    }

    @Test func countsDisagree() throws {
        let fixture = try FixtureDirectory()
        try fixture.writeValidPair(count: 3, gzip: false)
        try IDXFile.write(path: fixture.file(MNIST.trainLabels), dimensions: [2], bytes: [1, 2], gzip: false)
        expectFailure(fixture, file: MNIST.trainLabels, mentions: "2 labels but")
    }

    @Test func wrongImageSize() throws {
        let fixture = try FixtureDirectory()
        try fixture.writeValidPair(count: 2, gzip: false)
        try IDXFile.write(
            path: fixture.file(MNIST.trainImages), dimensions: [2, 27, 28], bytes: .init(repeating: 0, count: 2 * 27 * 28),
            gzip: false)
        expectFailure(fixture, file: MNIST.trainImages, mentions: "27x28, expected 28x28")
    }

    @Test func labelOutOfRange() throws {
        let fixture = try FixtureDirectory()
        try fixture.writeValidPair(count: 2, gzip: false)
        try IDXFile.write(path: fixture.file(MNIST.trainLabels), dimensions: [2], bytes: [1, 12], gzip: false)
        expectFailure(fixture, file: MNIST.trainLabels, mentions: "label 12 at index 1")
    }

    @Test func findsTheCommittedData() throws {
        let directory = try MNIST.dataDirectory()
        #expect(directory.hasSuffix("Data/mnist"))
        let test = try MNIST.load(directory: directory, images: MNIST.testImages, labels: MNIST.testLabels)
        #expect(test.count == 10_000)
        var counts = [Int](repeating: 0, count: 10)
        for label in test.labels { counts[Int(label)] += 1 }
        #expect(counts == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    }

    @Test func overrideMustExist() {
        #expect(throws: MNISTError.self) { try MNIST.dataDirectory(override: "/nonexistent/mnist") }
    }

    @Test func gatherCopiesRowsAndLabels() {
        let dataset = Dataset(images: (0..<12).map(Float.init), labels: [0, 1, 2], imageHeight: 2, imageWidth: 2)
        var images = [Float](repeating: -1, count: 8)
        var labels = [UInt8](repeating: 9, count: 2)
        images.withUnsafeMutableBufferPointer { i in
            labels.withUnsafeMutableBufferPointer { l in dataset.gather(indices: [2, 0][...], into: i, labels: l) }
        }
        #expect(images == [8, 9, 10, 11, 0, 1, 2, 3])
        #expect(labels == [2, 0])
        #expect(dataset.prefix(2).count == 2)
        #expect(dataset.prefix(2).images.count == 8)
    }
}

@Suite struct EpochPermutationTests {
    @Test func isAPermutationAndDeterministic() {
        let a = EpochPermutation(seed: 7, epoch: 3, count: 1000)
        #expect(Set(a.indices).count == 1000)
        #expect(a.indices.min() == 0 && a.indices.max() == 999)
        #expect(a.indices == EpochPermutation(seed: 7, epoch: 3, count: 1000).indices)
        #expect(a.indices != EpochPermutation(seed: 7, epoch: 4, count: 1000).indices)
        #expect(a.indices != EpochPermutation(seed: 8, epoch: 3, count: 1000).indices)
    }

    @Test(arguments: [(1000, 64, 16), (640, 64, 10), (641, 64, 11), (10, 4, 3)])
    func batchesCoverTheEpoch(count: Int, batchSize: Int, expectedBatches: Int) {
        let permutation = EpochPermutation(seed: 1, epoch: 0, count: count)
        let batches = permutation.batches(of: batchSize)
        #expect(batches.count == expectedBatches)
        #expect(batches.flatMap { $0 }.sorted() == (0..<Int32(count)).map { $0 })
        #expect(batches.dropLast().allSatisfy { $0.count == batchSize })
        // A range of positions is cut the same way, from its start.
        let half = permutation.batches(of: batchSize, in: (count / 2)..<count)
        #expect(half.flatMap { $0 } == Array(permutation.indices[(count / 2)...]))
    }

    @Test func generatorIsStable() {
        // Pinned values: a change here changes every seeded run.
        var generator = Xoshiro256(seed: 42)
        let values = (0..<3).map { _ in generator.next() }
        var again = Xoshiro256(seed: 42)
        #expect(values == (0..<3).map { _ in again.next() })
        #expect(Set(values).count == 3)
        var bounded = Xoshiro256(seed: 1)
        #expect((0..<1000).allSatisfy { _ in (0..<7).contains(bounded.next(below: 7)) })
    }
}
