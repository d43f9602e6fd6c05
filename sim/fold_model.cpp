#include "sim/fold_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "sim/pe_type.h"

#include "common/error.h"

namespace mfsim {

Mapping map_gemm(Dataflow d, const GemmShape& s) {
  switch (d) {
    case Dataflow::kOs: return Mapping{s.m, s.n, s.k};
    case Dataflow::kWs: return Mapping{s.k, s.n, s.m};
    case Dataflow::kIs: return Mapping{s.k, s.m, s.n};
  }
  return {};
}

std::uint64_t packed_bytes(std::uint64_t elements, int bits) {
  return (elements * static_cast<std::uint64_t>(bits) + 7) / 8;
}

namespace {
__extension__ typedef unsigned __int128 u128;  // exact products of 64-bit counts
std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }
}  // namespace

namespace {
// Distinct pixels of an axis of `size` that a kernel of `k` taps at `stride` with `pad` covers
// over `out` output positions (the union of the windows), exactly.
std::int64_t axis_used(std::int64_t size, std::int64_t k, std::int64_t stride, std::int64_t pad, std::int64_t out) {
  if (k >= stride) {  // the windows overlap or touch: one interval
    const std::int64_t lo = std::max<std::int64_t>(0, -pad), hi = std::min(size, (out - 1) * stride - pad + k);
    return std::max<std::int64_t>(0, hi - lo);
  }
  std::int64_t used = 0;  // disjoint windows, each clipped to the axis (some lie wholly in padding)
  for (std::int64_t o = 0; o < out; ++o) {
    const std::int64_t lo = o * stride - pad;
    used += std::max<std::int64_t>(0, std::min(size, lo + k) - std::max<std::int64_t>(0, lo));
  }
  return used;
}
}  // namespace

FoldPlan::FoldPlan(const SimConfig& cfg, const GemmShape& shape, const ConvView& conv)
    : cfg_(cfg), shape_(shape), map_(map_gemm(cfg.dataflow, shape)) {
  if (cfg.map_policy == MapPolicy::kSearch) {
    if (cfg.map_pinned) {
      tiles_ = cfg.map_tiles;
      tiled_ = true;
    } else {
      tiled_ = choose_tiles(cfg, shape, conv, &tiles_);
    }
  }
  if (conv.active) conv_ = conv;
  conv_.a_format_bits = conv.a_format_bits;
  conv_.b_format_bits = conv.b_format_bits;
  conv_.output_bits = conv.output_bits;
  conv_.result_bits = conv.result_bits;
  fmap_ = tiled_ && tiles_.fmap && conv.active && cfg.conv_im2col_onchip;
  init();
  if (tiled_ && cfg.map_pinned && !fits()) {
    throw InputError(fmt::format("map.tiles: {} ({} for this GEMM) does not fit GEMM {}x{}x{} on this "
                                 "configuration (each tile in half its buffer, the output tile in half the C buffer)",
                                 to_string(cfg.map_tiles), to_string(tiles_), shape_.m, shape_.n, shape_.k));
  }
}

FoldPlan::FoldPlan(const SimConfig& cfg, const GemmShape& shape, const TileMapping& tiles, const ConvView& conv)
    : cfg_(cfg), shape_(shape), map_(map_gemm(cfg.dataflow, shape)), tiled_(true), tiles_(tiles) {
  if (conv.active) conv_ = conv;
  conv_.a_format_bits = conv.a_format_bits;
  conv_.b_format_bits = conv.b_format_bits;
  conv_.output_bits = conv.output_bits;
  conv_.result_bits = conv.result_bits;
  fmap_ = tiles.fmap && conv.active && cfg.conv_im2col_onchip;
  init();
}

void FoldPlan::init() {
  row_blocks_ = ceil_div(map_.sr, cfg_.rows);
  col_blocks_ = ceil_div(map_.sc, cfg_.cols);
  const ArrayWidths widths = array_widths(cfg_, conv_);
  operand_bits_ = widths.operand;
  a_bits_ = widths.a;
  b_bits_ = widths.b;
  output_bits_ = widths.output;
  result_bits_ = conv_.result_bits > 0 && conv_.result_bits < output_bits_ ? conv_.result_bits : output_bits_;
  acc_register_bits_ = widths.acc_register;
  auto m = static_cast<std::uint64_t>(shape_.m), n = static_cast<std::uint64_t>(shape_.n),
       k = static_cast<std::uint64_t>(shape_.k);
  a_whole_fits_ = packed_bytes(m * k, a_bits_) <= cfg_.sram_a_bytes / 2;
  b_whole_fits_ = packed_bytes(k * n, b_bits_) <= cfg_.sram_b_bytes / 2;
  if (tiled_) {
    // Clamp to the GEMM (0 = whole).
    auto clamp = [](std::int64_t t, std::int64_t d) { return t <= 0 || t > d ? d : t; };
    tiles_.mt = clamp(tiles_.mt, shape_.m);
    tiles_.nt = clamp(tiles_.nt, shape_.n);
    tiles_.kt = clamp(tiles_.kt, shape_.k);
    // B streamed (docs/mapping.md): the B tile does not fit half the B buffer, but each of its
    // elements feeds exactly one fold of the tile (OS, IS: the tile has one block of M), and no
    // tile reuses the B of the tile before it (the innermost tile loop with more than one trip is
    // not M's), so every tile loads its B anyway: each fold loads its own part, in chunks of its
    // stream (OS: k, IS: n) that fit half the B buffer.
    const std::uint64_t half_b = cfg_.sram_b_bytes / 2;
    const auto kt = static_cast<std::uint64_t>(tiles_.kt), nt = static_cast<std::uint64_t>(tiles_.nt);
    if (packed_bytes(kt * nt, b_bits_) > half_b) {
      const bool one_block = cfg_.dataflow == Dataflow::kWs ||
                             tiles_.mt <= (cfg_.dataflow == Dataflow::kOs ? cfg_.rows : cfg_.cols);
      char inner = 0;
      for (int l = 2; l >= 0 && inner == 0; --l) {
        if (tile_count(tiles_.order[l]) > 1) inner = tiles_.order[l];
      }
      b_streamed_ = one_block && inner != 'm';
      if (b_streamed_) {
        // Stream elements whose B fits half the buffer: ceil(x * bits / 8) <= half iff x * bits <= 8 half.
        const auto per_element = [&](std::uint64_t width) {
          return static_cast<std::int64_t>(half_b * 8 / (width * static_cast<std::uint64_t>(b_bits_)));
        };
        switch (cfg_.dataflow) {
          case Dataflow::kOs:  // a fold streams k, with B's k rows of its c columns
            chunk_ = std::min<std::int64_t>(per_element(static_cast<std::uint64_t>(std::min<std::int64_t>(tiles_.nt, cfg_.cols))),
                                            tiles_.kt);
            b_stream_fits_ = chunk_ >= 1;
            break;
          case Dataflow::kIs:  // a fold streams n, with B's n columns of its r k-rows
            chunk_ = std::min<std::int64_t>(per_element(static_cast<std::uint64_t>(std::min<std::int64_t>(tiles_.kt, cfg_.rows))),
                                            tiles_.nt);
            b_stream_fits_ = chunk_ >= 1;
            break;
          case Dataflow::kWs:  // B is the stationary r x c block of each fold
            chunk_ = 0;
            b_stream_fits_ = packed_bytes(static_cast<std::uint64_t>(std::min<std::int64_t>(tiles_.kt, cfg_.rows)) *
                                              static_cast<std::uint64_t>(std::min<std::int64_t>(tiles_.nt, cfg_.cols)),
                                          b_bits_) <= half_b;
            break;
        }
        if (!b_stream_fits_) chunk_ = 0;
      }
    }
  }
  if (conv_.active) {
    const ConvGeometry& g = conv_.geo;
    rows_used_ = axis_used(g.in_h, g.kernel_h, g.stride, g.pad, g.out_h());
    cols_used_ = axis_used(g.in_w, g.kernel_w, g.stride, g.pad, g.out_w());
    // bwd_data written as an im2col-shaped matrix: the input-gradient elements no window touches
    // are zeros the layer must still write (after the GEMM's last fold).
    if (!fmap_ && conv_.phase == Phase::kBwdData) {
      const std::uint64_t covered = static_cast<std::uint64_t>(g.batch) * static_cast<std::uint64_t>(rows_used_) *
                                    static_cast<std::uint64_t>(cols_used_) * static_cast<std::uint64_t>(g.in_c);
      untouched_store_bytes_ = packed_bytes(g.input_elements() - covered, result_bits_);
    }
  }
  // Folds: every distinct fold times its multiplicity.
  folds_ = 0;
  for_each_distinct(levels(), [&](const LoopIndex&, std::uint64_t mult) { folds_ = checked_add(folds_, mult, "folds"); });
}

