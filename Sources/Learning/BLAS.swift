import CBLAS
import Locking

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one door to OpenBLAS: loads the library at first use with the fastest kernels this CPU supports.
///
/// Debian's OpenBLAS 0.3.21 does not recognise recent AMD CPUs with AVX-512 and falls back to generic
/// "Prescott" kernels, four to six times slower. It reads `OPENBLAS_CORETYPE` once, when it loads, so
/// Downpour does not link it: the first call here chooses a core type from cpuid (unless the user set
/// `OPENBLAS_CORETYPE`), sets it in the environment, then `dlopen`s the library.
///
/// ```swift
/// BLAS.configure(threads: 1)
/// print("BLAS kernel: \(BLAS.kernelName)")   // "SkylakeX"
/// ```
///
/// - Warning: Loading calls `setenv`, which is not safe while other threads read the environment: call
///   `configure(threads:)` or `load()` at start-up, before starting threads.
public enum BLAS {
    /// Row-major single-precision matrix multiply, `C = alpha * op(A) * op(B) + beta * C`.
    ///
    /// `op(A)` is `m x k`, `op(B)` is `k x n`, `C` is `m x n`; `lda`, `ldb`, `ldc` are row strides.
    @inline(__always)
    public static func sgemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        let rowMajor: Int32 = 101, noTranspose: Int32 = 111, transpose: Int32 = 112
        library.sgemm(
            rowMajor, transposeA ? transpose : noTranspose, transposeB ? transpose : noTranspose,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Sets how many threads OpenBLAS uses in this process (default 1: Downpour parallelises by process).
    public static func configure(threads: Int) {
        precondition(threads >= 1, "BLAS threads must be at least 1")
        requestedThreads.withLock { $0 = threads }
        library.setThreads(Int32(threads))
    }

    /// The kernel family OpenBLAS runs, e.g. "SkylakeX", "Haswell" or "Prescott".
    public static var kernelName: String { library.coreName }

    /// The core type Downpour asked for, or `nil` when it left OpenBLAS to choose (or the user chose).
    public static var requestedCoreType: String? { library.requestedCoreType }

    /// Where the library was loaded from.
    public static var libraryPath: String { library.path }

    /// Loads OpenBLAS now (it is otherwise loaded at first use), so start-up can report a missing library.
    ///
    /// - Throws: `BLASLoadError` when no OpenBLAS shared library can be opened.
    public static func load() throws {
        if let error = loadResult.error { throw error }
    }

    /// The library names tried, in order.
    static let candidatePaths = [
        "libopenblas.so.0",
        "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
        "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
        "libopenblas.dylib",
    ]

    private static let loadResult: (library: OpenBLASLibrary?, error: BLASLoadError?) = {
        do {
            return (try OpenBLASLibrary.load(threads: requestedThreads.withLock { $0 }), nil)
        } catch let error as BLASLoadError {
            return (nil, error)
        } catch {
            return (nil, BLASLoadError(message: "\(error)"))
        }
    }()

    private static var library: OpenBLASLibrary {
        guard let library = loadResult.library else { fatalError("\(loadResult.error!)") }
        return library
    }

    private static let requestedThreads = Locked(1)
}

/// OpenBLAS could not be loaded.
public struct BLASLoadError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

/// The CPU features that decide which OpenBLAS kernels are safe and fastest.
public struct CPUFeatures: Sendable, Hashable {
    public var avx2 = false
    public var fma = false
    public var avx512f = false
    public var avx512bw = false
    public var avx512vl = false
    public var avx512dq = false
    /// The operating system saves the AVX (YMM) state.
    public var osSavesAVX = false
    /// The operating system saves the AVX-512 (opmask and ZMM) state.
    public var osSavesAVX512 = false

    public init(
        avx2: Bool = false, fma: Bool = false, avx512f: Bool = false, avx512bw: Bool = false,
        avx512vl: Bool = false, avx512dq: Bool = false, osSavesAVX: Bool = false, osSavesAVX512: Bool = false
    ) {
        self.avx2 = avx2
        self.fma = fma
        self.avx512f = avx512f
        self.avx512bw = avx512bw
        self.avx512vl = avx512vl
        self.avx512dq = avx512dq
        self.osSavesAVX = osSavesAVX
        self.osSavesAVX512 = osSavesAVX512
    }

