#include "traces/trace_reader.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <tuple>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/crc32.h"
#include "common/error.h"
#include "common/json_fields.h"
#include "models/apot.h"
#include "models/minifloat.h"

#include "models/scaled_gemm.h"

namespace mfsim {

using nlohmann::json;

namespace {

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
}

OperandSpec parse_operand(JsonFields& rec, const char* key) {
  JsonFields f(rec.required_object(key), rec.file(), rec.field_path(key));
  OperandSpec op;
  const std::string fmt_name = f.required_string("format");
  if (!parse_num_format(fmt_name, &op.format)) {
    f.fail("format", fmt::format("unknown value \"{}\"; expected {}", fmt_name, num_format_choices()));
  }
  if (op.format == NumFormat::kPot4) {
    op.scale_exp = static_cast<int>(f.required_int(
        "scale_exp", kPot4ScaleExpMin, kPot4ScaleExpMax,
        "an integer scale exponent in [-120, 127]"));
    op.scale_block = f.optional_int("scale_block", 1, kTraceMaxDim, "a positive integer (elements per scale along K)")
                         .value_or(0);
  } else if (op.format == NumFormat::kFp8E4M3 || op.format == NumFormat::kFp8E5M2) {
    op.scale_exp = static_cast<int>(f.required_int("scale_exp", kFp8ScaleExpMin, kFp8ScaleExpMax,
                                                   "an integer scale exponent in [-160, 160]"));
  } else if (op.format == NumFormat::kInt8 || op.format == NumFormat::kInt4 || op.format == NumFormat::kApot) {
    double s = f.required_number("scale");
    auto sf = static_cast<float>(s);
    if (!(s > 0.0) || !std::isfinite(sf) || static_cast<double>(sf) != s) {
      f.fail("scale", fmt::format("expected a positive finite float32 value, got {}", s));
    }
    int e = 0;
    if (op.format == NumFormat::kApot && !power_of_two_exponent(sf, &e)) {
      f.fail("scale", fmt::format("a two-term (apot) operand's scale is a power of two; got {}", s));
    }
    op.scale = sf;
  }
  f.finish();
  return op;
}

// `typed_for` is set for the expected output, whose "type" must match the record's.
PayloadRef parse_payload_ref(JsonFields& parent, const char* key, std::uint64_t want_bytes,
                             const std::string& what, std::uint64_t file_bytes,
                             const TraceRecord* typed_for = nullptr) {
  JsonFields f(parent.required_object(key), parent.file(), parent.field_path(key));
  PayloadRef ref;
  if (typed_for != nullptr) {
    const TraceRecord& r = *typed_for;
    std::string type = f.required_choice("type", {"i32", "i64", "f32"});
    if (type != to_string(r.output_type())) {
      std::string acc = is_float_format(r.format())
                            ? std::string()
                            : fmt::format(" with a {}-bit accumulator", r.accumulator.bits);
      f.fail("type", fmt::format("expected \"{}\" for a {} GEMM{}, got \"{}\"",
                                 to_string(r.output_type()), to_string(r.format()), acc, type));
    }
  }
  ref.offset = static_cast<std::uint64_t>(f.required_int(
      "offset", static_cast<std::int64_t>(kPayloadHeaderBytes), INT64_MAX,
      "a byte offset >= 16 (after the payload file header)"));
  ref.bytes = static_cast<std::uint64_t>(f.required_int("bytes", 0, INT64_MAX,
                                                        "a non-negative byte count"));
  if (ref.bytes != want_bytes) {
    f.fail("bytes", fmt::format("expected {} bytes for {}, got {}", want_bytes, what, ref.bytes));
  }
  std::string crc = f.required_string("crc32");
  bool hex_ok = crc.size() == 8 && crc.find_first_not_of("0123456789abcdef") == std::string::npos;
  if (!hex_ok) {
    f.fail("crc32", fmt::format("expected 8 lower-case hex digits, got \"{}\"", crc));
  }
  ref.crc32 = static_cast<std::uint32_t>(std::stoul(crc, nullptr, 16));
  if (ref.offset > file_bytes || ref.bytes > file_bytes - ref.offset) {
    throw InputError(fmt::format(
        "{}: bytes [{}, {}) lie outside the payload file ({} bytes)", parent.where(key),
        ref.offset, ref.offset + ref.bytes, file_bytes));
  }
  f.finish();
  return ref;
}

// A convolution's geometry, checked against the record's GEMM (fwd (M, N, K), bwd_data
// (M, K, N), bwd_weight (K, N, M) of the forward GEMM M = batch P Q, K = kernel_h kernel_w in_c).
ConvGeometry parse_conv(const json& j, const std::string& file, const std::string& path, const TraceRecord& r) {
  JsonFields f(j, file, path);
  ConvGeometry c;
  const char* positive = "a positive integer below 2^31";
  c.batch = f.required_int("batch", 1, kTraceMaxDim, positive);
  c.in_h = f.required_int("in_h", 1, kTraceMaxDim, positive);
  c.in_w = f.required_int("in_w", 1, kTraceMaxDim, positive);
  c.in_c = f.required_int("in_c", 1, kTraceMaxDim, positive);
  c.kernel_h = f.required_int("kernel_h", 1, kTraceMaxDim, positive);
  c.kernel_w = f.required_int("kernel_w", 1, kTraceMaxDim, positive);
  c.stride = f.required_int("stride", 1, kTraceMaxDim, positive);
  const char* non_negative = "a non-negative integer below 2^31";
  c.pad = f.required_int("pad", 0, kTraceMaxDim, non_negative);
  c.pad_end_h = f.optional_int("pad_end_h", 0, kTraceMaxDim, non_negative).value_or(0);
  c.pad_end_w = f.optional_int("pad_end_w", 0, kTraceMaxDim, non_negative).value_or(0);
  f.finish();
  const std::int64_t padded_h = c.in_h + 2 * c.pad + c.pad_end_h, padded_w = c.in_w + 2 * c.pad + c.pad_end_w;
  if (padded_h < c.kernel_h || padded_w < c.kernel_w) {
    throw InputError(fmt::format("{}: {}: the {}x{} kernel is larger than the padded {}x{} input", file, path,
                                 c.kernel_h, c.kernel_w, padded_h, padded_w));
  }
  // Extra padding past the far edge rounds the output size up (SCALE-Sim's rule needs at most
  // stride - 1); a whole stride of it would only add windows that start in the padding.
  if (c.pad_end_h >= c.stride || c.pad_end_w >= c.stride) {
    throw InputError(fmt::format("{}: {}: pad_end_h and pad_end_w must be below the stride ({}), got {} and {}",
                                 file, path, c.stride, c.pad_end_h, c.pad_end_w));
  }
  // The forward GEMM's M and K, and the input's element count (ConvGeometry::input_elements),
  // must fit 64 bits.
  std::uint64_t m = 0, k = 0, input = 0;
  const bool overflow =
      __builtin_mul_overflow(static_cast<std::uint64_t>(c.batch), static_cast<std::uint64_t>(c.out_h()), &m) ||
      __builtin_mul_overflow(m, static_cast<std::uint64_t>(c.out_w()), &m) ||
      __builtin_mul_overflow(static_cast<std::uint64_t>(c.kernel_h), static_cast<std::uint64_t>(c.kernel_w), &k) ||
      __builtin_mul_overflow(k, static_cast<std::uint64_t>(c.in_c), &k) ||
      __builtin_mul_overflow(static_cast<std::uint64_t>(c.in_h) * static_cast<std::uint64_t>(c.in_w),
                             static_cast<std::uint64_t>(c.in_c) * static_cast<std::uint64_t>(c.batch), &input);
  if (overflow) throw InputError(fmt::format("{}: {}: the geometry's sizes overflow 64 bits", file, path));
  std::uint64_t want_m = 0, want_k = 0;
  switch (r.phase) {
    case Phase::kFwd: want_m = r.shape.m; want_k = r.shape.k; break;
    case Phase::kBwdData: want_m = r.shape.m; want_k = r.shape.n; break;
    case Phase::kBwdWeight: want_m = r.shape.k; want_k = r.shape.m; break;
  }
  if (m != want_m || k != want_k) {
    throw InputError(fmt::format("{}: {}: the geometry gives a forward GEMM with M = batch*P*Q = {} and K = "
                                 "kernel_h*kernel_w*in_c = {}, but the {} record implies M = {}, K = {}",
                                 file, path, m, k, to_string(r.phase), want_m, want_k));
  }
  return c;
}

TraceRecord parse_record(const json& j, const std::string& file, std::size_t index,
                         bool have_payload_file, std::uint64_t file_bytes) {
  JsonFields f(j, file, fmt::format("records[{}]", index));
  TraceRecord r;
  r.layer = f.required_string("layer");
  if (r.layer.empty()) f.fail("layer", "expected a non-empty layer name");
  parse_phase(f.required_choice("phase", {"fwd", "bwd_data", "bwd_weight"}), &r.phase);
  const char* positive = "a positive integer below 2^31";
  r.shape.m = f.required_int("M", 1, kTraceMaxDim, positive);
  r.shape.n = f.required_int("N", 1, kTraceMaxDim, positive);
  r.shape.k = f.required_int("K", 1, kTraceMaxDim, positive);
  std::uint64_t macs = 0;
  if (__builtin_mul_overflow(static_cast<std::uint64_t>(r.shape.m) * r.shape.n,
                             static_cast<std::uint64_t>(r.shape.k), &macs)) {
    throw InputError(fmt::format("{}: {}: M*N*K = {}*{}*{} overflows 64 bits", file, f.path(),
                                 r.shape.m, r.shape.n, r.shape.k));
  }
  r.repeat = f.optional_int("repeat", 1, kTraceMaxDim, positive).value_or(1);
  if (__builtin_mul_overflow(macs, static_cast<std::uint64_t>(r.repeat), &macs)) {
    throw InputError(fmt::format("{}: {}: M*N*K*repeat overflows 64 bits", file, f.path()));
  }
  if (auto lt = f.optional_string("layer_type")) {
    if (*lt == "fc") r.layer_type = LayerType::kFc;
    else if (*lt == "conv") r.layer_type = LayerType::kConv;
    else if (*lt == "matmul") r.layer_type = LayerType::kMatmul;
    else f.fail("layer_type", fmt::format("unknown \"{}\"; expected fc|conv|matmul", *lt));
  }
  if (const json* c = f.optional_object("conv")) {
    if (r.layer_type != LayerType::kConv) f.fail("conv", "only a record with layer_type \"conv\" has a geometry");
    r.conv = parse_conv(*c, file, f.field_path("conv"), r);
  } else if (r.layer_type == LayerType::kConv) {
    f.fail("conv", "a record with layer_type \"conv\" needs its geometry (batch, in_h, in_w, in_c, kernel_h, "
                   "kernel_w, stride, pad)");
  }
  r.a = parse_operand(f, "a");
  r.b = parse_operand(f, "b");
  if (!operand_formats_compatible(r.a.format, r.b.format)) {
    f.fail("b.format", fmt::format("\"{}\" differs from a.format \"{}\"; both operands of a GEMM "
                                   "must use one format (or fp8e4m3 with fp8e5m2, or pot4 with int8, or apot "
                                   "with apot, pot4 or int8)",
                                   to_string(r.b.format), to_string(r.a.format)));
  }
  if (is_apot_pair(r.a.format, r.b.format)) {  // the INT8 partner's scale: a power of two as well
    for (const auto& [key, op] : {std::pair<const char*, const OperandSpec&>{"a.scale", r.a}, {"b.scale", r.b}}) {
      int e = 0;
      if (op.format == NumFormat::kInt8 && !power_of_two_exponent(op.scale, &e)) {
        f.fail(key, fmt::format("the INT8 partner of a two-term (apot) operand has a power-of-two scale; got {}",
                                static_cast<double>(op.scale)));
      }
    }
  }
  if (const json* acc = f.optional_object("accumulator")) {
    if (is_float_format(r.format())) {
      f.fail("accumulator", fmt::format("{} GEMMs have no integer accumulator; remove this field",
                                        to_string(r.format())));
    }
    JsonFields af(*acc, file, f.field_path("accumulator"));
    r.accumulator.bits = static_cast<int>(af.required_int("bits", kAccumulatorMinBits,
                                                          kAccumulatorMaxBits));
    std::string pol = af.required_choice("overflow", {"error", "saturate"});
    parse_overflow_policy(pol, &r.accumulator.overflow);
    af.finish();
  }
  if (r.scaled()) {  // finer scales (models/scaled_gemm.h)
    for (const auto& [op, key] : {std::pair{&r.a, "a.scale_block"}, std::pair{&r.b, "b.scale_block"}}) {
      if (op->scale_block > r.shape.k) {
        f.fail(key, fmt::format("{} is more than K = {}; a group lies along K", op->scale_block, r.shape.k));
      }
      if (op->scale_block > 0 && !scale_block_allowed(op->scale_block, r.shape.k)) {
        f.fail(key, fmt::format("{} is neither K = {} nor a power of two of at least 16 (blocks nest, and each chunk "
                                "is long enough to hide its alignment)",
                                op->scale_block, r.shape.k));
      }
    }
    for (const auto& [op, key] : {std::pair{&r.a, "a"}, std::pair{&r.b, "b"}}) {
      if (op->format == NumFormat::kPot4) continue;
      int e = 0;
      if (op->format != NumFormat::kInt8 || !power_of_two_exponent(op->scale, &e)) {
        f.fail(key, fmt::format("a GEMM with finer scales pairs PoT4 with PoT4 or with INT8 whose scale is a power of "
                                "two; got {} with scale {}",
                                to_string(op->format), op->scale));
      }
    }
    if (r.accumulator.bits != 64) {
      f.fail("accumulator.bits", fmt::format("a GEMM with finer scales sums into the 64-bit aligned accumulator; got {}",
                                             r.accumulator.bits));
    }
  }
  r.fp32_fma = f.optional_bool("fp32_fma", false);
  if (r.fp32_fma && r.format() != NumFormat::kFp32) {
    f.fail("fp32_fma", "only fp32 GEMMs can use fused multiply-add");
  }
  if (const json* p = f.optional_object("payload")) {
    if (!have_payload_file) {
      f.fail("payload", "the record has a payload but the trace has no payload_file");
    }
    if (r.repeat != 1) f.fail("payload", "a record with repeat > 1 cannot carry a payload");
    JsonFields pf(*p, file, f.field_path("payload"));
    std::uint64_t c_elems = static_cast<std::uint64_t>(r.shape.m) * r.shape.n;
    if (c_elems > UINT64_MAX / 8) {
      throw InputError(fmt::format("{}: {}: output of M*N = {}*{} elements is too large for a payload (limit 2^61)",
                                   file, pf.path(), r.shape.m, r.shape.n));
    }
    r.payload_a = parse_payload_ref(pf, "a", r.operand_a_bytes(),
                                    fmt::format("{}x{} {} elements", r.shape.m, r.shape.k,
                                                to_string(r.a.format)),
                                    file_bytes);
    r.payload_b = parse_payload_ref(pf, "b", r.operand_b_bytes(),
                                    fmt::format("{}x{} {} elements", r.shape.k, r.shape.n,
                                                to_string(r.b.format)),
                                    file_bytes);
    r.payload_expected = parse_payload_ref(
        pf, "expected", r.expected_bytes(),
        fmt::format("{}x{} {} elements", r.shape.m, r.shape.n, to_string(r.output_type())),
        file_bytes, &r);
    if (r.a.scale_block > 0) {
      r.payload_a_scales = parse_payload_ref(pf, "a_scales", r.scale_count_a(),
                                             fmt::format("{} int8 scale exponents", r.scale_count_a()), file_bytes);
    }
    if (r.b.scale_block > 0) {
      r.payload_b_scales = parse_payload_ref(pf, "b_scales", r.scale_count_b(),
                                             fmt::format("{} int8 scale exponents", r.scale_count_b()), file_bytes);
    }
    pf.finish();
    r.has_payload = true;
  }
  f.finish();
  return r;
}

// Bounds that keep every sum of an operation's counts far from 2^64 (docs/trace-format.md).
constexpr std::int64_t kOpMaxElements = std::int64_t{1} << 48;
constexpr std::int64_t kOpMaxFlops = std::int64_t{1} << 56;
constexpr std::size_t kOpMaxTensors = 16;

std::vector<OpTensor> parse_op_tensors(const json& arr, const std::string& file, const std::string& path, bool writes) {
  if (arr.size() > kOpMaxTensors) {
    throw InputError(fmt::format("{}: {}: {} tensors; at most {}", file, path, arr.size(), kOpMaxTensors));
  }
  std::vector<OpTensor> out;
  for (std::size_t i = 0; i < arr.size(); ++i) {
    JsonFields t(arr[i], file, fmt::format("{}[{}]", path, i));
    OpTensor x;
    x.name = t.required_string("tensor");
    x.elements = static_cast<std::uint64_t>(t.required_int("elements", 0, kOpMaxElements, "an element count below 2^48"));
    const std::string fmt_name = t.optional_string("format").value_or("fp32");
    if (!parse_num_format(fmt_name, &x.format)) t.fail("format", fmt::format("unknown format \"{}\"", fmt_name));
    const std::string role = t.optional_string("role").value_or("stream");
    bool known = false;
    for (int r = 0; r < kNumTensorRoles; ++r) {
      if (role == to_string(static_cast<TensorRole>(r))) {
        x.role = static_cast<TensorRole>(r);
        known = true;
      }
    }
    const TensorRole wrong = writes ? TensorRole::kSaved : TensorRole::kSave;
    if (!known || x.role == wrong) {
      t.fail("role", fmt::format("expected {} (a {}), got \"{}\"", writes ? "stream, state or save" : "stream, saved or state",
                                  writes ? "write" : "read", role));
    }
    t.finish();
    out.push_back(std::move(x));
  }
  return out;
}

NonGemmOp parse_op(const json& j, const std::string& file, std::size_t index) {
  JsonFields f(j, file, fmt::format("ops[{}]", index));
  NonGemmOp op;
  const std::string kind = f.required_choice("kind", {"elementwise", "reduction", "normalization", "softmax", "loss",
                                                      "optimizer", "pooling", "quantizer"});
  parse_op_kind(kind, &op.kind);
  op.name = f.required_string("name");
  if (op.name.empty()) f.fail("name", "expected a non-empty name");
  op.layer = f.optional_string("layer").value_or(op.name);
  parse_op_phase(f.required_choice("phase", {"fwd", "bwd", "update"}), &op.phase);
  op.elements = static_cast<std::uint64_t>(f.required_int("elements", 0, kOpMaxElements, "an element count below 2^48"));
  if (const json* fl = f.optional_object("flops")) {
    JsonFields ff(*fl, file, fmt::format("ops[{}].flops", index));
    for (int o = 0; o < kNumFpOps; ++o) {
      op.flops[o] = static_cast<std::uint64_t>(
          ff.optional_int(to_string(static_cast<FpOp>(o)), 0, kOpMaxFlops, "a count below 2^56").value_or(0));
    }
    ff.finish();
  }
  if (const json* r = f.optional_array("reads")) op.reads = parse_op_tensors(*r, file, fmt::format("ops[{}].reads", index), false);
  if (const json* w = f.optional_array("writes")) op.writes = parse_op_tensors(*w, file, fmt::format("ops[{}].writes", index), true);
  f.finish();
  return op;
}

}  // namespace

