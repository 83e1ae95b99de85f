#ifndef DOWNPOUR_CBLAS_SHIM_H
#define DOWNPOUR_CBLAS_SHIM_H
// The C side of Downpour's BLAS door: dlopen/dlsym to load OpenBLAS at run time (so the kernel type can be
// chosen before the library reads OPENBLAS_CORETYPE), and cpuid/xgetbv to choose it. Nothing here links
// OpenBLAS; the function-pointer types below match OpenBLAS's cblas.h.
#include <dlfcn.h>
#include <stdint.h>

typedef void (*downpour_cblas_sgemm_fn)(int order, int transA, int transB, int m, int n, int k, float alpha,
                                        const float *a, int lda, const float *b, int ldb, float beta, float *c,
                                        int ldc);
typedef void (*downpour_openblas_set_num_threads_fn)(int threads);
typedef char *(*downpour_openblas_get_corename_fn)(void);

/// Runs cpuid for `leaf`/`subleaf`; returns 0 (and zeros) on CPUs that are not x86-64.
static inline int downpour_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t regs[4]) {
#if defined(__x86_64__)
    uint32_t a, b, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(leaf), "c"(subleaf));
    regs[0] = a; regs[1] = b; regs[2] = c; regs[3] = d;
    return 1;
#else
    regs[0] = regs[1] = regs[2] = regs[3] = 0;
    (void)leaf; (void)subleaf;
    return 0;
#endif
}

/// XCR0: which register states the operating system saves (bits 1-2 SSE/AVX, 5-7 AVX-512).
/// Only call when cpuid leaf 1 reports OSXSAVE.
static inline uint64_t downpour_xgetbv0(void) {
#if defined(__x86_64__)
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
#else
    return 0;
#endif
}

#endif
