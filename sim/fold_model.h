// The cycle model's closed forms and the memory plan (docs/cycle-semantics.md). Plain C++, no
// SystemC: the SystemC arrays (sim/array_sim.*) realise this model register by register, timing
// mode evaluates it directly, and tests hold one against the other.
//
// A GEMM (M, N, K) maps to a spatial extent Sr x Sc and a temporal length T:
//   OS (M, N, K)   WS (K, N, M)   IS (K, M, N)
// and is tiled into folds of at most R x C PEs. Folds run one after another on the array; the
// DRAM channel prefetches the next fold's operands while the current one computes.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "models/gemm_ref.h"
#include "traces/trace.h"
#include "sim/events.h"
#include "sim/params.h"

namespace mfsim {

struct Mapping {
  std::int64_t sr, sc, t;  // spatial rows, spatial columns, temporal length
};
Mapping map_gemm(Dataflow d, const GemmShape& s);

// One fold, in execution order: r x c PEs of the array computing a slice of the GEMM with a
// stream of t elements. In the GEMM's (Sr, Sc, T) view the fold covers rows [sr0, sr0 + r),
// columns [sc0, sc0 + c) and stream positions [t0, t0 + t). WS/IS rows are K, so partial sums
// accumulate in ascending k.
struct Fold {
  std::int64_t sr0 = 0, sc0 = 0, t0 = 0;
  int r = 0, c = 0;            // active rows and columns
  std::int64_t t = 0;          // stream length
  bool first_k = true;         // partial sums start at zero (WS/IS: at the top of the columns;
                               // OS: in the accumulators)
  bool last_k = true;          // the fold produces final outputs
  std::uint64_t load_a_bytes = 0, load_b_bytes = 0, load_c_bytes = 0;  // DRAM -> SRAM before
  std::uint64_t store_c_bytes = 0;                                      // SRAM -> DRAM after
  bool tile_first = true, tile_last = true;  // the first / last fold of its buffer tile
  // The first fold of a prefetch unit: a buffer tile, or, when the plan streams B (FoldPlan::
  // b_streamed), every fold. A unit's operand loads are issued when the unit before it starts.
  bool unit_first = true;
  bool gemm_first = false;                    // the GEMM's first fold
  bool after_own_block = false;  // OS: continues the K of the block the previous fold computed
  std::uint64_t load_bytes() const { return load_a_bytes + load_b_bytes + load_c_bytes; }
  std::uint64_t load_operand_bytes() const { return load_a_bytes + load_b_bytes; }
};

// A GEMM's folds as a loop nest of at most kMaxLevels levels, outermost first. A level's trip
// count may depend on the indices of the levels outside it (an edge tile has fewer folds), and
// a fold's content depends only on whether each index is first, last or in between: so every
// closed form can work on representatives (index 0, 1 and count - 1 of each level).
//  - fixed mapping (map.policy = fixed): 2 levels, the array's folds over the whole GEMM (OS:
//    row blocks outer, column blocks inner; WS/IS: column blocks outer, K blocks inner), with
//    the operand reuse rules of docs/cycle-semantics.md;
//  - tiled mapping (docs/mapping.md): 3 tile loops over M, N, K in the mapping's order, then the
//    array's folds within the tile (2 levels, in the order above), then the chunks of a fold's
//    stream (1 level: one chunk unless the plan streams B, below). A tile's operands are loaded
//    before its first fold when they differ from the previous tile's, its outputs stored after
//    its last fold when the next tile has other outputs (partial sums spill when K is not done).
//    A plan streams B (b_streamed) when its B tile does not fit half the B buffer but each B
//    element of a tile feeds exactly one fold and no tile reuses the B of the tile before it:
//    then every fold (OS, IS: every chunk of its stream that fits half the B buffer) loads its
//    own part of B, prefetched while the fold before it runs.
constexpr int kMaxLevels = 6;

// What the memory model knows of a GEMM beyond its shape: a convolution's geometry and the
// GEMM's phase. When active (a conv record, conv.im2col = onchip, a tiled mapping), the im2col
// operand is read as feature-map rows and expanded on chip (fwd: A; bwd_weight: A, the
// transposed im2col), and a bwd_data output is summed into the input-gradient feature map on
// chip (col2im) instead of being written as an im2col matrix (docs/mapping.md).
struct ConvView {
  bool active = false;
  ConvGeometry geo;
  Phase phase = Phase::kFwd;
  // The record's operands' widths in their formats (bits per element; 0: not known). An array
  // that holds each operand in its own form (PeType::per_operand_registers: the shift PE) keeps
  // them at these widths in SRAM and DRAM; every other array at its operand width.
  int a_format_bits = 0, b_format_bits = 0;
  // Partial sums wider than the array's accumulator (bits per element; 0: the accumulator's): a
  // GEMM with finer scales keeps 64-bit aligned sums in the output buffer and spills them so;
  // `result_bits` (0: the same) is the width of its final results in DRAM (FP32 after the drain's
  // conversion).
  int output_bits = 0, result_bits = 0;
};

// Calls f(representative index, multiplicity) for the classes of a level of n iterations:
// first (index 0), in between (index 1, n - 2 of them), last (index n - 1).
template <class F>
void for_each_class(std::int64_t n, F f) {
  f(std::int64_t{0}, std::uint64_t{1});
  if (n >= 3) f(std::int64_t{1}, static_cast<std::uint64_t>(n - 2));
  if (n >= 2) f(n - 1, std::uint64_t{1});
}

// Bits per element of an array's operands (in SRAM, DRAM and registers), of its results and
// partial sums in SRAM and DRAM, and of its accumulator registers: properties of the array alone.
struct ArrayWidths {
  int operand = 0, output = 0, acc_register = 0;
  int a = 0, b = 0;  // operands A and B in SRAM and DRAM (the operand width, or per operand: ConvView)
};
ArrayWidths array_widths(const SimConfig& cfg, const ConvView& view = {});

class FoldPlan;
// The mapper (sim/mapper.cpp, docs/mapping.md): the tiling of a GEMM that minimises
// cfg.map_objective among the candidate tilings that fit the buffers. False when none fits (the
// fixed mapping is then used). Deterministic, memoized per (shape, configuration).
bool choose_tiles(const SimConfig& cfg, const GemmShape& shape, const ConvView& conv, TileMapping* out);
// Forgets the mappings choose_tiles memoized: replay_trace calls it as it starts.
void clear_mapping_memo();
// The candidate tilings the mapper weighs (those that fit), in enumeration order.
std::vector<TileMapping> mapping_candidates(const SimConfig& cfg, const GemmShape& shape, const ConvView& conv);
// DRAM bytes of a tiled plan (loads and stores of its tiles), exact, without the timeline.
std::uint64_t tiled_dram_bytes(const FoldPlan& plan);
using LoopIndex = std::array<std::int64_t, kMaxLevels>;

class FoldPlan {
 public:
  // The mapping by the configuration: fixed, pinned (map.tiles) or the mapper's choice.
  FoldPlan(const SimConfig& cfg, const GemmShape& shape, const ConvView& conv = {});
  // A given tiled mapping (sizes clamped to the GEMM; 0 = whole dimension).
  FoldPlan(const SimConfig& cfg, const GemmShape& shape, const TileMapping& tiles, const ConvView& conv = {});