Trace parse_trace_json(const std::string& text, const std::string& file, const std::string& dir) {
  json doc = parse_json_document(text, file);
  JsonFields f(doc, file, "");
  f.required_choice("format", {kTraceFormatName});
  std::int64_t version = f.required_int("version", INT64_MIN, INT64_MAX, "an integer");
  if (version != kTraceFormatVersion) {
    f.fail("version", fmt::format("unsupported trace format version {}; this mfsim reads version {}",
                                  version, kTraceFormatVersion));
  }
  Trace t;
  t.version = static_cast<int>(version);
  t.generator = f.optional_string("generator").value_or("");
  t.description = f.optional_string("description").value_or("");
  bool have_payload_file = false;
  if (const json* pj = f.optional_object("payload_file")) {
    JsonFields pf(*pj, file, "payload_file");
    std::string rel = pf.required_string("path");
    if (rel.empty()) pf.fail("path", "expected a file name, got \"\"");
    t.payload_path = (!rel.empty() && rel[0] == '/') ? rel : dir + rel;
    t.payload_file_bytes = static_cast<std::uint64_t>(
        pf.required_int("bytes", static_cast<std::int64_t>(kPayloadHeaderBytes), INT64_MAX,
                        "a byte count >= 16"));
    pf.finish();
    have_payload_file = true;
  }
  const json& recs = f.required_array("records");
  t.records.reserve(recs.size());
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < recs.size(); ++i) {
    t.records.push_back(parse_record(recs[i], file, i, have_payload_file, t.payload_file_bytes));
    if (__builtin_add_overflow(total, t.records.back().macs(), &total)) {
      throw InputError(fmt::format("{}: records[{}]: total MACs of the trace overflow 64 bits",
                                   file, i));
    }
  }
  if (const json* ops = f.optional_array("ops")) {
    if (ops->size() > (std::size_t{1} << 20)) f.fail("ops", "more than 2^20 operations");
    t.ops.reserve(ops->size());
    for (std::size_t i = 0; i < ops->size(); ++i) t.ops.push_back(parse_op((*ops)[i], file, i));
  }
  f.finish();
  return t;
}

