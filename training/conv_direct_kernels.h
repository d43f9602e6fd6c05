// The direct convolution kernels (training/conv_direct.h), compiled once per instruction set:
// conv_direct_avx512.cpp, conv_direct_avx2.cpp and the portable conv_direct.cpp each define
// MFSIM_CONV_NS (and MFSIM_CONV_AVX2 / MFSIM_CONV_AVX512) and include this file. Everything here
// has internal linkage or lives in that namespace, and uses no standard-library template, so no
// function compiled for a wider instruction set can stand in for another TU's copy.
//
// The order of every output element's operations is the one training/conv_direct.h documents; the
// vector width only changes how many independent elements one instruction computes.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(MFSIM_CONV_AVX2) || defined(MFSIM_CONV_AVX512)
#include <immintrin.h>
#endif

namespace mfsim {

// A convolution's operands for the kernels (pointers owned by the caller, conv_direct.cpp).
struct ConvKernelArgs {  // no member initializers: no inline constructor a wider TU could supply
  int m;     // output pixels: n p q
  int k;     // reduction length of the forward GEMM: k k c
  int kp;    // k rounded up to a multiple of 16 (the row length of wt and buf)
  int cout;  // output channels
  int cin;   // input channels
  int taps;  // k k
  const int* off;            // [k] offset of reduction index (r, s, ch) from a pixel's base
  const int* tap_off;        // [taps] offset of tap (r, s) from a pixel's base
  const std::int64_t* base;  // [m] each output pixel's base offset in the padded input
  const int* blocks;         // the reduction blocks of this GEMM (over k, cout or m)
  int nblocks;
  const float* x;   // the padded input (forward, backward-weight)
  const float* w;   // k x cout (forward)
  const float* wt;  // cout x kp, zero beyond k (backward-data)
  const float* g;   // m x cout (backward)
  float* out;       // y (m x cout), the padded input gradient, or dw (k x cout)
  float* buf;       // backward-data scratch: 8 x kp
  float factor;     // backward-data: each sum times this before col2im (1: as it is)
};

namespace MFSIM_CONV_NS {
void forward(const ConvKernelArgs& a);
void backward_data(const ConvKernelArgs& a);
void backward_weight(const ConvKernelArgs& a);
}  // namespace MFSIM_CONV_NS

#ifdef MFSIM_CONV_DEFINE_KERNELS
namespace MFSIM_CONV_NS {
namespace {

// One lane: the reference the vector types widen.
struct VS {
  using R = float;
  static constexpr int L = 1;
  static constexpr int kAcc = 8;  // accumulators a tile keeps
  static R load(const float* p) { return *p; }
  static R bcast(float v) { return v; }
  static R zero() { return 0.0f; }
  static R fma(R a, R b, R c) { return __builtin_fmaf(a, b, c); }
  static R add(R a, R b) { return a + b; }
  static R mul(R a, R b) { return a * b; }
  static void store(float* p, R v) { *p = v; }
};

#if defined(MFSIM_CONV_AVX2) || defined(MFSIM_CONV_AVX512)
struct V8 {
  using R = __m256;
  static constexpr int L = 8;
#ifdef MFSIM_CONV_AVX512
  static constexpr int kAcc = 24;
#else
  static constexpr int kAcc = 12;
#endif
  static R load(const float* p) { return _mm256_loadu_ps(p); }
  static R bcast(float v) { return _mm256_set1_ps(v); }
  static R zero() { return _mm256_setzero_ps(); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
  static R add(R a, R b) { return _mm256_add_ps(a, b); }
  static R mul(R a, R b) { return _mm256_mul_ps(a, b); }
  static void store(float* p, R v) { _mm256_storeu_ps(p, v); }
};
#endif

#ifdef MFSIM_CONV_AVX512
struct V16 {
  using R = __m512;
  static constexpr int L = 16;
  static constexpr int kAcc = 24;
  static R load(const float* p) { return _mm512_loadu_ps(p); }
  static R bcast(float v) { return _mm512_set1_ps(v); }
  static R zero() { return _mm512_setzero_ps(); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static R add(R a, R b) { return _mm512_add_ps(a, b); }
  static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  static void store(float* p, R v) { _mm512_storeu_ps(p, v); }
};
#endif

constexpr int cmin(int a, int b) { return a < b ? a : b; }
constexpr int cmax(int a, int b) { return a > b ? a : b; }

// Forward: T output pixels x VC vectors of output channels from co0, every reduction block; each
// block's sums are stored in y (the first) or added to it (later blocks: y + acc, as the BLAS
// adds a block to C; the first block's 0 + acc is acc, which is never -0).
template <class V, int T, int VC>
void fwd_chunk(const ConvKernelArgs& a, int co0) {
  using R = typename V::R;
  const int cout = a.cout;
  for (int p0 = 0; p0 < a.m; p0 += T) {
    const int nt = cmin(T, a.m - p0);
    const float* px[T];
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) px[t] = a.x + a.base[p0 + cmin(t, nt - 1)];
    int k0 = 0;
    for (int b = 0; b < a.nblocks; ++b) {
      const int k1 = k0 + a.blocks[b];
      R acc[T][VC];
#pragma GCC unroll 16
      for (int t = 0; t < T; ++t) {
#pragma GCC unroll 4
        for (int v = 0; v < VC; ++v) acc[t][v] = V::zero();
      }
      for (int k = k0; k < k1; ++k) {
        const int o = a.off[k];
        const float* wr = a.w + static_cast<std::size_t>(k) * cout + co0;
        R wv[VC];
#pragma GCC unroll 4
        for (int v = 0; v < VC; ++v) wv[v] = V::load(wr + v * V::L);
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t) {
          const R xb = V::bcast(px[t][o]);
#pragma GCC unroll 4
          for (int v = 0; v < VC; ++v) acc[t][v] = V::fma(xb, wv[v], acc[t][v]);
        }
      }
      for (int t = 0; t < nt; ++t) {
        float* y = a.out + static_cast<std::size_t>(p0 + t) * cout + co0;
#pragma GCC unroll 4
        for (int v = 0; v < VC; ++v) V::store(y + v * V::L, b == 0 ? acc[t][v] : V::add(V::load(y + v * V::L), acc[t][v]));
      }
      k0 = k1;
    }
  }
}

// Backward-weight: TK reduction indices x VC vectors of output channels, over the output
// pixels [m0, m1) (one block); the block's sum is added to dw (stored, for the first block).
template <class V, int TK, int VC>
void bwdw_chunk(const ConvKernelArgs& a, int co0, int m0, int m1, bool first) {
  using R = typename V::R;
  const int cout = a.cout;
  for (int k0 = 0; k0 < a.k; k0 += TK) {
    const int nk = cmin(TK, a.k - k0);
    int o[TK];
#pragma GCC unroll 16
    for (int j = 0; j < TK; ++j) o[j] = a.off[k0 + cmin(j, nk - 1)];
    R acc[TK][VC];
#pragma GCC unroll 16
    for (int j = 0; j < TK; ++j) {
#pragma GCC unroll 4
      for (int v = 0; v < VC; ++v) acc[j][v] = V::zero();
    }
    for (int m = m0; m < m1; ++m) {
      const float* px = a.x + a.base[m];
      const float* gr = a.g + static_cast<std::size_t>(m) * cout + co0;
      R gv[VC];
#pragma GCC unroll 4
      for (int v = 0; v < VC; ++v) gv[v] = V::load(gr + v * V::L);
#pragma GCC unroll 16
      for (int j = 0; j < TK; ++j) {
        const R xb = V::bcast(px[o[j]]);
#pragma GCC unroll 4
        for (int v = 0; v < VC; ++v) acc[j][v] = V::fma(xb, gv[v], acc[j][v]);
      }
    }
    for (int j = 0; j < nk; ++j) {
      float* d = a.out + static_cast<std::size_t>(k0 + j) * cout + co0;
#pragma GCC unroll 4
      for (int v = 0; v < VC; ++v) V::store(d + v * V::L, first ? acc[j][v] : V::add(V::load(d + v * V::L), acc[j][v]));
    }
  }
}

// Backward-data: the rows of g^T-by-w products of TP output pixels from p0 (nt of them real),
// VK vectors of reduction indices from k0, every block of output channels, into buf (TP x kp):
// the first block's sums stored, later ones added (as fwd_chunk), then times the factor.
template <class V, int TP, int VK>
void bwdd_chunk(const ConvKernelArgs& a, int p0, int nt, int k0) {
  using R = typename V::R;
  const int cout = a.cout;
  const float* gr[TP];
#pragma GCC unroll 16
  for (int t = 0; t < TP; ++t) gr[t] = a.g + static_cast<std::size_t>(p0 + cmin(t, nt - 1)) * cout;
  int c0 = 0;
  for (int b = 0; b < a.nblocks; ++b) {
    const int c1 = c0 + a.blocks[b];
    R acc[TP][VK];
#pragma GCC unroll 16
    for (int t = 0; t < TP; ++t) {
#pragma GCC unroll 8
      for (int v = 0; v < VK; ++v) acc[t][v] = V::zero();
    }
    for (int co = c0; co < c1; ++co) {
      const float* wr = a.wt + static_cast<std::size_t>(co) * a.kp + k0;
      R wv[VK];
#pragma GCC unroll 8
      for (int v = 0; v < VK; ++v) wv[v] = V::load(wr + v * V::L);
#pragma GCC unroll 16
      for (int t = 0; t < TP; ++t) {
        const R gb = V::bcast(gr[t][co]);
#pragma GCC unroll 8
        for (int v = 0; v < VK; ++v) acc[t][v] = V::fma(gb, wv[v], acc[t][v]);
      }
    }
    const bool last = b + 1 == a.nblocks;
    const R f = V::bcast(a.factor);
#pragma GCC unroll 16
    for (int t = 0; t < TP; ++t) {
      float* d = a.buf + static_cast<std::size_t>(t) * a.kp + k0;
#pragma GCC unroll 8
      for (int v = 0; v < VK; ++v) {
        R r = b == 0 ? acc[t][v] : V::add(V::load(d + v * V::L), acc[t][v]);
        // An integer GEMM's dequantization (one rounding, as the BLAS path's).
        if (last && a.factor != 1.0f) r = V::mul(r, f);
        V::store(d + v * V::L, r);
      }
    }
    c0 = c1;
  }
}

template <int N>
struct Int {  // a compile-time int for the generic lambdas below
  static constexpr int value = N;
};

// The chunk of output channels a tile covers, VC vectors (the largest of 4, 2, 1 dividing the
// vector count), and the tile's other side T (pixels or reduction indices) that fits the
// accumulators: fn(Int<VC>, Int<T>).
template <class V, class Fn>
void with_channel_tile(const ConvKernelArgs& a, Fn fn) {
  const int nv = a.cout / V::L;
  if (nv % 4 == 0) {
    fn(Int<4>{}, Int<cmax(1, cmin(6, V::kAcc / 4))>{});
  } else if (nv % 2 == 0) {
    fn(Int<2>{}, Int<cmin(8, V::kAcc / 2)>{});
  } else {
    fn(Int<1>{}, Int<cmin(8, V::kAcc)>{});
  }
}

template <class V>
void forward_v(const ConvKernelArgs& a) {
  with_channel_tile<V>(a, [&a](auto vc, auto t) {
    for (int co0 = 0; co0 < a.cout; co0 += vc.value * V::L) fwd_chunk<V, t.value, vc.value>(a, co0);
  });
}

template <class V>
void backward_weight_v(const ConvKernelArgs& a) {
  with_channel_tile<V>(a, [&a](auto vc, auto t) {
    int m0 = 0;
    for (int b = 0; b < a.nblocks; ++b) {
      const int m1 = m0 + a.blocks[b];
      for (int co0 = 0; co0 < a.cout; co0 += vc.value * V::L) bwdw_chunk<V, t.value, vc.value>(a, co0, m0, m1, b == 0);
      m0 = m1;
    }
  });
}

// The last r < VK vectors of reduction indices in one chunk of r.
template <class V, int TP, int R>
void bwdd_tail(const ConvKernelArgs& a, int p0, int nt, int k0, int r) {
  if constexpr (R >= 1) {
    if (r == R) return bwdd_chunk<V, TP, R>(a, p0, nt, k0);
    bwdd_tail<V, TP, R - 1>(a, p0, nt, k0, r);
  }
}

template <class V, int TP>
void backward_data_v(const ConvKernelArgs& a) {
  constexpr int VK = cmax(1, cmin(8, V::kAcc / TP));
  const int nv = a.kp / V::L;  // kp is a multiple of 16 (and so of every L)
  for (int p0 = 0; p0 < a.m; p0 += TP) {
    const int nt = cmin(TP, a.m - p0);
    int v0 = 0;
    for (; v0 + VK <= nv; v0 += VK) bwdd_chunk<V, TP, VK>(a, p0, nt, v0 * V::L);
    if (v0 < nv) bwdd_tail<V, TP, VK - 1>(a, p0, nt, v0 * V::L, nv - v0);
    // col2im of these pixels, in pixel order: each tap (r, s) of pixel t adds its run of c values.
    for (int t = 0; t < nt; ++t) {
      float* d = a.out + a.base[p0 + t];
      const float* bt = a.buf + static_cast<std::size_t>(t) * a.kp;
      for (int tap = 0; tap < a.taps; ++tap) {
        float* dd = d + a.tap_off[tap];
        const float* bb = bt + static_cast<std::size_t>(tap) * a.cin;
        for (int c = 0; c < a.cin; ++c) dd[c] += bb[c];
      }
    }
  }
}

// fn(V{}) with the widest vector type of this build whose lanes divide the output channels.
template <class Fn>
void with_channel_vector([[maybe_unused]] const ConvKernelArgs& a, Fn fn) {  // unread in the portable build
#ifdef MFSIM_CONV_AVX512
  if (a.cout % 16 == 0) return fn(V16{});
#endif
#if defined(MFSIM_CONV_AVX2) || defined(MFSIM_CONV_AVX512)
  if (a.cout % 8 == 0) return fn(V8{});
#endif
  fn(VS{});
}

}  // namespace

void forward(const ConvKernelArgs& a) {
  with_channel_vector(a, [&a](auto v) { forward_v<decltype(v)>(a); });
}

void backward_weight(const ConvKernelArgs& a) {
  with_channel_vector(a, [&a](auto v) { backward_weight_v<decltype(v)>(a); });
}

void backward_data(const ConvKernelArgs& a) {
#ifdef MFSIM_CONV_AVX512
  return backward_data_v<V16, 4>(a);
#elif defined(MFSIM_CONV_AVX2)
  return backward_data_v<V8, 3>(a);
#else
  return backward_data_v<VS, 2>(a);
#endif
}

}  // namespace MFSIM_CONV_NS
#endif  // MFSIM_CONV_DEFINE_KERNELS

}  // namespace mfsim