ArrayWidths array_widths(const SimConfig& cfg, const ConvView& view) {
  ArrayWidths w;
  w.operand = cfg.array->operand_bits;
  const bool own = cfg.array->per_operand_registers;
  w.a = own && view.a_format_bits > 0 ? view.a_format_bits : w.operand;
  w.b = own && view.b_format_bits > 0 ? view.b_format_bits : w.operand;
  if (!cfg.array->integer_acc) {
    w.output = w.acc_register = 32;
  } else {
    w.acc_register = cfg.accumulator.bits;
    w.output = (std::max(cfg.accumulator.bits, view.output_bits) + 7) / 8 * 8;
  }
  return w;
}

bool FoldPlan::fits(const SimConfig& cfg, const GemmShape& shape, const TileMapping& t, const ConvView& conv) {
  return FoldPlan(cfg, shape, t, conv).fits();
}

bool FoldPlan::fits() const {
  if (!tiled_) return true;
  const std::uint64_t b = packed_bytes(static_cast<std::uint64_t>(tiles_.kt) * static_cast<std::uint64_t>(tiles_.nt),
                                       b_bits_);
  // The C buffer holds the output tile's partial sums (under col2im: the feature-map region
  // they are summed into). A streamed B needs each fold's (chunk's) B in half the B buffer.
  const bool b_fits = b <= cfg_.sram_b_bytes / 2 || (b_streamed_ && b_stream_fits_);
  return tile_a_bytes(tiles_.mt, tiles_.kt) <= cfg_.sram_a_bytes / 2 && b_fits &&
         tile_c_buffer_bytes(tiles_.mt, tiles_.nt) <= cfg_.sram_c_bytes / 2;
}

std::uint64_t FoldPlan::fmap_region(std::int64_t positions, std::int64_t k_cols, bool dense) const {
  const ConvGeometry& g = conv_.geo;
  const std::int64_t P = g.out_h(), Q = g.out_w();
  const std::int64_t rows = dense ? g.in_h : rows_used_;
  const std::int64_t cols = dense ? g.in_w : cols_used_;
  const std::int64_t ch = std::min(g.in_c, k_cols);
  const std::uint64_t all = static_cast<std::uint64_t>(g.batch) * rows * cols;
  std::uint64_t pixels = 0;
  if (positions >= P * Q) {  // whole images, plus one more where the tile straddles two
    pixels = static_cast<std::uint64_t>(std::min(g.batch, ceil_div(positions, P * Q) + 1)) * rows * cols;
  } else {  // output rows, plus one where the tile starts mid-row; at most two images' rows
    const std::int64_t out_rows = std::min(ceil_div(positions, Q) + 1, 2 * P);
    // Written (dense): every row up to the next window, zero-gradient rows between windows too.
    const std::int64_t in_rows = dense                     ? out_rows * g.stride + g.kernel_h
                                 : g.kernel_h >= g.stride ? (out_rows - 1) * g.stride + g.kernel_h
                                                          : out_rows * g.kernel_h;
    pixels = static_cast<std::uint64_t>(std::min(in_rows, std::min<std::int64_t>(2, g.batch) * rows)) * cols;
    if (positions < Q) {  // part of a row (at most two row segments): a window per position
      const std::int64_t seg_rows = dense ? std::max(g.kernel_h, g.stride) : g.kernel_h;
      const std::int64_t seg_cols = positions * g.stride + 2 * (dense ? std::max(g.kernel_w, g.stride) : g.kernel_w);
      pixels = std::min(pixels, static_cast<std::uint64_t>(seg_rows) * static_cast<std::uint64_t>(seg_cols));
    }
  }
  return std::min(pixels, all) * static_cast<std::uint64_t>(ch);
}

std::uint64_t FoldPlan::fmap_halo(std::int64_t k_cols) const {
  const ConvGeometry& g = conv_.geo;
  const std::int64_t rows = std::max<std::int64_t>(0, g.kernel_h - g.stride);
  return static_cast<std::uint64_t>(std::min(rows, g.in_h)) * g.in_w * std::min(g.in_c, k_cols);
}

std::uint64_t FoldPlan::fmap_input_halo(std::int64_t positions, std::int64_t k_cols) const {
  const ConvGeometry& g = conv_.geo;
  // One image (so consecutive position tiles never straddle two), whole output rows (a tile
  // of part of a row has a window-by-window region), and overlapping windows.
  if (!fmap_ || conv_.phase != Phase::kFwd || g.batch != 1 || positions < g.out_w() ||
      positions >= g.out_h() * g.out_w() || g.kernel_h <= g.stride) {
    return 0;
  }
  const std::int64_t rows = std::min(g.kernel_h - g.stride, rows_used_);
  return static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(cols_used_) *
         static_cast<std::uint64_t>(std::min(g.in_c, k_cols));
}