  int levels() const { return tiled_ ? 6 : 2; }
  // Calls f(idx, multiplicity) once per distinct index vector of the outer `depth` levels: each
  // level's first, last and one in-between index (standing for count - 2 of them); the deeper
  // levels of idx are 0. levels() for every distinct fold, tile_level() for every distinct tile.
  template <class F>
  void for_each_distinct(int depth, F f) const {
    LoopIndex idx{};
    walk_distinct(0, depth, 1, idx, f);
  }
  std::int64_t level_count(int level, const LoopIndex& idx) const;  // uses idx[0 .. level-1]
  Fold fold_at(const LoopIndex& idx) const;
  bool advance(LoopIndex& idx) const;  // to the next fold; false past the last
  // The first fold of the tile after idx's tile (fixed mapping: the next fold); false if none.
  bool next_tile(const LoopIndex& idx, LoopIndex* out) const;
  // The first fold of the prefetch unit after idx's (the next fold when B is streamed, else the
  // next tile); false if none.
  bool next_unit(const LoopIndex& idx, LoopIndex* out) const;
  // Does the plan stream B through the B buffer fold by fold (chunk by chunk) instead of holding
  // each B tile whole? (Decided by the tiling and the buffers, docs/mapping.md.)
  bool b_streamed() const { return b_streamed_; }
  // Stream elements per chunk of a fold when B is streamed (OS: k, IS: n; 0 = one chunk).
  std::int64_t chunk() const { return chunk_; }
  int tile_level() const { return tiled_ ? 3 : 2; }  // the levels below it run within one tile
  std::uint64_t count() const { return folds_; }

