// The hardware configuration: a JSON config file's text, then (after a line "#SET#") one
// --set NAME=VALUE assignment per line; the result is built into a SimConfig.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <sstream>
#include <string>

#include "common/error.h"
#include "sim/params.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  const auto at = in.find("\n#SET#\n");
  try {
    mfsim::ParamSet p;
    p.load_config_text(in.substr(0, at), "cfg.json");
    if (at != std::string::npos) {
      std::istringstream sets(in.substr(at + 7));
      std::string line;
      while (std::getline(sets, line)) p.set_assignment(line);
    }
    mfsim::SimConfig c = p.build();
    (void)c;
    (void)p.to_json();
  } catch (const mfsim::InputError&) {
  }
  return 0;
}