std::uint64_t FoldPlan::tile_a_bytes(std::int64_t em, std::int64_t ek) const {
  if (fmap_ && conv_.phase == Phase::kFwd) return packed_bytes(fmap_region(em, ek, false), a_bits_);
  if (fmap_ && conv_.phase == Phase::kBwdWeight) return packed_bytes(fmap_region(ek, em, false), a_bits_);
  return packed_bytes(static_cast<std::uint64_t>(em) * static_cast<std::uint64_t>(ek), a_bits_);
}

std::uint64_t FoldPlan::tile_c_bytes(std::int64_t em, std::int64_t en, bool final) const {
  const int bits = final ? result_bits_ : output_bits_;
  if (fmap_ && conv_.phase == Phase::kBwdData) return packed_bytes(fmap_region(em, en, true), bits);
  return packed_bytes(static_cast<std::uint64_t>(em) * static_cast<std::uint64_t>(en), bits);
}

std::uint64_t FoldPlan::tile_c_buffer_bytes(std::int64_t em, std::int64_t en) const {
  // col2im: the region, and the halo rows the next position tile adds into (kept on chip).
  if (fmap_ && conv_.phase == Phase::kBwdData) {
    return packed_bytes(fmap_region(em, en, true) + fmap_halo(en), output_bits_);
  }
  return packed_bytes(static_cast<std::uint64_t>(em) * static_cast<std::uint64_t>(en), output_bits_);
}

std::uint64_t FoldPlan::compulsory_bytes_gemm_view() const {
  const auto m = static_cast<std::uint64_t>(shape_.m), n = static_cast<std::uint64_t>(shape_.n),
             k = static_cast<std::uint64_t>(shape_.k);
  return packed_bytes(m * k, a_bits_) + packed_bytes(k * n, b_bits_) + packed_bytes(m * n, result_bits_);
}

std::uint64_t FoldPlan::compulsory_output_bytes_gemm_view() const {
  return packed_bytes(static_cast<std::uint64_t>(shape_.m) * static_cast<std::uint64_t>(shape_.n), result_bits_);
}

std::uint64_t FoldPlan::compulsory_output_bytes() const {
  if (conv_.active && conv_.phase == Phase::kBwdData) return packed_bytes(conv_.geo.input_elements(), result_bits_);
  return compulsory_output_bytes_gemm_view();
}

std::uint64_t FoldPlan::compulsory_bytes() const {
  // A property of the workload alone: the same for every mapping, policy, objective and buffer.
  if (!conv_.active) return compulsory_bytes_gemm_view();
  const auto m = static_cast<std::uint64_t>(shape_.m), n = static_cast<std::uint64_t>(shape_.n),
             k = static_cast<std::uint64_t>(shape_.k);
  const ConvGeometry& g = conv_.geo;
  switch (conv_.phase) {
    case Phase::kFwd:        // X (the input elements the kernel uses), W, Y
    case Phase::kBwdWeight:  // X (as above), G, dW
      return packed_bytes(static_cast<std::uint64_t>(g.batch) * static_cast<std::uint64_t>(rows_used_) *
                              static_cast<std::uint64_t>(cols_used_) * static_cast<std::uint64_t>(g.in_c),
                          a_bits_) +
             packed_bytes(k * n, b_bits_) + packed_bytes(m * n, result_bits_);
    case Phase::kBwdData:  // G, W, dX (every input-gradient element, written once)
      return packed_bytes(m * k, a_bits_) + packed_bytes(k * n, b_bits_) +
             packed_bytes(g.input_elements(), result_bits_);
  }
  return 0;
}

std::string FoldPlan::mapping_text() const {
  if (!tiled_) return "fixed (untiled)";
  std::string streamed;
  if (b_streamed_) {
    streamed = chunk_ == 0 ? ", B streamed per fold"
                           : fmt::format(", B streamed in chunks of {} {}", chunk_,
                                         cfg_.dataflow == Dataflow::kOs ? "k" : "n");
  }
  return fmt::format("tiles {}x{}x{} (MxNxK), order {}{}{}{}{}", tiles_.mt, tiles_.nt, tiles_.kt, tiles_.order[0],
                     tiles_.order[1], tiles_.order[2], fmap_ ? ", feature maps" : "", streamed);
}

std::int64_t FoldPlan::tile_count(char d) const { return ceil_div(dim(d), tile(d)); }

std::int64_t FoldPlan::level_count(int level, const LoopIndex& idx) const {
  if (!tiled_) return level == 0 ? (cfg_.dataflow == Dataflow::kOs ? row_blocks_ : col_blocks_)
                                 : (cfg_.dataflow == Dataflow::kOs ? col_blocks_ : row_blocks_);
  if (level < 3) return tile_count(tiles_.order[level]);
  // The array's folds within the tile: its extents in (Sr, Sc).
  std::int64_t ext[3] = {0, 0, 0};  // m, n, k extents of the tile
  for (int l = 0; l < 3; ++l) {
    const char d = tiles_.order[l];
    const std::int64_t t0 = idx[static_cast<std::size_t>(l)] * tile(d);
    ext[d == 'm' ? 0 : d == 'n' ? 1 : 2] = std::min(tile(d), dim(d) - t0);
  }
  std::int64_t sr = 0, sc = 0;
  switch (cfg_.dataflow) {
    case Dataflow::kOs: sr = ext[0]; sc = ext[1]; break;
    case Dataflow::kWs: sr = ext[2]; sc = ext[1]; break;
    case Dataflow::kIs: sr = ext[2]; sc = ext[0]; break;
  }
  if (level == 5) {  // the chunks of a fold's stream (streamed B; else one)
    if (chunk_ == 0) return 1;
    return ceil_div(cfg_.dataflow == Dataflow::kOs ? ext[2] : ext[1], chunk_);
  }
  const std::int64_t rb = ceil_div(sr, cfg_.rows), cb = ceil_div(sc, cfg_.cols);
  const bool os = cfg_.dataflow == Dataflow::kOs;
  return level == 3 ? (os ? rb : cb) : (os ? cb : rb);
}

bool FoldPlan::advance(LoopIndex& idx) const {
  for (int level = levels() - 1; level >= 0; --level) {
    auto& x = idx[static_cast<std::size_t>(level)];
    if (x + 1 < level_count(level, idx)) {
      ++x;
      return true;
    }
    x = 0;
  }
  return false;
}

bool FoldPlan::next_tile(const LoopIndex& idx, LoopIndex* out) const {
  *out = idx;
  if (!tiled_) return advance(*out);
  for (std::size_t l = 3; l < kMaxLevels; ++l) (*out)[l] = 0;
  for (int level = 2; level >= 0; --level) {
    auto& x = (*out)[static_cast<std::size_t>(level)];
    if (x + 1 < level_count(level, *out)) {
      ++x;
      return true;
    }
    x = 0;
  }
  return false;
}

