// The command line's own description of itself: one version from one place (CMake's project
// version), and array lists generated from the PE registry.
#include <fmt/format.h>

#include <catch2/catch.hpp>

#include "sim/pe_type.h"
#include "tests/test_util.h"

using mfsim::test::run_mfsim;

TEST_CASE("cli: --version is the project's version, and help lists every PE type of the registry", "[smoke]") {
  auto v = run_mfsim("--version");
  CHECK(v.exit_code == 0);
  CHECK(v.out == fmt::format("mfsim {}\n", MFSIM_VERSION));
  auto h = run_mfsim("--help");
  CHECK(h.exit_code == 0);
  CHECK(h.out.find(fmt::format("mfsim {}:", MFSIM_VERSION)) != std::string::npos);
  CHECK(h.out.find("arrays (array.kind, from the PE registry): " + mfsim::pe_type_names() + "\n") != std::string::npos);
  auto s = run_mfsim("simulate --help");
  CHECK(s.exit_code == 0);
  // The option table wraps long descriptions onto indented lines: read it unwrapped.
  std::string flat;
  for (std::size_t i = 0; i < s.out.size(); ++i) {
    if (s.out[i] == '\n') {
      std::size_t j = i + 1;
      while (j < s.out.size() && s.out[j] == ' ') ++j;
      if (j - i > 20) {  // a continuation line (indented past the option names)
        i = j - 1;
        continue;
      }
    }
    flat += s.out[i];
  }
  CHECK(flat.find("array.kind=" + mfsim::pe_type_names()) != std::string::npos);
  for (const mfsim::PeType* pe : mfsim::pe_types()) CHECK(h.out.find(pe->name) != std::string::npos);
}
