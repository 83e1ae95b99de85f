import Testing

@testable import Learning

@Suite struct BLASTests {
    static let cases: [(CPUFeatures, String?)] = [
        (CPUFeatures(), nil),
        (CPUFeatures(avx2: true, fma: true, osSavesAVX: true), "Haswell"),
        (CPUFeatures(avx2: true, fma: false, osSavesAVX: true), nil),
        (CPUFeatures(avx2: true, fma: true, osSavesAVX: false), nil),
        (
            CPUFeatures(
                avx2: true, fma: true, avx512f: true, avx512bw: true, avx512vl: true, avx512dq: true,
                osSavesAVX: true, osSavesAVX512: true), "SkylakeX"
        ),
        // AVX-512 without BW (Knights Landing-like) falls back to Haswell.
        (
            CPUFeatures(
                avx2: true, fma: true, avx512f: true, avx512bw: false, avx512vl: true, avx512dq: true,
                osSavesAVX: true, osSavesAVX512: true), "Haswell"
        ),
        // The OS does not save ZMM registers: AVX-512 kernels would fault.
        (
            CPUFeatures(
                avx2: true, fma: true, avx512f: true, avx512bw: true, avx512vl: true, avx512dq: true,
                osSavesAVX: true, osSavesAVX512: false), "Haswell"
        ),
    ]

    @Test(arguments: cases)
    func coreTypeFollowsFeatureFlags(features: CPUFeatures, expected: String?) {
        #expect(features.openBLASCoreType == expected)
        #expect(features.coreTypeToRequest(userSetting: nil) == expected)
        #expect(features.coreTypeToRequest(userSetting: "") == expected)
    }

    @Test func userSettingWins() {
        let features = CPUFeatures(avx2: true, fma: true, osSavesAVX: true)
        #expect(features.coreTypeToRequest(userSetting: "Prescott") == nil)
    }

    @Test func loadedLibraryRunsTheChosenKernel() throws {
        try BLAS.load()
        if let requested = BLAS.requestedCoreType {
            #expect(BLAS.kernelName.lowercased() == requested.lowercased())
        }
        // This machine (AMD EPYC with AVX-512) must get the AVX-512 kernels.
        if CPUFeatures.current.openBLASCoreType == "SkylakeX", BLAS.requestedCoreType != nil {
            #expect(BLAS.kernelName.lowercased() == "skylakex")
        }
    }

    @Test func sgemmMultipliesWithTransposes() {
        // A = [[1, 2, 3], [4, 5, 6]] (2x3), B = [[1, 0], [0, 1], [1, 1]] (3x2): AB = [[4, 5], [10, 11]].
        let a: [Float] = [1, 2, 3, 4, 5, 6]
        let b: [Float] = [1, 0, 0, 1, 1, 1]
        var c = [Float](repeating: 0, count: 4)
        BLAS.sgemm(
            transposeA: false, transposeB: false, m: 2, n: 2, k: 3, alpha: 1, a: a, lda: 3, b: b, ldb: 2, beta: 0,
            c: &c, ldc: 2)
        #expect(c == [4, 5, 10, 11])
        // A^T A (3x3) via transposeA on the 2x3 A.
        var ata = [Float](repeating: 0, count: 9)
        BLAS.sgemm(
            transposeA: true, transposeB: false, m: 3, n: 3, k: 2, alpha: 1, a: a, lda: 3, b: a, ldb: 3, beta: 0,
            c: &ata, ldc: 3)
        #expect(ata == [17, 22, 27, 22, 29, 36, 27, 36, 45])
    }
}
