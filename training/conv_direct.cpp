// The direct convolution (training/conv_direct.h): geometry, the choice of instruction set, the
// per-shape check against the BLAS path, and the portable (one lane) build of the kernels.
#define MFSIM_CONV_NS conv_scalar
#define MFSIM_CONV_DEFINE_KERNELS
#include "training/conv_direct_kernels.h"
#undef MFSIM_CONV_DEFINE_KERNELS
#undef MFSIM_CONV_NS

#include "training/conv_direct.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "training/exact_gemm.h"

#if defined(__x86_64__)
#define MFSIM_CONV_X86 1
namespace mfsim {
namespace conv_avx2 {
void forward(const ConvKernelArgs& a);
void backward_data(const ConvKernelArgs& a);
void backward_weight(const ConvKernelArgs& a);
}  // namespace conv_avx2
namespace conv_avx512 {
void forward(const ConvKernelArgs& a);
void backward_data(const ConvKernelArgs& a);
void backward_weight(const ConvKernelArgs& a);
}  // namespace conv_avx512
}  // namespace mfsim
#endif

namespace mfsim {

namespace {

struct KernelSet {
  const char* isa;
  void (*forward)(const ConvKernelArgs&);
  void (*backward_data)(const ConvKernelArgs&);
  void (*backward_weight)(const ConvKernelArgs&);
};

const KernelSet kScalar{"scalar", conv_scalar::forward, conv_scalar::backward_data, conv_scalar::backward_weight};
#ifdef MFSIM_CONV_X86
const KernelSet kAvx2{"avx2", conv_avx2::forward, conv_avx2::backward_data, conv_avx2::backward_weight};
const KernelSet kAvx512{"avx512", conv_avx512::forward, conv_avx512::backward_data, conv_avx512::backward_weight};
#endif

bool supported(const KernelSet& k) {
#ifdef MFSIM_CONV_X86
  if (&k == &kAvx512) return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (&k == &kAvx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return &k == &kScalar;
}

const KernelSet* best_kernels() {
#ifdef MFSIM_CONV_X86
  if (supported(kAvx512)) return &kAvx512;
  if (supported(kAvx2)) return &kAvx2;
#endif
  return &kScalar;
}

const KernelSet*& active() {
  static const KernelSet* k = best_kernels();
  return k;
}

// The operands' geometry shared by the three kernels, and the reduction blocks of one of them.
struct Geometry {
  std::vector<int> off, tap_off, blocks;
  std::vector<std::int64_t> base;
  ConvKernelArgs args;
  // The GEMM's reduction of length n in reduction_blocks(n, q).
  void reduce(int n, int q) {
    blocks = reduction_blocks(n, q);
    args.blocks = blocks.data();
    args.nblocks = static_cast<int>(blocks.size());
  }
};

Geometry geometry(const ConvShape& s, int cout) {
  Geometry g;
  const int hp = s.h + 2 * s.pad, wp = s.w + 2 * s.pad, p = s.p(), q = s.q();
  const int k = s.k * s.k * s.c;
  g.tap_off.resize(static_cast<std::size_t>(s.k) * s.k);
  g.off.resize(static_cast<std::size_t>(k));
  for (int r = 0; r < s.k; ++r) {
    for (int c = 0; c < s.k; ++c) {
      const int tap = r * s.k + c;
      g.tap_off[tap] = (r * wp + c) * s.c;
      for (int ch = 0; ch < s.c; ++ch) g.off[static_cast<std::size_t>(tap) * s.c + ch] = g.tap_off[tap] + ch;
    }
  }
  g.base.resize(static_cast<std::size_t>(s.n) * p * q);
  std::size_t i = 0;
  for (int b = 0; b < s.n; ++b) {
    for (int y = 0; y < p; ++y) {
      for (int x = 0; x < q; ++x) {
        g.base[i++] = ((static_cast<std::int64_t>(b) * hp + y * s.stride) * wp + x * s.stride) * s.c;
      }
    }
  }
  ConvKernelArgs& a = g.args;
  a = ConvKernelArgs{};
  a.factor = 1.0f;
  a.m = static_cast<int>(g.base.size());
  a.k = k;
  a.kp = (k + 15) / 16 * 16;
  a.cout = cout;
  a.cin = s.c;
  a.taps = s.k * s.k;
  a.off = g.off.data();
  a.tap_off = g.tap_off.data();
  a.base = g.base.data();
  return g;
}

}  // namespace

std::vector<int> reduction_blocks(int n, int q, int unroll) {
  if (q < 1 || unroll < 1) throw std::invalid_argument("reduction_blocks: the block length and unroll must be positive");
  std::vector<int> b;
  for (int done = 0; done < n;) {
    int len = n - done;
    if (len >= 2 * q) {
      len = q;
    } else if (len > q) {
      len = (len / 2 + unroll - 1) / unroll * unroll;
    }
    b.push_back(len);
    done += len;
  }
  return b;
}

std::size_t padded_size(const ConvShape& s) {
  return static_cast<std::size_t>(s.n) * (s.h + 2 * s.pad) * (s.w + 2 * s.pad) * s.c;
}

void pad_input(const ConvShape& s, const float* x, float* xpad) {
  const std::size_t wp = static_cast<std::size_t>(s.w + 2 * s.pad), row = static_cast<std::size_t>(s.w) * s.c;
  const std::size_t prow = wp * s.c, lead = static_cast<std::size_t>(s.pad) * s.c;
  float* d = xpad;
  for (int b = 0; b < s.n; ++b) {
    std::fill(d, d + prow * s.pad, 0.0f);  // top rows
    d += prow * s.pad;
    for (int y = 0; y < s.h; ++y, d += prow) {
      std::fill(d, d + lead, 0.0f);
      std::memcpy(d + lead, x + (static_cast<std::size_t>(b) * s.h + y) * row, row * sizeof(float));
      std::fill(d + lead + row, d + prow, 0.0f);
    }
    std::fill(d, d + prow * s.pad, 0.0f);  // bottom rows
    d += prow * s.pad;
  }
}

void crop_input(const ConvShape& s, const float* xpad, float* x) {
  const std::size_t wp = static_cast<std::size_t>(s.w + 2 * s.pad), row = static_cast<std::size_t>(s.w) * s.c;
  const std::size_t prow = wp * s.c, lead = static_cast<std::size_t>(s.pad) * s.c;
  for (int b = 0; b < s.n; ++b) {
    const float* src = xpad + (static_cast<std::size_t>(b) * (s.h + 2 * s.pad) + s.pad) * prow + lead;
    for (int y = 0; y < s.h; ++y) {
      std::memcpy(x + (static_cast<std::size_t>(b) * s.h + y) * row, src + y * prow, row * sizeof(float));
    }
  }
}

void conv_forward_direct(const ConvShape& s, int cout, const float* xpad, const float* w, float* y, int q) {
  Geometry g = geometry(s, cout);
  g.reduce(g.args.k, q);
  g.args.x = xpad;
  g.args.w = w;
  g.args.out = y;
  active()->forward(g.args);
}

void conv_backward_data_direct(const ConvShape& s, int cout, const float* gr, const float* w, float* dxpad, int q,
                               float factor) {
  Geometry g = geometry(s, cout);
  const ConvKernelArgs& a = g.args;
  g.reduce(cout, q);
  std::vector<float> wt(static_cast<std::size_t>(cout) * a.kp, 0.0f), buf(static_cast<std::size_t>(8) * a.kp);
  for (int k = 0; k < a.k; ++k) {
    for (int co = 0; co < cout; ++co) wt[static_cast<std::size_t>(co) * a.kp + k] = w[static_cast<std::size_t>(k) * cout + co];
  }
  g.args.wt = wt.data();
  g.args.g = gr;
  g.args.out = dxpad;
  g.args.buf = buf.data();
  g.args.factor = factor;
  active()->backward_data(g.args);
}

void conv_backward_weight_direct(const ConvShape& s, int cout, const float* xpad, const float* gr, float* dw, int q) {
  Geometry g = geometry(s, cout);
  g.reduce(g.args.m, q);
  if (g.blocks.empty()) {  // no output pixels: a zero gradient, as the BLAS gives
    std::fill(dw, dw + static_cast<std::size_t>(g.args.k) * cout, 0.0f);
    return;
  }
  g.args.x = xpad;
  g.args.g = gr;
  g.args.out = dw;
  active()->backward_weight(g.args);
}

void conv_backward_weight_exact(const ConvShape& s, int cout, const float* xpad, const float* gr, int chunk, double* dw) {
  Geometry g = geometry(s, cout);
  const std::size_t n = static_cast<std::size_t>(g.args.k) * cout;
  std::fill(dw, dw + n, 0.0);
  std::vector<float> part(n);
  const int m = g.args.m;
  for (int m0 = 0; m0 < m; m0 += chunk) {
    const int len = std::min(chunk, m - m0);
    ConvKernelArgs a = g.args;  // the output pixels [m0, m0 + len), one block
    a.m = len;
    a.base = g.base.data() + m0;
    a.blocks = &len;
    a.nblocks = 1;
    a.x = xpad;
    a.g = gr + static_cast<std::size_t>(m0) * cout;
    a.out = part.data();
    active()->backward_weight(a);
    for (std::size_t i = 0; i < n; ++i) dw[i] += static_cast<double>(part[i]);
  }
}

const char* conv_direct_isa() { return active()->isa; }

bool conv_direct_use_isa(const std::string& isa) {
  for (const KernelSet* k : {&kScalar
#ifdef MFSIM_CONV_X86
                             ,
                             &kAvx2, &kAvx512
#endif
       }) {
    if (isa == k->isa && supported(*k)) {
      active() = k;
      return true;
    }
  }
  if (isa == "best") {
    active() = best_kernels();
    return true;
  }
  return false;
}

bool parse_conv_path(const std::string& s, ConvPath* p) {
  if (s == "auto") {
    *p = ConvPath::kAuto;
  } else if (s == "blas") {
    *p = ConvPath::kBlas;
  } else if (s == "direct") {
    *p = ConvPath::kDirect;
  } else {
    return false;
  }
  return true;
}

const char* to_string(ConvPath p) {
  switch (p) {
    case ConvPath::kAuto:
      return "auto";
    case ConvPath::kBlas:
      return "blas";
    case ConvPath::kDirect:
      return "direct";
  }
  return "?";
}

namespace {
// A fixed xorshift stream of signed values spread over a few octaves, one in eight exactly zero.
class TestValues {
 public:
  explicit TestValues(std::uint64_t seed) : state_(seed | 1) {}
  float operator()() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    const std::uint64_t r = state_ >> 40;  // 24 bits
    if ((r & 7) == 0) return 0.0f;
    return (static_cast<float>(r) / 16777216.0f - 0.5f) * static_cast<float>(1 << (r & 3));
  }

