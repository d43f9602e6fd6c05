// Area tables (published and synthesized), the area of an array, the static energy term and the
// power section of a simulate report (docs/energy-accounting.md, "Area and power").
#include <catch2/catch.hpp>

#include <cmath>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "energy/area_model.h"
#include "sim/params.h"
#include "sim/pe_type.h"
#include "tests/test_util.h"

using namespace mfsim;
using nlohmann::json;

namespace {

SimConfig config_with(std::initializer_list<std::pair<const char*, const char*>> sets) {
  ParamSet p;
  for (const auto& [k, v] : sets) p.set(k, v, "test");
  return p.build();
}

std::string table_with(const std::string& rows) {
  return R"({"format": "mfsim-area-table", "version": 1, "name": "t", "entries": [)" + rows + "]}";
}

const char* kRequiredRows =
    R"({"action": "fp32_mul", "value": 7700, "unit": "um2", "node_nm": 45, "bits": 32, "source": "s"},
       {"action": "fp32_add", "value": 4184, "unit": "um2", "node_nm": 45, "bits": 32, "source": "s"},
       {"action": "int_add", "value": 137, "unit": "um2", "node_nm": 45, "bits": 32, "source": "s"},
       {"action": "register", "value": 5.98, "unit": "um2/bit", "node_nm": 45, "bits": 1, "source": "s"},
       {"action": "sram", "value": 4000, "unit": "um2/KiB", "node_nm": 45, "bits": 64, "source": "s"},
       {"action": "leakage", "value": 10, "unit": "mW/mm2", "node_nm": 45, "bits": 1, "source": "s"})";

}  // namespace

TEST_CASE("the published area table parses and carries its sources", "[unit]") {
  REQUIRE(builtin_area_tables() == std::vector<std::string>{"published45"});
  const AreaTable t = load_area_table("published45");
  CHECK(t.find("fp32_mul")->value == 7700);
  CHECK(t.find("fp32_add")->value == 4184);
  CHECK(t.find("int8_mul")->value == 282);
  CHECK(t.int_add(32) == 137);
  CHECK(t.int_add(8) == Approx(34.25));  // linear in width
  CHECK(t.find("int4_mul")->value == Approx(282.0 / 4));                      // quadratic in width
  CHECK(t.find("bf16_mul")->value == Approx(1640.0 * 64 / 121).epsilon(1e-4));  // quadratic in the significand
  CHECK(t.register_um2_per_bit == 5.98);
  CHECK(t.leakage_mw_per_mm2 > 0);
  for (const auto& e : t.entries) CHECK_FALSE(e.source.empty());
  // Every op of every registered PE type has an area row, so every array has an area.
  for (const PeType* pe : pe_types()) {
    for (const PeOp& op : pe->ops) {
      INFO(pe->name << " " << op.table_row);
      CHECK((std::string(op.table_row) == "int_add" || t.find(op.table_row) != nullptr ||
             std::string(op.table_row) == "fp32_fma"));
    }
  }
  CHECK(load_area_table(test::source_dir() + "/energy/area/published45.json").name == "published45");
}

TEST_CASE("malformed area tables: one error naming the row and field", "[unit]") {
  CHECK_NOTHROW(parse_area_table(table_with(kRequiredRows), "a.json"));
  CHECK_THROWS_WITH(parse_area_table(table_with(R"({"action": "fp32_mul", "value": 1, "unit": "um2", "node_nm": 45,
                                                    "bits": 32, "source": "s"})"),
                                     "a.json"),
                    "a.json: entries: missing a row for action \"fp32_add\"");
  CHECK_THROWS_WITH(parse_area_table(table_with(std::string(kRequiredRows) +
                                                R"(, {"action": "sram", "value": 1, "unit": "um2/KiB", "node_nm": 45,
                                                      "bits": 64, "source": "s"})"),
                                     "a.json"),
                    "a.json: entries[6].action: duplicate action \"sram\"");
  CHECK_THROWS_WITH(parse_area_table(table_with(R"({"action": "fp32_mul", "value": 1, "unit": "pJ", "node_nm": 45,
                                                    "bits": 32, "source": "s"})"),
                                     "a.json"),
                    "a.json: entries[0].unit: expected \"um2\" for fp32_mul, got \"pJ\"");
  CHECK_THROWS_WITH(parse_area_table(table_with(R"({"action": "leakage", "value": -1, "unit": "mW/mm2",
                                                    "node_nm": 45, "bits": 1, "source": "s"})"),
                                     "a.json"),
                    "a.json: entries[0].value: expected a positive figure, got -1");
  CHECK_THROWS_WITH(parse_area_table(table_with(R"({"action": "register", "value": 1, "unit": "um2/bit",
                                                    "node_nm": 45, "bits": 1, "source": ""})"),
                                     "a.json"),
                    "a.json: entries[0].source: expected the figure's source, got \"\"");
  CHECK_THROWS_WITH(parse_area_table(table_with(R"({"action": "dram", "value": 1, "unit": "um2", "node_nm": 45,
                                                    "bits": 1, "source": "s"})"),
                                     "a.json"),
                    Catch::StartsWith("a.json: entries[0].action: unknown action \"dram\"; expected "));
  CHECK_THROWS_WITH(load_area_table("publishd45"),
                    "--area-table: unknown table \"publishd45\"; expected published45 or a JSON file");
}

