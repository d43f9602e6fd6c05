// A SCALE-Sim topology file, in both forms, turned into training records.
#include <cstdint>
#include <string>

#include "common/error.h"
#include "traces/networks.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  for (bool gemm : {false, true}) {
    try {
      auto layers = mfsim::parse_scalesim_topology(in, "topo.csv", gemm, 7);
      auto records = mfsim::training_records(layers, mfsim::PhaseSelection{}, mfsim::NumFormat::kPot4);
      (void)records;
    } catch (const mfsim::InputError&) {
    }
  }
  return 0;
}
