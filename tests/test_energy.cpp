// Energy tables, the counts-to-energy evaluator and the quantization-overhead accounting.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "energy/energy_model.h"
#include "energy/energy_table.h"
#include "sim/pe_type.h"
#include "tests/test_util.h"

using namespace mfsim;
using nlohmann::json;

TEST_CASE("built-in energy tables parse and carry their figures", "[unit]") {
  REQUIRE(builtin_energy_tables() == std::vector<std::string>{"paper", "horowitz45", "aladdin45"});
  EnergyTable p = load_energy_table("paper");
  CHECK(p.fp32_mul == 3.7);
  CHECK(p.fp32_add == 0.9);
  CHECK(p.fp32_fma == Approx(4.6));  // derived: multiply + add
  CHECK(p.int_add(32) == 0.14);
  CHECK(p.int_add(16) == Approx(0.07));
  CHECK(p.dram_pj_per_byte() == 1300.0 / 8);
  for (const auto& e : p.entries) CHECK_FALSE(e.source.empty());
  EnergyTable a = load_energy_table("aladdin45");
  CHECK(a.fp32_mul == 35.3);
  CHECK(a.int8_mul == Approx(12.68 / 16));
  // Every built-in file is also readable as a file.
  EnergyTable f = load_energy_table(test::source_dir() + "/energy/tables/horowitz45.json");
  CHECK(f.name == "horowitz45");
}

TEST_CASE("SRAM energy interpolates log-log between the table's capacities", "[unit]") {
  EnergyTable p = load_energy_table("paper");
  CHECK(p.sram_pj_per_bit(8 * 1024) == Approx(10.0 / 64));
  CHECK(p.sram_pj_per_bit(32 * 1024) == Approx(20.0 / 64));
  CHECK(p.sram_pj_per_bit(1024 * 1024) == Approx(100.0 / 64));
  // 256 KiB: 20 pJ * 8^(ln 5 / ln 32) per 64-bit access.
  CHECK(p.sram_pj_per_bit(256 * 1024) == Approx(20.0 * std::pow(8.0, std::log(5.0) / std::log(32.0)) / 64));
  // 16 KiB lies on the first segment: 10 * 2^(ln 2 / ln 4) = 10 * sqrt 2.
  CHECK(p.sram_pj_per_bit(16 * 1024) == Approx(10.0 * std::sqrt(2.0) / 64));
  // Below the smallest point the first segment extrapolates.
  CHECK(p.sram_pj_per_bit(2 * 1024) == Approx(5.0 / 64));
}

TEST_CASE("SRAM sizes outside the table's rows: a note when extrapolated, an error past DRAM's price", "[unit]") {
  EnergyTable p = load_energy_table("paper");  // SRAM rows 8..1024 KiB, DRAM 1300 pJ per 64 bits
  CHECK(p.sram_range_note(64 * 1024, "sram.a_kib").empty());
  CHECK(p.sram_range_note(1024 * 1024, "sram.a_kib").empty());
  CHECK(p.sram_range_note(2 * 1024, "sram.b_kib") ==
        "sram.b_kib=2 KiB is outside the paper table's SRAM rows (8..1024 KiB): its energy per bit (0.07812 pJ) is "
        "extrapolated");
  CHECK(p.sram_range_note(4096 * 1024, "sram.c_kib").find("sram.c_kib=4096 KiB is outside") == 0);
  // 4 GiB: 100 pJ * 4096^0.465 per 64 bits would cost more than a DRAM access.
  CHECK_THROWS_WITH(p.sram_range_note(4.0 * 1024 * 1024 * 1024, "sram.a_kib"),
                    Catch::Matches("sram.a_kib=4194304 KiB: the paper energy table's SRAM rows end at 1024 KiB; "
                                   "extrapolated this far an SRAM access would cost .* pJ/bit, more than a DRAM access "
                                   "\\(20.31 pJ/bit\\); use a smaller buffer or a table with rows for it"));
}