TEST_CASE("the synthesized area table: every PE type at its default widths, as scripts/synth.sh writes it", "[unit]") {
  const SynthAreaTable s = load_synth_area_table("osu018-synth");
  CHECK(s.node_nm == 180);
  for (const char* key : {"command", "tool", "liberty", "date"}) CHECK_FALSE(s.provenance.at(key).get<std::string>().empty());
  CHECK(s.provenance.at("command").get<std::string>().rfind("scripts/synth.sh", 0) == 0);
  CHECK(s.provenance.at("tool").get<std::string>().rfind("Yosys ", 0) == 0);
  // The integer PEs at the default accumulator width (pe.acc_bits), the float PEs at 32 bits.
  const int acc_default = std::stoi(find_param("pe.acc_bits")->default_value);
  for (const PeType* type : pe_types()) {
    const char* name = type->name;
    INFO(name);
    const SynthPe* p = s.find(name);
    REQUIRE(p != nullptr);
    CHECK(p->operand_bits == pe_type(name).operand_bits);
    CHECK(p->acc_bits == (pe_type(name).integer_acc ? acc_default : 32));
    CHECK_FALSE(p->fma);
    // Every flip-flop of the PE: operand registers with valid bits, the accumulator, and for the
    // integer PEs the sticky saturation flag (a float PE's is constant 0, removed by synthesis).
    CHECK(p->register_bits == p->operand_bits + (type->per_operand_registers ? 1 : 0));  // the shift PE's tag bit
    CHECK(p->flip_flops == 2 * (p->register_bits + 1) + p->acc_bits + (pe_type(name).integer_acc ? 1 : 0));
    CHECK(p->transistors_flip_flops == 16 * p->flip_flops);  // Yosys' count for a D flip-flop
    CHECK(p->area_um2_flip_flops == 96 * p->flip_flops);     // OSU018 DFFPOSX1
    CHECK(p->transistors > p->transistors_flip_flops);
  }
  // The PoT4 product is much smaller than the INT8 multiplier; the whole PE less so (registers, accumulator).
  CHECK(s.find("mfmac")->area_um2 < s.find("int8")->area_um2);
  CHECK(s.find("int8")->area_um2 < s.find("fp32")->area_um2);
  REQUIRE(s.arrays.size() == 6);  // MF-MAC, shift and INT8; output-stationary and stationary (WS/IS)
  for (const auto& a : s.arrays) {
    CHECK(a.rows == 4);
    CHECK(a.cols == 4);
    CHECK(a.area_um2 > 16 * (s.find(a.pe)->area_um2 - s.find(a.pe)->area_um2_flip_flops));
  }
}

