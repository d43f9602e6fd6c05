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
};

}  // namespace mfsim
