// Event counters of one simulation: everything the energy model (energy/) needs, and nothing
// that holds an energy constant. Each common counter is registered once (name, unit,
// description) in counter_registry(); the PE arithmetic's own counters are declared by the PE
// type (sim/pe_type.h) and held in pe_ops. Reports list them in a fixed order (counter_names()).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sim/pe_type.h"

namespace mfsim {

struct EventCounts {
  std::uint64_t mac_slots = 0;        // products scheduled on PEs (M*N*K per GEMM)
  std::uint64_t products_zero = 0;    // products with a zero operand (zero-gated under pe.zero_gating)
  PeOpCounts pe_ops{};                // the PE type's arithmetic actions, in its declared order
  std::uint64_t reg_operand_write_bits = 0;  // operand pipeline and stationary registers
  std::uint64_t reg_acc_write_bits = 0;      // accumulator / partial-sum registers
  std::uint64_t pe_cycles_busy = 0;          // PE-cycles with a scheduled product
  std::uint64_t pe_cycles_idle = 0;          // all other PE-cycles (fill, drain, stalls, unused PEs)
  std::uint64_t sram_a_read_bits = 0, sram_a_write_bits = 0;
  std::uint64_t sram_b_read_bits = 0, sram_b_write_bits = 0;
  std::uint64_t sram_c_read_bits = 0, sram_c_write_bits = 0;
  std::uint64_t dram_read_bytes = 0, dram_write_bytes = 0;
  // Finer scales (models/scaled_gemm.h; docs/energy-accounting.md): per output and K-chunk, the
  // two exponents added (8 bits), the chunk's sum shifted into place and added at 64 bits.
  std::uint64_t scale_exponent_adds = 0, scale_align_shifts = 0, scale_wide_adds = 0;

  EventCounts& operator+=(const EventCounts& o);   // checked: throws InputError on overflow
  EventCounts scaled(std::uint64_t factor) const;  // every counter times factor (checked)
  bool operator==(const EventCounts& o) const;
};

// Counter arithmetic that never wraps: a result past 2^64 - 1 throws InputError naming `what`
// (the parameters or the trace are too large to count in 64 bits).
std::uint64_t checked_add(std::uint64_t a, std::uint64_t b, const char* what);
std::uint64_t checked_mul(std::uint64_t a, std::uint64_t b, const char* what);

struct CounterInfo {
  const char* name;
  std::uint64_t EventCounts::*member;
  const char* unit;
  const char* description;
};

const std::vector<CounterInfo>& counter_registry();

// Every counter of a run on PE type `pe`, in report order: mac_slots, products_zero, the PE's
// own ops, then the rest of the registry; with its unit and description.
struct NamedCount {
  std::string name;
  std::uint64_t value;
  const char* unit;
  const char* description;
};
std::vector<NamedCount> named_counts(const PeType& pe, const EventCounts& e);

}  // namespace mfsim