void TraceReader::require_gemms(const char* verb) const {
  if (trace_.records.empty()) {
    throw InputError(fmt::format("{}: records: the trace has no GEMMs; nothing to {}", path_, verb));
  }
}

TraceReader::TraceReader(const std::string& path) : path_(path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    throw InputError(fmt::format("{}: is a directory; expected a trace file (.json)", path));
  }
  note_input(path);
  trace_ = parse_trace_json(read_file(path), path, dir_of(path));
  if (trace_.payload_path.empty()) return;
  note_input(trace_.payload_path);
  fd_ = ::open(trace_.payload_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    throw InputError(fmt::format("{}: payload_file.path: cannot open {}: {}", path,
                                 trace_.payload_path, std::strerror(errno)));
  }
  struct stat pst {};
  if (::fstat(fd_, &pst) != 0 || !S_ISREG(pst.st_mode)) {
    ::close(fd_);
    fd_ = -1;
    throw InputError(fmt::format("{}: payload_file.path: {} is not a regular file", path,
                                 trace_.payload_path));
  }
  auto actual = static_cast<std::uint64_t>(pst.st_size);
  std::uint8_t header[kPayloadHeaderBytes] = {};
  const bool read_ok = actual >= kPayloadHeaderBytes && ::pread(fd_, header, kPayloadHeaderBytes, 0) ==
                                                           static_cast<ssize_t>(kPayloadHeaderBytes);
  try {
    check_payload_header(read_ok ? header : nullptr, actual);
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
}

