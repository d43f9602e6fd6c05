// What a producer of GEMMs (the training core) needs to record a step: one call per GEMM with
// its description, operands and exact expected output. The trace writer implements it
// (traces/trace_writer.h); tests can implement it to inspect a step without files.
#pragma once

#include <cstdint>

#include "traces/trace.h"

namespace mfsim {

class GemmRecorder {
 public:
  virtual ~GemmRecorder() = default;
  // Row-major A (M x K), B (K x N), expected C (M x N); the record's format says which call:
  // add_int8 for int8 and int4, add_fp32 for every float format (values exactly of the format).
  virtual void add_pot4(const TraceRecord& rec, const Pot4Code* a, const Pot4Code* b, const std::int64_t* expected) = 0;
  virtual void add_int8(const TraceRecord& rec, const std::int8_t* a, const std::int8_t* b,
                        const std::int64_t* expected) = 0;
  virtual void add_fp32(const TraceRecord& rec, const float* a, const float* b, const float* expected) = 0;
  // A shift-add GEMM: one operand PoT4, the other INT8 (rec.a.format says which is A).
  virtual void add_pot4_int8(const TraceRecord& rec, const Pot4Code* pot4_operand, const std::int8_t* int8_operand,
                             const std::int64_t* expected) = 0;
  // A GEMM with a two-term operand (rec.apot_pair()): each operand as PoT4 codes, or as integers
  // (INT8 values, or two-term values: 0, +-2^i, +-(2^i + 2^j)), the other pointer null.
  virtual void add_apot(const TraceRecord& rec, const Pot4Code* a_pot4, const std::int8_t* a_int,
                        const Pot4Code* b_pot4, const std::int8_t* b_int, const std::int64_t* expected);
  // A GEMM with finer scales (rec.scaled()): each operand as PoT4 codes or INT8 values (the
  // other pointer null), each operand with scale_block > 0 with its groups' exponents E
  // (rec.scale_count_a(), _b()), and the exact aligned sum (models/scaled_gemm.h).
  virtual void add_scaled(const TraceRecord& rec, const Pot4Code* a_pot4, const std::int8_t* a_int8,
                          const Pot4Code* b_pot4, const std::int8_t* b_int8, const std::int8_t* a_scales,
                          const std::int8_t* b_scales, const std::int64_t* expected);
};

}  // namespace mfsim
