#include "traces/trace_writer.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/atomic_file.h"
#include "common/crc32.h"
#include "models/apot.h"
#include "models/minifloat.h"
#include "models/scaled_gemm.h"

namespace mfsim {

using ojson = nlohmann::ordered_json;

namespace {

std::string base_name(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

ojson operand_json(const OperandSpec& op) {
  ojson j;
  j["format"] = to_string(op.format);
  if (op.format == NumFormat::kPot4 || op.format == NumFormat::kFp8E4M3 || op.format == NumFormat::kFp8E5M2) {
    j["scale_exp"] = op.scale_exp;
  }
  if (op.format == NumFormat::kInt8 || op.format == NumFormat::kInt4 || op.format == NumFormat::kApot) {
    j["scale"] = static_cast<double>(op.scale);
  }
  if (op.scale_block > 0) j["scale_block"] = op.scale_block;
  return j;
}

ojson ref_json(const PayloadRef& r) {
  return ojson{{"offset", r.offset}, {"bytes", r.bytes}, {"crc32", fmt::format("{:08x}", r.crc32)}};
}

template <typename T>
std::vector<std::uint8_t> raw_bytes(const T* data, std::size_t count) {
  std::vector<std::uint8_t> out(count * sizeof(T));
  if (count > 0) std::memcpy(out.data(), data, out.size());
  return out;
}

std::vector<std::uint8_t> acc_bytes(const TraceRecord& rec, const std::int64_t* v, std::size_t n) {
  if (rec.output_type() == OutputType::kI64) return raw_bytes(v, n);
  std::vector<std::int32_t> narrow(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (v[i] > rec.accumulator.max() || v[i] < rec.accumulator.min()) {
      throw std::invalid_argument(fmt::format(
          "trace writer: {} {}: expected output {} does not fit the {}-bit accumulator", rec.layer,
          to_string(rec.phase), v[i], rec.accumulator.bits));
    }
    narrow[i] = static_cast<std::int32_t>(v[i]);
  }
  return raw_bytes(narrow.data(), n);
}

// Float operands in their format's storage: binary32, bf16 (2 bytes) or fp8 (1 byte); every
// value must be exactly a value of the format.
std::vector<std::uint8_t> float_bytes(const TraceRecord& rec, NumFormat f, const float* v, std::size_t n) {
  if (f == NumFormat::kFp32) return raw_bytes(v, n);
  auto inexact = [&](std::size_t i) {
    return std::invalid_argument(fmt::format("trace writer: {} {}: operand value {} is not exactly a {} value",
                                             rec.layer, to_string(rec.phase), v[i], to_string(f)));
  };
  if (f == NumFormat::kBf16) {
    std::vector<std::uint16_t> codes(n);
    for (std::size_t i = 0; i < n; ++i) {
      if (!bf16_encode_exact(v[i], &codes[i])) throw inexact(i);
    }
    return raw_bytes(codes.data(), n);
  }
  std::vector<std::uint8_t> codes(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (!fp8_encode_exact(f, v[i], &codes[i])) throw inexact(i);
  }
  return codes;
}

}  // namespace

std::string TraceWriter::payload_path_for(const std::string& json_path) {
  std::string base = json_path;
  if (base.size() > 5 && base.compare(base.size() - 5, 5, ".json") == 0) {
    base.resize(base.size() - 5);
  }
  return base + ".bin";
}

TraceWriter::TraceWriter(std::string json_path, std::string generator, std::string description)
    : json_path_(std::move(json_path)) {
  // Refused now, before the work that produces the trace: an output that is an input.
  require_not_directory(json_path_);
  require_not_input(json_path_);
  require_not_input(payload_path_for(json_path_));
  trace_.generator = std::move(generator);
  trace_.description = std::move(description);
}

TraceWriter::~TraceWriter() = default;

void TraceWriter::check(const TraceRecord& rec, FormatKind want, bool apot_call) const {
  if (rec.shape.m < 1 || rec.shape.n < 1 || rec.shape.k < 1 || rec.shape.m > kTraceMaxDim ||
      rec.shape.n > kTraceMaxDim || rec.shape.k > kTraceMaxDim) {
    throw std::invalid_argument(fmt::format("trace writer: {} {}: dimensions out of range",
                                            rec.layer, to_string(rec.phase)));
  }
  const bool apot = is_apot_pair(rec.a.format, rec.b.format);
  if ((format_info(rec.a.format).kind != want && !is_shift_pair(rec.a.format, rec.b.format) && !apot) ||
      !operand_formats_compatible(rec.a.format, rec.b.format) || apot != apot_call) {
    throw std::invalid_argument(fmt::format("trace writer: {} {}: operand formats {} and {} do not fit this call",
                                            rec.layer, to_string(rec.phase), to_string(rec.a.format),
                                            to_string(rec.b.format)));
  }
}

void TraceWriter::add_shape(const TraceRecord& rec) {
  check(rec, format_info(rec.a.format).kind);
  TraceRecord r = rec;
  r.has_payload = false;
  trace_.records.push_back(std::move(r));
}

PayloadRef TraceWriter::append(const void* data, std::uint64_t bytes) {
  if (!bin_) {
    trace_.payload_path = payload_path_for(json_path_);
    bin_ = std::make_unique<AtomicFile>(trace_.payload_path);
    std::uint8_t header[kPayloadHeaderBytes] = {};
    std::memcpy(header, kPayloadMagic, sizeof kPayloadMagic);
    auto version = static_cast<std::uint32_t>(kTraceFormatVersion);
    std::memcpy(header + 8, &version, 4);
    bin_->write(header, sizeof header);
  }
  PayloadRef ref;
  ref.offset = bin_->bytes_written();
  ref.bytes = bytes;
  ref.crc32 = crc32(data, bytes);
  bin_->write(data, bytes);
  static const std::uint8_t zeros[8] = {};
  std::uint64_t pad = (8 - bin_->bytes_written() % 8) % 8;  // keep payloads 8-byte aligned
  bin_->write(zeros, pad);
  return ref;
}

void TraceWriter::push_with_payload(TraceRecord rec, const std::vector<std::uint8_t>& a,
                                    const std::vector<std::uint8_t>& b,
                                    const std::vector<std::uint8_t>& c) {
  if (rec.repeat != 1) throw std::invalid_argument("trace writer: a payload record must have repeat 1");
  rec.payload_a = append(a.data(), a.size());
  rec.payload_b = append(b.data(), b.size());
  rec.payload_expected = append(c.data(), c.size());
  rec.has_payload = true;
  trace_.records.push_back(std::move(rec));
}

void TraceWriter::add_pot4(const TraceRecord& rec, const Pot4Code* a, const Pot4Code* b,
                           const std::int64_t* expected) {
  check(rec, FormatKind::kPot4);
  const auto& s = rec.shape;
  std::size_t na = static_cast<std::size_t>(s.m * s.k), nb = static_cast<std::size_t>(s.k * s.n);
  std::vector<std::uint8_t> pa(pot4_packed_bytes(na)), pb(pot4_packed_bytes(nb));
  pot4_pack(a, na, pa.data());
  pot4_pack(b, nb, pb.data());
  push_with_payload(rec, pa, pb, acc_bytes(rec, expected, static_cast<std::size_t>(s.m * s.n)));
}

void TraceWriter::add_int8(const TraceRecord& rec, const std::int8_t* a, const std::int8_t* b,
                           const std::int64_t* expected) {
  check(rec, FormatKind::kInt);
  const auto& s = rec.shape;
  const auto qmax = format_info(rec.format()).max_int;
  for (const auto& [v, count] : {std::pair{a, s.m * s.k}, std::pair{b, s.k * s.n}}) {
    for (std::int64_t i = 0; i < count; ++i) {
      if (v[i] < -qmax || v[i] > qmax) {
        throw std::invalid_argument(fmt::format("trace writer: {} {}: operand value {} is outside [-{}, {}]", rec.layer,
                                                to_string(rec.phase), v[i], qmax, qmax));
      }
    }
  }
  push_with_payload(rec, raw_bytes(a, static_cast<std::size_t>(s.m * s.k)),
                    raw_bytes(b, static_cast<std::size_t>(s.k * s.n)),
                    acc_bytes(rec, expected, static_cast<std::size_t>(s.m * s.n)));
}

void TraceWriter::add_pot4_int8(const TraceRecord& rec, const Pot4Code* pot4_operand, const std::int8_t* int8_operand,
                                const std::int64_t* expected) {
  const bool a_pot4 = rec.a.format == NumFormat::kPot4;
  if (!is_shift_pair(rec.a.format, rec.b.format)) {
    throw std::invalid_argument(fmt::format("trace writer: {} {}: operand formats {} and {} are not a pot4 and int8 pair",
                                            rec.layer, to_string(rec.phase), to_string(rec.a.format),
                                            to_string(rec.b.format)));
  }
  check(rec, FormatKind::kPot4);
  const auto& s = rec.shape;
  const std::size_t na = static_cast<std::size_t>(s.m * s.k), nb = static_cast<std::size_t>(s.k * s.n);
  const std::size_t n_pot4 = a_pot4 ? na : nb, n_int = a_pot4 ? nb : na;
  for (std::size_t i = 0; i < n_int; ++i) {
    if (int8_operand[i] < -127) {
      throw std::invalid_argument(fmt::format("trace writer: {} {}: operand value {} is outside [-127, 127]", rec.layer,
                                              to_string(rec.phase), int8_operand[i]));
    }
  }
  std::vector<std::uint8_t> packed(pot4_packed_bytes(n_pot4));
  pot4_pack(pot4_operand, n_pot4, packed.data());
  const std::vector<std::uint8_t> ints = raw_bytes(int8_operand, n_int);
  push_with_payload(rec, a_pot4 ? packed : ints, a_pot4 ? ints : packed,
                    acc_bytes(rec, expected, static_cast<std::size_t>(s.m * s.n)));
}

void GemmRecorder::add_apot(const TraceRecord& rec, const Pot4Code*, const std::int8_t*, const Pot4Code*,
                            const std::int8_t*, const std::int64_t*) {
  throw std::logic_error(fmt::format("{} {}: this recorder does not record GEMMs with two-term operands", rec.layer,
                                     to_string(rec.phase)));
}

void TraceWriter::add_apot(const TraceRecord& rec, const Pot4Code* a_pot4, const std::int8_t* a_int,
                           const Pot4Code* b_pot4, const std::int8_t* b_int, const std::int64_t* expected) {
  const auto where = [&] { return fmt::format("trace writer: {} {}", rec.layer, to_string(rec.phase)); };
  if (!rec.apot_pair() || rec.scaled()) {
    throw std::invalid_argument(where() + fmt::format(": operand formats {} and {} are not a two-term pair (apot with "
                                                      "apot, pot4 or int8; no finer scales)",
                                                      to_string(rec.a.format), to_string(rec.b.format)));
  }
  check(rec, FormatKind::kInt, true);
  const auto& s = rec.shape;
  const std::size_t na = static_cast<std::size_t>(s.m * s.k), nb = static_cast<std::size_t>(s.k * s.n);
  auto operand = [&](const OperandSpec& op, const Pot4Code* p, const std::int8_t* v, std::size_t n) {
    if ((op.format == NumFormat::kPot4) != (p != nullptr) || (p == nullptr && v == nullptr)) {
      throw std::invalid_argument(where() + fmt::format(": a {} operand given as the wrong kind of values", to_string(op.format)));
    }
    if (p != nullptr) {
      std::vector<std::uint8_t> packed(pot4_packed_bytes(n));
      pot4_pack(p, n, packed.data());
      return packed;
    }
    int e = 0;
    if (!power_of_two_exponent(op.scale, &e)) {
      throw std::invalid_argument(where() + fmt::format(": the {} operand's scale {} is not a power of two",
                                                        to_string(op.format), op.scale));
    }
    for (std::size_t i = 0; i < n; ++i) {
      const bool ok = op.format == NumFormat::kApot ? apot_level(v[i]) : v[i] >= -127;
      if (!ok) {
        throw std::invalid_argument(where() + fmt::format(": operand value {} is not a {} value", v[i], to_string(op.format)));
      }
    }
    return raw_bytes(v, n);
  };
  push_with_payload(rec, operand(rec.a, a_pot4, a_int, na), operand(rec.b, b_pot4, b_int, nb),
                    acc_bytes(rec, expected, static_cast<std::size_t>(s.m * s.n)));
}

void GemmRecorder::add_scaled(const TraceRecord& rec, const Pot4Code*, const std::int8_t*, const Pot4Code*,
                              const std::int8_t*, const std::int8_t*, const std::int8_t*, const std::int64_t*) {
  throw std::logic_error(fmt::format("{} {}: this recorder does not record GEMMs with finer scales", rec.layer,
                                     to_string(rec.phase)));
}

void TraceWriter::add_scaled(const TraceRecord& rec_in, const Pot4Code* a_pot4, const std::int8_t* a_int8,
                             const Pot4Code* b_pot4, const std::int8_t* b_int8, const std::int8_t* a_scales,
                             const std::int8_t* b_scales, const std::int64_t* expected) {
  TraceRecord rec = rec_in;
  const auto where = [&] { return fmt::format("trace writer: {} {}", rec.layer, to_string(rec.phase)); };
  if (!rec.scaled() || rec.repeat != 1) throw std::invalid_argument(where() + ": not a scaled record with repeat 1");
  if ((rec.a.format == NumFormat::kPot4) != (a_pot4 != nullptr) || (rec.b.format == NumFormat::kPot4) != (b_pot4 != nullptr) ||
      !(rec.a.format == NumFormat::kPot4 || rec.b.format == NumFormat::kPot4) ||
      (rec.a.format != NumFormat::kPot4 && rec.a.format != NumFormat::kInt8) ||
      (rec.b.format != NumFormat::kPot4 && rec.b.format != NumFormat::kInt8)) {
    throw std::invalid_argument(where() + ": finer scales need PoT4 operands (or one INT8 with a power-of-two scale)");
  }
  if (rec.shape.m < 1 || rec.shape.n < 1 || rec.shape.k < 1 || rec.shape.m > kTraceMaxDim || rec.shape.n > kTraceMaxDim ||
      rec.shape.k > kTraceMaxDim) {
    throw std::invalid_argument(where() + ": M, N, K must be in [1, 2^31 - 1]");
  }
  for (const auto& [op, scales] : {std::pair{&rec.a, a_scales}, std::pair{&rec.b, b_scales}}) {
    const std::int64_t b = op->scale_block;
    if (b > 0 && (op->format != NumFormat::kPot4 || b > rec.shape.k || scales == nullptr ||
                  !scale_block_allowed(b, rec.shape.k))) {
      throw std::invalid_argument(where() + fmt::format(": scale_block {} on a {} operand with K {} (a power of two of at "
                                                        "least 16, or K, on a PoT4 operand with its scales)",
                                                        b, to_string(op->format), rec.shape.k));
    }
    int e = 0;
    if (op->format == NumFormat::kInt8 && !power_of_two_exponent(op->scale, &e)) {
      throw std::invalid_argument(where() + fmt::format(": the INT8 operand's scale {} is not a power of two", op->scale));
    }
  }
  rec.accumulator.bits = 64;  // the aligned accumulator
  const auto& s = rec.shape;
  const std::size_t na = static_cast<std::size_t>(s.m * s.k), nb = static_cast<std::size_t>(s.k * s.n);
  auto operand = [&](const Pot4Code* p, const std::int8_t* i, std::size_t n) {
    if (p == nullptr) return raw_bytes(i, n);
    std::vector<std::uint8_t> packed(pot4_packed_bytes(n));
    pot4_pack(p, n, packed.data());
    return packed;
  };
  rec.payload_a = append(operand(a_pot4, a_int8, na).data(), rec.operand_a_bytes());
  rec.payload_b = append(operand(b_pot4, b_int8, nb).data(), rec.operand_b_bytes());
  rec.payload_expected = append(acc_bytes(rec, expected, static_cast<std::size_t>(s.m * s.n)).data(), rec.expected_bytes());
  if (rec.a.scale_block > 0) rec.payload_a_scales = append(a_scales, rec.scale_count_a());
  if (rec.b.scale_block > 0) rec.payload_b_scales = append(b_scales, rec.scale_count_b());
  rec.has_payload = true;
  trace_.records.push_back(std::move(rec));
}

void TraceWriter::add_fp32(const TraceRecord& rec, const float* a, const float* b,
                           const float* expected) {
  check(rec, FormatKind::kFloat);
  const auto& s = rec.shape;
  push_with_payload(rec, float_bytes(rec, rec.a.format, a, static_cast<std::size_t>(s.m * s.k)),
                    float_bytes(rec, rec.b.format, b, static_cast<std::size_t>(s.k * s.n)),
                    raw_bytes(expected, static_cast<std::size_t>(s.m * s.n)));
}

static ojson op_json(const NonGemmOp& op) {
  auto tensors = [](const std::vector<OpTensor>& ts) {
    ojson a = ojson::array();
    for (const auto& t : ts) {
      ojson j{{"tensor", t.name}, {"elements", t.elements}};
      if (t.format != NumFormat::kFp32) j["format"] = to_string(t.format);
      if (t.role != TensorRole::kStream) j["role"] = to_string(t.role);
      a.push_back(j);
    }
    return a;
  };
  ojson j;
  j["kind"] = to_string(op.kind);
  j["name"] = op.name;
  if (op.layer != op.name) j["layer"] = op.layer;
  j["phase"] = to_string(op.phase);
  j["elements"] = op.elements;
  ojson fl = ojson::object();
  for (int o = 0; o < kNumFpOps; ++o) {
    if (op.flops[o] != 0) fl[to_string(static_cast<FpOp>(o))] = op.flops[o];
  }
  j["flops"] = fl;
  j["reads"] = tensors(op.reads);
  j["writes"] = tensors(op.writes);
  return j;
}

// Layout: one top-level key per line and one record per line, so that a trace reads well in
// a pager, greps by layer or phase, and diffs record by record.
std::string trace_to_json(const Trace& t) {
  ojson head;
  head["format"] = kTraceFormatName;
  head["version"] = t.version;
  if (!t.generator.empty()) head["generator"] = t.generator;
  if (!t.description.empty()) head["description"] = t.description;
  if (!t.payload_path.empty()) {
    head["payload_file"] = ojson{{"path", t.payload_path}, {"bytes", t.payload_file_bytes}};
  }
  std::string out = "{\n";
  for (auto it = head.begin(); it != head.end(); ++it) {
    out += fmt::format(" {}: {},\n", ojson(it.key()).dump(), it.value().dump());
  }
  out += " \"records\": [";
  for (std::size_t i = 0; i < t.records.size(); ++i) {
    const TraceRecord& r = t.records[i];
    ojson j;
    j["layer"] = r.layer;
    j["phase"] = to_string(r.phase);
    j["M"] = r.shape.m;
    j["N"] = r.shape.n;
    j["K"] = r.shape.k;
    if (r.repeat != 1) j["repeat"] = r.repeat;
    if (r.layer_type != LayerType::kFc) j["layer_type"] = to_string(r.layer_type);
    if (r.layer_type == LayerType::kConv) {
      const ConvGeometry& c = r.conv;
      j["conv"] = ojson{{"batch", c.batch},       {"in_h", c.in_h},         {"in_w", c.in_w},
                        {"in_c", c.in_c},         {"kernel_h", c.kernel_h}, {"kernel_w", c.kernel_w},
                        {"stride", c.stride},     {"pad", c.pad}};
      if (c.pad_end_h != 0) j["conv"]["pad_end_h"] = c.pad_end_h;
      if (c.pad_end_w != 0) j["conv"]["pad_end_w"] = c.pad_end_w;
    }
    j["a"] = operand_json(r.a);
    j["b"] = operand_json(r.b);
    if (!is_float_format(r.format())) {
      j["accumulator"] = ojson{{"bits", r.accumulator.bits},
                               {"overflow", to_string(r.accumulator.overflow)}};
    } else if (r.fp32_fma) {
      j["fp32_fma"] = true;
    }
    if (r.has_payload) {
      ojson e = ref_json(r.payload_expected);
      e["type"] = to_string(r.output_type());
      j["payload"] = ojson{{"a", ref_json(r.payload_a)}, {"b", ref_json(r.payload_b)}, {"expected", e}};
      if (r.a.scale_block > 0) j["payload"]["a_scales"] = ref_json(r.payload_a_scales);
      if (r.b.scale_block > 0) j["payload"]["b_scales"] = ref_json(r.payload_b_scales);
    }
    out += (i == 0 ? "\n  " : ",\n  ") + j.dump();
  }
  out += t.records.empty() ? "]" : "\n ]";
  if (!t.ops.empty()) {  // one operation per line, as the records
    out += ",\n \"ops\": [";
    for (std::size_t i = 0; i < t.ops.size(); ++i) out += (i == 0 ? "\n  " : ",\n  ") + op_json(t.ops[i]).dump();
    out += "\n ]";
  }
  out += "\n}\n";
  return out;
}

void TraceWriter::commit() {
  Trace out = trace_;
  if (bin_) {
    out.payload_file_bytes = bin_->bytes_written();
    out.payload_path = base_name(trace_.payload_path);  // stored relative to the JSON
    bin_->commit();
  }
  write_file_atomic(json_path_, trace_to_json(out));
}

}  // namespace mfsim
