#include "traces/trace.h"

#include <set>

#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "models/scaled_gemm.h"

namespace mfsim {

const char* to_string(LayerType t) {
  switch (t) {
    case LayerType::kFc: return "fc";
    case LayerType::kConv: return "conv";
    case LayerType::kMatmul: return "matmul";
  }
  return "?";
}

std::vector<QuantizedElements> quantized_elements(const Trace& trace) {
  std::vector<QuantizedElements> q(trace.records.size());
  std::set<std::string> has_bwd_weight, error_charged;
  // Roles with finer scales (a GEMM's operand with scale_block > 0): every GEMM quantizes its own
  // copy of such an operand from FP32, with groups along its own K, so the copy is charged on
  // each record that reads it instead of once per tensor.
  std::set<std::string> act_scaled, wgt_scaled, err_scaled;
  for (const auto& r : trace.records) {
    if (r.phase == Phase::kBwdWeight) has_bwd_weight.insert(r.layer);
    const bool sa = r.a.scale_block > 0, sb = r.b.scale_block > 0;
    if (!sa && !sb) continue;
    const bool mm = r.layer_type == LayerType::kMatmul;
    switch (r.phase) {
      case Phase::kFwd:
        if (sa || (mm && sb)) act_scaled.insert(r.layer);
        if (sb && !mm) wgt_scaled.insert(r.layer);
        break;
      case Phase::kBwdData:
        if (sa) err_scaled.insert(r.layer);
        if (sb) (mm ? act_scaled : wgt_scaled).insert(r.layer);
        break;
      case Phase::kBwdWeight:
        if (sa) act_scaled.insert(r.layer);
        if (sb) err_scaled.insert(r.layer);
        break;
    }
  }
  for (std::size_t i = 0; i < trace.records.size(); ++i) {
    const TraceRecord& r = trace.records[i];
    const auto m = static_cast<std::uint64_t>(r.shape.m), n = static_cast<std::uint64_t>(r.shape.n),
               k = static_cast<std::uint64_t>(r.shape.k), rep = static_cast<std::uint64_t>(r.repeat);
    const bool mm = r.layer_type == LayerType::kMatmul;
    const bool act = act_scaled.count(r.layer) != 0, wgt = wgt_scaled.count(r.layer) != 0,
               err = err_scaled.count(r.layer) != 0;
    switch (r.phase) {
      case Phase::kFwd:
        q[i].activations = (act ? m * k : r.layer_type == LayerType::kConv ? r.conv.input_elements() : m * k) * rep;
        (mm ? q[i].activations : q[i].weights) += k * n * rep;
        break;
      case Phase::kBwdData:  // dA = G . W^T: G is its A operand (M x K)
        if (err || (has_bwd_weight.count(r.layer) == 0 && error_charged.insert(r.layer).second)) q[i].errors = m * k * rep;
        if (mm ? act : wgt) (mm ? q[i].activations : q[i].weights) += k * n * rep;  // its own copy of W^T (or B^T)
        break;
      case Phase::kBwdWeight:  // dW = A^T . G: G is its B operand (K x N), its own on every record
        q[i].errors = k * n * rep;  // (a layer's attention GEMMs: one record per sequence and head)
        if (act) q[i].activations += m * k * rep;  // its own copy of A^T
        error_charged.insert(r.layer);
        break;
    }
    // Of those, each operand's own elements by its role, for the operands quantized by another
    // quantizer than ALS-POTQ: an INT8 operand beside a PoT4 or two-term one (the
    // power-of-two-scaled integer quantizer) and a two-term operand (apot_nearest/_stochastic).
    struct Side {
      std::uint64_t elements;
      int role;  // 0 activations, 1 weights, 2 errors
    };
    Side sa{0, 0}, sb{0, 0};
    switch (r.phase) {
      case Phase::kFwd:
        sa = {q[i].activations - (mm ? k * n * rep : 0), 0};
        sb = {k * n * rep, mm ? 0 : 1};
        break;
      case Phase::kBwdData:
        sa = {q[i].errors, 2};
        sb = {(mm ? act : wgt) ? k * n * rep : 0, mm ? 0 : 1};
        break;
      case Phase::kBwdWeight:
        sa = {act ? m * k * rep : 0, 0};
        sb = {q[i].errors, 2};
        break;
    }
    const bool mixed = is_shift_pair(r.a.format, r.b.format) || is_apot_pair(r.a.format, r.b.format);
    for (const auto& [f, side] : {std::pair{r.a.format, sa}, std::pair{r.b.format, sb}}) {
      std::uint64_t* bucket[3] = {nullptr, nullptr, nullptr};
      if (f == NumFormat::kInt8 && mixed) {
        bucket[0] = &q[i].int8_activations, bucket[1] = &q[i].int8_weights, bucket[2] = &q[i].int8_errors;
      } else if (f == NumFormat::kApot) {
        bucket[0] = &q[i].apot_activations, bucket[1] = &q[i].apot_weights, bucket[2] = &q[i].apot_errors;
      } else {
        continue;
      }
      *bucket[side.role] += side.elements;
    }
  }
  return q;
}

const char* to_string(Phase p) {
  switch (p) {
    case Phase::kFwd: return "fwd";
    case Phase::kBwdData: return "bwd_data";
    case Phase::kBwdWeight: return "bwd_weight";
  }
  return "?";
}

bool parse_phase(const std::string& s, Phase* out) {
  for (int i = 0; i < kNumPhases; ++i) {
    if (s == to_string(static_cast<Phase>(i))) {
      *out = static_cast<Phase>(i);
      return true;
    }
  }
  return false;
}

namespace {
template <typename E, int N>
bool parse_enum(const std::string& s, E* out) {
  for (int i = 0; i < N; ++i) {
    if (s == to_string(static_cast<E>(i))) {
      *out = static_cast<E>(i);
      return true;
    }
  }
  return false;
}
}  // namespace

const char* to_string(OpKind k) {
  static const char* names[kNumOpKinds] = {"elementwise", "reduction", "normalization", "softmax",
                                           "loss",        "optimizer", "pooling",       "quantizer"};
  return names[static_cast<int>(k)];
}
bool parse_op_kind(const std::string& s, OpKind* out) { return parse_enum<OpKind, kNumOpKinds>(s, out); }

const char* to_string(OpPhase p) {
  static const char* names[kNumOpPhases] = {"fwd", "bwd", "update"};
  return names[static_cast<int>(p)];
}
bool parse_op_phase(const std::string& s, OpPhase* out) { return parse_enum<OpPhase, kNumOpPhases>(s, out); }

const char* to_string(FpOp o) {
  static const char* names[kNumFpOps] = {"add", "mul", "div", "sqrt", "exp", "cmp"};
  return names[static_cast<int>(o)];
}

std::uint64_t OpTensor::bytes() const {
  const auto bits = static_cast<std::uint64_t>(bits_per_element(format));
  return elements / 8 * bits + (elements % 8 * bits + 7) / 8;  // no overflow for any element count
}

const char* to_string(TensorRole r) {
  static const char* names[kNumTensorRoles] = {"stream", "saved", "state", "save"};
  return names[static_cast<int>(r)];
}

bool OpTensor::crosses_dram(bool fused) const {
  switch (role) {
    case TensorRole::kStream: return !fused;
    case TensorRole::kSaved:
    case TensorRole::kState: return true;
    case TensorRole::kSave: return fused;
  }
  return true;
}

// The reader bounds a tensor to 2^48 elements and an operation to 16 tensors: no sum wraps.
std::uint64_t NonGemmOp::read_bytes(bool fused) const {
  std::uint64_t b = 0;
  for (const auto& t : reads) b += t.crosses_dram(fused) ? t.bytes() : 0;
  return b;
}

std::uint64_t NonGemmOp::save_bytes() const {
  std::uint64_t b = 0;
  for (const auto& t : writes) b += t.role == TensorRole::kSave ? t.bytes() : 0;
  return b;
}

std::uint64_t NonGemmOp::write_bytes(bool fused) const {
  std::uint64_t b = 0;
  for (const auto& t : writes) b += t.crosses_dram(fused) ? t.bytes() : 0;
  return b;
}

bool operand_formats_compatible(NumFormat a, NumFormat b) {
  auto fp8 = [](NumFormat f) { return f == NumFormat::kFp8E4M3 || f == NumFormat::kFp8E5M2; };
  return a == b || (fp8(a) && fp8(b)) || is_shift_pair(a, b) || is_apot_pair(a, b);
}

bool is_apot_pair(NumFormat a, NumFormat b) {
  const auto partner = [](NumFormat f) {
    return f == NumFormat::kApot || f == NumFormat::kPot4 || f == NumFormat::kInt8;
  };
  return (a == NumFormat::kApot && partner(b)) || (b == NumFormat::kApot && partner(a));
}

bool is_shift_pair(NumFormat a, NumFormat b) {
  return (a == NumFormat::kPot4 && b == NumFormat::kInt8) || (a == NumFormat::kInt8 && b == NumFormat::kPot4);
}

const char* to_string(OutputType t) {
  switch (t) {
    case OutputType::kI32: return "i32";
    case OutputType::kI64: return "i64";
    case OutputType::kF32: return "f32";
  }
  return "?";
}

int bytes_per_element(OutputType t) { return t == OutputType::kI64 ? 8 : 4; }

std::string TraceRecord::format_name() const {
  // Mixed pairs by name whatever the orientation: "pot4+int8", "int8+apot", "pot4+apot".
  const NumFormat other = a.format == NumFormat::kApot ? b.format : a.format;
  const std::string base = shift_pair()                          ? "pot4+int8"
                           : apot_pair() && a.format != b.format ? fmt::format("{}+apot", to_string(other))
                                                                 : to_string(a.format);
  return scaled() ? base + " (finer scales)" : base;
}

OutputType TraceRecord::output_type() const {
  if (is_float_format(format())) return OutputType::kF32;
  return accumulator.bits <= 32 ? OutputType::kI32 : OutputType::kI64;
}

namespace {
std::uint64_t operand_bytes(NumFormat f, std::uint64_t elements) {
  // PoT4 packs two codes a byte; INT4 is stored one value per byte (as INT8); the others at
  // their width.
  if (f == NumFormat::kPot4) return pot4_packed_bytes(elements);
  if (f == NumFormat::kInt4) return elements;
  return elements * static_cast<std::uint64_t>(bits_per_element(f) / 8);
}
}  // namespace

// Dimensions are validated to < 2^31, so these products fit in 64 bits.
std::uint64_t TraceRecord::operand_a_bytes() const {
  return operand_bytes(a.format, static_cast<std::uint64_t>(shape.m) * shape.k);
}
std::uint64_t TraceRecord::operand_b_bytes() const {
  return operand_bytes(b.format, static_cast<std::uint64_t>(shape.k) * shape.n);
}
std::uint64_t TraceRecord::expected_bytes() const {
  return static_cast<std::uint64_t>(shape.m) * shape.n * bytes_per_element(output_type());
}

std::uint64_t TraceRecord::scale_count_a() const {
  if (a.scale_block <= 0) return 0;
  return static_cast<std::uint64_t>(shape.m) * static_cast<std::uint64_t>((shape.k + a.scale_block - 1) / a.scale_block);
}
std::uint64_t TraceRecord::scale_count_b() const {
  if (b.scale_block <= 0) return 0;
  return static_cast<std::uint64_t>(shape.n) * static_cast<std::uint64_t>((shape.k + b.scale_block - 1) / b.scale_block);
}

ScaleGroups record_scale_groups(const TraceRecord& rec, bool a_side, const RecordPayload& p) {
  const OperandSpec& op = a_side ? rec.a : rec.b;
  ScaleGroups g;
  if (op.format == NumFormat::kPot4) {
    g.block = op.scale_block;
    g.tensor_exp = op.scale_exp - 6;
    const std::vector<std::int8_t>& e = a_side ? p.a_scales : p.b_scales;
    g.exps.reserve(e.size());
    for (std::int8_t x : e) g.exps.push_back(int{x} - 6);
  } else if (!power_of_two_exponent(op.scale, &g.tensor_exp)) {  // INT8 with a power-of-two scale
    throw std::logic_error("a scaled record's INT8 scale is not a power of two (the reader checks it)");
  }
  return g;
}

std::vector<std::int32_t> record_operand_ints(const TraceRecord& rec, bool a_side, const RecordPayload& p) {
  const bool pot4 = (a_side ? rec.a : rec.b).format == NumFormat::kPot4;
  std::vector<std::int32_t> v;
  if (pot4) {
    const std::vector<Pot4Code>& c = a_side ? p.a_pot4 : p.b_pot4;
    v.reserve(c.size());
    for (Pot4Code x : c) v.push_back(pot4_int(x));
  } else {
    const std::vector<std::int8_t>& c = a_side ? p.a_int8 : p.b_int8;
    v.assign(c.begin(), c.end());
  }
  return v;
}

std::size_t Trace::records_with_payload() const {
  std::size_t n = 0;
  for (const auto& r : records) n += r.has_payload ? 1 : 0;
  return n;
}

std::uint64_t Trace::total_macs() const {
  std::uint64_t n = 0;
  for (const auto& r : records) n += r.macs();
  return n;
}

namespace {

template <typename T, typename Equal>
std::string first_mismatch_impl(const GemmShape& s, const std::vector<T>& got, const std::vector<T>& want,
                                const char* got_name, const char* want_name, Equal equal) {
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (!equal(got[i], want[i])) {
      return fmt::format("first mismatch at output element ({}, {}) of {}x{}: {} {}, {} {}",
                         static_cast<std::int64_t>(i) / s.n, static_cast<std::int64_t>(i) % s.n, s.m, s.n,
                         got_name, got[i], want_name, want[i]);
    }
  }
  return {};
}

}  // namespace

