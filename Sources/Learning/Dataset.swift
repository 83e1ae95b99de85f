/// Images and labels in memory: images as normalised `Float`s, one row of `imageSize` per image.
public struct Dataset: Sendable {
    /// How many images.
    public let count: Int
    /// Values per image (784 for MNIST).
    public let imageSize: Int
    /// Image height and width (28 x 28 for MNIST).
    public let imageHeight: Int
    public let imageWidth: Int
    /// `count * imageSize` values, standardised with `Dataset.mean` and `Dataset.standardDeviation`.
    public let images: [Float]
    /// `count` labels, 0-9.
    public let labels: [UInt8]

    /// MNIST's pixel mean and standard deviation (of bytes / 255), used to standardise every image.
    public static let mean: Float = 0.1307
    public static let standardDeviation: Float = 0.3081

    /// Makes a dataset from already-normalised images.
    public init(images: [Float], labels: [UInt8], imageHeight: Int = 28, imageWidth: Int = 28) {
        precondition(images.count == labels.count * imageHeight * imageWidth, "images and labels disagree")
        self.count = labels.count
        self.imageHeight = imageHeight
        self.imageWidth = imageWidth
        self.imageSize = imageHeight * imageWidth
        self.images = images
        self.labels = labels
    }

    /// Makes a dataset from raw pixel bytes, standardising each to `(byte / 255 - mean) / sd`.
    public init(pixels: [UInt8], labels: [UInt8], imageHeight: Int = 28, imageWidth: Int = 28) {
        let scale = 1 / (255 * Dataset.standardDeviation)
        let shift = Dataset.mean / Dataset.standardDeviation
        self.init(
            images: pixels.map { Float($0) * scale - shift }, labels: labels,
            imageHeight: imageHeight, imageWidth: imageWidth)
    }

    /// The first `n` images (all of them when `n >= count`).
    public func prefix(_ n: Int) -> Dataset {
        let n = min(max(n, 0), count)
        return Dataset(
            images: Array(images[0..<(n * imageSize)]), labels: Array(labels[0..<n]),
            imageHeight: imageHeight, imageWidth: imageWidth)
    }

    /// Copies the images and labels at `indices` into contiguous buffers (a mini-batch).
    ///
    /// - Parameters:
    ///   - indices: dataset indices, e.g. a slice of an `EpochPermutation`.
    ///   - images: room for `indices.count * imageSize` values.
    ///   - labels: room for `indices.count` labels.
    public func gather(
        indices: ArraySlice<Int32>, into images: UnsafeMutableBufferPointer<Float>,
        labels: UnsafeMutableBufferPointer<UInt8>
    ) {
        precondition(images.count >= indices.count * imageSize && labels.count >= indices.count, "buffers too small")
        let size = imageSize
        self.images.withUnsafeBufferPointer { source in
            self.labels.withUnsafeBufferPointer { sourceLabels in
                var row = 0
                for index in indices {
                    let index = Int(index)
                    precondition(index >= 0 && index < count, "index \(index) out of range 0..<\(count)")
                    (images.baseAddress! + row * size).update(from: source.baseAddress! + index * size, count: size)
                    labels[row] = sourceLabels[index]
                    row += 1
                }
            }
        }
    }
}

/// Reusable storage for one mini-batch, so a training loop allocates nothing per batch.
///
/// ```swift
/// var batch = MiniBatch(capacity: 64, imageSize: train.imageSize)
/// batch.load(from: train, indices: permutation.indices[0..<64])
/// let loss = batch.withBuffers { images, labels in model.lossAndGradient(..., batchSize: batch.count, ...) }
/// ```
public struct MiniBatch: Sendable {
    public private(set) var images: [Float]
    public private(set) var labels: [UInt8]
    /// How many samples the last `load` copied.
    public private(set) var count = 0
    public let capacity: Int
    public let imageSize: Int

    public init(capacity: Int, imageSize: Int) {
        self.capacity = capacity
        self.imageSize = imageSize
        images = [Float](repeating: 0, count: capacity * imageSize)
        labels = [UInt8](repeating: 0, count: capacity)
    }

    /// Copies the samples at `indices` (at most `capacity`) from `dataset`.
    public mutating func load(from dataset: Dataset, indices: ArraySlice<Int32>) {
        precondition(indices.count <= capacity && dataset.imageSize == imageSize, "batch does not fit")
        images.withUnsafeMutableBufferPointer { images in
            labels.withUnsafeMutableBufferPointer { labels in
                dataset.gather(indices: indices, into: images, labels: labels)
            }
        }
        count = indices.count
    }

    /// Calls `body` with the images and labels of the loaded samples.
    public func withBuffers<Result>(
        _ body: (UnsafeBufferPointer<Float>, UnsafeBufferPointer<UInt8>) throws -> Result
    ) rethrows -> Result {
        try images.withUnsafeBufferPointer { images in
            try labels.withUnsafeBufferPointer { labels in
                try body(
                    UnsafeBufferPointer(rebasing: images[0..<(count * imageSize)]),
                    UnsafeBufferPointer(rebasing: labels[0..<count]))
            }
        }
    }
}