bool FoldPlan::next_unit(const LoopIndex& idx, LoopIndex* out) const {
  if (!b_streamed_) return next_tile(idx, out);
  *out = idx;
  return advance(*out);
}

Fold FoldPlan::fold_at(const LoopIndex& idx) const {
  Fold f = tiled_ ? tiled_fold(idx) : fixed_fold(idx[0], idx[1]);
  f.gemm_first = true;
  for (int l = 0; l < levels(); ++l) f.gemm_first = f.gemm_first && idx[static_cast<std::size_t>(l)] == 0;
  if (untouched_store_bytes_ != 0) {
    bool gemm_last = true;
    for (int l = 0; gemm_last && l < levels(); ++l) {
      gemm_last = idx[static_cast<std::size_t>(l)] == level_count(l, idx) - 1;
    }
    if (gemm_last) f.store_c_bytes = checked_add(f.store_c_bytes, untouched_store_bytes_, "dram bytes");
  }
  return f;
}

Fold FoldPlan::fixed_fold(std::int64_t outer, std::int64_t inner) const {
  Fold f;
  const bool os = cfg_.dataflow == Dataflow::kOs;
  const std::int64_t row_block = os ? outer : inner, col_block = os ? inner : outer;
  f.sr0 = row_block * cfg_.rows;
  f.sc0 = col_block * cfg_.cols;
  f.r = static_cast<int>(std::min<std::int64_t>(cfg_.rows, map_.sr - f.sr0));
  f.c = static_cast<int>(std::min<std::int64_t>(cfg_.cols, map_.sc - f.sc0));
  f.t = map_.t;
  const auto r = static_cast<std::uint64_t>(f.r), c = static_cast<std::uint64_t>(f.c),
             t = static_cast<std::uint64_t>(f.t);
  const auto K = static_cast<std::uint64_t>(shape_.k);
  if (os) {
    std::uint64_t a_tile = packed_bytes(r * K, a_bits_);
    f.load_a_bytes = (col_block == 0 || a_tile > cfg_.sram_a_bytes / 2) ? a_tile : 0;
    f.load_b_bytes = (!b_whole_fits_ || row_block == 0) ? packed_bytes(K * c, b_bits_) : 0;
    f.store_c_bytes = packed_bytes(r * c, result_bits_);  // final results
    return f;
  }
  f.first_k = row_block == 0;
  f.last_k = row_block == row_blocks_ - 1;
  // WS holds B and streams A; IS holds A and streams B.
  const bool ws = cfg_.dataflow == Dataflow::kWs;
  std::uint64_t stationary = packed_bytes(r * c, ws ? b_bits_ : a_bits_);
  std::uint64_t stream = packed_bytes(t * r, ws ? a_bits_ : b_bits_);
  bool stream_whole_fits = cfg_.dataflow == Dataflow::kWs ? a_whole_fits_ : b_whole_fits_;
  std::uint64_t stream_load = (!stream_whole_fits || col_block == 0) ? stream : 0;
  if (cfg_.dataflow == Dataflow::kWs) {
    f.load_a_bytes = stream_load;
    f.load_b_bytes = stationary;
  } else {
    f.load_a_bytes = stationary;
    f.load_b_bytes = stream_load;
  }
  std::uint64_t psums = packed_bytes(t * c, output_bits_);
  const std::uint64_t results = packed_bytes(t * c, result_bits_);
  if (psums <= cfg_.sram_c_bytes / 2) {  // partial sums stay on chip until final
    f.store_c_bytes = f.last_k ? results : 0;
  } else {  // partial sums go to DRAM after every fold and come back for the next K block
    f.store_c_bytes = f.last_k ? results : psums;
    f.load_c_bytes = f.first_k ? 0 : psums;
  }
  return f;
}