std::string first_mismatch(const GemmShape& s, const std::vector<std::int64_t>& got,
                           const std::vector<std::int64_t>& want, const char* got_name, const char* want_name) {
  return first_mismatch_impl(s, got, want, got_name, want_name,
                             [](std::int64_t x, std::int64_t y) { return x == y; });
}

std::string first_mismatch(const GemmShape& s, const std::vector<float>& got, const std::vector<float>& want,
                           const char* got_name, const char* want_name) {
  return first_mismatch_impl(s, got, want, got_name, want_name,
                             [](float x, float y) { return std::memcmp(&x, &y, sizeof(float)) == 0; });
}

std::string check_record_result(const TraceRecord& rec, const RecordPayload& p) {
  const GemmShape& s = rec.shape;
  std::size_t count = static_cast<std::size_t>(s.m) * static_cast<std::size_t>(s.n);
  if (is_float_format(rec.format())) {  // float operands, summed in FP32 in ascending k
    std::vector<float> c(count);
    gemm_fp32_ref(s, p.a_fp32.data(), p.b_fp32.data(), rec.fp32_fma, c.data());
    return first_mismatch(s, c, p.expected_fp32, "recomputed", "recorded");
  }
  std::vector<std::int64_t> c(count);
  if (rec.scaled()) {  // finer scales: the exact aligned sum (models/scaled_gemm.h)
    const ScaleGroups ga = record_scale_groups(rec, true, p), gb = record_scale_groups(rec, false, p);
    const std::vector<std::int32_t> a = record_operand_ints(rec, true, p), b = record_operand_ints(rec, false, p);
    ScaledLsb lsb;
    std::string why;
    if (!scaled_lsb(s.m, s.n, s.k, a.data(), ga, b.data(), gb, rec.max_product_term(), &lsb, &why)) return why;
    scaled_gemm_ref(s.m, s.n, s.k, a.data(), ga, b.data(), gb, lsb, c.data());
    return first_mismatch(s, c, p.expected_acc, "recomputed", "recorded");
  }
  if (rec.shift_pair() || rec.apot_pair()) {  // PoT4 codes as their integer images +-2^(m-1): the exact integer reference
    auto ints = [](const std::vector<Pot4Code>& codes, const std::vector<std::int8_t>& i8) {
      if (codes.empty()) return i8;
      std::vector<std::int8_t> v(codes.size());
      for (std::size_t i = 0; i < codes.size(); ++i) v[i] = static_cast<std::int8_t>(pot4_int(codes[i]));
      return v;
    };
    const std::vector<std::int8_t> a = ints(p.a_pot4, p.a_int8), b = ints(p.b_pot4, p.b_int8);
    gemm_int8_ref(s, a.data(), b.data(), rec.accumulator, c.data());
  } else if (rec.format() == NumFormat::kPot4) {
    gemm_pot4_ref(s, p.a_pot4.data(), p.b_pot4.data(), rec.accumulator, c.data());
  } else {  // int8, int4
    gemm_int8_ref(s, p.a_int8.data(), p.b_int8.data(), rec.accumulator, c.data());
  }
  return first_mismatch(s, c, p.expected_acc, "recomputed", "recorded");
}

}  // namespace mfsim