TraceReader::TraceReader(const std::string& name, const std::string& json_text, std::vector<std::uint8_t> payload)
    : path_(name), in_memory_(true), memory_(std::move(payload)) {
  trace_ = parse_trace_json(json_text, name, "");
  if (trace_.payload_path.empty()) {
    if (!memory_.empty()) {
      throw InputError(fmt::format("{}: payload_file: operand bytes were given but the trace names no payload_file", name));
    }
    return;
  }
  const auto actual = static_cast<std::uint64_t>(memory_.size());
  check_payload_header(actual >= kPayloadHeaderBytes ? memory_.data() : nullptr, actual);
}

// The payload's header (magic, version) and its size against the trace's payload_file.bytes.
// `header` is null when the payload is too short to hold one.
void TraceReader::check_payload_header(const std::uint8_t* header, std::uint64_t actual) {
  if (header == nullptr || std::memcmp(header, kPayloadMagic, sizeof kPayloadMagic) != 0) {
    throw InputError(fmt::format("{}: not an mfsim payload file (bad magic; expected MFSIMBIN)",
                                 in_memory_ ? path_ + ": payload" : trace_.payload_path));
  }
  std::uint32_t bin_version = 0;
  std::memcpy(&bin_version, header + 8, 4);  // little-endian hosts only (x86-64, aarch64)
  if (bin_version != static_cast<std::uint32_t>(kTraceFormatVersion)) {
    throw InputError(fmt::format("{}: unsupported payload file version {}; expected {}",
                                 in_memory_ ? path_ + ": payload" : trace_.payload_path, bin_version,
                                 kTraceFormatVersion));
  }
  if (actual != trace_.payload_file_bytes) {
    throw InputError(fmt::format(
        "{}: payload_file.bytes: {} has {} bytes, the trace says {} (truncated or replaced "
        "payload file)",
        path_, in_memory_ ? std::string("the payload") : trace_.payload_path, actual, trace_.payload_file_bytes));
  }
}

