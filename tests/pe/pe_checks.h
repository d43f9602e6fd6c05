// Checks every PE type's tests use (tests/pe/test_NAME.cpp, one file per type like sim/pe/).
#pragma once

#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "energy/energy_model.h"
#include "energy/energy_table.h"
#include "sim/params.h"
#include "sim/pe_type.h"
#include "tests/test_util.h"

namespace mfsim::test {

// The MAC arithmetic of one executed product on PE type `pe` under energy table `table`
// (pe.acc_bits 32, multiply-then-add FP32): the sum of the type's ops, priced by the evaluator.
// `pair`: the record's operand formats, for a PE type whose ops depend on them (pair_ops).
inline double per_product_pj(const std::string& pe, const std::string& table,
                             std::pair<NumFormat, NumFormat> pair = {NumFormat::kFp32, NumFormat::kFp32}) {
  const PeType& t = pe_type(pe);
  SimConfig cfg;
  cfg.array = &t;
  PeOpCounts ops{};
  t.count_ops(cfg, 1, ops);
  if (t.pair_ops != nullptr) t.pair_ops(pair.first, pair.second, ops);
  nlohmann::ordered_json config{{"array.kind", pe}, {"pe.acc_bits", 32}, {"sram.a_kib", 256},
                                {"sram.b_kib", 256}, {"sram.c_kib", 128}};
  nlohmann::ordered_json events;
  for (const char* k : {"mac_slots", "products_zero", "reg_operand_write_bits", "reg_acc_write_bits",
                        "sram_a_read_bits", "sram_a_write_bits", "sram_b_read_bits", "sram_b_write_bits",
                        "sram_c_read_bits", "sram_c_write_bits", "dram_read_bytes", "dram_write_bytes"}) {
    events[k] = 0;
  }
  events["mac_slots"] = 1;
  for (std::size_t i = 0; i < t.ops.size(); ++i) events[t.ops[i].counter] = ops[i];
  double pj = 0;
  for (const auto& item : energy_items(config, events, QuantOps{}, load_energy_table(table))) {
    if (item.component == "pe_arithmetic") pj += item.pj;
  }
  return pj;
}

// Trains the small CNN for one epoch on a tiny data set with `--quant quant`, records a step,
// and replays it in value mode on each of `arrays` (the first in every dataflow, the others in
// WS): every GEMM checked bit for bit, none mismatched. Returns the trace's record count.
inline void replay_training_step(const std::string& quant, const std::vector<std::string>& arrays) {
  TempDir dir;
  write_dataset(dir.path(), 192, 64);
  const std::string trace = dir.file("step.json");
  auto r = run_mfsim(fmt::format("train -q --model cnn --quant {} --epochs 1 --batch 32 --seed 2 --data {} "
                                 "--trace-out {} --trace-step 2 --report {}",
                                 quant, dir.path(), trace, dir.file("train.json")));
  INFO(quant << ": " << r.err);
  REQUIRE(r.exit_code == 0);
  for (std::size_t i = 0; i < arrays.size(); ++i) {
    for (const char* df : {"ws", "os", "is"}) {
      if (i > 0 && std::string(df) != "ws") break;
      auto sim = run_mfsim(fmt::format("simulate -q --trace {} --array {} --rows 8 --cols 8 --dataflow {} --mode value "
                                       "--report {}",
                                       trace, arrays[i], df, dir.file("sim.json")));
      INFO(quant << " trace on the " << arrays[i] << " array, " << df << ": " << sim.err);
      REQUIRE(sim.exit_code == 0);
      nlohmann::json v = nlohmann::json::parse(slurp(dir.file("sim.json")));
      CHECK(v["verification"]["gemms_checked"] == 11);  // the CNN's 4 + 3 + 4 GEMMs
      CHECK(v["verification"]["mismatches"] == 0);
    }
  }
}

}  // namespace mfsim::test
