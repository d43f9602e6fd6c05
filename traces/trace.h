// The mfsim trace: the GEMMs of a training step (or of a network), as plain structs.
//
// On disk (docs/trace-format.md): a JSON metadata file, and for traces with operands a binary
// payload file beside it. Shape-only traces are just the JSON. Readers (trace_reader.h) parse
// and validate into these structs; nothing downstream reads the JSON itself.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/accumulator.h"
#include "models/gemm_ref.h"
#include "models/number_format.h"
#include "models/pot4.h"

namespace mfsim {

constexpr int kTraceFormatVersion = 1;
constexpr const char* kTraceFormatName = "mfsim-trace";
constexpr char kPayloadMagic[8] = {'M', 'F', 'S', 'I', 'M', 'B', 'I', 'N'};
constexpr std::uint64_t kPayloadHeaderBytes = 16;  // magic, u32 version, u32 reserved (0)
constexpr std::int64_t kTraceMaxDim = 2147483647;  // M, N, K in [1, 2^31 - 1]
constexpr int kFp8ScaleExpMin = -160, kFp8ScaleExpMax = 160;  // fp8 operands' scale_exp

// The three GEMMs of a linear layer with activations A (M x K), weights W (K x N) and output
// error G (M x N): fwd Y = A.W, bwd_data dA = G.W^T, bwd_weight dW = A^T.G.
enum class Phase : std::uint8_t { kFwd = 0, kBwdData = 1, kBwdWeight = 2 };
constexpr int kNumPhases = 3;
const char* to_string(Phase p);
bool parse_phase(const std::string& s, Phase* out);

// Element type of a stored expected output: integer accumulators (pot4, int8, int4) or FP32
// (fp32, bf16, fp8: products of these formats are summed in FP32).
enum class OutputType : std::uint8_t { kI32 = 0, kI64 = 1, kF32 = 2 };
const char* to_string(OutputType t);
int bytes_per_element(OutputType t);

struct OperandSpec {
  NumFormat format = NumFormat::kPot4;
  int scale_exp = 0;   // pot4: the tensor's scale exponent E; fp8: v = q * 2^scale_exp
  float scale = 1.0f;  // int8, int4: v = q * scale (positive, finite)
  // pot4 with finer scales (models/scaled_gemm.h): one scale exponent E per group of scale_block
  // elements along K of each row of A or column of B (K: one per row or column), held in the
  // payload ("a_scales", "b_scales"); 0: the one scale_exp of the tensor.
  std::int64_t scale_block = 0;
};
// Both operands of a GEMM share one format, except the hybrid FP8 pair (E4M3 with E5M2), the
// shift-add pair (one PoT4 and one INT8 operand: every product a shift of the INT8 value) and the
// two-term pairs (a two-term operand with an INT8, PoT4 or two-term one: every product at most
// two shifts of an integer and their sum).
bool operand_formats_compatible(NumFormat a, NumFormat b);
bool is_shift_pair(NumFormat a, NumFormat b);
bool is_apot_pair(NumFormat a, NumFormat b);

struct PayloadRef {
  std::uint64_t offset = 0;  // byte offset in the payload file
  std::uint64_t bytes = 0;
  std::uint32_t crc32 = 0;
};

// What kind of layer a record belongs to, for what is quantized: a fully connected layer
// (activations A x weights W), a convolution (the same as an im2col GEMM, but its input is a
// feature map: `conv` holds the geometry), or a matmul of two activations (attention's Q K^T and
// softmax(S) V: no weights, so no weight quantization and no weight bias correction).
enum class LayerType : std::uint8_t { kFc = 0, kConv = 1, kMatmul = 2 };
const char* to_string(LayerType t);

// A convolution's forward geometry, per group: input batch x in_h x in_w x in_c (channels of one
// group), kernel kernel_h x kernel_w, stride, zero padding `pad` on each side and, past the far
// edges only, pad_end_h more zero rows (below) and pad_end_w more zero columns (right; SCALE-Sim's
// rounded-up output size, docs/workloads.md). Output
// P = (in_h + 2 pad + pad_end_h - kernel_h) / stride + 1 (floor), Q likewise; the forward GEMM is
// M = batch P Q, K = kernel_h kernel_w in_c.
struct ConvGeometry {
  std::int64_t batch = 0, in_h = 0, in_w = 0, in_c = 0;
  std::int64_t kernel_h = 0, kernel_w = 0, stride = 1, pad = 0;
  std::int64_t pad_end_h = 0, pad_end_w = 0;
  std::int64_t out_h() const { return (in_h + 2 * pad + pad_end_h - kernel_h) / stride + 1; }
  std::int64_t out_w() const { return (in_w + 2 * pad + pad_end_w - kernel_w) / stride + 1; }
  std::uint64_t input_elements() const {
    return static_cast<std::uint64_t>(batch) * in_h * in_w * in_c;
  }
};

struct TraceRecord {
  std::string layer;
  Phase phase = Phase::kFwd;
  GemmShape shape;                // C[M x N] = A[M x K] . B[K x N], row-major
  std::int64_t repeat = 1;        // independent GEMMs of this shape (attention heads, groups)
  OperandSpec a, b;               // one format, or the hybrid FP8 pair (operand_formats_compatible)
  AccumulatorSpec accumulator;    // integer formats (pot4, int8, int4; default 32 bits)
  bool fp32_fma = false;          // fp32: fused multiply-add instead of multiply then add
  LayerType layer_type = LayerType::kFc;  // optional in the file; default fc
  ConvGeometry conv;              // layer_type conv only
  bool has_payload = false;
  PayloadRef payload_a, payload_b, payload_expected;
  PayloadRef payload_a_scales, payload_b_scales;  // an operand with scale_block > 0