TraceReader::~TraceReader() {
  if (fd_ >= 0) ::close(fd_);
}

std::vector<std::uint8_t> TraceReader::read_range(std::size_t index, const char* which,
                                                  const PayloadRef& ref) const {
  std::vector<std::uint8_t> buf(ref.bytes);
  std::uint64_t done = 0;
  if (in_memory_) {  // bounds were checked against payload_file.bytes when the trace was parsed
    if (ref.offset > memory_.size() || ref.bytes > memory_.size() - ref.offset) {
      throw InputError(fmt::format("{}: records[{}].payload.{}: {} bytes at offset {} lie outside the payload",
                                   path_, index, which, ref.bytes, ref.offset));
    }
    if (ref.bytes > 0) std::memcpy(buf.data(), memory_.data() + ref.offset, ref.bytes);
    done = ref.bytes;
  }
  while (done < ref.bytes) {
    ssize_t n = ::pread(fd_, buf.data() + done, ref.bytes - done,
                        static_cast<off_t>(ref.offset + done));
    if (n <= 0) {
      throw InputError(fmt::format("{}: records[{}].payload.{}: cannot read {} bytes at offset {} "
                                   "of {}",
                                   path_, index, which, ref.bytes, ref.offset, trace_.payload_path));
    }
    done += static_cast<std::uint64_t>(n);
  }
  std::uint32_t crc = crc32(buf.data(), buf.size());
  if (crc != ref.crc32) {
    throw InputError(fmt::format(
        "{}: records[{}].payload.{}: checksum mismatch (crc32 recorded {:08x}, computed {:08x})",
        path_, index, which, ref.crc32, crc));
  }
  return buf;
}