Fold FoldPlan::tiled_fold(const LoopIndex& idx) const {
  // Tile indices and extents per dimension (m, n, k), and each tile level's dimension.
  std::int64_t ti[3] = {0, 0, 0}, ext[3] = {0, 0, 0}, cnt[3] = {0, 0, 0};
  int dim_of_level[3] = {0, 0, 0};
  for (int l = 0; l < 3; ++l) {
    const char d = tiles_.order[l];
    const int di = d == 'm' ? 0 : d == 'n' ? 1 : 2;
    dim_of_level[l] = di;
    ti[di] = idx[static_cast<std::size_t>(l)];
    cnt[di] = tile_count(d);
    ext[di] = std::min(tile(d), dim(d) - ti[di] * tile(d));
  }
  const std::int64_t m0 = ti[0] * tiles_.mt, n0 = ti[1] * tiles_.nt, k0 = ti[2] * tiles_.kt;
  Fold f;
  const std::int64_t fo = idx[3], fi = idx[4], fc = idx[5];
  const std::int64_t n3 = level_count(3, idx), n4 = level_count(4, idx), n5 = level_count(5, idx);
  const bool os = cfg_.dataflow == Dataflow::kOs;
  const std::int64_t rb = os ? fo : fi, cb = os ? fi : fo;
  std::int64_t sr_base = 0, sc_base = 0, t_base = 0, sr_ext = 0, sc_ext = 0, t_ext = 0;
  switch (cfg_.dataflow) {
    case Dataflow::kOs: sr_base = m0; sc_base = n0; t_base = k0; sr_ext = ext[0]; sc_ext = ext[1]; t_ext = ext[2]; break;
    case Dataflow::kWs: sr_base = k0; sc_base = n0; t_base = m0; sr_ext = ext[2]; sc_ext = ext[1]; t_ext = ext[0]; break;
    case Dataflow::kIs: sr_base = k0; sc_base = m0; t_base = n0; sr_ext = ext[2]; sc_ext = ext[0]; t_ext = ext[1]; break;
  }
  f.sr0 = sr_base + rb * cfg_.rows;
  f.sc0 = sc_base + cb * cfg_.cols;
  f.t0 = t_base + fc * chunk_;  // a streamed B's chunk of the stream (chunk_ = 0: fc = 0)
  f.r = static_cast<int>(std::min<std::int64_t>(cfg_.rows, sr_base + sr_ext - f.sr0));
  f.c = static_cast<int>(std::min<std::int64_t>(cfg_.cols, sc_base + sc_ext - f.sc0));
  f.t = chunk_ == 0 ? t_ext : std::min(chunk_, t_base + t_ext - f.t0);
  if (!os) {
    f.first_k = f.sr0 == 0;
    f.last_k = f.sr0 + f.r == map_.sr;
  } else {  // OS: K is the stream
    f.first_k = f.t0 == 0;
    f.last_k = f.t0 + f.t == map_.t;
    // The previous fold computed this block's earlier K when the tile has one fold and every
    // tile loop inside the K loop has one iteration.
    bool own = !f.first_k && n3 * n4 == 1;
    for (int l = 2; own && l >= 0 && tiles_.order[l] != 'k'; --l) own = tile_count(tiles_.order[l]) == 1;
    f.after_own_block = own || fc > 0;  // a later chunk of a streamed B continues the chunk before it

  }
  // Operand dependencies: A (m, k), B (k, n), C (m, n), as bit masks over dims m=1, n=2, k=4.
  const int dep_a = 1 | 4, dep_b = 4 | 2, dep_c = 1 | 2;
  auto bit = [](int di) { return 1 << di; };
  const auto en = static_cast<std::uint64_t>(ext[1]), ek = static_cast<std::uint64_t>(ext[2]);
  f.tile_first = fo == 0 && fi == 0 && fc == 0;
  f.tile_last = fo == n3 - 1 && fi == n4 - 1 && fc == n5 - 1;
  f.unit_first = f.tile_first || b_streamed_;
  if (f.tile_first) {  // the tile's first fold: load what differs from the previous tile
    int inc = -1;  // the innermost tile level that advanced to reach this tile
    for (int l = 2; l >= 0; --l) {
      if (idx[static_cast<std::size_t>(l)] > 0) {
        inc = l;
        break;
      }
    }
    auto changed = [&](int deps) {
      if (inc < 0) return true;
      if ((deps & bit(dim_of_level[inc])) != 0) return true;
      for (int l = inc + 1; l < 3; ++l) {
        if ((deps & bit(dim_of_level[l])) != 0 && cnt[dim_of_level[l]] > 1) return true;
      }
      return false;
    };
    if (changed(dep_a)) {
      f.load_a_bytes = tile_a_bytes(ext[0], ext[2]);
      // A forward feature-map tile right after the position tile before it (the M loop advanced,
      // no K loop inside it moved): the halo rows the two share are still in the A buffer. The
      // buffer works as a ring: the next tile's new rows are written behind the current tile's,
      // which fits because each tile's region fits in half the buffer.
      bool follows = inc >= 0 && dim_of_level[inc] == 0;
      for (int l = inc + 1; follows && l < 3; ++l) follows = dim_of_level[l] != 2 || cnt[2] == 1;
      const std::uint64_t halo = follows ? fmap_input_halo(ext[0], ext[2]) : 0;
      if (halo != 0) {
        const std::uint64_t region = fmap_region(ext[0], ext[2], false);
        f.load_a_bytes = packed_bytes(region - std::min(region, halo), a_bits_);
      }
    }
    if (changed(dep_b) && !b_streamed_) f.load_b_bytes = packed_bytes(ek * en, b_bits_);
    if (changed(dep_c) && ti[2] > 0) f.load_c_bytes = tile_c_bytes(ext[0], ext[1]);  // spilled psums

  }
  if (b_streamed_) {  // every fold (chunk) loads the B it streams; no other fold uses it
    const auto r = static_cast<std::uint64_t>(f.r), c = static_cast<std::uint64_t>(f.c),
               t = static_cast<std::uint64_t>(f.t);
    f.load_b_bytes = packed_bytes(cfg_.dataflow == Dataflow::kOs ? t * c : cfg_.dataflow == Dataflow::kWs ? r * c : r * t,
                                  b_bits_);
  }
  if (f.tile_last) {  // the tile's last fold: store if the next tile has other outputs
    int nxt = -1;  // the tile level that advances next
    for (int l = 2; l >= 0; --l) {
      if (idx[static_cast<std::size_t>(l)] < cnt[dim_of_level[l]] - 1) {
        nxt = l;
        break;
      }
    }
    bool moves = nxt < 0 || (dep_c & bit(dim_of_level[nxt])) != 0;
    for (int l = nxt + 1; nxt >= 0 && l < 3; ++l) {
      if ((dep_c & bit(dim_of_level[l])) != 0 && cnt[dim_of_level[l]] > 1) moves = true;
    }
    if (moves) f.store_c_bytes = tile_c_bytes(ext[0], ext[1], ti[2] == cnt[2] - 1);  // final, or spilled psums
  }
  return f;
}

std::int64_t fold_cycles(Dataflow d, int mac_latency, int r, int c, std::int64_t t) {
  if (d == Dataflow::kOs) return 2 * r + c + t * mac_latency - 2;
  return r + static_cast<std::int64_t>(r) * mac_latency + c + t - 2;
}

std::int64_t fold_length(const SimConfig& cfg, const Fold& f) {
  const std::int64_t base = fold_cycles(cfg.dataflow, cfg.mac_latency, f.r, f.c, f.t);
  return cfg.dataflow == Dataflow::kOs && !f.first_k ? base + f.r : base;
}

const char* stall_cause_name(int cause) {
  static const char* const kNames[] = {"fill", "bandwidth", "spill", "drain"};
  return kNames[cause];
}

int stall_cause(const Fold& f) {
  if (f.gemm_first) return kStallFill;
  return f.load_c_bytes != 0 ? kStallSpill : kStallBandwidth;
}

std::int64_t fold_visible_length(const SimConfig& cfg, const Fold& f) {
  const std::int64_t len = fold_length(cfg, f);
  if (!cfg.overlap) return len;
  if (cfg.dataflow == Dataflow::kOs) return len - f.r;
  return f.gemm_first ? len : len - f.r;
}

std::int64_t fold_hidden_tail(const SimConfig& cfg, const Fold& f) {
  return cfg.overlap && cfg.dataflow == Dataflow::kOs ? f.r : 0;
}

std::int64_t first_output_cycle(Dataflow d, int mac_latency, int r, int c, std::int64_t t) {
  if (d == Dataflow::kOs) return r + c + t * mac_latency - 2;
  return r + static_cast<std::int64_t>(r) * mac_latency - 1;
}

std::uint64_t scalesim_cycles(Dataflow d, int rows, int cols, const GemmShape& s) {
  Mapping m = map_gemm(d, s);
  auto folds = static_cast<std::uint64_t>(ceil_div(m.sr, rows) * ceil_div(m.sc, cols));
  auto per_fold = static_cast<std::uint64_t>(
      (d == Dataflow::kOs ? rows : 2 * rows) + cols + m.t - 2);
  return checked_mul(folds, per_fold, "cycles.scalesim_compatible") - 1;
}