    /// This machine's features, from cpuid and xgetbv (all false on CPUs that are not x86-64).
    public static let current: CPUFeatures = {
        var regs: [UInt32] = [0, 0, 0, 0]
        guard downpour_cpuid(0, 0, &regs) != 0 else { return CPUFeatures() }
        let maxLeaf = regs[0]
        var features = CPUFeatures()
        downpour_cpuid(1, 0, &regs)
        let ecx1 = regs[2]
        features.fma = ecx1 & (1 << 12) != 0
        let osxsave = ecx1 & (1 << 27) != 0
        if osxsave {
            let xcr0 = downpour_xgetbv0()
            features.osSavesAVX = xcr0 & 0b110 == 0b110
            features.osSavesAVX512 = xcr0 & 0b1110_0110 == 0b1110_0110
        }
        if maxLeaf >= 7 {
            downpour_cpuid(7, 0, &regs)
            let ebx7 = regs[1]
            features.avx2 = ebx7 & (1 << 5) != 0
            features.avx512f = ebx7 & (1 << 16) != 0
            features.avx512dq = ebx7 & (1 << 17) != 0
            features.avx512bw = ebx7 & (1 << 30) != 0
            features.avx512vl = ebx7 & (1 << 31) != 0
        }
        return features
    }()

    /// The OpenBLAS core type for these features: "SkylakeX" with AVX-512 F/BW/VL/DQ, "Haswell" with
    /// AVX2 and FMA, otherwise `nil` (let OpenBLAS decide). Each needs the OS to save the registers.
    public var openBLASCoreType: String? {
        if avx512f && avx512bw && avx512vl && avx512dq && osSavesAVX && osSavesAVX512 { return "SkylakeX" }
        if avx2 && fma && osSavesAVX { return "Haswell" }
        return nil
    }

    /// The core type to set before loading OpenBLAS: `nil` when the user already set `OPENBLAS_CORETYPE`
    /// (theirs wins) or when these features call for none.
    public func coreTypeToRequest(userSetting: String?) -> String? {
        if let userSetting, !userSetting.isEmpty { return nil }
        return openBLASCoreType
    }
}

/// The loaded library and the symbols Downpour uses.
private final class OpenBLASLibrary: Sendable {
    let path: String
    let requestedCoreType: String?
    let coreName: String
    let sgemm: @convention(c) (
        Int32, Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32,
        UnsafePointer<Float>?, Int32, Float, UnsafeMutablePointer<Float>?, Int32
    ) -> Void
    let setThreadsFunction: @convention(c) (Int32) -> Void

    private init(
        path: String, requestedCoreType: String?, coreName: String,
        sgemm: downpour_cblas_sgemm_fn, setThreads: downpour_openblas_set_num_threads_fn
    ) {
        self.path = path
        self.requestedCoreType = requestedCoreType
        self.coreName = coreName
        self.sgemm = sgemm
        self.setThreadsFunction = setThreads
    }

    func setThreads(_ threads: Int32) { setThreadsFunction(threads) }

    static func load(threads: Int) throws -> OpenBLASLibrary {
        let userSetting = getenv("OPENBLAS_CORETYPE").map { String(cString: $0) }
        let requested = CPUFeatures.current.coreTypeToRequest(userSetting: userSetting)
        if let requested { setenv("OPENBLAS_CORETYPE", requested, 1) }
        // Start OpenBLAS's thread pool at the size asked for instead of one thread per core.
        if getenv("OPENBLAS_NUM_THREADS") == nil { setenv("OPENBLAS_NUM_THREADS", "\(threads)", 1) }

        var failures: [String] = []
        for path in BLAS.candidatePaths {
            guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
                failures.append(dlerror().map { String(cString: $0) } ?? path)
                continue
            }
            guard let sgemm = dlsym(handle, "cblas_sgemm"),
                let setThreads = dlsym(handle, "openblas_set_num_threads"),
                let coreName = dlsym(handle, "openblas_get_corename")
            else {
                failures.append("\(path): missing cblas_sgemm, openblas_set_num_threads or openblas_get_corename")
                dlclose(handle)
                continue
            }
            let getCoreName = unsafeBitCast(coreName, to: downpour_openblas_get_corename_fn.self)
            let name = getCoreName().map { String(cString: $0) } ?? "unknown"
            let library = OpenBLASLibrary(
                path: path, requestedCoreType: requested, coreName: name,
                sgemm: unsafeBitCast(sgemm, to: downpour_cblas_sgemm_fn.self),
                setThreads: unsafeBitCast(setThreads, to: downpour_openblas_set_num_threads_fn.self))
            library.setThreads(Int32(threads))
            return library
        }
        throw BLASLoadError(
            message: "cannot load OpenBLAS (install libopenblas0-pthread): " + failures.joined(separator: "; "))
    }
}