TEST_CASE("malformed synthesized tables: one error naming the field", "[unit]") {
  const std::string good = test::slurp(test::source_dir() + "/energy/area/osu018-synth.json");
  CHECK(parse_synth_area_table(good, "s.json").pes.size() == pe_types().size());
  json j = json::parse(good);
  j["pes"][0]["pe"] = "mfmak";
  CHECK_THROWS_WITH(parse_synth_area_table(j.dump(), "s.json"),
                    Catch::StartsWith("s.json: pes[0].pe: unknown PE type \"mfmak\"; expected "));
  j = json::parse(good);
  j["pes"][1]["operand_bits"] = 4;
  CHECK_THROWS_WITH(parse_synth_area_table(j.dump(), "s.json"),
                    "s.json: pes[1].operand_bits: the int8 PE's operands have 8 bits, got 4");
  j = json::parse(good);
  j["pes"][3]["register_bits"] = 7;  // the shift PE: a register narrower than its operand
  CHECK_THROWS_WITH(parse_synth_area_table(j.dump(), "s.json"),
                    "s.json: pes[3].register_bits: expected an operand register's width (operand_bits to 64), got 7");
  j = json::parse(good);
  j["provenance"].erase("tool");
  CHECK_THROWS_WITH(parse_synth_area_table(j.dump(), "s.json"), Catch::StartsWith("s.json: provenance.tool: "));
  j = json::parse(good);
  j["pes"][0]["area_um2"] = 0;
  CHECK_THROWS_WITH(parse_synth_area_table(j.dump(), "s.json"),
                    "s.json: pes[0].area_um2: expected a positive number, got 0");
  j = json::parse(good);
  j["version"] = 2;
  CHECK_THROWS_WITH(parse_synth_area_table(j.dump(), "s.json"),
                    "s.json: version: unsupported synthesized area table version 2; this mfsim reads version 1");
  // A row added by synth.sh --update carries its own command and date, both or neither.
  j = json::parse(good);
  j["pes"][0]["command"] = "scripts/synth.sh --pe mfmac --update";
  j["pes"][0].erase("date");
  CHECK_THROWS_WITH(parse_synth_area_table(j.dump(), "s.json"),
                    "s.json: pes[0].date: a row's own command and date come together (scripts/synth.sh --update)");
  j["pes"][0]["date"] = "2026-12-03T07:00:00Z";
  CHECK(parse_synth_area_table(j.dump(), "s.json").pes[0].command == "scripts/synth.sh --pe mfmac --update");
}

TEST_CASE("an array's area: its PEs' units, registers and accumulators, and the SRAM buffers", "[model]") {
  const AreaTable t = load_area_table("published45");
  const double reg = 5.98, sram = t.sram_um2_per_kib;
  // MF-MAC 8 x 8 OS: XOR (36/8), exponent add (36/2), decoder (36/2), a 32-bit add (137) per PE;
  // two 4-bit operand registers and a 32-bit accumulator per PE; skew 2 * 28 registers of 4 bits.
  SimConfig c = config_with({{"array.kind", "mfmac"}, {"array.rows", "8"}, {"array.cols", "8"}});
  ArrayArea a = array_area(c, t);
  REQUIRE(a.complete());
  const double pe = 4.5 + 18 + 18 + 137 + reg * (2 * 4 + 32);
  CHECK(a.pe_um2 == Approx(pe));
  const double total = 64 * pe + reg * 56 * 4 + sram * (256 + 256 + 128);
  CHECK(a.total_um2 == Approx(total));
  double sum = 0;
  for (const auto& it : a.items) sum += it.um2;
  CHECK(sum == Approx(a.total_um2).epsilon(1e-12));
  // INT8 WS with overlap: a shadow stationary register; 24-bit accumulators.
  c = config_with({{"array.kind", "int8"}, {"array.rows", "4"}, {"array.cols", "5"}, {"array.dataflow", "ws"},
                   {"pe.acc_bits", "24"}});
  a = array_area(c, t);
  CHECK(a.pe_um2 == Approx(282 + 137.0 * 24 / 32 + reg * (3 * 8 + 24)));
  // FP32: a multiplier and an adder, or (pe.fp32_fma, no FMA row) the same two units.
  c = config_with({{"array.kind", "fp32"}, {"array.rows", "2"}, {"array.cols", "2"}});
  CHECK(array_area(c, t).pe_um2 == Approx(7700 + 4184 + reg * (2 * 32 + 32)));
  c = config_with({{"array.kind", "fp32"}, {"array.rows", "2"}, {"array.cols", "2"}, {"pe.fp32_fma", "true"}});
  CHECK(array_area(c, t).pe_um2 == Approx(7700 + 4184 + reg * (2 * 32 + 32)));
  // A second array (array.second) of the same geometry adds its PEs.
  const double one = array_area(config_with({{"array.kind", "mfmac"}}), t).total_um2;
  const double two = array_area(config_with({{"array.kind", "mfmac"}, {"array.second", "int8"}}), t).total_um2;
  const double int8_pes = array_area(config_with({{"array.kind", "int8"}}), t).total_um2 - sram * 640;
  CHECK(two - one == Approx(int8_pes));
}