Bandwidth Bandwidth::from_double(double bytes_per_cycle) {
  // The shortest decimal that reads back as the same double (what the user wrote, for any
  // value given in decimal), as digits and a power of ten.
  const std::string dec = fmt::format("{}", bytes_per_cycle);
  if (!(bytes_per_cycle > 0) || !std::isfinite(bytes_per_cycle)) {
    throw InputError(fmt::format("dram.bandwidth: {} is not a positive finite number", dec));
  }
  // Parse "ddd.ddd" or "d.ddde[+-]xx".
  u128 digits = 0;
  int frac = 0, exp10 = 0;
  bool point = false;
  std::size_t i = 0;
  for (; i < dec.size() && dec[i] != 'e' && dec[i] != 'E'; ++i) {
    if (dec[i] == '.') {
      point = true;
      continue;
    }
    digits = digits * 10 + static_cast<unsigned>(dec[i] - '0');
    if (point) ++frac;
  }
  if (i < dec.size()) exp10 = std::stoi(dec.substr(i + 1));
  exp10 -= frac;
  u128 num = digits, den = 1;
  for (; exp10 > 0; --exp10) num *= 10;
  for (; exp10 < 0; ++exp10) den *= 10;
  while (num % 10 == 0 && den % 10 == 0) {
    num /= 10;
    den /= 10;
  }
  constexpr auto kMax = static_cast<u128>(~std::uint64_t{0});
  if (num > kMax || den > kMax) {
    throw InputError(fmt::format("dram.bandwidth: {} has too many digits (at most 19 after the point)", dec));
  }
  return Bandwidth{static_cast<std::uint64_t>(num), static_cast<std::uint64_t>(den)};
}

std::uint64_t transfer_cycles(std::uint64_t bytes, const Bandwidth& bw) {
  if (bytes == 0) return 0;
  const u128 n = static_cast<u128>(bytes) * bw.den;
  const u128 c = (n + bw.num - 1) / bw.num;
  if (c > static_cast<u128>(~std::uint64_t{0})) {
    throw InputError(fmt::format("dram transfer of {} bytes at {}/{} bytes/cycle: the cycle count exceeds "
                                 "2^64 - 1",
                                 bytes, bw.num, bw.den));
  }
  return static_cast<std::uint64_t>(c);
}

namespace {

// The DRAM timeline of a GEMM, relative quantities kept as absolute cycles.
struct Timeline {
  std::uint64_t prev_start = 0; // start of the last fold
  std::uint64_t tail = 0;       // cycles of the last fold still running after prev_end (OS drain)
  std::uint64_t prev_end = 0;   // end of the last fold (0 before the first)
  std::uint64_t ready = 0;      // completion of the current fold's loads
  std::uint64_t pending = 0;    // completion of the next tile's prefetched operands
  std::uint64_t dram_free = 0;  // the channel is busy until here
  std::uint64_t stall = 0, compute = 0;
  std::array<std::uint64_t, kNumStallCauses> by_cause{};
  // Stores issued for a later cycle (the end of an OS fold's hidden drain), not yet served: the
  // channel serves requests in issue order, so a request issued before one of them (the next
  // tile's prefetch) goes first. (cycle, bytes), by cycle, then in program order; every entry
  // lies after prev_start.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> deferred;

  // The state that decides every later step, relative to prev_start.
  // ready and pending matter only above prev_start (they enter max(prev_start, ready) and
  // max(prev_end, ready)); so does dram_free: every later request is issued after prev_start
  // (a deferred store may be issued before prev_end, so prev_end is not a safe floor for it).
  std::vector<std::uint64_t> relative() const {
    auto above = [](std::uint64_t t, std::uint64_t base) { return t > base ? t - base : 0; };
    std::vector<std::uint64_t> r{above(ready, prev_start), above(pending, prev_start), above(dram_free, prev_start),
                                 prev_end - prev_start, tail};
    for (const auto& [at, bytes] : deferred) {
      r.push_back(at - prev_start);
      r.push_back(bytes);
    }
    return r;
  }
};

class TimelineRunner {
 public:
  explicit TimelineRunner(const FoldPlan& plan)
      : plan_(plan), bw_(Bandwidth::from_double(plan.config().dram_bytes_per_cycle)) {}

  // A request issued at cycle `at`: the channel first serves the deferred stores issued at or
  // before `at` (issue order: by cycle, then program order), then this one; returns its
  // completion (`at` for 0 bytes, which complete at once).
  std::uint64_t issue(Timeline& tl, std::uint64_t at, std::uint64_t bytes) const {
    flush(tl, at);
    if (bytes == 0) return at;
    tl.dram_free = checked_add(std::max(at, tl.dram_free), transfer_cycles(bytes, bw_), "cycles");
    return tl.dram_free;
  }
  // Serves the deferred stores issued at or before `at`.
  void flush(Timeline& tl, std::uint64_t at) const {
    std::size_t n = 0;
    for (; n < tl.deferred.size() && tl.deferred[n].first <= at; ++n) {
      tl.dram_free = checked_add(std::max(tl.deferred[n].first, tl.dram_free), transfer_cycles(tl.deferred[n].second, bw_),
                                 "cycles");
    }
    tl.deferred.erase(tl.deferred.begin(), tl.deferred.begin() + static_cast<std::ptrdiff_t>(n));
  }
  // A store issued for cycle `at`, later than requests the next fold may issue before it.
  static void defer(Timeline& tl, std::uint64_t at, std::uint64_t bytes) {
    if (bytes == 0) return;
    auto it = tl.deferred.begin();
    while (it != tl.deferred.end() && it->first <= at) ++it;
    tl.deferred.insert(it, {at, bytes});
  }

  // Runs fold `cur` (its loads complete at tl.ready); `next` is the fold after it, `next_unit`
  // the first fold of the next prefetch unit (the next tile, or with a streamed B the next
  // fold; both null at the end).
  void step(Timeline& tl, const Fold& cur, const Fold* next, const Fold* next_unit) const {
    const SimConfig& cfg = plan_.config();
    const std::uint64_t start = fold_start(cfg, tl, cur);
    flush(tl, start);  // every later request is issued at or after this fold's start
    tl.stall += start - tl.prev_end;
    tl.by_cause[static_cast<std::size_t>(stall_cause(cur))] += start - tl.prev_end;
    const auto len = static_cast<std::uint64_t>(fold_visible_length(cfg, cur));
    const auto tail = static_cast<std::uint64_t>(fold_hidden_tail(cfg, cur));
    const std::uint64_t end = checked_add(start, len, "cycles");
    tl.compute += len;
    if (cur.unit_first) tl.pending = next_unit != nullptr ? issue(tl, start, next_unit->load_operand_bytes()) : start;
    std::uint64_t ready = start;  // nothing to wait for
    if (next != nullptr && next->unit_first) ready = tl.pending;
    defer(tl, end + tail, cur.store_c_bytes);  // results leave after the (hidden) drain
    if (next != nullptr && next->load_c_bytes != 0) {
      ready = std::max(ready, issue(tl, end + tail, next->load_c_bytes));  // after the store
    }
    tl.ready = ready;
    tl.prev_start = start;
    tl.prev_end = end;
    tl.tail = tail;
  }

