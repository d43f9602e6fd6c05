#include "sim/replay.h"

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <map>
#include <tuple>
#include <utility>

#include "common/cancel.h"
#include "common/error.h"
#include "models/scaled_gemm.h"
#include "sim/array_sim.h"
#include "sim/fold_model.h"
#include "sim/vector_unit.h"

namespace mfsim {

using ojson = nlohmann::ordered_json;

bool parse_sim_mode(const std::string& s, SimMode* out) {
  if (s == "auto") *out = SimMode::kAuto;
  else if (s == "value") *out = SimMode::kValue;
  else if (s == "timing") *out = SimMode::kTiming;
  else return false;
  return true;
}

const char* to_string(SimMode m) {
  switch (m) {
    case SimMode::kAuto: return "auto";
    case SimMode::kValue: return "value";
    case SimMode::kTiming: return "timing";
  }
  return "?";
}

bool array_represents(const PeType& a, const TraceRecord& r) {
  return a.runs_exactly(r.a.format, r.b.format) && (!r.scaled() || a.finer_scales);
}

// Operands of a record in the array's representation (what its registers hold: PoT4 codes,
// integers or binary32 values), each operand by its own format. PoT4 codes become their exact
// integer images (+-2^(m-1), on the grid 2^(E-6)) on integer and float arrays; integers become
// floats on float arrays: the array then computes the recorded integer accumulators exactly
// (binary32: as long as no partial sum needs rounding). Float formats are decoded to binary32 by
// the trace reader already. A PE with per-operand registers (the shift PE) gets each operand as
// it is: the code operand (code_operand_is_b) as PoT4 codes or two-term codes, the other as
// integers (PoT4 as its integer images).
GemmOperands to_array_operands(const PeType& array, const TraceRecord& r, RecordPayload& p) {
  GemmOperands ops;
  if (r.scaled() && array.finer_scales) {  // offsets first: they read the operands
    if (!p.scaled_checked) throw std::logic_error("a scaled record's payload reached the array unchecked by the reader");
    const ScaleGroups ga = record_scale_groups(r, true, p), gb = record_scale_groups(r, false, p);
    const std::int64_t M = r.shape.m, N = r.shape.n, K = r.shape.k;
    // An element's offset from its operand's least exponent (0 for a zero element, whose
    // product is 0 whatever its group).
    auto zero = [](const TraceRecord& rec, bool a_side, const RecordPayload& pl, std::size_t x) {
      const bool pot4 = (a_side ? rec.a : rec.b).format == NumFormat::kPot4;
      return pot4 ? pot4_is_zero((a_side ? pl.a_pot4 : pl.b_pot4)[x]) : (a_side ? pl.a_int8 : pl.b_int8)[x] == 0;
    };
    ops.a_off.resize(static_cast<std::size_t>(M * K));
    ops.b_off.resize(static_cast<std::size_t>(K * N));
    for (std::int64_t i = 0; i < M; ++i) {
      for (std::int64_t k = 0; k < K; ++k) {
        const auto x = static_cast<std::size_t>(i * K + k);
        ops.a_off[x] = static_cast<std::int8_t>(zero(r, true, p, x) ? 0 : ga.at(i, k, K) - p.scaled_min_a);
      }
    }
    for (std::int64_t k = 0; k < K; ++k) {
      for (std::int64_t j = 0; j < N; ++j) {
        const auto x = static_cast<std::size_t>(k * N + j);
        ops.b_off[x] = static_cast<std::int8_t>(zero(r, false, p, x) ? 0 : gb.at(j, k, K) - p.scaled_min_b);
      }
    }
  }
  auto ints = [](NumFormat f, const std::vector<Pot4Code>& pc, const std::vector<std::int8_t>& i8) {
    std::vector<int> v;
    if (f == NumFormat::kPot4) {
      v.reserve(pc.size());
      for (Pot4Code c : pc) v.push_back(pot4_int(c));
    } else {
      v.assign(i8.begin(), i8.end());
    }
    return v;
  };
  auto floats = [&](NumFormat f, std::vector<float>& fv, const std::vector<Pot4Code>& pc,
                    const std::vector<std::int8_t>& i8) {
    if (is_float_format(f)) return std::move(fv);
    std::vector<float> out;
    for (int v : ints(f, pc, i8)) out.push_back(static_cast<float>(v));
    return out;
  };
  if (array.per_operand_registers) {  // one operand as codes (the shifter's amounts), the other as integers
    const bool code_b = code_operand_is_b(r.a.format, r.b.format);
    const bool code_a = !code_b && shift_terms(r.a.format) > 0;
    if (code_a && r.a.format == NumFormat::kPot4) {
      ops.a_pot4 = std::move(p.a_pot4);
    } else {
      ops.a_int = ints(r.a.format, p.a_pot4, p.a_int8);
      ops.a_apot = code_a;  // two-term values as codes
    }
    if (code_b && r.b.format == NumFormat::kPot4) {
      ops.b_pot4 = std::move(p.b_pot4);
    } else {
      ops.b_int = ints(r.b.format, p.b_pot4, p.b_int8);
      ops.b_apot = code_b;
    }
    return ops;
  }
  switch (array.holds_as) {
    case FormatKind::kPot4:
      ops.a_pot4 = std::move(p.a_pot4);
      ops.b_pot4 = std::move(p.b_pot4);
      break;
    case FormatKind::kInt:
      ops.a_int = ints(r.a.format, p.a_pot4, p.a_int8);
      ops.b_int = ints(r.b.format, p.b_pot4, p.b_int8);
      break;
    case FormatKind::kFloat:
      ops.a_f32 = floats(r.a.format, p.a_fp32, p.a_pot4, p.a_int8);
      ops.b_f32 = floats(r.b.format, p.b_fp32, p.b_pot4, p.b_int8);
      break;
  }
  return ops;
}

namespace {

// Products with a zero operand: sum over k of zA_k * N + zB_k * M - zA_k * zB_k, from the
// trace's own operands (whatever the array: a zero is a zero in every format).
std::uint64_t count_zero_products(const TraceRecord& r, const RecordPayload& p) {
  const GemmShape& s = r.shape;
  auto zero = [](NumFormat f, const std::vector<Pot4Code>& pc, const std::vector<std::int8_t>& iv,
                 const std::vector<float>& fv, std::size_t i) {
    switch (format_info(f).kind) {
      case FormatKind::kPot4: return pot4_is_zero(pc[i]);
      case FormatKind::kInt: return iv[i] == 0;
      case FormatKind::kFloat: return fv[i] == 0.0f;
    }
    return false;
  };
  std::vector<std::uint64_t> za(static_cast<std::size_t>(s.k), 0), zb(static_cast<std::size_t>(s.k), 0);
  for (std::int64_t m = 0; m < s.m; ++m) {
    for (std::int64_t k = 0; k < s.k; ++k) {
      za[k] += zero(r.a.format, p.a_pot4, p.a_int8, p.a_fp32, static_cast<std::size_t>(m * s.k + k)) ? 1 : 0;
    }
  }
  for (std::int64_t k = 0; k < s.k; ++k) {
    for (std::int64_t n = 0; n < s.n; ++n) {
      zb[k] += zero(r.b.format, p.b_pot4, p.b_int8, p.b_fp32, static_cast<std::size_t>(k * s.n + n)) ? 1 : 0;
    }
  }
  std::uint64_t z = 0;
  for (std::int64_t k = 0; k < s.k; ++k) {
    z += za[k] * static_cast<std::uint64_t>(s.n) + zb[k] * static_cast<std::uint64_t>(s.m) - za[k] * zb[k];
  }
  return z;
}

std::string record_name(std::size_t i, const TraceRecord& r) {
  return fmt::format("records[{}] ({} {})", i, r.layer, to_string(r.phase));
}

ojson events_json(const PeType& pe, const EventCounts& e) {
  ojson j;
  for (const auto& c : named_counts(pe, e)) j[c.name] = c.value;
  return j;
}

// The counters of a run on two arrays (array.second): `e` holds the common counters of both and
// the first array's arithmetic ops, `ops2` the second's; the second's ops follow the first's.
ojson events_json(const PeType& pe, const EventCounts& e, const PeType* pe2, const EventCounts& ops2) {
  if (pe2 == nullptr || pe2 == &pe) return events_json(pe, e);
  ojson j;
  const std::vector<NamedCount> counts = named_counts(pe, e);
  const std::vector<NamedCount> second = named_counts(*pe2, ops2);
  for (std::size_t i = 0; i < counts.size(); ++i) {
    j[counts[i].name] = counts[i].value;
    if (i == 1 + pe.ops.size()) {  // after mac_slots, products_zero and the first's ops
      for (std::size_t o = 0; o < pe2->ops.size(); ++o) j[second[2 + o].name] = second[2 + o].value;
    }
  }
  return j;
}

struct GemmOutcome {
  std::string mode;
  bool on_second = false;  // runs on the second array (array.second)
  GemmTiming timing;
  EventCounts events;
  bool zero_measured = false;
  bool checked = false;
  std::string against;
  std::string mismatch;
  std::string note;
  std::uint64_t saturations = 0;
  std::vector<std::int64_t> fold_cycles;
};

// Progress on a terminal for runs longer than a couple of seconds: one line on stderr,
// rewritten at most once a second, cleared at the end. Silent when stderr is not a terminal
// (logs, CI, sweeps), so reports and captured output are unaffected.
class Progress {
 public:
  explicit Progress(std::size_t total) : total_(total), tty_(isatty(2) != 0), start_(Clock::now()), last_(start_) {}
  ~Progress() {
    if (shown_) std::fprintf(stderr, "\r%*s\r", 72, "");
  }
  void update(std::size_t done, const char* what) {
    if (!tty_) return;
    const auto now = Clock::now();
    if (now - start_ < std::chrono::seconds(2) || now - last_ < std::chrono::seconds(1)) return;
    last_ = now;
    shown_ = true;
    const double s = std::chrono::duration<double>(now - start_).count();
    std::fprintf(stderr, "\rsimulate: %zu/%zu GEMMs (%s), %.0f s", done, total_, what, s);
    std::fflush(stderr);
  }