TEST_CASE("simulate reports area, power and a static energy term that the totals include", "[model]") {
  test::TempDir d;
  const auto r = test::run_mfsim("simulate --trace " + test::example_trace() + " --report " + d.file("r.json") +
                                 " --rows 4 --cols 5 --set clock.mhz=500 -q");
  REQUIRE(r.exit_code == 0);
  const json rep = json::parse(test::slurp(d.file("r.json")));
  const json& area = rep["area"];
  REQUIRE(area.contains("total_mm2"));
  double by = 0;
  for (const auto& [k, v] : area["by_component_mm2"].items()) by += v.get<double>();
  CHECK(by == Approx(area["total_mm2"].get<double>()));
  for (const auto& it : area["items"]) CHECK_FALSE(it["source"].get<std::string>().empty());
  CHECK(area["pe_count"] == 20);
  // The SRAM buffers from their size parameters (defaults 256, 256, 128 KiB).
  const double per_kib = load_area_table("published45").sram_um2_per_kib;
  CHECK(area["by_component_mm2"]["sram_a"].get<double>() == Approx(256 * per_kib * 1e-6));
  CHECK(area["by_component_mm2"]["sram_c"].get<double>() == Approx(128 * per_kib * 1e-6));
  CHECK(area["synthesized_pe"]["area_um2"].get<double>() ==
        load_synth_area_table("osu018-synth").find("mfmac")->area_um2);
  // Static energy = leakage density x area x time, as its own component, in the total.
  const json& e = rep["energy_pj"];
  const double seconds = rep["total"]["time_seconds"].get<double>();
  const double leak = area["leakage_mw_per_mm2"].get<double>() * 1e-3 * area["total_mm2"].get<double>() * seconds * 1e12;
  CHECK(e["by_component"]["static"].get<double>() == Approx(leak).epsilon(1e-9));
  double parts = 0, gemms = 0, statics = 0;
  for (const auto& [k, v] : e["by_component"].items()) parts += v.get<double>();
  CHECK(parts == Approx(e["total"].get<double>()).epsilon(1e-12));
  for (const auto& g : rep["gemms"]) {
    gemms += g["energy_pj"]["total"].get<double>();
    statics += g["energy_pj"]["by_component"]["static"].get<double>();
  }
  CHECK(gemms == Approx(e["total"].get<double>()).epsilon(1e-12));
  CHECK(statics == Approx(leak).epsilon(1e-9));
  bool item = false;
  for (const auto& it : e["items"]) {
    if (it["component"] == "static") {
      item = true;
      CHECK(it["action"] == "leakage");
      CHECK(it["pj"].get<double>() == Approx(leak).epsilon(1e-9));
    }
  }
  CHECK(item);
  // Power at clock.mhz, throughput per area, TOPS/W.
  const json& p = rep["power"];
  CHECK(p["clock_mhz"] == 500.0);
  CHECK(p["average_w"].get<double>() == Approx(e["total"].get<double>() * 1e-12 / seconds));
  CHECK(p["static_w"].get<double>() == Approx(leak * 1e-12 / seconds));
  const double macs = rep["total"]["macs"].get<double>();
  CHECK(p["macs_per_second_per_mm2"].get<double>() == Approx(macs / seconds / area["total_mm2"].get<double>()));
  CHECK(p["tops_per_w"].get<double>() == Approx(2 * macs / (e["total"].get<double>() * 1e-12) * 1e-12));
  // The CSV carries the static item; the text summary the area and power lines.
  const auto r2 = test::run_mfsim("simulate --trace " + test::example_trace() + " --report " + d.file("r2.json") +
                                  " --rows 4 --cols 5 --energy-csv " + d.file("e.csv"));
  REQUIRE(r2.exit_code == 0);
  CHECK(test::slurp(d.file("e.csv")).find("\nstatic,leakage,") != std::string::npos);
  CHECK(r2.out.find("area (published45 table): ") != std::string::npos);
  CHECK(r2.out.find("power at 1000 MHz: ") != std::string::npos);
  // A bad area table: one line, exit 2, no report.
  const auto bad = test::run_mfsim("simulate --trace " + test::example_trace() + " --report " + d.file("r3.json") +
                                   " --area-table nope");
  CHECK(bad.exit_code == 2);
  CHECK(bad.err == "mfsim: error: --area-table: unknown table \"nope\"; expected published45 or a JSON file\n");
  CHECK_FALSE(test::file_exists(d.file("r3.json")));
}

TEST_CASE("square-ish sizes within an area budget: the largest that fits, the next does not", "[model]") {
  const AreaTable t = load_area_table("published45");
  const SimConfig mf = config_with({{"array.kind", "mfmac"}});
  const double budget = array_area(mf, t).total_um2;  // 32 x 32 MF-MAC
  for (const PeType* pe : pe_types()) {
    SimConfig c = mf;
    c.array = pe;
    const IsoAreaSize s = largest_array_within(c, t, budget);
    INFO(pe->name << " " << s.rows << "x" << s.cols);
    REQUIRE(s.rows > 0);
    CHECK((s.cols == s.rows || s.cols == s.rows + 1));
    CHECK(s.um2 <= budget);
    CHECK(s.next_um2 > budget);
    CHECK((s.next_rows * s.next_cols > s.rows * s.cols));
    c.rows = s.rows;
    c.cols = s.cols;
    CHECK(array_area(c, t).total_um2 == s.um2);
  }
  CHECK(largest_array_within(mf, t, budget).rows == 32);
  CHECK(largest_array_within(mf, t, budget).cols == 32);
  // A budget below the SRAM buffers' area fits no array.
  CHECK(largest_array_within(mf, t, 1000).rows == 0);
}

