// Reads and validates an mfsim trace (docs/trace-format.md).
//
// Opening parses and validates all metadata (every error names the file and the field, e.g.
// "t.json: records[12].K: expected a positive integer, got -3") and checks the payload file's
// header and size, but reads no payload. read_payload() loads one record's operands on demand
// and verifies their checksums, so traces larger than memory can be replayed record by record.
#pragma once

#include <memory>
#include <cstdint>
#include <string>
#include <vector>

#include "traces/trace.h"

namespace mfsim {

// Parses trace metadata from JSON text; `file` names it in errors, `dir` resolves the payload
// file path. Does not touch the payload file.
Trace parse_trace_json(const std::string& text, const std::string& file, const std::string& dir);

class TraceReader {
 public:
  explicit TraceReader(const std::string& path);  // throws InputError
  // A trace held in memory (the Python module's trace objects): `name` stands for the file in
  // every message (e.g. "<capture of ResNet>"); `payload` is the whole payload file's bytes
  // (empty for a shape-only trace), checked as a file's would be.
  TraceReader(const std::string& name, const std::string& json_text, std::vector<std::uint8_t> payload);
  ~TraceReader();
  TraceReader(const TraceReader&) = delete;
  TraceReader& operator=(const TraceReader&) = delete;

  const Trace& trace() const { return trace_; }
  const std::string& path() const { return path_; }
  // Throws InputError "PATH: records: the trace has no GEMMs; nothing to VERB" for an empty trace
  // (inspect accepts one; simulate, compare and sweep have nothing to do with it).
  void require_gemms(const char* verb) const;

  // Reads, verifies (sizes, CRC-32) and decodes one record's payload. Throws InputError.
  RecordPayload read_payload(std::size_t record_index) const;

 private:
  std::vector<std::uint8_t> read_range(std::size_t index, const char* which,
                                       const PayloadRef& ref) const;

  void check_payload_header(const std::uint8_t* header, std::uint64_t actual);

  std::string path_;
  Trace trace_;
  int fd_ = -1;
  bool in_memory_ = false;
  std::vector<std::uint8_t> memory_;  // the payload of an in-memory trace
};

}  // namespace mfsim