namespace {

template <typename T>
std::vector<T> decode_le(const std::vector<std::uint8_t>& raw) {
  std::vector<T> out(raw.size() / sizeof(T));
  if (!raw.empty()) std::memcpy(out.data(), raw.data(), out.size() * sizeof(T));
  return out;
}

void decode_operand(NumFormat f, const std::vector<std::uint8_t>& raw, std::uint64_t elems,
                    std::vector<Pot4Code>* pot4, std::vector<std::int8_t>* i8,
                    std::vector<float>* f32) {
  switch (f) {
    case NumFormat::kPot4:
      pot4->resize(elems);
      pot4_unpack(raw.data(), elems, pot4->data());
      break;
    case NumFormat::kInt8:
    case NumFormat::kInt4:
    case NumFormat::kApot: *i8 = decode_le<std::int8_t>(raw); break;
    case NumFormat::kFp32: *f32 = decode_le<float>(raw); break;
    case NumFormat::kBf16: {
      auto codes = decode_le<std::uint16_t>(raw);
      f32->resize(codes.size());
      for (std::size_t i = 0; i < codes.size(); ++i) (*f32)[i] = bf16_decode(codes[i]);
      break;
    }
    case NumFormat::kFp8E4M3:
    case NumFormat::kFp8E5M2:
      f32->resize(raw.size());
      for (std::size_t i = 0; i < raw.size(); ++i) (*f32)[i] = fp8_decode(f, raw[i]);
      break;
  }
}

}  // namespace

