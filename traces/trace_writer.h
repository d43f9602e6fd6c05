// Writes an mfsim trace (docs/trace-format.md): records are appended one by one (payloads
// stream to the payload file as they come, so a large step need not be held in memory), and
// commit() writes the JSON. Both files are written atomically (temporary file, then rename);
// a writer destroyed without commit() leaves nothing behind.
#pragma once

#include <memory>
#include <string>

#include "traces/gemm_recorder.h"
#include "traces/trace.h"

namespace mfsim {

class AtomicFile;

class TraceWriter : public GemmRecorder {
 public:
  // `json_path` should end in .json; the payload file (if any record has operands) is the same
  // path with .bin instead.
  TraceWriter(std::string json_path, std::string generator, std::string description = "");
  ~TraceWriter();
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;

  // A shape-only record (rec.has_payload is ignored and left false).
  void add_shape(const TraceRecord& rec);
  // Records with operands and expected output; the record's format must match.
  void add_pot4(const TraceRecord& rec, const Pot4Code* a, const Pot4Code* b,
                const std::int64_t* expected) override;
  void add_int8(const TraceRecord& rec, const std::int8_t* a, const std::int8_t* b,
                const std::int64_t* expected) override;
  void add_fp32(const TraceRecord& rec, const float* a, const float* b, const float* expected) override;
  void add_pot4_int8(const TraceRecord& rec, const Pot4Code* pot4_operand, const std::int8_t* int8_operand,
                     const std::int64_t* expected) override;
  void add_apot(const TraceRecord& rec, const Pot4Code* a_pot4, const std::int8_t* a_int, const Pot4Code* b_pot4,
                const std::int8_t* b_int, const std::int64_t* expected) override;
  void add_scaled(const TraceRecord& rec, const Pot4Code* a_pot4, const std::int8_t* a_int8, const Pot4Code* b_pot4,
                  const std::int8_t* b_int8, const std::int8_t* a_scales, const std::int8_t* b_scales,
                  const std::int64_t* expected) override;

  // An operation outside the GEMMs (trace.h NonGemmOp), in the order the step runs them.
  void add_op(const NonGemmOp& op) { trace_.ops.push_back(op); }

  std::size_t size() const { return trace_.records.size(); }
  void commit();

  static std::string payload_path_for(const std::string& json_path);

 private:
  PayloadRef append(const void* data, std::uint64_t bytes);
  // A record's shape and operand formats for a call writing `want` operands; `apot_call`: the
  // call for two-term pairs (add_apot), the only one that takes them.
  void check(const TraceRecord& rec, FormatKind want, bool apot_call = false) const;
  void push_with_payload(TraceRecord rec, const std::vector<std::uint8_t>& a,
                         const std::vector<std::uint8_t>& b, const std::vector<std::uint8_t>& c);

  std::string json_path_;
  Trace trace_;
  std::unique_ptr<AtomicFile> bin_;
};

// Serialises trace metadata to the JSON text of the format (payload_path is written as given).
std::string trace_to_json(const Trace& trace);

}  // namespace mfsim