 private:
  using Clock = std::chrono::steady_clock;
  std::size_t total_;
  bool tty_, shown_ = false;
  Clock::time_point start_, last_;
};

ojson stall_json(const GemmTiming& t) {
  ojson j;
  for (int c = 0; c < kNumStallCauses; ++c) j[stall_cause_name(c)] = t.stall_by_cause[static_cast<std::size_t>(c)];
  return j;
}

// DRAM traffic against the physical minimum (docs/mapping.md).
// Fused (vector.fusion), the results the vector unit takes on chip are not DRAM traffic: they
// leave both the bytes and the minimum (`to_vector_unit_bytes`, present only then).
ojson dram_json(const EventCounts& e, std::uint64_t compulsory, std::uint64_t compulsory_gemm, bool fused,
                std::uint64_t to_vector_unit) {
  const std::uint64_t bytes = checked_add(e.dram_read_bytes, e.dram_write_bytes, "dram.bytes");
  ojson j{{"bytes", bytes},
          {"compulsory_bytes", compulsory},
          {"compulsory_bytes_gemm_view", compulsory_gemm},
          {"ratio_to_compulsory", compulsory > 0 ? static_cast<double>(bytes) / static_cast<double>(compulsory) : 0.0},
          {"ratio_to_gemm_view", compulsory_gemm > 0 ? static_cast<double>(bytes) / static_cast<double>(compulsory_gemm) : 0.0}};
  if (fused) j["to_vector_unit_bytes"] = to_vector_unit;
  return j;
}

// Fused (vector.fusion): what one GEMM hands the vector unit and what the vector unit writes for
// it. A fwd or bwd_data result (activations for the next layer, errors for the one before), and a
// matmul's bwd_weight result (an activation's gradient), goes on chip instead of to DRAM: its compulsory part (each result once), the rest of the array's
// writes (partial-sum spills, an im2col-shaped bwd_data's extra) staying DRAM. The operands the
// record quantizes as activations or errors (trace.h quantized_elements) are written by the
// vector unit, at the array's operand widths, for each layer that reads them; weights come from
// the optimizer's state in both modes.
struct FusedIo {
  std::uint64_t from_array = 0, from_array_gemm_view = 0;  // results taken on chip (bytes)
  std::uint64_t operand_elements = 0, operand_bytes = 0;   // operands written for the GEMM
};

FusedIo fused_io(const TraceRecord& r, const QuantizedElements& q, const FoldPlan& plan) {
  FusedIo io;
  const auto rep = static_cast<std::uint64_t>(r.repeat), m = static_cast<std::uint64_t>(r.shape.m),
             n = static_cast<std::uint64_t>(r.shape.n), k = static_cast<std::uint64_t>(r.shape.k);
  const auto ab = plan.a_bits(), bb = plan.b_bits();
  // Every result but a weight gradient (a layer's bwd_weight, which the optimizer reads from
  // DRAM): a matmul's bwd_weight result is an activation's gradient (attention: dK, dV).
  if (r.phase != Phase::kBwdWeight || r.layer_type == LayerType::kMatmul) {
    io.from_array = checked_mul(plan.compulsory_output_bytes(), rep, "dram.to_vector_unit_bytes");
    io.from_array_gemm_view = checked_mul(plan.compulsory_output_bytes_gemm_view(), rep, "dram.to_vector_unit_bytes");
  }
  switch (r.phase) {
    case Phase::kFwd:  // the input activations: A (a matmul's B too: both are activations)
      if (r.layer_type == LayerType::kMatmul) {
        io.operand_elements = q.activations;
        io.operand_bytes = checked_add(packed_bytes(m * k * rep, ab), packed_bytes(k * n * rep, bb), "non_gemm.dram");
      } else {
        io.operand_elements = q.activations;
        io.operand_bytes = packed_bytes(q.activations, ab);
      }
      break;
    case Phase::kBwdData:  // G is A (charged here only when the layer has no bwd_weight record)
      io.operand_elements = q.errors;
      io.operand_bytes = packed_bytes(q.errors, ab);
      break;
    case Phase::kBwdWeight:  // G is B
      io.operand_elements = q.errors;
      io.operand_bytes = packed_bytes(q.errors, bb);
      break;
  }
  return io;
}

// The record's memory view on `array`. Finer scales on an array that runs them: results and
// partial sums are the 64-bit aligned sums, and a convolution whose A (the im2col matrix, in the
// forward and backward-weight GEMMs) has finer scales reads A as its M x K codes, not as the
// feature map: each row's groups have their own exponents, so one input pixel has different
// codes in different rows.
ConvView conv_view(const TraceRecord& r, const PeType& array) {
  ConvView v;
  v.active = r.layer_type == LayerType::kConv;
  if (r.scaled() && array.finer_scales) {
    v.output_bits = 64;
    v.result_bits = 32;  // FP32: each aligned sum rounded once as it leaves the output buffer
    if (r.a.scale_block > 0 && r.phase != Phase::kBwdData) v.active = false;
  }
  v.geo = r.conv;
  v.phase = r.phase;
  v.a_format_bits = format_info(r.a.format).bits;
  v.b_format_bits = format_info(r.b.format).bits;
  return v;
}

// Closed-form timing and events of one record (all `repeat` copies). Shape-only records of the
// same shape share one evaluation (`cache`).
using TimingCache = std::map<std::string, std::pair<GemmTiming, EventCounts>>;

void time_record(const SimConfig& cfg, const TraceReader& reader, std::size_t i, GemmOutcome& out,
                 TimingCache& cache) {
  const TraceRecord& r = reader.trace().records[i];
  // Zero products are measured from the trace's operands whenever it has them, also on an array
  // that cannot hold them exactly (the same zeros are gated on every array).
  const bool measure = r.has_payload;
  const ConvView conv = conv_view(r, *cfg.array);
  const std::string key =
      fmt::format("{} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {}", r.shape.m, r.shape.n, r.shape.k, conv.active,
                  static_cast<int>(conv.phase), conv.geo.batch, conv.geo.in_h, conv.geo.in_w, conv.geo.in_c,
                  conv.geo.kernel_h, conv.geo.stride, conv.geo.pad, conv.geo.pad_end_h, conv.geo.pad_end_w,
                  conv.a_format_bits, conv.b_format_bits) + fmt::format(" {} {}", conv.output_bits, conv.result_bits);
  auto hit = measure ? cache.end() : cache.find(key);
  if (hit != cache.end()) {
    out.timing = hit->second.first;
    out.events = hit->second.second;
  } else {
    FoldPlan plan(cfg, r.shape, conv);
    out.timing = analytic_timing(plan);
    std::uint64_t zeros = 0;
    if (measure) {
      RecordPayload p = reader.read_payload(i);
      zeros = count_zero_products(r, p);
      out.zero_measured = true;
    }
    out.events = analytic_events(plan, out.timing, zeros);
    if (!measure) cache.emplace(key, std::make_pair(out.timing, out.events));
  }
  // `repeat` identical GEMMs run back to back, each from empty buffers: the same folds,
  // cycles and counts each time (timing does not depend on data), so one is evaluated.
  if (r.repeat != 1) {
    const auto n = static_cast<std::uint64_t>(r.repeat);
    out.timing.folds = checked_mul(out.timing.folds, n, "folds");
    out.timing.compute = checked_mul(out.timing.compute, n, "cycles.compute");
    out.timing.stall = checked_mul(out.timing.stall, n, "cycles.stall");
    for (auto& c : out.timing.stall_by_cause) c = checked_mul(c, n, "cycles.stall");
    out.timing.total = checked_mul(out.timing.total, n, "cycles.total");
    out.events = out.events.scaled(n);
  }
}

}  // namespace

namespace {

// The configuration of the second array (array.second): the first's, with the second's PE type.
SimConfig second_config(const SimConfig& cfg) {
  SimConfig c = cfg;
  if (cfg.second != nullptr) c.array = cfg.second;
  c.second = nullptr;
  return c;
}

// The events of finer scales on an array that runs them (docs/energy-accounting.md, "Finer
// scales"), from the record and the array's own operand reads, the same in value and timing mode:
// per output and K-chunk (K cut at both operands' group boundaries) two 8-bit exponent additions
// (x_a + x_b, minus the LSB), one shift of the chunk's integer sum and one 64-bit addition into the
// aligned accumulator (a 64-bit register write); the final results' other 32 bits read from the
// output buffer (they reach DRAM as FP32); per group one 8-bit comparison (the least
// exponent, L); each group's 8-bit exponent written into its operand's buffer once and read from
// it once per `scale_block` elements of its operand read; the scale arrays read from DRAM once per
// GEMM (part of the compulsory bytes; a mapping that fetches an operand from DRAM again is not
// charged its scales again: a lower bound). Returns the DRAM bytes added.
std::uint64_t add_scale_events(const SimConfig& cfg, const TraceRecord& r, const FoldPlan& plan, EventCounts& e) {
  const auto rep = static_cast<std::uint64_t>(r.repeat);
  const auto chunks = static_cast<std::uint64_t>(scaled_chunks(r.shape.k, r.a.scale_block, r.b.scale_block));
  const std::uint64_t align = checked_mul(checked_mul(static_cast<std::uint64_t>(r.shape.m) * static_cast<std::uint64_t>(r.shape.n),
                                                      chunks, "scale events"),
                                          rep, "scale events");
  e.scale_exponent_adds = checked_add(e.scale_exponent_adds, checked_mul(align, 2, "scale_exponent_adds"), "scale_exponent_adds");
  e.scale_align_shifts = checked_add(e.scale_align_shifts, align, "scale_align_shifts");
  e.scale_wide_adds = checked_add(e.scale_wide_adds, align, "scale_wide_adds");
  e.reg_acc_write_bits = checked_add(e.reg_acc_write_bits, checked_mul(align, 64, "reg_acc_write_bits"), "reg_acc_write_bits");
  const ArrayWidths w = array_widths(cfg, conv_view(r, *cfg.array));
  auto sram = [](std::uint64_t& bits, int width, std::int64_t block) {
    if (block <= 0 || width <= 0) return;
    const std::uint64_t elems = bits / static_cast<std::uint64_t>(width);
    const std::uint64_t groups = elems / static_cast<std::uint64_t>(block) + (elems % static_cast<std::uint64_t>(block) != 0 ? 1 : 0);
    bits = checked_add(bits, checked_mul(groups, 8, "sram scale bits"), "sram scale bits");
  };
  sram(e.sram_a_read_bits, w.a, r.a.scale_block);
  sram(e.sram_b_read_bits, w.b, r.b.scale_block);
  // The scale arrays are written into the operand buffers once (their fill from DRAM), and the
  // LSB is the least of each operand's group exponents: one 8-bit comparison per group.
  const std::uint64_t groups = checked_mul(r.scale_count_a() + r.scale_count_b(), rep, "scale groups");
  e.sram_a_write_bits = checked_add(e.sram_a_write_bits, checked_mul(r.scale_count_a() * rep, 8, "sram scale bits"), "sram_a_write_bits");
  e.sram_b_write_bits = checked_add(e.sram_b_write_bits, checked_mul(r.scale_count_b() * rep, 8, "sram scale bits"), "sram_b_write_bits");
  e.scale_exponent_adds = checked_add(e.scale_exponent_adds, groups, "scale_exponent_adds");
  // The final results leave the output buffer as 64-bit sums and reach DRAM as FP32: the memory
  // model counts the buffer's reads at the DRAM width, so the other half of each read is added.
  const std::uint64_t results = checked_mul(plan.compulsory_output_bytes(), rep, "sram_c_read_bits");
  e.sram_c_read_bits = checked_add(e.sram_c_read_bits, checked_mul(results, 8, "sram_c_read_bits"), "sram_c_read_bits");
  const std::uint64_t dram = groups;
  e.dram_read_bytes = checked_add(e.dram_read_bytes, dram, "dram_read_bytes");
  return dram;
}

// Phase 1: the mode of every record (value when it has operands the array holds exactly, unless
// --mode says otherwise), decided before any work so that bad combinations fail first.
std::vector<std::size_t> choose_modes(const TraceReader& reader, const ReplayOptions& opt, const SimConfig& cfg2,
                                      std::vector<GemmOutcome>& out) {
  const Trace& trace = reader.trace();
  const SimConfig& cfg = opt.config;
  std::vector<std::size_t> value_records;
  for (std::size_t i = 0; i < trace.records.size(); ++i) {
    const TraceRecord& r = trace.records[i];
    bool representable = array_represents(*cfg.array, r);
    if (!representable && cfg.second != nullptr && array_represents(*cfg.second, r)) {
      out[i].on_second = true;  // the second array holds it: it runs there
      representable = true;
    }
    const SimConfig& rcfg = out[i].on_second ? cfg2 : cfg;
    if (cfg.map_pinned) {  // a pinned tiling must fit every GEMM: say which does not, before any work
      try {
        FoldPlan check(rcfg, r.shape, conv_view(r, *rcfg.array));
      } catch (const InputError& e) {
        throw InputError(fmt::format("{}: {}: {}", reader.path(), record_name(i, r), e.what()));
      }
    }
    if (r.scaled() && rcfg.array->finer_scales) {
      // Each K-chunk is summed in the PE's accumulator before its alignment: it must hold the chunk.
      const std::int64_t chunk = scaled_chunk_length(r.shape.k, r.a.scale_block, r.b.scale_block);
      if (static_cast<double>(chunk) * static_cast<double>(r.max_product_term()) > static_cast<double>(rcfg.accumulator.max())) {
        throw InputError(fmt::format("{}: {}: a K-chunk of {} products of up to {} can exceed the {}-bit PE accumulator "
                                     "that sums it before its alignment (pe.acc_bits); raise pe.acc_bits",
                                     reader.path(), record_name(i, r), chunk, r.max_product_term(), rcfg.accumulator.bits));
      }
    }
    if (opt.mode == SimMode::kValue) {
      if (!r.has_payload) {
        throw InputError(fmt::format("{}: {}: value mode needs operands, but the record is "
                                     "shape-only; use --mode timing or auto",
                                     reader.path(), record_name(i, r)));
      }
      if (!representable) {
        throw InputError(fmt::format("{}: {}: {} operands cannot be represented exactly on the {} "
                                     "array{}; use --mode timing or auto{}",
                                     reader.path(), record_name(i, r), r.format_name(),
                                     cfg.array->name, cfg.second != nullptr ? fmt::format(" nor on the second ({})", cfg.second->name) : "",
                                     cfg.second != nullptr ? "" : ", or array.second to run it on an array that holds it"));
      }
    }
    if (opt.mode != SimMode::kTiming && r.has_payload && representable) {
      value_records.push_back(i);
      out[i].mode = "value";
    } else {
      out[i].mode = "timing";
      if (opt.mode == SimMode::kAuto && r.has_payload && !representable) {
        out[i].note = fmt::format("{} operands cannot be represented exactly on the {} array{}: "
                                  "timing mode, priced as its products",
                                  r.format_name(), cfg.array->name,
                                  cfg.second != nullptr ? fmt::format(" nor on the second ({})", cfg.second->name) : "");
      }
    }
  }

  return value_records;
}

// Phase 2: the closed form for the timing-mode records (zero products measured where there are
// operands).
void time_records(const TraceReader& reader, const SimConfig& cfg, const SimConfig& cfg2, std::vector<GemmOutcome>& out,
                  Progress& progress, std::size_t& finished) {
  const Trace& trace = reader.trace();
  TimingCache cache, cache2;
  // Timing-mode records: closed form (zero products measured when operands are present).
  for (std::size_t i = 0; i < trace.records.size(); ++i) {
    if (out[i].mode != "timing") continue;
    throw_if_cancelled();
    const TraceRecord& r = trace.records[i];
    try {
      time_record(out[i].on_second ? cfg2 : cfg, reader, i, out[i], out[i].on_second ? cache2 : cache);
      progress.update(++finished, "closed form");
    } catch (const InputError& e) {
      throw InputError(fmt::format("{}: {}: {}", reader.path(), record_name(i, r), e.what()));
    }
  }

}

// Phase 3: one SystemC simulation over all value-mode records, each GEMM verified bit for bit as
// it finishes (against the trace, or for the FP32 array against the FP32 reference GEMM).
struct ValueRun {
  std::uint64_t array_steps = 0;
  double seconds = 0;
};

ValueRun run_value_records(const TraceReader& reader, const SimConfig& cfg, const std::string& vcd_path,
                           const std::vector<std::size_t>& value_records, std::vector<GemmOutcome>& out,
                           Progress& progress, std::size_t& finished) {
  const Trace& trace = reader.trace();
  ValueRun run;
  if (!value_records.empty()) {
    std::vector<GemmJob> jobs;
    std::vector<RecordPayload> expected(value_records.size());
    std::vector<GemmOperands> fp32_refs_ops(value_records.size());
    for (std::size_t j = 0; j < value_records.size(); ++j) {
      std::size_t i = value_records[j];
      jobs.push_back(GemmJob{trace.records[i].shape, conv_view(trace.records[i], *cfg.array), [&, i, j]() {
                               throw_if_cancelled();  // before each GEMM of the SystemC run
                               RecordPayload p = reader.read_payload(i);
                               GemmOperands ops = to_array_operands(*cfg.array, trace.records[i], p);
                               if (!cfg.array->integer_acc) fp32_refs_ops[j] = ops;
                               expected[j].expected_acc = std::move(p.expected_acc);
                               expected[j].expected_fp32 = std::move(p.expected_fp32);
                               return ops;
                             }});
    }
    auto on_done = [&](std::size_t j, ValueGemmResult& res) {
      std::size_t i = value_records[j];
      const TraceRecord& r = trace.records[i];
      GemmOutcome& g = out[i];
      progress.update(++finished, "value mode");
      g.timing = res.timing;
      g.events = res.events;
      g.zero_measured = true;
      g.saturations = res.saturations;
      g.fold_cycles = std::move(res.fold_cycles);
      run.array_steps += res.array_steps;
      g.checked = true;
      if (!res.overflow.empty()) {
        g.mismatch = fmt::format("{} array accumulator overflow: {}", cfg.array->name, res.overflow);
      } else if (cfg.array->integer_acc) {
        g.against = "trace";
        g.mismatch = first_mismatch(r.shape, res.out_int, expected[j].expected_acc, "array", "expected");
      } else {
        // A binary32-accumulating array is checked against the FP32 reference GEMM on the same
        // operands, and against the recorded output where that is the same arithmetic: a float
        // record (narrow float products are exact, so multiply-add and FMA agree on them; FP32
        // records need the same pe.fp32_fma), or integers whose sums need no rounding.
        const GemmOperands& ops = fp32_refs_ops[j];
        std::vector<float> ref(res.out_f32.size());
        gemm_fp32_ref(r.shape, ops.a_f32.data(), ops.b_f32.data(), cfg.fp32_fma, ref.data());
        g.against = "fp32_reference";
        g.mismatch = first_mismatch(r.shape, res.out_f32, ref, "array", "expected");
        if (g.mismatch.empty() && is_float_format(r.format()) &&
            (r.format() != NumFormat::kFp32 || r.fp32_fma == cfg.fp32_fma)) {
          g.against = "trace";
          g.mismatch = first_mismatch(r.shape, res.out_f32, expected[j].expected_fp32, "array", "expected");
        } else if (g.mismatch.empty() && !is_float_format(r.format())) {
          bool exact = true;  // recorded integers equal the FP32 result if no sum needed rounding
          std::vector<float> want(expected[j].expected_acc.size());
          for (std::size_t e = 0; e < want.size(); ++e) {
            want[e] = static_cast<float>(expected[j].expected_acc[e]);
            exact = exact && static_cast<std::int64_t>(want[e]) == expected[j].expected_acc[e];
          }
          const auto max_term = static_cast<std::uint64_t>(r.max_product_term());
          if (exact && static_cast<std::uint64_t>(r.shape.k) * max_term < (std::uint64_t{1} << 24)) {
            g.against = "trace";
            g.mismatch = first_mismatch(r.shape, res.out_f32, want, "array", "expected");
          }
        }
      }
      expected[j] = RecordPayload{};
      fp32_refs_ops[j] = GemmOperands{};
    };
    const auto t0 = std::chrono::steady_clock::now();
    simulate_value(cfg, jobs, on_done, vcd_path);
    run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  return run;
}

// The report's utilization: scheduled products per PE-cycle.
double utilization(const SimConfig& cfg, std::uint64_t slots, std::uint64_t cycles) {
  const double pe_count = static_cast<double>(cfg.rows) * cfg.cols;
  return cycles == 0 ? 0.0 : static_cast<double>(slots) / (pe_count * static_cast<double>(cycles));
}

// Sums over GEMMs (the whole trace, or one phase); every sum checked against 2^64. `e` sums
// every GEMM's common counters, and the arithmetic ops of the first array's GEMMs; `ops2` the
// arithmetic ops of the second array's (array.second), which are other actions.
struct Totals {
  GemmTiming t;
  std::uint64_t scalesim = 0, macs = 0, gemms = 0, compulsory = 0, compulsory_gemm = 0, gemms2 = 0, macs2 = 0;
  std::uint64_t to_vector_unit = 0;
  EventCounts e, ops2;

  void add(const GemmOutcome& g, std::uint64_t scalesim_cycles, std::uint64_t gemm_macs, std::uint64_t compulsory_bytes,
           std::uint64_t compulsory_gemm_bytes, std::uint64_t to_vector_unit_bytes) {
    to_vector_unit = checked_add(to_vector_unit, to_vector_unit_bytes, "dram.to_vector_unit_bytes");
    compulsory = checked_add(compulsory, compulsory_bytes, "dram.compulsory_bytes");
    compulsory_gemm = checked_add(compulsory_gemm, compulsory_gemm_bytes, "dram.compulsory_bytes");
    t.folds = checked_add(t.folds, g.timing.folds, "folds");
    t.total = checked_add(t.total, g.timing.total, "cycles.total");
    t.compute = checked_add(t.compute, g.timing.compute, "cycles.compute");
    t.stall = checked_add(t.stall, g.timing.stall, "cycles.stall");
    for (std::size_t c = 0; c < t.stall_by_cause.size(); ++c) {
      t.stall_by_cause[c] = checked_add(t.stall_by_cause[c], g.timing.stall_by_cause[c], "cycles.stall");
    }
    scalesim = checked_add(scalesim, scalesim_cycles, "cycles.scalesim_compatible");
    macs = checked_add(macs, gemm_macs, "macs");
    gemms += 1;
    if (g.on_second) {
      EventCounts common = g.events;
      for (std::size_t o = 0; o < common.pe_ops.size(); ++o) {
        ops2.pe_ops[o] = checked_add(ops2.pe_ops[o], common.pe_ops[o], "pe arithmetic ops");
        common.pe_ops[o] = 0;
      }
      e += common;
      gemms2 += 1;
      macs2 = checked_add(macs2, gemm_macs, "macs");
    } else {
      e += g.events;
    }
  }
};

ojson totals_json(const SimConfig& cfg, const Totals& t) {
  ojson j;
  j["gemms"] = t.gemms;
  j["folds"] = t.t.folds;
  j["cycles"] = ojson{{"total", t.t.total}, {"compute", t.t.compute}, {"stall", t.t.stall},
                      {"stall_by_cause", stall_json(t.t)},
                      {"scalesim_compatible", t.scalesim}};
  j["time_seconds"] = static_cast<double>(t.t.total) / (cfg.clock_mhz * 1e6);
  j["utilization"] = utilization(cfg, t.e.mac_slots, t.t.total);
  j["macs"] = t.macs;
  j["events"] = events_json(*cfg.array, t.e, cfg.second, t.ops2);
  if (cfg.second != nullptr) j["gemms_on_second_array"] = t.gemms2;
  j["dram"] = dram_json(t.e, t.compulsory, t.compulsory_gemm, cfg.vector_fused, t.to_vector_unit);
  return j;
}

// One GEMM's entry in the report: shape, mode, cycles, events, mapping, DRAM against the
// physical minimum, and its verification.
ojson gemm_json(const SimConfig& cfg, std::size_t i, const TraceRecord& r, const GemmOutcome& g,
                const QuantizedElements& quantized, std::uint64_t scalesim, const FoldPlan& plan,
                std::uint64_t compulsory, std::uint64_t compulsory_gemm, std::uint64_t to_vector_unit) {
  ojson j;
  j["index"] = i;
  j["layer"] = r.layer;
  j["phase"] = to_string(r.phase);
  j["M"] = r.shape.m;
  j["N"] = r.shape.n;
  j["K"] = r.shape.k;
  j["repeat"] = r.repeat;
  j["layer_type"] = to_string(r.layer_type);
  j["format"] = r.format_name();
  j["array"] = cfg.array->name;
  j["quantized_elements"] = ojson{{"activations", quantized.activations},
                                  {"weights", quantized.weights},
                                  {"errors", quantized.errors}};
  if (r.shift_pair() || (r.apot_pair() && (r.a.format == NumFormat::kInt8 || r.b.format == NumFormat::kInt8))) {
    // of those, the INT8 operand's (priced by the power-of-two integer quantizer)
    j["quantized_elements"]["int8"] = ojson{{"activations", quantized.int8_activations},
                                            {"weights", quantized.int8_weights},
                                            {"errors", quantized.int8_errors}};
  }
  if (r.apot_pair()) {  // of those, the two-term operands' (priced by the two-term quantizer)
    j["quantized_elements"]["apot"] = ojson{{"activations", quantized.apot_activations},
                                            {"weights", quantized.apot_weights},
                                            {"errors", quantized.apot_errors}};
  }
  j["mode"] = g.mode;
  j["folds"] = g.timing.folds;
  j["cycles"] = ojson{{"total", g.timing.total}, {"compute", g.timing.compute},
                      {"stall", g.timing.stall}, {"stall_by_cause", stall_json(g.timing)},
                      {"scalesim_compatible", scalesim}};
  j["utilization"] = utilization(cfg, g.events.mac_slots, g.timing.total);
  j["macs"] = r.macs();
  j["zero_products_measured"] = g.zero_measured;
  j["events"] = events_json(*cfg.array, g.events);
  ojson mapping;
  mapping["kind"] = plan.tiled() ? (cfg.map_pinned ? "pinned" : "searched") : "fixed";
  if (plan.tiled()) {
    mapping["tiles"] = ojson{{"M", plan.tiles().mt}, {"N", plan.tiles().nt}, {"K", plan.tiles().kt}};
    mapping["order"] = std::string(plan.tiles().order, 3);
    mapping["im2col"] = plan.conv_on_chip() ? "onchip" : "dram";
  }
  mapping["text"] = plan.mapping_text();
  j["mapping"] = mapping;
  j["dram"] = dram_json(g.events, compulsory, compulsory_gemm, cfg.vector_fused, to_vector_unit);
  ojson v;
  v["checked"] = g.checked;
  if (g.checked) {
    v["against"] = g.against;
    v["match"] = g.mismatch.empty();
    if (!g.mismatch.empty()) v["first_mismatch"] = g.mismatch;
    if (g.saturations > 0) v["saturations"] = g.saturations;
  }
  j["verification"] = v;
  if (!g.note.empty()) j["note"] = g.note;
  return j;
}

// The vector unit's work (the trace's non-GEMM operations, sim/vector_unit.h), by kind and
// phase, and the whole step it makes with the GEMMs: total.non_gemm, total.step and
// total.linear_share.cycles (the energy share is added with the energy, energy_model.h).
// Fused, `io[p]` is what the GEMMs of OpPhase p handed the vector unit and the operands it wrote
// for them: priced as one quantizer entry per phase (the operands' DRAM writes, both buffer
// passes of every byte; cycles: the writes' DRAM transfer; the quantizer's arithmetic is the
// GEMM records' own, as unfused).
void add_non_gemm(const SimConfig& cfg, const Trace& trace, const std::array<FusedIo, kNumOpPhases>& io, ojson& total) {
  if (trace.ops.empty()) return;
  struct Sum {
    std::uint64_t ops = 0, elements = 0, adds = 0, muls = 0, cmps = 0, lane_ops = 0, compute = 0, cycles = 0, stall = 0,
                  dram_read = 0, dram_write = 0, sram_bits = 0;
    std::uint64_t flops[kNumFpOps] = {};
    bool used = false;
    void add(const NonGemmOp& op, const VectorOpCost& c, bool trace_op = true) {
      ops += trace_op ? 1 : 0;
      used = true;
      elements = checked_add(elements, op.elements, "non_gemm.elements");
      for (int o = 0; o < kNumFpOps; ++o) flops[o] = checked_add(flops[o], op.flops[o], "non_gemm.flops");
      adds = checked_add(adds, c.adds, "non_gemm.fp32_ops");
      muls = checked_add(muls, c.muls, "non_gemm.fp32_ops");
      cmps = checked_add(cmps, c.cmps, "non_gemm.fp32_ops");
      lane_ops = checked_add(lane_ops, c.lane_ops, "non_gemm.lane_ops");
      compute = checked_add(compute, c.compute, "non_gemm.cycles");
      cycles = checked_add(cycles, c.cycles, "non_gemm.cycles");
      stall = checked_add(stall, c.stall, "non_gemm.cycles");
      dram_read = checked_add(dram_read, c.dram_read_bytes, "non_gemm.dram");
      dram_write = checked_add(dram_write, c.dram_write_bytes, "non_gemm.dram");
      sram_bits = checked_add(sram_bits, c.sram_bits, "non_gemm.sram");
    }
    ojson json() const {
      ojson fl = ojson::object();
      for (int o = 0; o < kNumFpOps; ++o) fl[to_string(static_cast<FpOp>(o))] = flops[o];
      return ojson{{"ops", ops},
                   {"elements", elements},
                   {"flops", fl},
                   {"fp32_ops", ojson{{"add", adds}, {"mul", muls}, {"cmp", cmps}}},
                   {"lane_ops", lane_ops},
                   {"cycles", ojson{{"total", cycles}, {"compute", compute}, {"stall", stall}}},
                   {"dram", ojson{{"read_bytes", dram_read}, {"write_bytes", dram_write}}},
                   {"sram_bits", sram_bits}};
    }
  };
  Sum all;
  std::array<Sum, kNumOpKinds> kinds{};
  std::array<Sum, kNumOpPhases> phases{};
  for (const NonGemmOp& op : trace.ops) {
    const VectorOpCost c = vector_op_cost(cfg, op);
    all.add(op, c);
    kinds[static_cast<int>(op.kind)].add(op, c);
    phases[static_cast<int>(op.phase)].add(op, c);
  }
  ojson fusion{{"mode", cfg.vector_fused ? "fused" : "unfused"}};
  if (cfg.vector_fused) {
    std::uint64_t from_array = 0, written = 0;
    for (int p = 0; p < kNumOpPhases; ++p) {
      if (io[p].from_array == 0 && io[p].operand_bytes == 0) continue;
      NonGemmOp op;
      op.kind = OpKind::kQuantizer;
      op.name = "fused_operand_writes";
      op.layer = op.name;
      op.phase = static_cast<OpPhase>(p);
      op.elements = io[p].operand_elements;
      const VectorOpCost c = vector_write_cost(cfg, io[p].operand_bytes, io[p].from_array);
      all.add(op, c, false);
      kinds[static_cast<int>(op.kind)].add(op, c, false);
      phases[p].add(op, c, false);
      from_array = checked_add(from_array, io[p].from_array, "non_gemm.dram");
      written = checked_add(written, io[p].operand_bytes, "non_gemm.dram");
    }
    fusion["from_array_bytes"] = from_array;
    fusion["operand_write_bytes"] = written;
  }
  ojson ng = all.json();
  ng["lanes"] = cfg.vector_lanes;
  ng["overlap"] = cfg.vector_overlap;
  ng["fusion"] = fusion;
  ojson by_kind = ojson::object();
  for (int k = 0; k < kNumOpKinds; ++k) {
    if (kinds[k].used) by_kind[to_string(static_cast<OpKind>(k))] = kinds[k].json();
  }
  ng["by_kind"] = by_kind;
  ojson by_phase = ojson::object();
  for (int p = 0; p < kNumOpPhases; ++p) by_phase[to_string(static_cast<OpPhase>(p))] = phases[p].json();
  ng["by_phase"] = by_phase;
  total["non_gemm"] = ng;
  const std::uint64_t gemm = total["cycles"]["total"].get<std::uint64_t>();
  const std::uint64_t step = cfg.vector_overlap ? std::max(gemm, all.cycles) : checked_add(gemm, all.cycles, "step.cycles");
  total["step"] = ojson{{"cycles", step}, {"time_seconds", static_cast<double>(step) / (cfg.clock_mhz * 1e6)}};
  total["linear_share"] = ojson{{"cycles", step > 0 ? static_cast<double>(gemm) / static_cast<double>(step) : 1.0}};
}

}  // namespace

ReplayOutcome replay_trace(const TraceReader& reader, const ReplayOptions& opt) {
  const Trace& trace = reader.trace();
  const SimConfig& cfg = opt.config;
  reader.require_gemms("simulate");
  if (cfg.vector_fused && trace.ops.empty()) {
    throw InputError(fmt::format("{}: vector.fusion=fused: the trace has no non-GEMM operations (\"ops\") for the vector "
                                 "unit to fuse with its GEMMs; write them with `mfsim trace --ops` or `mfsim train "
                                 "--trace-out`",
                                 reader.path()));
  }
  clear_mapping_memo();  // mappings are searched afresh for each replay (one process may run many)
  const auto wall_start = std::chrono::steady_clock::now();
  std::vector<GemmOutcome> out(trace.records.size());
  std::vector<std::string> notes;

  const SimConfig cfg2 = second_config(cfg);
  std::vector<std::size_t> value_records = choose_modes(reader, opt, cfg2, out);
  // The value-mode records of each array: one SystemC simulation per array (the --vcd waveform
  // is the first array's).
  std::vector<std::size_t> value_first, value_second;
  for (std::size_t i : value_records) (out[i].on_second ? value_second : value_first).push_back(i);
  if (!opt.vcd_path.empty() && value_first.empty()) {
    throw InputError(fmt::format("{}: --vcd: no GEMM of this trace runs in value mode on the {} array (shape-only "
                                 "records, or operands it does not hold), so there is no waveform",
                                 reader.path(), cfg.array->name));
  }
  Progress progress(trace.records.size());
  std::size_t finished = 0;
  time_records(reader, cfg, cfg2, out, progress, finished);
  const ValueRun run = run_value_records(reader, cfg, opt.vcd_path, value_first, out, progress, finished);
  const ValueRun run2 = run_value_records(reader, cfg2, "", value_second, out, progress, finished);
  const std::uint64_t array_steps = run.array_steps + run2.array_steps;
  const double value_seconds = run.seconds + run2.seconds;

  // The report.
  ReplayOutcome result;
  ojson& rep = result.report;
  rep["mfsim_version"] = MFSIM_VERSION;
  rep["report"] = "simulate";
  if (!opt.command_line.empty()) rep["command"] = opt.command_line;
  rep["trace"] = reader.path();
  rep["mode"] = to_string(opt.mode);
  rep["config"] = opt.params;
  rep["units"] = ojson{{"cycles", "clock cycles"},
                       {"time_seconds", "seconds at clock.mhz"},
                       {"utilization", "fraction of PE-cycles with a scheduled product (0..1)"},
                       {"macs", "multiply-accumulates (M*N*K)"}};
  std::map<std::string, ojson> counter_info;
  for (const PeType* pe : {cfg.array, cfg.second}) {
    if (pe == nullptr) continue;
    for (const auto& c : named_counts(*pe, EventCounts{})) {
      counter_info[c.name] = ojson{{"unit", c.unit}, {"description", c.description}};
    }
  }
  ojson counters = ojson::object();  // in the order of the events objects
  const ojson order = events_json(*cfg.array, EventCounts{}, cfg.second, EventCounts{});
  for (auto it = order.begin(); it != order.end(); ++it) counters[it.key()] = counter_info.at(it.key());
  rep["counters"] = counters;

  const double pe_count = static_cast<double>(cfg.rows) * cfg.cols;
  Totals total;
  std::array<Totals, kNumPhases> phases{};
  ojson gemms = ojson::array();
  std::uint64_t checked = 0, against_trace = 0, exact_gemms = 0, exact_macs = 0;
  struct Estimated {
    std::uint64_t gemms = 0, macs = 0, with_operands = 0;
  };
  std::map<std::string, Estimated> estimated;  // GEMMs priced as another arithmetic, by what ran where
  const std::vector<QuantizedElements> quantized = quantized_elements(trace);
  std::array<FusedIo, kNumOpPhases> fused{};  // by OpPhase: fwd, bwd (bwd_data and bwd_weight)
  for (std::size_t i = 0; i < trace.records.size(); ++i) {
    const TraceRecord& r = trace.records[i];
    GemmOutcome& g = out[i];
    const SimConfig& rcfg = g.on_second ? cfg2 : cfg;
    std::uint64_t scalesim = checked_mul(scalesim_cycles(cfg.dataflow, cfg.rows, cfg.cols, r.shape),
                                         static_cast<std::uint64_t>(r.repeat), "cycles.scalesim_compatible");
    const FoldPlan plan(rcfg, r.shape, conv_view(r, *rcfg.array));
    const auto rep_n = static_cast<std::uint64_t>(r.repeat);
    std::uint64_t compulsory = checked_mul(plan.compulsory_bytes(), rep_n, "dram.compulsory_bytes");
    std::uint64_t compulsory_gemm = checked_mul(plan.compulsory_bytes_gemm_view(), rep_n, "dram.compulsory_bytes");
    std::uint64_t to_vector_unit = 0;
    if (rcfg.array->pair_ops != nullptr) rcfg.array->pair_ops(r.a.format, r.b.format, g.events.pe_ops);
    if (r.scaled() && rcfg.array->finer_scales) {
      const std::uint64_t scale_bytes = add_scale_events(rcfg, r, plan, g.events);
      compulsory = checked_add(compulsory, scale_bytes, "dram.compulsory_bytes");
      compulsory_gemm = checked_add(compulsory_gemm, scale_bytes, "dram.compulsory_bytes");
    }
    if (cfg.vector_fused) {
      const FusedIo io = fused_io(r, quantized[i], plan);
      // Every mapping writes each result at least once: the array's writes cover what it hands over.
      if (io.from_array > g.events.dram_write_bytes) {
        throw std::logic_error(fmt::format("{}: fused results {} B exceed the array's DRAM writes {} B", record_name(i, r),
                                           io.from_array, g.events.dram_write_bytes));
      }
      g.events.dram_write_bytes -= io.from_array;
      compulsory -= io.from_array;
      compulsory_gemm -= io.from_array_gemm_view;
      to_vector_unit = io.from_array;
      FusedIo& f = fused[static_cast<int>(r.phase == Phase::kFwd ? OpPhase::kFwd : OpPhase::kBwd)];
      f.from_array = checked_add(f.from_array, io.from_array, "non_gemm.dram");
      f.operand_elements = checked_add(f.operand_elements, io.operand_elements, "non_gemm.elements");
      f.operand_bytes = checked_add(f.operand_bytes, io.operand_bytes, "non_gemm.dram");
    }
    ojson j = gemm_json(rcfg, i, r, g, quantized[i], scalesim, plan, compulsory, compulsory_gemm, to_vector_unit);
    gemms.push_back(std::move(j));

    try {
      for (Totals* t : {&total, &phases[static_cast<int>(r.phase)]}) {
        t->add(g, scalesim, r.macs(), compulsory, compulsory_gemm, to_vector_unit);
      }
    } catch (const InputError& e) {
      throw InputError(fmt::format("{}: totals: {}", reader.path(), e.what()));
    }
    if (array_represents(*rcfg.array, r)) {  // ran in its traced arithmetic (not priced as another's)
      ++exact_gemms;
      exact_macs = checked_add(exact_macs, r.macs(), "macs");
    } else {
      Estimated& est = estimated[fmt::format("{} operands on the {} array", r.format_name(), rcfg.array->name)];
      ++est.gemms;
      est.macs = checked_add(est.macs, r.macs(), "macs");
      if (g.mode == "timing" && r.has_payload) ++est.with_operands;
    }
    if (g.checked) {
      ++checked;
      if (g.against == "trace") ++against_trace;
      if (!g.mismatch.empty()) {
        if (result.mismatches == 0) {
          result.first_mismatch = fmt::format("{}: {}: {}", reader.path(), record_name(i, r), g.mismatch);
        }
        ++result.mismatches;
      }
    }
  }
  rep["total"] = totals_json(cfg, total);
  try {
    add_non_gemm(cfg, trace, fused, rep["total"]);
  } catch (const InputError& e) {
    throw InputError(fmt::format("{}: ops: {}", reader.path(), e.what()));
  }
  if (total.gemms2 > 0) {
    notes.push_back(fmt::format("{} of {} GEMMs ({:.2f}% of the MACs) ran on the second array ({}): their operands "
                                "are not exact on the {} array",
                                total.gemms2, total.gemms,
                                total.macs > 0 ? 100.0 * static_cast<double>(total.macs2) / static_cast<double>(total.macs) : 0.0,
                                cfg.second->name, cfg.array->name));
  }
  // One note per kind of estimate (each GEMM's own `note` has the details).
  for (const auto& [what, est] : estimated) {
    notes.push_back(fmt::format(
        "{} of {} GEMMs ({:.2f}% of the MACs) are estimates: {} are not exact, so they are priced as its products{}",
        est.gemms, total.gemms,
        total.macs > 0 ? 100.0 * static_cast<double>(est.macs) / static_cast<double>(total.macs) : 0.0, what,
        est.with_operands > 0 ? fmt::format(" ({} with operands: timing mode, not verified)", est.with_operands)
                              : std::string()));
  }
  ojson by_phase = ojson::object();
  for (int p = 0; p < kNumPhases; ++p) by_phase[to_string(static_cast<Phase>(p))] = totals_json(cfg, phases[p]);
  rep["by_phase"] = by_phase;
  // How much of the step ran as traced: GEMMs whose operands the array that ran them holds
  // exactly; the others are priced as that array's products (an estimate).
  rep["verification"] = ojson{{"gemms", total.gemms},
                              {"gemms_exact", exact_gemms},
                              {"macs_exact_fraction", total.macs > 0 ? static_cast<double>(exact_macs) / static_cast<double>(total.macs) : 1.0},
                              {"gemms_checked", checked},
                              {"checked_against_trace", against_trace},
                              {"mismatches", result.mismatches}};
  if (!result.first_mismatch.empty()) rep["verification"]["first_mismatch"] = result.first_mismatch;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  const double pe_updates = pe_count * static_cast<double>(array_steps);
  rep["performance"] = ojson{{"wall_seconds", wall},
                             {"value_mode_seconds", value_seconds},
                             {"pe_updates", pe_updates},
                             {"pe_updates_per_second", value_seconds > 0 ? pe_updates / value_seconds : 0.0},
                             {"simulated_cycles_per_second", wall > 0 ? static_cast<double>(total.t.total) / wall : 0.0}};
  rep["notes"] = notes;
  rep["gemms"] = std::move(gemms);
  return result;
}

std::string report_summary_text(const ojson& rep) {
  const ojson& cfg = rep["config"];
  const ojson& t = rep["total"];
  std::string out = fmt::format(
      "array {}{} {}x{} {}   trace {}\n", cfg["array.kind"].get<std::string>(),
      cfg.value("array.second", "none") == "none" ? "" : " + " + cfg["array.second"].get<std::string>() + " (second)",
      cfg["array.rows"].get<int>(), cfg["array.cols"].get<int>(),
      cfg["array.dataflow"].get<std::string>(), rep["trace"].get<std::string>());
  out += fmt::format("{:<12}{:>7}{:>16}{:>16}{:>18}{:>16}{:>8}\n", "phase", "GEMMs", "cycles", "stall",
                     "MACs", "SCALE-Sim cyc", "util");
  auto line = [&](const std::string& name, const ojson& x) {
    return fmt::format("{:<12}{:>7}{:>16}{:>16}{:>18}{:>16}{:>7.1f}%\n", name, x["gemms"].get<std::uint64_t>(),
                       x["cycles"]["total"].get<std::uint64_t>(), x["cycles"]["stall"].get<std::uint64_t>(),
                       x["macs"].get<std::uint64_t>(), x["cycles"]["scalesim_compatible"].get<std::uint64_t>(),
                       100.0 * x["utilization"].get<double>());
  };
  for (auto it = rep["by_phase"].begin(); it != rep["by_phase"].end(); ++it) {
    if (it.value()["gemms"].get<std::uint64_t>() > 0) out += line(it.key(), it.value());
  }
  out += line("total", t);
  const ojson& v = rep["verification"];
  const auto checked = v["gemms_checked"].get<std::uint64_t>(), vs_trace = v["checked_against_trace"].get<std::uint64_t>();
  std::string against = fmt::format("{} against the trace", vs_trace);
  if (checked > vs_trace) {
    // The FP32 array checks every GEMM against the FP32 reference GEMM on the same operands;
    // against the recorded output only where that is the same arithmetic (docs/cycle-semantics.md).
    against += fmt::format("; {} against the FP32 reference GEMM on the same operands, where the trace's result "
                           "is not this array's FP32 result",
                           checked - vs_trace);
  }
  out += fmt::format("verification: {} GEMMs checked bit for bit ({}), {} mismatches\n", checked, against,
                     v["mismatches"].get<std::uint64_t>());
  if (rep.contains("energy_pj")) {
    const ojson& e = rep["energy_pj"];
    out += fmt::format("energy ({} table): {:.4g} uJ total, {:.4g} pJ/MAC; MAC arithmetic {:.4g} pJ/MAC\n",
                       e["table"].get<std::string>(), e["total"].get<double>() * 1e-6, e["per_mac"].get<double>(),
                       e["arithmetic_per_mac"].get<double>());
    if (e.contains("notes")) {
      for (const auto& n : e["notes"]) out += fmt::format("note: {}\n", n.get<std::string>());
    }
  }
  if (t.contains("non_gemm")) {
    const ojson& ng = t["non_gemm"];
    out += fmt::format("non-GEMM: {} operations on the vector unit ({} lanes{}): {} cycles; whole step {} cycles, the "
                       "GEMMs {:.2f}% of them",
                       ng["ops"].get<std::uint64_t>(), ng["lanes"].get<int>(), ng["overlap"].get<bool>() ? ", overlapped" : "",
                       ng["cycles"]["total"].get<std::uint64_t>(), t["step"]["cycles"].get<std::uint64_t>(),
                       100 * t["linear_share"]["cycles"].get<double>());
    if (rep.contains("energy_pj") && rep["energy_pj"].contains("non_gemm")) {
      const ojson& e = rep["energy_pj"];
      out += fmt::format("; {:.4g} uJ, whole step {:.4g} uJ, the GEMMs {:.2f}% of it", e["non_gemm"]["total"].get<double>() * 1e-6,
                         e["step_total"].get<double>() * 1e-6, 100 * e["linear_share"].get<double>());
    }
    out += "\n";
  }
  for (const auto& n : rep["notes"]) out += fmt::format("note: {}\n", n.get<std::string>());
  return out;
}

}  // namespace mfsim
