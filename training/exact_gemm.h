// Exact integer GEMM on a fast float BLAS (the functional core's MF-MAC and INT8 fast path).
//
// Operands hold small integers as floats: PoT4 codes as their integer images +-2^(m-1)
// (|a*b| <= 4096, the MF-MAC one-hot term), INT8 values (|a*b| <= 16129). Every partial sum of
// a chunk of K' products with K' * max|a*b| < 2^24 is an integer below 2^24 and so exact in
// FP32 whatever order or FMA use the BLAS chooses; chunks are added in double (exact below
// 2^53). The result therefore equals the reference integer GEMM bit for bit as long as no
// accumulator overflows (tests/test_exact_gemm.cpp checks it against models/gemm_ref.h).
#pragma once

#include <cstdint>
#include <string>

namespace mfsim {

// C[M x N] (exact integer sums, as double) = op(A)[M x K] . op(B)[K x N]. A is M x K
// (or K x M when trans_a), B is K x N (or N x K when trans_b), both row-major.
// max_product bounds |a*b| over all products (chunking of K).
void exact_int_gemm(bool trans_a, bool trans_b, int m, int n, int k, const float* a, const float* b,
                    double max_product, double* c);

// Plain FP32 GEMM (BLAS order): C = op(A) . op(B) (+ C when accumulate).
void sgemm(bool trans_a, bool trans_b, int m, int n, int k, const float* a, const float* b, float* c,
           bool accumulate = false);

void set_blas_threads(int threads);
// The BLAS build and core, as reported in training reports' "blas" field; with " (core chosen by
// mfsim; OpenBLAS picked X)" appended when mfsim's main chose the core (choose_blas_core).
std::string blas_info();

// OpenBLAS (DYNAMIC_ARCH) picks its kernels once, as the library loads, from the CPU model; a CPU
// model newer than the library falls back to a generic SSE3 core (Prescott) even when the CPU has
// AVX2 or AVX-512. This returns the core to request instead through OPENBLAS_CORETYPE ("SkylakeX"
// with AVX-512 F/CD/BW/DQ/VL, else "Haswell" with AVX2 and FMA), or "" when OpenBLAS's own choice
// stands: OPENBLAS_CORETYPE already set, a core with AVX2 chosen, or a CPU without AVX2.
// The choice changes FP32 results' bits (the kernel's summation order), never an integer
// arithmetic's (exact sums, training/exact_gemm.h). docs/training-core.md.
std::string preferred_blas_core();
std::string blas_core();  // the core OpenBLAS runs (openblas_get_corename)
// The environment variable naming the core OpenBLAS picked when mfsim chose another one.
constexpr const char* kBlasFallbackEnv = "MFSIM_BLAS_CORE_REPLACED";

}  // namespace mfsim