  bool tiled() const { return tiled_; }
  const TileMapping& tiles() const { return tiles_; }  // tiled: sizes clamped, never 0
  std::string mapping_text() const;  // "fixed (untiled)" or "tiles 128x64x576 (MxNxK), order mnk[, feature maps]"
  // Does a tiling fit the buffers (each tile in half its buffer, the output tile's partial sums in
  // half the C buffer; a streamed B: each fold's or chunk's B in half the B buffer)?
  bool fits() const;
  static bool fits(const SimConfig& cfg, const GemmShape& shape, const TileMapping& tiles, const ConvView& conv = {});

  const Mapping& mapping() const { return map_; }
  const SimConfig& config() const { return cfg_; }
  const GemmShape& shape() const { return shape_; }
  int operand_bits() const { return operand_bits_; }  // per element in the operand registers
  int a_bits() const { return a_bits_; }              // per element of A in SRAM and DRAM
  int b_bits() const { return b_bits_; }              // per element of B in SRAM and DRAM
  int output_bits() const { return output_bits_; }
  int result_bits() const { return result_bits_; }  // per final result in DRAM    // per result / partial sum in SRAM, DRAM
  int acc_register_bits() const { return acc_register_bits_; }
  // GEMM-view compulsory traffic: A, B read once, C written once, at their widths.
  std::uint64_t compulsory_bytes_gemm_view() const;
  // The physical minimum, a property of the workload (never of the mapping, policy, objective
  // or buffers): the GEMM view, or for a convolution (a record with geometry) the distinct
  // input elements the kernel uses (fwd, bwd_weight) or every input-gradient element
  // (bwd_data), filters and the other operand once.
  std::uint64_t compulsory_bytes() const;
  // Of those, the result's part: C written once (a convolution's bwd_data: every input-gradient
  // element), and its GEMM view (M x N). What a fused vector unit takes on chip (vector.fusion).
  std::uint64_t compulsory_output_bytes() const;
  std::uint64_t compulsory_output_bytes_gemm_view() const;
  // Does the plan read feature maps (im2col on chip, col2im for bwd_data)?
  bool conv_on_chip() const { return fmap_; }

 private:
  void init();
  template <class F>
  void walk_distinct(int level, int depth, std::uint64_t mult, LoopIndex& idx, F& f) const {
    if (level == depth) {
      f(static_cast<const LoopIndex&>(idx), mult);
      return;
    }
    for_each_class(level_count(level, idx), [&](std::int64_t x, std::uint64_t times) {
      idx[static_cast<std::size_t>(level)] = x;
      walk_distinct(level + 1, depth, checked_mul(mult, times, "folds"), idx, f);
    });
    idx[static_cast<std::size_t>(level)] = 0;
  }
  Fold fixed_fold(std::int64_t outer, std::int64_t inner) const;
  Fold tiled_fold(const LoopIndex& idx) const;
  std::int64_t tile_count(char dim) const;
  std::int64_t dim(char d) const { return d == 'm' ? shape_.m : d == 'n' ? shape_.n : shape_.k; }
  std::int64_t tile(char d) const { return d == 'm' ? tiles_.mt : d == 'n' ? tiles_.nt : tiles_.kt; }
  // Feature-map elements a tile of `positions` output positions and `k_cols` im2col columns
  // reads (or, dense, writes: every pixel of the rows), an upper bound independent of where the
  // tile starts; and the halo rows two consecutive position tiles share (col2im keeps them on
  // chip for the next tile to add into).
  std::uint64_t fmap_region(std::int64_t positions, std::int64_t k_cols, bool dense) const;
  std::uint64_t fmap_halo(std::int64_t k_cols) const;
  // Input elements a forward tile of `positions` output positions (whole output rows, one
  // image) surely shares with the position tile before it: the kernel_h - stride rows of the
  // halo, which stay in the A buffer (0 where the rule does not apply).
  std::uint64_t fmap_input_halo(std::int64_t positions, std::int64_t k_cols) const;
  std::uint64_t tile_a_bytes(std::int64_t em, std::int64_t ek) const;
  std::uint64_t tile_c_bytes(std::int64_t em, std::int64_t en, bool final = false) const;         // stored / reloaded
  std::uint64_t tile_c_buffer_bytes(std::int64_t em, std::int64_t en) const;  // held in the C buffer

