// The cycle model's closed forms and the memory plan (docs/cycle-semantics.md). Plain C++, no
// SystemC: the SystemC arrays (sim/array_sim.*) realise this model register by register, timing
// mode evaluates it directly, and tests hold one against the other.
//
// A GEMM (M, N, K) maps to a spatial extent Sr x Sc and a temporal length T:
//   OS (M, N, K)   WS (K, N, M)   IS (K, M, N)
// and is tiled into folds of at most R x C PEs. Folds run one after another on the array; the
// DRAM channel prefetches the next fold's operands while the current one computes.
#pragma once

#include <cstdint>

#include "models/gemm_ref.h"
#include "sim/events.h"
#include "sim/params.h"

namespace mfsim {

struct Mapping {
  std::int64_t sr, sc, t;  // spatial rows, spatial columns, temporal length
};
Mapping map_gemm(Dataflow d, const GemmShape& s);

// One fold, in execution order. OS: rows are output-row blocks (outer loop), columns output-
// column blocks. WS/IS: rows are K blocks (inner loop, so partial sums accumulate in ascending
// k), columns N blocks (WS) or M blocks (IS).
struct Fold {
  std::int64_t index = 0;
  std::int64_t row_block = 0, col_block = 0;
  int r = 0, c = 0;            // active rows and columns
  std::int64_t t = 0;          // stream length
  bool first_k = true;         // WS/IS: top-of-column partial sums start at zero
  bool last_k = true;          // WS/IS: the fold produces final outputs
  std::uint64_t load_a_bytes = 0, load_b_bytes = 0, load_c_bytes = 0;  // DRAM -> SRAM before
  std::uint64_t store_c_bytes = 0;                                      // SRAM -> DRAM after
  std::uint64_t load_bytes() const { return load_a_bytes + load_b_bytes + load_c_bytes; }
  std::uint64_t load_operand_bytes() const { return load_a_bytes + load_b_bytes; }
};

class FoldPlan {
 public:
  FoldPlan(const SimConfig& cfg, const GemmShape& shape);
  std::int64_t count() const { return row_blocks_ * col_blocks_; }
  Fold fold(std::int64_t index) const;
  // Folds run in two nested loops: OS outer over row blocks, inner over column blocks; WS/IS
  // outer over column blocks, inner over row (K) blocks. A fold's content depends only on
  // whether its outer and inner positions are first, last or in between, so a GEMM has at
  // most 9 distinct folds (the closed forms cost per distinct fold, not per fold).
  std::int64_t outer_count() const;
  std::int64_t inner_count() const;
  Fold fold_at(std::int64_t outer, std::int64_t inner) const;
  const Mapping& mapping() const { return map_; }
  const SimConfig& config() const { return cfg_; }
  const GemmShape& shape() const { return shape_; }
  int operand_bits() const { return operand_bits_; }  // per element in SRAM, DRAM, registers
  int output_bits() const { return output_bits_; }    // per result / partial sum in SRAM, DRAM
  int acc_register_bits() const { return acc_register_bits_; }

 private:
  SimConfig cfg_;
  GemmShape shape_;
  Mapping map_;
  std::int64_t row_blocks_ = 0, col_blocks_ = 0;
  int operand_bits_ = 0, output_bits_ = 0, acc_register_bits_ = 0;
  bool a_whole_fits_ = false, b_whole_fits_ = false;
};

// Bytes of `elements` values of `bits` each, packed.
std::uint64_t packed_bytes(std::uint64_t elements, int bits);

// Closed forms of one fold with r active rows, c active columns, stream length t, MAC latency L:
//   OS:     2r + c + t*L - 2   (skewed stream, pipeline completion, r-cycle output drain)
//   WS/IS:  r + r*L + c + t - 2 (r-cycle preload, skewed stream, partial sums down the columns)
std::int64_t fold_cycles(Dataflow d, int mac_latency, int r, int c, std::int64_t t);
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

struct GemmTiming {
  std::uint64_t folds = 0;
  std::uint64_t compute = 0;  // cycles in which a fold occupies the array
  std::uint64_t stall = 0;    // cycles waiting for DRAM (before folds and for final stores)
  std::uint64_t total = 0;
};

// The memory timeline, evaluated in closed form per fold (the SystemC DRAM model follows the
// same rules cycle by cycle):
//  - fold 0's operands are loaded before it starts;
//  - fold f+1's operand (A, B) loads are issued when fold f starts (double buffering); its
//    partial sums spilled to DRAM are reloaded after fold f's store (fold f produces them);
//  - fold f's store is issued when it ends; the DRAM channel serves requests in issue order;
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

// The arithmetic events of `slots` scheduled products of which `zero` have a zero operand (the
// one rule for the closed form and the cycle-stepped array): sets products_zero and the
// array's arithmetic counters, and adds the OS accumulator writes to `acc_writes`.
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