  // When fold `cur` can start: after the previous fold and its own loads; with overlap, a WS/IS
  // fold also after its shadow preload (r cycles from when both the previous fold has started
  // and its operands are in SRAM), and an OS fold that continues its own block after that
  // block's drain.
  static std::uint64_t fold_start(const SimConfig& cfg, const Timeline& tl, const Fold& cur) {
    std::uint64_t start = std::max(tl.prev_end, tl.ready);
    if (cfg.overlap && !cur.gemm_first) {
      if (cfg.dataflow != Dataflow::kOs) {
        start = std::max(tl.prev_end, std::max(tl.prev_start, tl.ready) + static_cast<std::uint64_t>(cur.r));
      } else if (cur.after_own_block) {
        start = std::max(start, tl.prev_end + tl.tail);
      }
    }
    return start;
  }

  // Repeats the change from `old` to `tl` `times` more times.
  static void shift(Timeline& tl, const Timeline& old, std::uint64_t times) {
    const std::uint64_t d_end = tl.prev_end - old.prev_end;
    const std::uint64_t add = checked_mul(d_end, times, "cycles");
    const auto rel = tl.relative();
    tl.prev_end = checked_add(tl.prev_end, add, "cycles");
    tl.prev_start = tl.prev_end - rel[3];
    tl.ready = tl.prev_start + rel[0];
    tl.pending = tl.prev_start + rel[1];
    tl.dram_free = tl.prev_start + rel[2];
    for (auto& d : tl.deferred) d.first = checked_add(d.first, add, "cycles");
    tl.stall = checked_add(tl.stall, checked_mul(tl.stall - old.stall, times, "cycles.stall"), "cycles.stall");
    for (std::size_t c = 0; c < tl.by_cause.size(); ++c) {
      tl.by_cause[c] = checked_add(tl.by_cause[c], checked_mul(tl.by_cause[c] - old.by_cause[c], times, "cycles.stall"),
                                   "cycles.stall");
    }
    tl.compute = checked_add(tl.compute, checked_mul(tl.compute - old.compute, times, "cycles.compute"),
                             "cycles.compute");
  }

  // Representative position of x in 0..n-1: first, last, or 1 for every position in between.
  static std::int64_t rep(std::int64_t x, std::int64_t n) { return (x == 0 || x == n - 1) ? x : 1; }

  // The first fold of the subtree below `level` at idx (inner indices 0).
  Fold first_fold(LoopIndex idx, int level) const {
    for (int l = level + 1; l < kMaxLevels; ++l) idx[static_cast<std::size_t>(l)] = 0;
    return plan_.fold_at(idx);
  }

  // Runs every fold below `level` (idx[0 .. level-1] set to representatives); `after` is the fold
  // that follows the whole subtree (null at the end). At each level, iterations 1 .. n-3 are
  // identical (same representatives, same following fold): they run until the timeline is at a
  // fixed point, and the rest of them are then added in one step.
  void run_level(Timeline& tl, LoopIndex& idx, int level, const Fold* after, const Fold* after_tile) const {
    if (level == plan_.tile_level()) after_tile = after;  // the fold after this tile
    if (level == plan_.levels()) {
      const Fold cur = plan_.fold_at(idx);
      step(tl, cur, after, plan_.b_streamed() ? after : after_tile);
      return;
    }
    const std::int64_t n = plan_.level_count(level, idx);
    auto& x = idx[static_cast<std::size_t>(level)];
    auto iteration = [&](std::int64_t i) {
      x = rep(i, n);
      Fold next;
      const Fold* nx = after;
      if (i + 1 < n) {
        LoopIndex j = idx;
        j[static_cast<std::size_t>(level)] = rep(i + 1, n);
        next = first_fold(j, level);
        nx = &next;
      }
      run_level(tl, idx, level + 1, nx, after_tile);
      x = rep(i, n);
    };
    iteration(0);
    std::int64_t i = 1;
    if (n >= 4) {
      const auto count = static_cast<std::uint64_t>(n - 3);
      for (std::uint64_t done = 0; done < count; ++done) {
        const auto before = tl.relative();
        const Timeline old = tl;
        iteration(1);
        if (tl.relative() == before && done + 1 < count) {
          shift(tl, old, count - done - 1);
          break;
        }
      }
      i = n - 2;
    }
    for (; i < n; ++i) iteration(i);
    x = 0;
  }

  GemmTiming evaluate() const {
    Timeline tl;
    LoopIndex idx{};
    tl.ready = issue(tl, 0, plan_.fold_at(idx).load_bytes());
    run_level(tl, idx, 0, nullptr, nullptr);
    return finish(tl);
  }

  GemmTiming finish(Timeline& tl) const {
    flush(tl, ~std::uint64_t{0});  // the last stores
    GemmTiming g;
    g.folds = static_cast<std::uint64_t>(plan_.count());
    const std::uint64_t array_end = tl.prev_end + tl.tail;  // the last fold's drain is not hidden
    g.compute = tl.compute + tl.tail;
    g.total = std::max(array_end, tl.dram_free);
    g.stall = tl.stall + (g.total - array_end);
    g.stall_by_cause = tl.by_cause;
    g.stall_by_cause[kStallDrain] += g.total - array_end;
    return g;
  }

 private:
  const FoldPlan& plan_;
  Bandwidth bw_;
};

}  // namespace

GemmTiming analytic_timing(const FoldPlan& plan) { return TimelineRunner(plan).evaluate(); }

GemmTiming analytic_timing_per_fold(const FoldPlan& plan) {
  TimelineRunner runner(plan);
  Timeline tl;
  LoopIndex idx{};
  Fold cur = plan.fold_at(idx);
  tl.ready = runner.issue(tl, 0, cur.load_bytes());
  for (;;) {
    LoopIndex unit_idx;
    const bool has_unit = cur.unit_first && plan.next_unit(idx, &unit_idx);
    const Fold next_unit = has_unit ? plan.fold_at(unit_idx) : Fold{};
    const bool has_next = plan.advance(idx);
    Fold next = has_next ? plan.fold_at(idx) : Fold{};
    runner.step(tl, cur, has_next ? &next : nullptr, has_unit ? &next_unit : nullptr);
    if (!has_next) break;
    cur = next;
  }
  return runner.finish(tl);
}

void add_sram_transfer_events(const Fold& f, EventCounts& e) {
  e.sram_a_write_bits += f.load_a_bytes * 8;
  e.sram_b_write_bits += f.load_b_bytes * 8;
  e.sram_c_write_bits += f.load_c_bytes * 8;
  e.sram_c_read_bits += f.store_c_bytes * 8;
}

void add_edge_read_events(Dataflow d, std::uint64_t west, std::uint64_t top, std::uint64_t a_bits, std::uint64_t b_bits,
                          EventCounts& e) {
  const bool west_is_a = d != Dataflow::kIs;
  (west_is_a ? e.sram_a_read_bits : e.sram_b_read_bits) += west * (west_is_a ? a_bits : b_bits);
  (west_is_a ? e.sram_b_read_bits : e.sram_a_read_bits) += top * (west_is_a ? b_bits : a_bits);
}

