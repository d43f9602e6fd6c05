// The trace reader, JSON and payload together. Input: the JSON text, then the separator
// "\n#PAYLOAD#\n", then the payload file's bytes (the JSON may name "t.bin" as payload_file).
// Every record's payload is read; InputError is the only acceptable failure.
#include <cstdint>
#include <string>

#include "common/error.h"
#include "tests/fuzz/fuzz_util.h"
#include "traces/trace_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  const std::string sep = "\n#PAYLOAD#\n";
  const auto at = in.find(sep);
  const std::string json = in.substr(0, at);
  const std::string bin = at == std::string::npos ? std::string() : in.substr(at + sep.size());
  const std::string dir = mfsim::fuzz::scratch_dir();
  mfsim::fuzz::write_file(dir + "/t.json", reinterpret_cast<const std::uint8_t*>(json.data()), json.size());
  mfsim::fuzz::write_file(dir + "/t.bin", reinterpret_cast<const std::uint8_t*>(bin.data()), bin.size());
  try {
    mfsim::TraceReader r(dir + "/t.json");
    for (std::size_t i = 0; i < r.trace().records.size(); ++i) {
      if (r.trace().records[i].has_payload) {
        mfsim::RecordPayload p = r.read_payload(i);
        (void)mfsim::check_record_result(r.trace().records[i], p);
      }
    }
  } catch (const mfsim::InputError&) {
  } catch (const mfsim::AccumulatorOverflow&) {  // a recorded GEMM whose accumulator overflows: reported
  }
  return 0;
}