TEST_CASE("malformed energy tables name the row and field", "[unit]") {
  test::TempDir dir;
  const std::string path = dir.file("t.json");
  const json good = json::parse(test::slurp(test::source_dir() + "/energy/tables/paper.json"));
  auto error = [&](const std::function<void(json&)>& edit) {
    json j = good;
    edit(j);
    test::spit(path, j.dump());
    try {
      load_energy_table(path);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(error([](json&) {}).empty());
  {
    // The known actions: the memories, registers and quantizer rows, and every PE type's rows
    // (sorted), so that a new PE type's rows extend the list.
    const std::string e = error([](json& j) { j["entries"][0]["action"] = "fp64_mul"; });
    const std::string head = path + ": entries[0].action: unknown action \"fp64_mul\"; expected ";
    REQUIRE(e.rfind(head, 0) == 0);
    const std::string list = "|" + e.substr(head.size()) + "|";
    for (const char* row : {"dram", "fp32_add", "fp32_fma", "fp32_mul", "int4_add", "int8_mul", "int_add",
                            "onehot_decode", "register", "sram", "xor"}) {
      CHECK(list.find(std::string("|") + row + "|") != std::string::npos);
    }
    for (const PeType* pe : pe_types()) {
      for (const PeOp& op : pe->ops) CHECK(list.find(std::string("|") + op.table_row + "|") != std::string::npos);
    }
  }
  CHECK(error([](json& j) { j["entries"][1]["value"] = -0.9; }) ==
        path + ": entries[1].value: expected a positive energy, got -0.9");
  CHECK(error([](json& j) { j["entries"][1]["value"] = "0.9"; }) ==
        path + ": entries[1].value: expected a number, got \"0.9\"");
  CHECK(error([](json& j) { j["entries"][7]["unit"] = "pJ"; }) ==
        path + ": entries[7].unit: expected \"pJ/bit\" for register, got \"pJ\"");
  CHECK(error([](json& j) { j["entries"][2].erase("source"); }) == path + ": entries[2].source: missing required field");
  CHECK(error([](json& j) { j["entries"][2]["source"] = ""; }) ==
        path + ": entries[2].source: expected the figure's source, got \"\"");
  CHECK(error([](json& j) { j["entries"][3]["node"] = 45; }) == path + ": entries[3].node: unknown key");
  CHECK(error([](json& j) { j["entries"].erase(4); }) == path + ": entries: missing a row for action \"int4_add\"");
  CHECK(error([](json& j) { j["entries"][4] = j["entries"][3]; }) ==
        path + ": entries[4].action: duplicate action \"int_add\"");
  CHECK(error([](json& j) { j["entries"][8].erase("capacity_kib"); }) ==
        path + ": entries[8].capacity_kib: expected the SRAM capacity in KiB (a positive number)");
  CHECK(error([](json& j) { j["entries"][0]["capacity_kib"] = 8; }) ==
        path + ": entries[0].capacity_kib: only sram rows have a capacity");
  CHECK(error([](json& j) { j["entries"][0]["bits"] = 0; }) ==
        path + ": entries[0].bits: expected a bit width (1 to 4096), got 0");
  CHECK(error([](json& j) { j["version"] = 3; }) ==
        path + ": version: unsupported energy table version 3; this mfsim reads version 1");
  test::spit(path, "{\"format\": \"mfsim-energy-table\",");
  CHECK_THROWS_WITH(load_energy_table(path), Catch::StartsWith(path + ": not valid JSON: line 1"));
  CHECK_THROWS_WITH(load_energy_table("papr"),
                    "--energy-table: unknown table \"papr\"; expected paper|horowitz45|aladdin45 or a JSON file");
}

namespace {
nlohmann::ordered_json config(const std::string& array) {
  return nlohmann::ordered_json{{"array.kind", array}, {"pe.acc_bits", 32}, {"sram.a_kib", 256}, {"sram.b_kib", 256},
              {"sram.c_kib", 128}};
}
nlohmann::ordered_json events(std::uint64_t slots, std::uint64_t zero) {
  nlohmann::ordered_json e;
  for (const char* k : {"mac_slots", "products_zero", "mfmac_xor", "mfmac_exp_add", "mfmac_decode", "mfmac_acc_add",
                        "int8_mul", "int8_add", "fp32_mul", "fp32_add", "fp32_fma", "reg_operand_write_bits",
                        "reg_acc_write_bits", "sram_a_read_bits", "sram_a_write_bits", "sram_b_read_bits",
                        "sram_b_write_bits", "sram_c_read_bits", "sram_c_write_bits", "dram_read_bytes",
                        "dram_write_bytes"}) {
    e[k] = 0;
  }
  e["mac_slots"] = slots;
  e["products_zero"] = zero;
  for (const char* k : {"mfmac_xor", "mfmac_exp_add", "mfmac_decode", "mfmac_acc_add"}) e[k] = slots - zero;
  for (const char* k : {"int8_mul", "int8_add", "fp32_mul", "fp32_add"}) e[k] = slots;
  return e;
}
double component(const std::vector<EnergyItem>& items, const std::string& c) {
  double s = 0;
  for (const auto& i : items) s += i.component == c ? i.pj : 0.0;
  return s;
}
}  // namespace

TEST_CASE("MAC arithmetic per product, term by term, under the paper table", "[model]") {
  EnergyTable p = load_energy_table("paper");
  // MF-MAC: XOR 0.00375 + exponent add 0.015 + decode 0.081 + 32-bit accumulate 0.14 pJ.
  auto mf = energy_items(config("mfmac"), events(1000, 0), QuantOps{}, p);
  CHECK(component(mf, "pe_arithmetic") == Approx(1000 * (0.00375 + 0.015 + 0.081 + 0.14)));
  // Zero-gated products cost nothing in the arithmetic.
  auto gated = energy_items(config("mfmac"), events(1000, 400), QuantOps{}, p);
  CHECK(component(gated, "pe_arithmetic") == Approx(600 * 0.23975));
  auto i8 = energy_items(config("int8"), events(1000, 0), QuantOps{}, p);
  CHECK(component(i8, "pe_arithmetic") == Approx(1000 * (0.19 + 0.14)));
  auto fp = energy_items(config("fp32"), events(1000, 0), QuantOps{}, p);
  CHECK(component(fp, "pe_arithmetic") == Approx(1000 * 4.6));
  CHECK(component(fp, "quantization") == 0.0);
  // A 16-bit accumulator halves the accumulate cost (linear in width).
  auto c16 = config("mfmac");
  c16["pe.acc_bits"] = 16;
  CHECK(component(energy_items(c16, events(1000, 0), QuantOps{}, p), "pe_arithmetic") ==
        Approx(1000 * (0.00375 + 0.015 + 0.081 + 0.07)));
}

TEST_CASE("quantization overhead: operations per quantized tensor element", "[model]") {
  // A layer's fwd record quantizing 20 activations and 15 weights; WBC 8, PRC 3.
  QuantOps q = quant_ops("mfmac", 20, 15, 0, 8, 3);
  CHECK(q.compare32 == 35 * 2 + 15 * 8 + 35 * 3);
  CHECK(q.exp_sub8 == 35 + 35 * 3);
  CHECK(q.fp32_add == 15 * 9 + 35 * 3 * 2);
  CHECK(q.rng16 == 0);
  // 40 error elements: stochastic rounding, no WBC (weights only).
  QuantOps g = quant_ops("mfmac", 0, 0, 40, 8, 3);
  CHECK(g.rng16 == 40);
  CHECK(g.compare32 == 40 * 2 + 40 + 40 * 3);
  CHECK(g.fp32_add == 40 * 3 * 2);
  // A matmul's operands are both activations: no WBC work at all.
  QuantOps mm = quant_ops("mfmac", 35, 0, 0, 8, 3);
  CHECK(mm.compare32 == 35 * 2 + 35 * 3);
  CHECK(quant_ops("mfmac", 0, 0, 0, 8, 3).compare32 == 0);
  CHECK(quant_ops("fp32", 20, 15, 40, 8, 3).fp32_add == 0);
  QuantOps i8 = quant_ops("int8", 20, 15, 0, 8, 3);
  CHECK(i8.fp32_mul == 35);  // the INT8 scaling multiplies
}

TEST_CASE("every PE type's ops are priced by every built-in table, and a table missing a row says so", "[unit]") {
  for (const std::string& name : builtin_energy_tables()) {
    EnergyTable t = load_energy_table(name);
    for (const PeType* pe : pe_types()) {
      INFO(name << " " << pe->name);
      for (const PeOp& op : pe->ops) {
        if (std::string(op.table_row) == "int_add") continue;  // priced at pe.acc_bits
        CHECK(t.op(op.table_row) > 0);
      }
      for (const char* row : pe->optional_rows) CHECK(t.op(row) > 0);  // the shipped tables carry them
      // A report's energy items are merged by component and action: a type's actions are distinct.
      for (std::size_t i = 0; i < pe->ops.size(); ++i) {
        for (std::size_t j = i + 1; j < pe->ops.size(); ++j) CHECK(std::string(pe->ops[i].action) != pe->ops[j].action);
      }
    }
    for (const auto& e : t.entries) {
      INFO(name << " " << e.action);
      CHECK_FALSE(e.source.empty());
    }
  }
  EnergyTable p = load_energy_table("paper");
  CHECK_THROWS_WITH(p.op("fp64_mul"), "builtin:paper: no row for action \"fp64_mul\"");
}

TEST_CASE("a table without a newer PE type's rows loads, and pricing that type names the missing row", "[unit]") {
  test::TempDir dir;
  json j = json::parse(test::slurp(test::source_dir() + "/energy/tables/paper.json"));
  json kept = json::array();
  for (const auto& e : j["entries"]) {
    if (e["action"] != "bf16_mul") kept.push_back(e);
  }
  j["entries"] = kept;
  const std::string path = dir.file("old.json");
  test::spit(path, j.dump());
  const EnergyTable t = load_energy_table(path);
  CHECK(component(energy_items(config("mfmac"), events(10, 0), QuantOps{}, t), "pe_arithmetic") > 0);
  nlohmann::ordered_json ev = events(10, 0);
  ev["bf16_mul"] = 10;
  ev["bf16_acc_add"] = 10;
  CHECK_THROWS_WITH(energy_items(config("bf16"), ev, QuantOps{}, t),
                    path + ": no row for action \"bf16_mul\", which prices the bf16 array's multiply (bf16_mul)");
}