void arithmetic_events(const SimConfig& cfg, std::uint64_t slots, std::uint64_t zero, EventCounts& e,
                       std::uint64_t& acc_writes) {
  e.products_zero = zero;
  const std::uint64_t executed = cfg.zero_gating ? slots - zero : slots;
  const PeType& pe = *cfg.array;
  pe.count_ops(cfg, executed, e.pe_ops);
  for (std::size_t i = pe.ops.size(); i < e.pe_ops.size(); ++i) e.pe_ops[i] = 0;
  // OS accumulators are written by every executed product (WS/IS partial-sum registers are
  // written every slot: the partial sum moves down the column whether or not it changed).
  if (cfg.dataflow == Dataflow::kOs) acc_writes = checked_add(acc_writes, executed, "reg_acc_write_bits");
}

EventCounts analytic_events(const FoldPlan& plan, const GemmTiming& timing,
                            std::uint64_t zero_products) {
  const SimConfig& cfg = plan.config();
  const std::uint64_t ob = static_cast<std::uint64_t>(plan.operand_bits());
  const auto ab = static_cast<std::uint64_t>(plan.a_bits()), bb = static_cast<std::uint64_t>(plan.b_bits());
  const std::uint64_t outb = static_cast<std::uint64_t>(plan.output_bits());
  const std::uint64_t accb = static_cast<std::uint64_t>(plan.acc_register_bits());
  const bool os = cfg.dataflow == Dataflow::kOs;
  EventCounts e;
  std::uint64_t operand_writes = 0, acc_writes = 0;
  // Every distinct fold once, times the number of folds like it (the product of its levels'
  // multiplicities: 1 for the first and last index of a level, count - 2 for those between).
  // Per-fold figures are far below 2^64 (r, c <= 2^16, t < 2^31); the sums are checked.
  plan.for_each_distinct(plan.levels(), [&](const LoopIndex& idx, std::uint64_t mult) {
    const Fold f = plan.fold_at(idx);
    const auto r = static_cast<std::uint64_t>(f.r), c = static_cast<std::uint64_t>(f.c),
               t = static_cast<std::uint64_t>(f.t);
    const std::uint64_t slots = r * c * t;
    EventCounts x;
    std::uint64_t ow = 0, aw = 0;
    x.mac_slots = slots;
    if (os) {
      ow = 2 * slots;
      aw = c * r * (r - 1) / 2;  // output drain shifts (accumulate writes added below)
      add_edge_read_events(cfg.dataflow, r * t, c * t, ab, bb, x);  // west and north streams
      x.sram_c_write_bits = r * c * outb;
      if (!f.first_k) {  // partial-sum preload: shifts down the columns, read from the C buffer
        aw += c * r * (r + 1) / 2;
        x.sram_c_read_bits = r * c * outb;
      }
    } else {
      ow = c * r * (r + 1) / 2 + slots;  // stationary preload, streamed operand
      aw = slots;                        // partial sums
      add_edge_read_events(cfg.dataflow, r * t, r * c, ab, bb, x);  // west stream, stationary preload
      x.sram_c_write_bits = t * c * outb;
      if (!f.first_k) x.sram_c_read_bits = t * c * outb;
    }
    add_sram_transfer_events(f, x);
    x.dram_read_bytes = f.load_bytes();
    x.dram_write_bytes = f.store_c_bytes;
    e += x.scaled(mult);
    operand_writes = checked_add(operand_writes, checked_mul(ow, mult, "reg_operand_write_bits"),
                                 "reg_operand_write_bits");
    acc_writes = checked_add(acc_writes, checked_mul(aw, mult, "reg_acc_write_bits"), "reg_acc_write_bits");
  });
  arithmetic_events(cfg, e.mac_slots, zero_products, e, acc_writes);
  e.reg_operand_write_bits = checked_mul(operand_writes, ob, "reg_operand_write_bits");
  e.reg_acc_write_bits = checked_mul(acc_writes, accb, "reg_acc_write_bits");
  e.pe_cycles_busy = e.mac_slots;
  const std::uint64_t pe_cycles =
      checked_mul(checked_mul(static_cast<std::uint64_t>(cfg.rows), static_cast<std::uint64_t>(cfg.cols),
                              "pe_cycles_idle"),
                  timing.total, "pe_cycles_idle");
  e.pe_cycles_idle = pe_cycles - e.mac_slots;
  return e;
}

}  // namespace mfsim

namespace mfsim {

std::vector<ParamSpec> array_params() {
  return {
      {"array.rows", ParamType::kInt, "32", "PEs", 1, 4096, nullptr, "rows R of the systolic array",
       set_int(&SimConfig::rows)},
      {"array.cols", ParamType::kInt, "32", "PEs", 1, 4096, nullptr, "columns C of the systolic array",
       set_int(&SimConfig::cols)},
      {"array.dataflow", ParamType::kChoice, "os", "", 0, 0, "os|ws|is",
       "output-, weight- or input-stationary mapping (docs/cycle-semantics.md)",
       [](const std::string& v, SimConfig& c) {
         c.dataflow = v == "os" ? Dataflow::kOs : v == "ws" ? Dataflow::kWs : Dataflow::kIs;
       }},
      {"array.overlap", ParamType::kBool, "true", "", 0, 0, nullptr,
       "consecutive folds overlap: WS/IS preload the next stationary tile into shadow registers, OS drains under "
       "the next fold",
       set_bool(&SimConfig::overlap)},
  };
}

std::vector<ParamSpec> memory_params() {
  return {
      {"sram.a_kib", ParamType::kInt, "256", "KiB", 1, 1 << 22, nullptr,
       "operand A buffer (activations / errors), double-buffered: half holds a fold's tile",
       set_kib(&SimConfig::sram_a_bytes)},
      {"sram.b_kib", ParamType::kInt, "256", "KiB", 1, 1 << 22, nullptr,
       "operand B buffer (weights / errors), double-buffered", set_kib(&SimConfig::sram_b_bytes)},
      {"sram.c_kib", ParamType::kInt, "128", "KiB", 1, 1 << 22, nullptr,
       "output buffer (results and partial sums), double-buffered", set_kib(&SimConfig::sram_c_bytes)},
      {"dram.bandwidth", ParamType::kNumber, "32", "bytes/cycle", 1e-3, 1e6, nullptr,
       "DRAM bandwidth shared by loads and stores", set_number(&SimConfig::dram_bytes_per_cycle)},
  };
}

// The clock converts the cycle model's cycles to seconds in the reports.
std::vector<ParamSpec> report_params() {
  return {{"clock.mhz", ParamType::kNumber, "1000", "MHz", 1e-3, 1e6, nullptr,
           "clock frequency (converts cycles to seconds in reports)", set_number(&SimConfig::clock_mhz)}};
}

}  // namespace mfsim