  // Finer scales on either operand: the expected output is the exact 64-bit aligned sum
  // (models/scaled_gemm.h) at the LSB the operands define.
  bool scaled() const { return a.scale_block > 0 || b.scale_block > 0; }
  // Scale exponents of an operand with scale_block: M (A) or N (B) times ceil(K / scale_block).
  std::uint64_t scale_count_a() const;
  std::uint64_t scale_count_b() const;

  NumFormat format() const { return a.format; }
  // The record's formats by name: a.format's, or of two formats "pot4+int8",
  // "int8+apot" or "pot4+apot" in either orientation,
  // each followed by " (finer scales)" when the record has them (reports, inspect, notes).
  std::string format_name() const;
  bool shift_pair() const { return is_shift_pair(a.format, b.format); }
  bool apot_pair() const { return is_apot_pair(a.format, b.format); }
  std::int64_t max_product_term() const { return mfsim::max_product_term(a.format, b.format); }
  std::uint64_t macs() const { return shape.macs() * static_cast<std::uint64_t>(repeat); }
  OutputType output_type() const;
  std::uint64_t operand_a_bytes() const;   // packed size on disk
  std::uint64_t operand_b_bytes() const;
  std::uint64_t expected_bytes() const;
};

// The work of a training step outside its GEMMs (docs/trace-format.md, "ops"): normalization,
// activations, residual additions, pooling, softmax and the loss, the optimizer's update. Each
// operation is counted, not simulated element by element: its elements, its FP32 arithmetic by
// kind and the tensors it reads and writes (sizes, formats). The vector unit of the cycle model
// (sim/vector_unit.h) times and prices it.
enum class OpKind : std::uint8_t {
  kElementwise = 0, kReduction, kNormalization, kSoftmax, kLoss, kOptimizer, kPooling, kQuantizer
};
constexpr int kNumOpKinds = 8;
const char* to_string(OpKind k);
bool parse_op_kind(const std::string& s, OpKind* out);

// fwd and bwd as the GEMMs' passes (bwd: the errors' and the gradients' pass); update: the
// optimizer's step after the backward pass.
enum class OpPhase : std::uint8_t { kFwd = 0, kBwd = 1, kUpdate = 2 };
constexpr int kNumOpPhases = 3;
const char* to_string(OpPhase p);
bool parse_op_phase(const std::string& s, OpPhase* out);

// FP32 arithmetic of an operation, by kind: additions (and subtractions), multiplications,
// divisions, square roots, exponentials and comparisons (max, ReLU's test).
enum class FpOp : std::uint8_t { kAdd = 0, kMul, kDiv, kSqrt, kExp, kCmp };
constexpr int kNumFpOps = 6;
const char* to_string(FpOp o);

// How a tensor of an operation meets DRAM (docs/non-gemm.md, "Fusion"; vector.fusion):
//   stream: the activation or error flowing from the GEMM or operation before to the one after;
//           it crosses DRAM only unfused (fused, it stays in the vector unit);
//   saved:  a forward tensor the backward pass reads again (batch norm's input, ReLU's output,
//           the probabilities, a residual's skip input): read from DRAM in both modes;
//   state:  parameters, their gradients and the optimizer's state: DRAM in both modes;
//   save:   the write of a tensor read again later (a saved tensor, or the merged gradient at a
//           residual block's input), made only fused (unfused, the tensor is in DRAM already as
//           the stream it was).
// Reads are stream, saved or state; writes stream, state or save.
enum class TensorRole : std::uint8_t { kStream = 0, kSaved, kState, kSave };
constexpr int kNumTensorRoles = 4;
const char* to_string(TensorRole r);

struct OpTensor {
  std::string name;
  std::uint64_t elements = 0;
  NumFormat format = NumFormat::kFp32;
  TensorRole role = TensorRole::kStream;
  std::uint64_t bytes() const;  // elements at the format's width, rounded up to whole bytes
  bool crosses_dram(bool fused) const;  // whether the vector unit moves it through DRAM
};

struct NonGemmOp {
  OpKind kind = OpKind::kElementwise;
  std::string name;   // what it computes: "batchnorm", "relu", "residual_add", "sgd_momentum", ...
  std::string layer;  // the layer it belongs to (a GEMM record's layer, or its own name)
  OpPhase phase = OpPhase::kFwd;
  std::uint64_t elements = 0;  // elements it produces (the optimizer: parameters updated)
  std::uint64_t flops[kNumFpOps] = {};
  std::vector<OpTensor> reads, writes;
  // DRAM bytes its tensors move, unfused or fused (OpTensor::crosses_dram).
  std::uint64_t read_bytes(bool fused = false) const;
  std::uint64_t write_bytes(bool fused = false) const;
  std::uint64_t save_bytes() const;  // the writes only a fused unit makes (TensorRole::kSave)
};

struct Trace {
  int version = kTraceFormatVersion;
  std::string generator;
  std::string description;
  std::string payload_path;            // resolved path of the payload file ("" if none)
  std::uint64_t payload_file_bytes = 0;
  std::vector<TraceRecord> records;
  std::vector<NonGemmOp> ops;  // optional: the step's work outside the GEMMs

