#include "sim/events.h"

#include <fmt/format.h>

#include "common/error.h"

namespace mfsim {

namespace {
[[noreturn]] void overflow(const char* what) {
  throw InputError(fmt::format("{}: exceeds 2^64 - 1; the trace or the parameters are too large to "
                               "count in 64 bits",
                               what));
}
}  // namespace

std::uint64_t checked_add(std::uint64_t a, std::uint64_t b, const char* what) {
  std::uint64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) overflow(what);
  return r;
}

std::uint64_t checked_mul(std::uint64_t a, std::uint64_t b, const char* what) {
  std::uint64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) overflow(what);
  return r;
}

const std::vector<CounterInfo>& counter_registry() {
  static const std::vector<CounterInfo> r = {
      {"mac_slots", &EventCounts::mac_slots, "products", "products scheduled on PEs (M*N*K)"},
      {"products_zero", &EventCounts::products_zero, "products",
       "products with a zero operand; under pe.zero_gating they do no arithmetic and write no accumulator"},
      {"reg_operand_write_bits", &EventCounts::reg_operand_write_bits, "bits",
       "writes of valid data into operand pipeline and stationary registers"},
      {"reg_acc_write_bits", &EventCounts::reg_acc_write_bits, "bits",
       "writes into accumulator and partial-sum registers, including output drain shifts"},
      {"pe_cycles_busy", &EventCounts::pe_cycles_busy, "PE-cycles", "PE-cycles with a scheduled product"},
      {"pe_cycles_idle", &EventCounts::pe_cycles_idle, "PE-cycles",
       "R*C*cycles minus busy: fill, drain, stall and unused PEs"},
      {"sram_a_read_bits", &EventCounts::sram_a_read_bits, "bits", "operand A buffer reads"},
      {"sram_a_write_bits", &EventCounts::sram_a_write_bits, "bits", "operand A buffer writes (fills from DRAM)"},
      {"sram_b_read_bits", &EventCounts::sram_b_read_bits, "bits", "operand B buffer reads"},
      {"sram_b_write_bits", &EventCounts::sram_b_write_bits, "bits", "operand B buffer writes (fills from DRAM)"},
      {"sram_c_read_bits", &EventCounts::sram_c_read_bits, "bits",
       "output buffer reads (partial sums into the array, results to DRAM)"},
      {"sram_c_write_bits", &EventCounts::sram_c_write_bits, "bits",
       "output buffer writes (results and partial sums from the array, spilled partial sums from DRAM)"},
      {"dram_read_bytes", &EventCounts::dram_read_bytes, "bytes", "DRAM reads"},
      {"dram_write_bytes", &EventCounts::dram_write_bytes, "bytes", "DRAM writes"},
      {"scale_exponent_adds", &EventCounts::scale_exponent_adds, "ops",
       "finer scales: 8-bit additions of the two groups' exponents and the accumulator's LSB, per output and K-chunk"},
      {"scale_align_shifts", &EventCounts::scale_align_shifts, "ops",
       "finer scales: shifts of a K-chunk's integer sum into the 64-bit aligned accumulator, per output and chunk"},
      {"scale_wide_adds", &EventCounts::scale_wide_adds, "ops",
       "finer scales: 64-bit additions into the aligned accumulator, per output and K-chunk"},
  };
  return r;
}

EventCounts& EventCounts::operator+=(const EventCounts& o) {
  for (const auto& c : counter_registry()) this->*c.member = checked_add(this->*c.member, o.*c.member, c.name);
  for (std::size_t i = 0; i < pe_ops.size(); ++i) pe_ops[i] = checked_add(pe_ops[i], o.pe_ops[i], "pe arithmetic ops");
  return *this;
}

EventCounts EventCounts::scaled(std::uint64_t factor) const {
  EventCounts e = *this;
  for (const auto& c : counter_registry()) e.*c.member = checked_mul(e.*c.member, factor, c.name);
  for (auto& v : e.pe_ops) v = checked_mul(v, factor, "pe arithmetic ops");
  return e;
}

bool EventCounts::operator==(const EventCounts& o) const {
  for (const auto& c : counter_registry()) {
    if (this->*c.member != o.*c.member) return false;
  }
  return pe_ops == o.pe_ops;
}

std::vector<NamedCount> named_counts(const PeType& pe, const EventCounts& e) {
  std::vector<NamedCount> out;
  for (const auto& c : counter_registry()) {
    out.push_back(NamedCount{c.name, e.*c.member, c.unit, c.description});
    if (c.member == &EventCounts::products_zero) {
      for (std::size_t i = 0; i < pe.ops.size(); ++i) {
        out.push_back(NamedCount{pe.ops[i].counter, e.pe_ops[i], "ops", pe.ops[i].description});
      }
    }
  }
  return out;
}

}  // namespace mfsim
