import FoundationEssentials
import Glibc

/// The MNIST handwritten digits: finding the files and loading them.
///
/// ```swift
/// let directory = try MNIST.dataDirectory(override: options.data)
/// let (train, test) = try MNIST.load(directory: directory)
/// ```
public enum MNIST {
    /// The four files, without the optional `.gz` suffix.
    public static let trainImages = "train-images-idx3-ubyte"
    public static let trainLabels = "train-labels-idx1-ubyte"
    public static let testImages = "t10k-images-idx3-ubyte"
    public static let testLabels = "t10k-labels-idx1-ubyte"

    /// Loads the training and test sets from `directory` (each file gzipped or plain).
    ///
    /// - Throws: `MNISTError` naming the file that is missing, corrupt, truncated or inconsistent.
    public static func load(directory: String) throws -> (train: Dataset, test: Dataset) {
        let train = try load(directory: directory, images: trainImages, labels: trainLabels)
        let test = try load(directory: directory, images: testImages, labels: testLabels)
        return (train, test)
    }

    /// Loads the training and test sets from `directory`.
    public static func load(directory: URL) throws -> (train: Dataset, test: Dataset) {
        try load(directory: directory.path)
    }

    /// Loads one image file and its label file, checking that they agree.
    ///
    /// - Parameters:
    ///   - directory: where the files are.
    ///   - images: the image file's name without `.gz`.
    ///   - labels: the label file's name without `.gz`.
    /// - Throws: `MNISTError` naming the file at fault.
    public static func load(directory: String, images: String, labels: String) throws -> Dataset {
        let imagePath = try existingFile(directory: directory, name: images)
        let labelPath = try existingFile(directory: directory, name: labels)
        let imageFile = try IDXFile.read(path: imagePath, rank: 3)
        let labelFile = try IDXFile.read(path: labelPath, rank: 1)
        let (count, height, width) = (imageFile.dimensions[0], imageFile.dimensions[1], imageFile.dimensions[2])
        guard height == 28, width == 28 else {
            throw MNISTError(file: imagePath, problem: "images are \(height)x\(width), expected 28x28")
        }
        guard labelFile.dimensions[0] == count else {
            throw MNISTError(
                file: labelPath,
                problem: "\(labelFile.dimensions[0]) labels but \(imagePath) has \(count) images")
        }
        if let bad = labelFile.bytes.firstIndex(where: { $0 > 9 }) {
            throw MNISTError(file: labelPath, problem: "label \(labelFile.bytes[bad]) at index \(bad) is not a digit 0-9")
        }
        return Dataset(pixels: imageFile.bytes, labels: labelFile.bytes, imageHeight: height, imageWidth: width)
    }

    /// Finds the MNIST directory.
    ///
    /// With `override` (a `--data DIR` flag) that directory is used as given. Otherwise the first
    /// `Data/mnist` holding the training images is taken, looking from the running executable's directory
    /// and its ancestors (so `.build/<config>/ps-train` finds `../../Data/mnist`), then from this source
    /// file's directory and its ancestors (`#filePath`), then from the current directory and its ancestors.
    ///
    /// - Parameter override: a directory given by the user, or `nil`.
    /// - Returns: the directory path.
    /// - Throws: `MNISTError` when `override` does not exist or no candidate holds the data.
    public static func dataDirectory(override: String? = nil, sourceFile: String = #filePath) throws -> String {
        let fileManager = FileManager.default
        if let override {
            var isDirectory = false
            guard fileManager.fileExists(atPath: override, isDirectory: &isDirectory), isDirectory else {
                throw MNISTError(file: override, problem: "no such directory")
            }
            return override
        }
        var starts: [URL] = []
        if let executable = runningExecutablePath() { starts.append(URL(fileURLWithPath: executable).deletingLastPathComponent()) }
        starts.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
        starts.append(URL(fileURLWithPath: sourceFile).deletingLastPathComponent())
        starts.append(URL(fileURLWithPath: fileManager.currentDirectoryPath))
        var tried: [String] = []
        for start in starts {
            var directory = start.standardizedFileURL
            for _ in 0..<6 {
                let candidate = directory.appendingPathComponent("Data/mnist").path
                if !tried.contains(candidate) {
                    tried.append(candidate)
                    if (try? existingFile(directory: candidate, name: trainImages)) != nil { return candidate }
                }
                let parent = directory.deletingLastPathComponent()
                if parent.path == directory.path { break }
                directory = parent
            }
        }
        throw MNISTError(
            file: "Data/mnist", problem: "not found (pass --data DIR); looked in " + tried.joined(separator: ", "))
    }

    /// The running executable's path, from the kernel's `/proc/self/exe` link (what Foundation's
    /// `Bundle.main.executableURL` reads on Linux), or nil when it cannot be read.
    static func runningExecutablePath() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return nil }
        return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The path of `name.gz` or `name` in `directory`, whichever exists (gzipped first).
    static func existingFile(directory: String, name: String) throws -> String {
        let base = URL(fileURLWithPath: directory).appendingPathComponent(name).path
        for path in [base + ".gz", base] where FileManager.default.fileExists(atPath: path) { return path }
        throw MNISTError(file: base + ".gz", problem: "missing (neither \(name).gz nor \(name) is in \(directory))")
    }
}