 private:
  std::uint64_t state_;
};
}  // namespace

int measured_reduction_block() {
  // Two long reductions, c (64 x 48) = a^T b over n rows (large enough for OpenBLAS's blocked
  // driver, not its small-matrix kernels); their blockings differ for every candidate pair.
  constexpr int kM = 64, kN = 48;
  std::vector<std::vector<float>> as, bs, cs;
  for (int n : {2000, 1234}) {
    TestValues next(static_cast<std::uint64_t>(n) * 7919);
    as.emplace_back(static_cast<std::size_t>(n) * kM);
    bs.emplace_back(static_cast<std::size_t>(n) * kN);
    cs.emplace_back(static_cast<std::size_t>(kM) * kN);
    for (float& v : as.back()) v = next();
    for (float& v : bs.back()) v = next();
    sgemm(true, false, kM, kN, n, as.back().data(), bs.back().data(), cs.back().data());
  }
  for (int q : {320, 448, 384, 256, 512, 192, 640, 768}) {
    bool all = true;
    for (std::size_t t = 0; t < as.size() && all; ++t) {
      const int n = static_cast<int>(as[t].size() / kM);
      const std::vector<int> blocks = reduction_blocks(n, q);
      for (int i = 0; i < kM && all; ++i) {
        for (int j = 0; j < kN && all; ++j) {
          float sum = 0.0f;
          int r0 = 0;
          for (int len : blocks) {
            float acc = 0.0f;
            for (int r = r0; r < r0 + len; ++r) {
              acc = __builtin_fmaf(as[t][static_cast<std::size_t>(r) * kM + i], bs[t][static_cast<std::size_t>(r) * kN + j], acc);
            }
            sum = sum + acc;
            r0 += len;
          }
          all = std::memcmp(&sum, &cs[t][static_cast<std::size_t>(i) * kN + j], sizeof(float)) == 0;
        }
      }
    }
    if (all) return q;
  }
  return 0;
}

bool conv_direct_matches_blas(ConvPathChooser::Gemm gemm, const ConvShape& s, int cout, int q) {
  const int k = s.k * s.k * s.c, m = s.n * s.p() * s.q();
  const std::size_t nx = static_cast<std::size_t>(s.n) * s.h * s.w * s.c;
  // Pseudo-random operands, one in eight exactly zero (as after a ReLU).
  TestValues next(0x9e3779b97f4a7c15ull ^ (static_cast<std::uint64_t>(gemm) << 32) ^ static_cast<std::uint64_t>(k * 131 + cout));
  std::vector<float> x(nx), w(static_cast<std::size_t>(k) * cout), g(static_cast<std::size_t>(m) * cout);
  for (float& v : x) v = next();
  for (float& v : w) v = next();
  for (float& v : g) v = next();
  // Some all-zero reductions too (a dead channel), so that zero results are compared as well:
  // output channel 0 of the weights (forward) and of the output gradient (weight gradient), and
  // weight row 0 (input gradient); never all of an operand.
  if (cout > 1) {
    for (std::size_t i = 0; i < w.size(); i += static_cast<std::size_t>(cout)) w[i] = 0.0f;
    for (std::size_t i = 0; i < g.size(); i += static_cast<std::size_t>(cout)) g[i] = -0.0f;
  }
  if (k > 1) std::fill(w.begin(), w.begin() + cout, 0.0f);
  std::vector<float> cols, xpad(padded_size(s));
  if (gemm != ConvPathChooser::kBackwardData) {
    cols.resize(static_cast<std::size_t>(m) * k);
    im2col(s, x.data(), cols.data());
    pad_input(s, x.data(), xpad.data());
  }
  std::vector<float> blas, direct;
  switch (gemm) {
    case ConvPathChooser::kForward:
      blas.resize(static_cast<std::size_t>(m) * cout);
      direct.resize(blas.size());
      sgemm(false, false, m, cout, k, cols.data(), w.data(), blas.data());
      conv_forward_direct(s, cout, xpad.data(), w.data(), direct.data(), q);
      break;
    case ConvPathChooser::kBackwardData: {
      std::vector<float> dcols(static_cast<std::size_t>(m) * k);
      sgemm(false, true, m, k, cout, g.data(), w.data(), dcols.data());
      blas.assign(nx, 0.0f);
      col2im(s, dcols.data(), blas.data());
      std::fill(xpad.begin(), xpad.end(), 0.0f);
      conv_backward_data_direct(s, cout, g.data(), w.data(), xpad.data(), q);
      direct.resize(nx);
      crop_input(s, xpad.data(), direct.data());
      break;
    }
    case ConvPathChooser::kBackwardWeight:
      blas.resize(static_cast<std::size_t>(k) * cout);
      direct.resize(blas.size());
      sgemm(true, false, k, cout, m, cols.data(), g.data(), blas.data());
      conv_backward_weight_direct(s, cout, xpad.data(), g.data(), direct.data(), q);
      break;
  }
  return std::memcmp(blas.data(), direct.data(), blas.size() * sizeof(float)) == 0;
}

bool ConvPathChooser::direct(Gemm gemm, const ConvShape& s, int cout) {
  if (path_ == ConvPath::kBlas) return false;
  const auto key = std::make_tuple(static_cast<int>(gemm), s.n, s.h, s.w, s.c, s.k, s.stride, s.pad, cout);
  auto it = chosen_.find(key);
  if (it != chosen_.end()) return it->second;
  const bool use = path_ == ConvPath::kDirect || (block() > 0 && conv_direct_matches_blas(gemm, s, cout, block_));
  chosen_.emplace(key, use);
  return use;
}

void ConvPathChooser::record_exact(Gemm gemm, const ConvShape& s, int cout, bool direct) {
  chosen_[std::make_tuple(3 + static_cast<int>(gemm), s.n, s.h, s.w, s.c, s.k, s.stride, s.pad, cout)] = direct;
}

int ConvPathChooser::block() {
  if (block_ < 0) block_ = measured_reduction_block();
  if (block_ == 0 && path_ == ConvPath::kDirect) block_ = kDefaultReductionBlock;
  return block_;
}

int ConvPathChooser::direct_shapes() const {
  return static_cast<int>(std::count_if(chosen_.begin(), chosen_.end(), [](const auto& e) { return e.second; }));
}

int ConvPathChooser::blas_shapes() const { return static_cast<int>(chosen_.size()) - direct_shapes(); }

}  // namespace mfsim
