// An energy table file (energy/tables/*.json format) and every derived figure a report uses.
#include <cstdint>
#include <string>

#include "common/error.h"
#include "energy/energy_table.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  try {
    mfsim::EnergyTable t = mfsim::parse_energy_table(in, "table.json");
    for (double kib : {1.0, 64.0, 128.0, 256.0, 4096.0}) (void)t.sram_pj_per_bit(kib * 1024);
    (void)t.dram_pj_per_byte();
    for (int bits : {8, 16, 24, 32, 64}) (void)t.int_add(bits);
  } catch (const mfsim::InputError&) {
  }
  return 0;
}