RecordPayload TraceReader::read_payload(std::size_t index) const {
  const TraceRecord& r = trace_.records.at(index);
  if (!r.has_payload) {
    throw InputError(fmt::format("{}: records[{}]: record has no payload (shape-only)", path_,
                                 index));
  }
  RecordPayload p;
  auto a = read_range(index, "a", r.payload_a);
  auto b = read_range(index, "b", r.payload_b);
  auto c = read_range(index, "expected", r.payload_expected);
  decode_operand(r.a.format, a, static_cast<std::uint64_t>(r.shape.m) * r.shape.k, &p.a_pot4,
                 &p.a_int8, &p.a_fp32);
  decode_operand(r.b.format, b, static_cast<std::uint64_t>(r.shape.k) * r.shape.n, &p.b_pot4,
                 &p.b_int8, &p.b_fp32);
  for (const auto& [f, raw, elems, which] :
       {std::tuple{r.a.format, &a, static_cast<std::uint64_t>(r.shape.m) * r.shape.k, "a"},
        std::tuple{r.b.format, &b, static_cast<std::uint64_t>(r.shape.k) * r.shape.n, "b"}}) {
    if (f == NumFormat::kPot4 && !raw->empty() && elems % 2 == 1 && (raw->back() >> 4) != 0) {
      throw InputError(fmt::format("{}: records[{}].payload.{}: padding nibble of the last byte is "
                                   "not zero",
                                   path_, index, which));
    }
  }
  if (r.scaled()) {
    for (const auto& [on, ref, out, which] :
         {std::tuple{r.a.scale_block > 0, &r.payload_a_scales, &p.a_scales, "a_scales"},
          std::tuple{r.b.scale_block > 0, &r.payload_b_scales, &p.b_scales, "b_scales"}}) {
      if (!on) continue;
      *out = decode_le<std::int8_t>(read_range(index, which, *ref));
      for (std::size_t i = 0; i < out->size(); ++i) {
        if ((*out)[i] < kPot4ScaleExpMin) {
          throw InputError(fmt::format("{}: records[{}].payload.{}: element {} is {}; a scale exponent is in [{}, {}]",
                                       path_, index, which, i, (*out)[i], kPot4ScaleExpMin, kPot4ScaleExpMax));
        }
      }
    }
  }
  switch (r.output_type()) {
    case OutputType::kI32: {
      auto v = decode_le<std::int32_t>(c);
      p.expected_acc.assign(v.begin(), v.end());
      break;
    }
    case OutputType::kI64: p.expected_acc = decode_le<std::int64_t>(c); break;
    case OutputType::kF32: p.expected_fp32 = decode_le<float>(c); break;
  }
  if (!is_float_format(r.format())) {
    for (std::size_t i = 0; i < p.expected_acc.size(); ++i) {
      if (p.expected_acc[i] > r.accumulator.max() || p.expected_acc[i] < r.accumulator.min()) {
        throw InputError(fmt::format(
            "{}: records[{}].payload.expected: element {} = {} does not fit the {}-bit "
            "accumulator",
            path_, index, i, p.expected_acc[i], r.accumulator.bits));
      }
    }
  }
  // Each operand's range by its own format (the shift-add pair: only its INT8 side).
  for (const auto& [f, v] : {std::pair{r.a.format, &p.a_int8}, std::pair{r.b.format, &p.b_int8}}) {
    if (f != NumFormat::kInt8 && f != NumFormat::kInt4 && f != NumFormat::kApot) continue;
    const int qmax = static_cast<int>(format_info(f).max_int);
    for (std::size_t i = 0; i < v->size(); ++i) {
      if (f == NumFormat::kApot && !apot_level((*v)[i])) {
        throw InputError(fmt::format("{}: records[{}].payload.{}: element {} is {}; apot operands are 0, +-2^i or "
                                     "+-(2^i + 2^j) with 0 <= j < i <= 6",
                                     path_, index, v == &p.a_int8 ? "a" : "b", i, (*v)[i]));
      }
      if ((*v)[i] < -qmax || (*v)[i] > qmax) {
        throw InputError(fmt::format("{}: records[{}].payload.{}: element {} is {}; {} "
                                     "operands are symmetric in [-{}, {}]",
                                     path_, index, v == &p.a_int8 ? "a" : "b", i, (*v)[i], to_string(f), qmax,
                                     qmax));
      }
    }
  }
  if (r.scaled()) {  // the aligned sum must fit its 64 bits whatever the operands
    const std::vector<std::int32_t> ia = record_operand_ints(r, true, p), ib = record_operand_ints(r, false, p);
    ScaledLsb lsb;
    std::string why;
    if (!scaled_lsb(r.shape.m, r.shape.n, r.shape.k, ia.data(), record_scale_groups(r, true, p), ib.data(),
                    record_scale_groups(r, false, p), r.max_product_term(), &lsb, &why)) {
      throw InputError(fmt::format("{}: records[{}].payload: {}", path_, index, why));
    }
    p.scaled_checked = true;
    p.scaled_min_a = lsb.min_a;
    p.scaled_min_b = lsb.min_b;
  }
  for (const auto& [fmt_of, vals, which] : {std::tuple{r.a.format, &p.a_fp32, "a"}, std::tuple{r.b.format, &p.b_fp32, "b"}}) {
    if (fmt_of != NumFormat::kFp8E4M3 && fmt_of != NumFormat::kFp8E5M2 && fmt_of != NumFormat::kBf16) continue;
    for (std::size_t i = 0; i < vals->size(); ++i) {  // the writer never stores them: a corrupt payload
      if (std::isnan((*vals)[i]) || std::isinf((*vals)[i])) {
        throw InputError(fmt::format("{}: records[{}].payload.{}: element {} is a NaN or infinity code of {}",
                                     path_, index, which, i, to_string(fmt_of)));
      }
    }
  }
  return p;
}

}  // namespace mfsim