  SimConfig cfg_;
  GemmShape shape_;
  Mapping map_;
  ConvView conv_;       // the workload's convolution geometry (active for a conv record)
  bool fmap_ = false;   // the plan reads feature maps (conv_ active, tiled, conv.im2col = onchip)
  std::int64_t rows_used_ = 0, cols_used_ = 0;  // input rows / columns some window touches
  std::uint64_t untouched_store_bytes_ = 0;     // bwd_data as im2col: zeros no window writes
  bool tiled_ = false;
  TileMapping tiles_;
  std::int64_t row_blocks_ = 0, col_blocks_ = 0;
  std::uint64_t folds_ = 0;
  int operand_bits_ = 0, a_bits_ = 0, b_bits_ = 0, output_bits_ = 0, result_bits_ = 0, acc_register_bits_ = 0;
  bool a_whole_fits_ = false, b_whole_fits_ = false;
  bool b_streamed_ = false;   // B streamed fold by fold (or chunk by chunk)
  bool b_stream_fits_ = true; // streamed: every fold's (chunk's) B fits half the B buffer
  std::int64_t chunk_ = 0;    // streamed OS / IS: stream elements per chunk (0: one chunk)
};

// Bytes of `elements` values of `bits` each, packed.
std::uint64_t packed_bytes(std::uint64_t elements, int bits);

// Closed forms of one fold with r active rows, c active columns, stream length t, MAC latency L:
//   OS:     2r + c + t*L - 2   (skewed stream, pipeline completion, r-cycle output drain)
//   WS/IS:  r + r*L + c + t - 2 (r-cycle preload, skewed stream, partial sums down the columns)
std::int64_t fold_cycles(Dataflow d, int mac_latency, int r, int c, std::int64_t t);
// A fold's cycles: the closed form, plus r cycles of partial-sum preload for an OS fold that
// continues a K tile (its accumulators start from the partial sums, shifted in from the top).
std::int64_t fold_length(const SimConfig& cfg, const Fold& f);
// The part of a fold that occupies the array when folds overlap (array.overlap): WS/IS folds
// after the GEMM's first preload their stationary tile into shadow registers while the previous
// fold runs (r cycles hidden); OS folds drain their r result rows while the next fold computes
// (r cycles hidden; the GEMM's last drain is paid at its end). Without overlap: fold_length.
std::int64_t fold_visible_length(const SimConfig& cfg, const Fold& f);
// Cycles of the fold that run under the next fold (OS drain with overlap), else 0.
std::int64_t fold_hidden_tail(const SimConfig& cfg, const Fold& f);
// Cycle (0-based, from the fold's first cycle) in which the first / last output leaves the array.
std::int64_t first_output_cycle(Dataflow d, int mac_latency, int r, int c, std::int64_t t);
inline std::int64_t last_output_cycle(Dataflow d, int mac_latency, int r, int c, std::int64_t t) {
  return fold_cycles(d, mac_latency, r, c, t) - 1;
}

// SCALE-Sim's figure for the same GEMM: F * per_fold - 1 with F = ceil(Sr/R) * ceil(Sc/C) and
// per_fold = R + C + T - 2 (OS) or 2R + C + T - 2 (WS, IS), full array size for every fold.
std::uint64_t scalesim_cycles(Dataflow d, int rows, int cols, const GemmShape& s);

// A DRAM bandwidth in bytes per cycle as an exact rational num/den: the decimal the user wrote
// (dram.bandwidth = 0.3 is 3/10, not the binary double nearest to it), so that transfer times
// are exact for any size.
struct Bandwidth {
  std::uint64_t num = 32, den = 1;
  static Bandwidth from_double(double bytes_per_cycle);  // by its shortest decimal form
};

// Cycles to move `bytes` over the channel: ceil(bytes / bandwidth), exactly; 0 bytes take 0
// cycles. Throws InputError if the count does not fit in 64 bits.
std::uint64_t transfer_cycles(std::uint64_t bytes, const Bandwidth& bw);

// Stall cycles by cause: fill (before the GEMM's first fold: its first tiles), bandwidth
// (before a later fold: prefetched operands or, with overlap, a shadow preload not done in
// time), spill (before a fold that waits for its spilled partial sums), drain (after the last
// fold: the final stores). They add up to `stall`.
enum StallCause { kStallFill = 0, kStallBandwidth = 1, kStallSpill = 2, kStallDrain = 3, kNumStallCauses = 4 };
const char* stall_cause_name(int cause);
// The cause of the stall before fold f.
int stall_cause(const Fold& f);

struct GemmTiming {
  std::uint64_t folds = 0;
  std::uint64_t compute = 0;  // cycles in which a fold occupies the array
  std::uint64_t stall = 0;    // cycles waiting for DRAM (before folds and for final stores)
  std::uint64_t total = 0;
  std::array<std::uint64_t, kNumStallCauses> stall_by_cause{};
};

// The memory timeline, evaluated in closed form per fold (the SystemC DRAM model follows the
// same rules cycle by cycle):
//  - fold 0's operands are loaded before it starts;
//  - a prefetch unit's operand (A, B) loads are issued when the unit before it starts (double
//    buffering; a unit is a tile, or with a streamed B a fold; under the fixed mapping every
//    fold is its own tile: fold f+1's loads are issued when fold f starts); a fold's partial
//    sums spilled to DRAM are reloaded after the previous fold's store;
//  - fold f's store is issued when it ends (overlapped OS: when its drain ends); the DRAM channel
//    serves requests in issue order (by the cycle they are issued for, then program order);
//    a request of 0 bytes completes at once;
//  - fold f+1 starts when fold f has ended and its loads have completed;
//  - the GEMM ends when the last fold has ended and the last store has completed.
//
// Evaluated per distinct fold: runs of identical folds reach a steady state (the timeline
// relative to the current fold's end repeats), after which each further fold adds the same
// cycles; the run is then advanced in one step. Exact: equal to analytic_timing_per_fold.
GemmTiming analytic_timing(const FoldPlan& plan);
// The same timeline fold by fold (the reference the fast form is tested against).
GemmTiming analytic_timing_per_fold(const FoldPlan& plan);

// The SRAM side of a fold's DRAM transfers (one rule for both models): loads fill the A, B and
// C buffers, stores read the C buffer.
void add_sram_transfer_events(const Fold& f, EventCounts& e);

// The edge-feed rule (one rule for both models): the west edge streams operand A in OS and WS and
// operand B in IS; the top edge (OS: the north stream; WS, IS: the stationary preload) reads the
// other. Adds the SRAM reads of `west` and `top` edge feeds (A elements of `a_bits`, B of `b_bits`).
void add_edge_read_events(Dataflow d, std::uint64_t west, std::uint64_t top, std::uint64_t a_bits, std::uint64_t b_bits,
                          EventCounts& e);

// The arithmetic events of `slots` scheduled products of which `zero` have a zero operand (the
// one rule for the closed form and the cycle-stepped array): sets products_zero and the PE
// type's op counters (EventCounts::pe_ops, sim/pe_type.h), and adds the OS accumulator writes
// to `acc_writes`.
void arithmetic_events(const SimConfig& cfg, std::uint64_t slots, std::uint64_t zero, EventCounts& e,
                       std::uint64_t& acc_writes);

// All event counts of the GEMM in closed form (per distinct fold times its multiplicity).
// `zero_products` (products with a zero operand) is data: pass the count measured from the
// operands, or 0 when they are unknown. With pe.zero_gating, products with a zero operand
// perform no arithmetic and write no accumulator on every array. Throws InputError if a
// count does not fit in 64 bits (counters never wrap).
EventCounts analytic_events(const FoldPlan& plan, const GemmTiming& timing,
                            std::uint64_t zero_products);

}  // namespace mfsim