  std::size_t records_with_payload() const;
  std::uint64_t total_macs() const;
};

// Elements the training step quantizes, charged to the record whose GEMM first uses them (all
// `repeat` copies): a layer's input activations (a convolution's input feature map, not its
// im2col matrix) and its weights on the forward record (a matmul's second operand counts as
// activations), and its output error G: on every bwd_weight record (the G of that GEMM; a
// layer whose GEMMs are split into several records, like attention per sequence and head, has
// one G slice per record), or once on its bwd_data record when the trace has no bwd_weight record
// for the layer (a first layer has no bwd_data record, but its G is quantized all the same).
// An operand with finer scales (scale_block) is quantized by each GEMM that reads it, as that
// GEMM's operand (a convolution's A as its M x K im2col matrix): charged on each such record. A
// property of the trace: the same on every array.
struct QuantizedElements {
  std::uint64_t activations = 0, weights = 0, errors = 0;
  // Of those, the elements the record's operands hold in INT8 (the shift-add pair's INT8
  // operand: quantized by the power-of-two-scaled integer quantizer, not ALS-POTQ).
  std::uint64_t int8_activations = 0, int8_weights = 0, int8_errors = 0;
  // Of those, the elements the record's operands hold as two-term powers of two (the two-term
  // quantizer, models/quantizer.h apot_nearest and apot_stochastic).
  std::uint64_t apot_activations = 0, apot_weights = 0, apot_errors = 0;
};
std::vector<QuantizedElements> quantized_elements(const Trace& trace);

// Operands and expected output of one record, decoded into memory (one element per slot):
// PoT4 codes; INT8 and INT4 values; the float formats' values as binary32 (exact).
struct RecordPayload {
  std::vector<Pot4Code> a_pot4, b_pot4;
  std::vector<std::int8_t> a_int8, b_int8;  // int8, int4
  std::vector<float> a_fp32, b_fp32;        // fp32, bf16, fp8e4m3, fp8e5m2
  std::vector<std::int8_t> a_scales, b_scales;  // finer scales: each group's scale exponent E
  // Finer scales: the least grid exponent of each operand's non-zero groups (models/scaled_gemm.h
  // ScaledLsb::min_a, min_b), set by the reader when it checked the record's bound.
  bool scaled_checked = false;
  int scaled_min_a = 0, scaled_min_b = 0;
  std::vector<std::int64_t> expected_acc;   // integer formats
  std::vector<float> expected_fp32;         // float formats
};

struct ScaleGroups;
// The scale groups of a scaled record's operand (models/scaled_gemm.h), each group's exponent x
// on the integer grid: PoT4 E - 6 (per group, or the tensor's), INT8 log2(scale) (a power of two).
ScaleGroups record_scale_groups(const TraceRecord& rec, bool a_side, const RecordPayload& p);
// The operands of a scaled record as integers on their grids (PoT4: +-2^(m-1); INT8: q).
std::vector<std::int32_t> record_operand_ints(const TraceRecord& rec, bool a_side, const RecordPayload& p);

// Compares two M x N outputs element by element (floats bit for bit). Returns "" when equal,
// else "first mismatch at output element (r, c) of MxN: <got_name> X, <want_name> Y".
std::string first_mismatch(const GemmShape& s, const std::vector<std::int64_t>& got,
                           const std::vector<std::int64_t>& want, const char* got_name, const char* want_name);
std::string first_mismatch(const GemmShape& s, const std::vector<float>& got, const std::vector<float>& want,
                           const char* got_name, const char* want_name);

// Recomputes a record's GEMM with the reference arithmetic (models/gemm_ref.h) and compares it
// with the expected output. Returns an empty string when equal, else a message naming the
// first differing element. Throws AccumulatorOverflow under OverflowPolicy::kError.
std::string check_record_result(const TraceRecord& rec, const RecordPayload& payload);

}  // namespace mfsim
