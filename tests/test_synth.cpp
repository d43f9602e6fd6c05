// scripts/synth.sh reproduces the committed synthesized area table (energy/area/osu018-synth.json)
// for the smallest PE, in the format the loader reads. Built only where yosys is installed.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>

#include "energy/area_model.h"
#include "tests/test_util.h"

using namespace mfsim;

TEST_CASE("scripts/synth.sh: the MF-MAC PE's transistors and OSU018 area equal the committed table", "[synth]") {
  test::TempDir d;
  const std::string cmd = test::source_dir() + "/scripts/synth.sh --pe mfmac --no-arrays --out " + d.file("s.json") +
                          " 2> " + d.file("log");
  REQUIRE(std::system(cmd.c_str()) == 0);
  const SynthAreaTable fresh = load_synth_area_table(d.file("s.json"));
  const SynthAreaTable shipped = load_synth_area_table("osu018-synth");
  REQUIRE(fresh.pes.size() == 1);
  const SynthPe& a = fresh.pes[0];
  const SynthPe& b = *shipped.find("mfmac");
  CHECK(a.transistors == b.transistors);
  CHECK(a.transistors_flip_flops == b.transistors_flip_flops);
  CHECK(a.flip_flops == b.flip_flops);
  CHECK(a.area_um2 == b.area_um2);
  CHECK(a.area_um2_flip_flops == b.area_um2_flip_flops);
  CHECK(fresh.provenance.at("tool") == shipped.provenance.at("tool"));
  CHECK(fresh.provenance.at("liberty_sha256") == shipped.provenance.at("liberty_sha256"));
  // Bad options: one line, exit 2.
  const std::string bad = test::source_dir() + "/scripts/synth.sh --pe mfmak --out " + d.file("x.json") + " 2> " +
                          d.file("err");
  CHECK(WEXITSTATUS(std::system(bad.c_str())) == 2);
  CHECK(test::slurp(d.file("err")) ==
        "synth.sh: --pe: unknown PE type \"mfmak\"; expected mfmac|int8|int4|shift|shift2|fp32|bf16|fp8\n");
  CHECK_FALSE(test::file_exists(d.file("x.json")));
}

TEST_CASE("scripts/synth.sh --update: replaces only the synthesized row, which names its own command and date",
          "[synth]") {
  test::TempDir d;
  const std::string table = d.file("u.json");
  {
    std::ofstream out(table);
    out << test::slurp(test::source_dir() + "/energy/area/osu018-synth.json");
  }
  const std::string cmd = test::source_dir() + "/scripts/synth.sh --pe mfmac --no-arrays --update --out " + table +
                          " 2> " + d.file("log");
  REQUIRE(std::system(cmd.c_str()) == 0);
  const SynthAreaTable updated = load_synth_area_table(table);
  const SynthAreaTable shipped = load_synth_area_table("osu018-synth");
  CHECK(updated.provenance == shipped.provenance);
  REQUIRE(updated.pes.size() == shipped.pes.size());
  REQUIRE(updated.arrays.size() == shipped.arrays.size());
  for (std::size_t i = 0; i < shipped.pes.size(); ++i) {
    const SynthPe &u = updated.pes[i], &s = shipped.pes[i];
    INFO(s.pe);
    CHECK(u.pe == s.pe);
    CHECK(u.transistors == s.transistors);
    CHECK(u.area_um2 == s.area_um2);
    if (s.pe == "mfmac") {
      CHECK(u.command.find("--pe mfmac --no-arrays --update") != std::string::npos);
      CHECK_FALSE(u.date.empty());
    } else {
      CHECK(u.command == s.command);
    }
  }
  // A row at other widths would replace the PE's row: refused, the table unchanged.
  const std::string before = test::slurp(table);
  const std::string widths = test::source_dir() + "/scripts/synth.sh --pe mfmac --no-arrays --update --acc-bits 24 --out " +
                             table + " 2> " + d.file("err24");
  CHECK(WEXITSTATUS(std::system(widths.c_str())) == 2);
  CHECK(test::slurp(d.file("err24")).find("synth.sh: --update: " + table +
                                          " has the mfmac row at 32 accumulator bits, not 24; use --out for another "
                                          "table\n") != std::string::npos);
  CHECK(test::slurp(table) == before);
  // Nothing to update: one line, exit 2, no table written.
  const std::string bad = test::source_dir() + "/scripts/synth.sh --pe mfmac --update --out " + d.file("none.json") +
                          " 2> " + d.file("err");
  CHECK(WEXITSTATUS(std::system(bad.c_str())) == 2);
  CHECK(test::slurp(d.file("err")) == "synth.sh: --update: cannot read the table \"" + d.file("none.json") + "\"\n");
  CHECK_FALSE(test::file_exists(d.file("none.json")));
}