TEST_CASE("compare --iso area and --area-budget: every array within the budget, the next size above it", "[model]") {
  test::TempDir d;
  auto check_sizes = [](const json& rep, bool mfmac_sized) {
    const json& iso = rep["iso_area"];
    const double budget = iso["budget_mm2"].get<double>();
    REQUIRE(iso["arrays"].size() == pe_types().size());  // every PE type
    for (const auto& [kind, a] : iso["arrays"].items()) {
      INFO(kind);
      CHECK(a["area_mm2"].get<double>() <= budget * (1 + 1e-12));
      CHECK(a["time_seconds"] == rep["arrays"][kind]["time_seconds"]);
      CHECK(a["energy_pj"] == rep["energy_pj"][kind]["total"]);
      if (kind == "mfmac" && !mfmac_sized) {
        CHECK(a["sized"] == false);
        CHECK(a["area_mm2"].get<double>() == Approx(budget).epsilon(1e-12));
        continue;
      }
      CHECK(a["sized"] == true);
      const int r = a["rows"].get<int>(), c = a["cols"].get<int>();
      CHECK((c == r || c == r + 1));
      CHECK(a["next_area_mm2"].get<double>() > budget);
      CHECK(a["next_rows"].get<int>() * a["next_cols"].get<int>() > r * c);
    }
  };
  auto r = test::run_mfsim("compare --trace " + test::example_trace() + " --report " + d.file("c.json") +
                           " --rows 8 --cols 8 --iso area --mode timing -q");
  REQUIRE(r.exit_code == 0);
  json rep = json::parse(test::slurp(d.file("c.json")));
  check_sizes(rep, false);
  CHECK(rep["iso_area"]["budget_from"] == "the mfmac array at 8x8");
  CHECK(rep["iso_area"]["arrays"]["mfmac"]["rows"] == 8);
  r = test::run_mfsim("compare --trace " + test::example_trace() + " --report " + d.file("b.json") +
                      " --area-budget 3.5 --mode timing --arrays int8,mfmac --html " + d.file("c.html"));
  REQUIRE(r.exit_code == 0);
  rep = json::parse(test::slurp(d.file("b.json")));
  CHECK(rep["iso_area"]["budget_mm2"] == 3.5);
  CHECK(rep["iso_area"]["arrays"].size() == 3);
  for (const auto& [kind, a] : rep["iso_area"]["arrays"].items()) {
    CHECK(a["area_mm2"].get<double>() <= 3.5);
    CHECK(a["next_area_mm2"].get<double>() > 3.5);
  }
  CHECK(r.out.find("equal area: budget 3.5 mm2 (--area-budget; published45 area table)") != std::string::npos);
  // The compare page's stacked bars have the static component, in its own colour.
  CHECK(test::slurp(d.file("c.html")).find("mfmac static: ") != std::string::npos);
  // Bad values: one line, exit 2, no report.
  const std::string base = "compare --trace " + test::example_trace() + " --report " + d.file("x.json") + " --mode timing ";
  const std::pair<std::string, std::string> bad[] = {
      {"--iso volume", "mfsim: error: compare: --iso: unknown value \"volume\"; expected area\n"},
      {"--area-budget -1", "mfsim: error: compare: --area-budget: expected a positive area in mm2, got \"-1\"\n"},
      {"--area-budget 2mm", "mfsim: error: compare: --area-budget: expected a positive area in mm2, got \"2mm\"\n"},
      {"--area-budget 0.5",
       "mfsim: error: compare: --area-budget: 0.5 mm2 fits no fp32 array (1x1 with its SRAM buffers takes 3.036 mm2)\n"},
      {"--iso area --set array.rows=4",
       "mfsim: error: compare: --iso area: --set array.rows=4 sizes every array; give the MF-MAC array's size with "
       "--rows and --cols\n"},
  };
  for (const auto& [args, err] : bad) {
    INFO(args);
    const auto x = test::run_mfsim(base + args);
    CHECK(x.exit_code == 2);
    CHECK(x.err == err);
    CHECK_FALSE(test::file_exists(d.file("x.json")));
  }
}
