// mfsim simulate end to end: every array and dataflow on the shipped example, timing equals
// value mode, parameters and their errors, mismatches, VCD, and the parameter docs.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <sstream>
#include <filesystem>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "common/crc32.h"
#include "sim/pe_type.h"
#include "tests/test_util.h"
#include "traces/example_trace.h"

using namespace mfsim;
using mfsim::test::run_mfsim;
using mfsim::test::TempDir;
using nlohmann::json;

TEST_CASE("simulate: the example replays bit-exactly on every array and dataflow", "[smoke]") {
  TempDir dir;
  for (const char* array : {"mfmac", "int8", "fp32"}) {
    for (const char* df : {"os", "ws", "is"}) {
      std::string value = dir.file(fmt::format("{}-{}-v.json", array, df));
      std::string timing = dir.file(fmt::format("{}-{}-t.json", array, df));
      auto r = run_mfsim(fmt::format("simulate --trace {} --array {} --dataflow {} --rows 7 --cols 5 "
                                     "--set dram.bandwidth=3 --report {} --mode auto",
                                     test::example_trace(), array, df, value));
      INFO(array << " " << df << ": " << r.err);
      REQUIRE(r.exit_code == 0);
      auto t = run_mfsim(fmt::format("simulate -q --trace {} --array {} --dataflow {} --rows 7 --cols 5 "
                                     "--set dram.bandwidth=3 --report {} --mode timing",
                                     test::example_trace(), array, df, timing));
      REQUIRE(t.exit_code == 0);
      CHECK(t.out.empty());
      json v = json::parse(test::slurp(value)), tj = json::parse(test::slurp(timing));
      // mfmac replays the 5 PoT4 GEMMs, int8 also the INT8 one, fp32 all 7.
      int expect_checked = std::string(array) == "mfmac" ? 5 : std::string(array) == "int8" ? 6 : 7;
      CHECK(v["verification"]["gemms_checked"] == expect_checked);
      CHECK(v["verification"]["checked_against_trace"] == expect_checked);
      CHECK(v["verification"]["mismatches"] == 0);
      CHECK(tj["verification"]["gemms_checked"] == 0);
      REQUIRE(v["gemms"].size() == 7);
      for (std::size_t i = 0; i < 7; ++i) {
        CHECK(v["gemms"][i]["cycles"] == tj["gemms"][i]["cycles"]);
        CHECK(v["gemms"][i]["events"] == tj["gemms"][i]["events"]);  // zeros measured from operands
      }
      CHECK(v["total"]["cycles"]["total"].get<std::uint64_t>() ==
            v["total"]["cycles"]["compute"].get<std::uint64_t>() + v["total"]["cycles"]["stall"].get<std::uint64_t>());
      CHECK(v["total"]["cycles"]["stall"].get<std::uint64_t>() > 0);  // 3 bytes/cycle stalls
      CHECK(v["config"]["array.rows"] == 7);
      CHECK(v["config"]["dram.bandwidth"] == 3.0);
    }
  }
}

TEST_CASE("simulate: parameter errors name the parameter and where it came from", "[smoke]") {
  TempDir dir;
  std::string rep = dir.file("r.json");
  auto sim = [&](const std::string& extra) {
    return run_mfsim(fmt::format("simulate --trace {} --report {} {}", test::example_trace(), rep, extra));
  };
  auto r = sim("--set array.rows=0");
  CHECK(r.exit_code == 2);
  CHECK(r.err == "mfsim: error: --set array.rows=0: array.rows: expected an integer in [1, 4096], got \"0\"\n");
  r = sim("--set array.row=4");
  CHECK(r.err == "mfsim: error: --set array.row=4: unknown parameter \"array.row\"; see 'mfsim simulate "
                 "--list-params'\n");
  r = sim("--rows 3x");
  CHECK(r.err == "mfsim: error: --rows: array.rows: expected an integer in [1, 4096], got \"3x\"\n");
  r = sim("--dataflow rs");
  CHECK(r.err == "mfsim: error: --dataflow: array.dataflow: expected os|ws|is, got \"rs\"\n");
  r = sim("--set dram.bandwidth");
  CHECK(r.err == "mfsim: error: --set dram.bandwidth: expected NAME=VALUE\n");
  r = sim("--mode fast");
  CHECK(r.err == "mfsim: error: simulate: --mode: unknown value \"fast\"; expected auto|value|timing\n");
  std::string cfg = dir.file("cfg.json");
  test::spit(cfg, R"({"array": {"rows": 8, "colls": 4}})");
  r = sim("--config " + cfg);
  CHECK(r.err == "mfsim: error: " + cfg + ": unknown parameter \"array.colls\"; see 'mfsim simulate --list-params'\n");
  test::spit(cfg, R"({"sram": {"a_kib": "big"}})");
  r = sim("--config " + cfg);
  CHECK(r.err == "mfsim: error: " + cfg + ": sram.a_kib: expected an integer in [1, 4194304], got \"big\"\n");
  test::spit(cfg, R"({"pe.fp32_fma": true, "array": {"rows": 8, "kind": "fp32"}, "dram.bandwidth": 12.5})");
  r = sim("--config " + cfg + " -q");
  CHECK(r.exit_code == 0);
  json j = json::parse(test::slurp(rep));
  CHECK(j["config"]["array.rows"] == 8);
  CHECK(j["config"]["array.kind"] == "fp32");
  CHECK(j["config"]["pe.fp32_fma"] == true);
  CHECK(j["config"]["dram.bandwidth"] == 12.5);
  std::remove(rep.c_str());
  r = sim("--mode value");  // mfmac cannot hold the int8 and fp32 records
  CHECK(r.exit_code == 2);
  CHECK(r.err == "mfsim: error: " + test::example_trace() + ": records[5] (fc1 fwd): int8 operands cannot be "
                 "represented exactly on the mfmac array; use --mode timing or auto, or array.second to run it on an "
                "array that holds it\n");
  CHECK_FALSE(test::file_exists(rep));  // no report on bad input
  r = run_mfsim(fmt::format("simulate --trace {}", test::example_trace()));
  CHECK(r.err == "mfsim: error: simulate: missing option --report; see 'mfsim simulate --help'\n");
}

TEST_CASE("simulate: a wrong expected output exits 3 naming GEMM and element", "[smoke]") {
  TempDir dir;
  std::string path = dir.file("t.json"), bin = dir.file("t.bin"), rep = dir.file("r.json");
  write_example_trace(path, 1);
  auto doc = json::parse(test::slurp(path));
  auto& ref = doc["records"][1]["payload"]["expected"];
  std::string bytes = test::slurp(bin);
  auto offset = ref["offset"].get<std::size_t>(), size = ref["bytes"].get<std::size_t>();
  bytes[offset + 13 * 4] = static_cast<char>(bytes[offset + 13 * 4] + 1);  // element (1, 3)
  test::spit(bin, bytes);
  ref["crc32"] = fmt::format("{:08x}", crc32(bytes.data() + offset, size));
  test::spit(path, doc.dump());
  for (const char* df : {"os", "ws", "is"}) {
    auto r = run_mfsim(fmt::format("simulate -q --trace {} --dataflow {} --rows 3 --cols 4 --report {}", path, df, rep));
    INFO(df);
    CHECK(r.exit_code == 3);
    // (find, not a prefix match: under AddressSanitizer, SystemC's coroutine stacks make ASan
    // print a warning before the message.)
    CHECK(r.err.find("mfsim: mismatch: " + path + ": records[1] (fc2 fwd): first mismatch at output element "
                     "(1, 3) of 7x10: array ") != std::string::npos);
    json j = json::parse(test::slurp(rep));  // the report is still written
    CHECK(j["verification"]["mismatches"] == 1);
    CHECK(j["gemms"][1]["verification"]["match"] == false);
  }
  // compare names the failing array's report, and keeps it.
  auto cmp = run_mfsim(fmt::format("compare -q --trace {} --rows 3 --cols 4 --report {}", path, dir.file("c.json")));
  CHECK(cmp.exit_code == 3);
  const std::string kept_text = "the runs' reports and logs are kept in ";
  const auto kept = cmp.err.find(kept_text);
  REQUIRE(kept != std::string::npos);
  std::string runs = cmp.err.substr(kept + kept_text.size());
  runs = runs.substr(0, runs.find(')'));
  CHECK(test::file_exists(runs + "/simulate-mfmac.json"));
  CHECK(cmp.err.find(runs + "/simulate-") != std::string::npos);  // the report the message names
  std::filesystem::remove_all(runs);
  auto ovf = run_mfsim(fmt::format("simulate -q --trace {} --set pe.acc_bits=10 --report {}", test::example_trace(), rep));
  CHECK(ovf.exit_code == 3);
  CHECK(ovf.err.find("mfmac array accumulator overflow: 10-bit accumulator overflow at output element") !=
        std::string::npos);
}

TEST_CASE("simulate --vcd writes a waveform of the array boundary", "[smoke]") {
  TempDir dir;
  std::string vcd = dir.file("wave.vcd");
  auto r = run_mfsim(fmt::format("simulate -q --trace {} --rows 4 --cols 4 --vcd {} --report {}", test::example_trace(), vcd,
                                 dir.file("r.json")));
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.empty());
  std::string text = test::slurp(vcd);
  CHECK(text.find("$var") != std::string::npos);
  CHECK(text.find("west_in_row0") != std::string::npos);
  CHECK(text.find("stall") != std::string::npos);
  CHECK(text.find("#100") != std::string::npos);  // time advances past cycle 100
}

TEST_CASE("docs/params.md is generated from the parameter declarations", "[golden]") {
  auto r = run_mfsim("simulate --list-params --markdown");
  REQUIRE(r.exit_code == 0);
  INFO("regenerate with: build/mfsim simulate --list-params --markdown > docs/params.md");
  CHECK(r.out == test::slurp(test::source_dir() + "/docs/params.md"));
  auto text = run_mfsim("simulate --list-params");
  CHECK(text.out.find("dram.bandwidth       32       bytes/cycle") != std::string::npos);
}

TEST_CASE("compare: savings report on the example, consistent with its own energy terms", "[smoke]") {
  TempDir dir;
  std::string rep = dir.file("cmp.json"), html = dir.file("cmp.html");
  // array.second=none: every array prices every GEMM as its own products (the what-if comparison).
  auto r = run_mfsim(fmt::format("compare --trace {} --rows 8 --cols 8 --dataflow ws --energy-table "
                                 "paper,aladdin45 --set array.second=none --report {} --html {} --runs-dir {}",
                                 test::example_trace(), rep, html, dir.file("runs")));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("energy table: paper") != std::string::npos);
  CHECK(r.out.find("energy table: aladdin45") != std::string::npos);
  CHECK(test::slurp(html).find("<h2>Mapping per GEMM</h2>") != std::string::npos);
  json j = json::parse(test::slurp(rep));
  for (const char* table : {"paper", "aladdin45"}) {
    const json& t = j["by_table"][table];
    for (const char* a : {"int8", "mfmac"}) {
      double arith = t["energy_pj"][a]["by_component"]["pe_arithmetic"].get<double>();
      double fp = t["energy_pj"]["fp32"]["by_component"]["pe_arithmetic"].get<double>();
      CHECK(t["savings_vs_fp32"][a]["arithmetic"].get<double>() == Approx(1 - arith / fp));
      double total = t["energy_pj"][a]["total"].get<double>();
      double fpt = t["energy_pj"]["fp32"]["total"].get<double>();
      CHECK(t["savings_vs_fp32"][a]["total"].get<double>() == Approx(1 - total / fpt));
    }
  }
  CHECK(j["savings_vs_fp32"] == j["by_table"]["paper"]["savings_vs_fp32"]);
  // The MF-MAC array saves more arithmetic energy than INT8, and memory shrinks the saving.
  const json& s = j["savings_vs_fp32"];
  CHECK(s["mfmac"]["arithmetic"].get<double>() > s["int8"]["arithmetic"].get<double>());
  CHECK(s["mfmac"]["total"].get<double>() < s["mfmac"]["arithmetic"].get<double>());
  for (const char* a : {"fp32", "int8", "mfmac"}) {
    CHECK(j["arrays"][a]["verification"]["mismatches"] == 0);
    CHECK(test::file_exists(dir.file(fmt::format("runs/simulate-{}.json", a))));
  }
  CHECK(j["arrays"]["fp32"]["verification"]["gemms_checked"] == 7);
  std::string page = test::slurp(html);
  CHECK(page.find("<svg") != std::string::npos);
  CHECK(page.find("Savings against the FP32 array") != std::string::npos);
  // Errors of a simulation come back as the compare's own error.
  auto bad = run_mfsim(fmt::format("compare --trace {} --set array.rows=0 --report {}", test::example_trace(), rep));
  CHECK(bad.exit_code == 2);
  CHECK(bad.err == "mfsim: error: --set array.rows=0: array.rows: expected an integer in [1, 4096], got \"0\"\n");
}

TEST_CASE("simulate: energy section and the Accelergy-shaped CSV agree", "[smoke]") {
  TempDir dir;
  std::string rep = dir.file("r.json"), csv = dir.file("e.csv");
  auto r = run_mfsim(fmt::format("simulate -q --trace {} --report {} --energy-csv {} --energy-table horowitz45",
                                 test::example_trace(), rep, csv));
  REQUIRE(r.exit_code == 0);
  json j = json::parse(test::slurp(rep));
  const json& e = j["energy_pj"];
  CHECK(e["table"] == "horowitz45");
  double sum = 0, comp = 0, phases = 0, layers = 0, gemms = 0;
  for (const auto& it : e["items"]) sum += it["pj"].get<double>();
  for (const auto& c : e["by_component"]) comp += c.get<double>();
  for (const auto& p : e["by_phase"]) phases += p["total"].get<double>();
  for (const auto& l : e["by_layer"]) layers += l.get<double>();
  for (const auto& g : j["gemms"]) gemms += g["energy_pj"]["total"].get<double>();
  const double total = e["total"].get<double>();
  CHECK(sum == Approx(total));
  CHECK(comp == Approx(total));
  CHECK(phases == Approx(total));
  CHECK(layers == Approx(total));
  CHECK(gemms == Approx(total));
  CHECK(e["per_mac"].get<double>() == Approx(total / 9240));
  std::string text = test::slurp(csv);
  CHECK(text.rfind("component,action,count,count_unit,pJ_per_action,pJ\n", 0) == 0);
  CHECK(text.find("pe_arithmetic,exponent_add,") != std::string::npos);
  CHECK(text.find("dram,read,") != std::string::npos);
  // Every CSV number reads back as exactly the JSON's (shortest round-trip form, no rounding).
  std::stringstream lines(text);
  std::string line;
  std::getline(lines, line);  // header
  std::size_t row = 0;
  for (const auto& it : e["items"]) {
    REQUIRE(std::getline(lines, line));
    const auto last = line.rfind(','), before = line.rfind(',', last - 1);
    CHECK(std::stod(line.substr(last + 1)) == it["pj"].get<double>());
    CHECK(std::stod(line.substr(before + 1, last - before - 1)) == it["pj_per_action"].get<double>());
    ++row;
  }
  CHECK(row == e["items"].size());
  REQUIRE(std::getline(lines, line));
  CHECK(std::stod(line.substr(line.rfind(',') + 1)) == total);
}

TEST_CASE("simulate: PRC's operations are charged on the operand kinds it ran on", "[smoke]") {
  TempDir dir;
  auto comparisons = [&](const std::string& set, double* act_w, double* err) {
    const std::string rep = dir.file("r.json");
    auto r = run_mfsim(fmt::format("simulate -q --trace {} --mode timing {} --report {}", test::example_trace(), set, rep));
    INFO(set << ": " << r.err);
    REQUIRE(r.exit_code == 0);
    const json j = json::parse(test::slurp(rep));
    *act_w = 0;
    *err = 0;
    for (const auto& g : j["gemms"]) {
      *act_w += g["quantized_elements"]["activations"].get<double>() + g["quantized_elements"]["weights"].get<double>();
      *err += g["quantized_elements"]["errors"].get<double>();
    }
    for (const auto& it : j["energy_pj"]["items"]) {
      if (it["component"] == "quantization" && it["action"] == "compare") return it["count"].get<double>();
    }
    FAIL("no quantization compare item");
    return 0.0;
  };
  double aw = 0, g = 0;
  const double every = comparisons("--set quant.prc_operands=a,w,g", &aw, &g);
  REQUIRE(aw > 0);
  REQUIRE(g > 0);
  // Each PRC candidate (3 by default) costs one comparison per element of the kinds it runs on;
  // the default is a,w (the training core's default: the errors are never clipped).
  CHECK(every - comparisons("", &aw, &g) == 3 * g);
  CHECK(every - comparisons("--set quant.prc_operands=a,w", &aw, &g) == 3 * g);
  CHECK(every - comparisons("--set quant.prc_operands=g", &aw, &g) == 3 * aw);
  CHECK(every - comparisons("--set quant.prc_candidates=0", &aw, &g) == 3 * (aw + g));
  auto bad = run_mfsim(fmt::format("simulate -q --trace {} --set quant.prc_operands=a,x --report {}", test::example_trace(),
                                   dir.file("x.json")));
  CHECK(bad.exit_code == 2);
  CHECK(bad.err == "mfsim: error: --set quant.prc_operands=a,x: quant.prc_operands: expected a,w,g|a,w|a,g|w,g|a|w|g, "
                   "got \"a,x\"\n");
}

TEST_CASE("trace: network traces and their errors", "[smoke]") {
  TempDir dir;
  auto list = run_mfsim("trace --list-networks");
  CHECK(list.exit_code == 0);
  CHECK(list.out.find("transformer-base") != std::string::npos);
  std::string out = dir.file("r50.json");
  auto r = run_mfsim("trace --network resnet50 --batch 2 --image 112x112 --phases fwd,bwd_weight -o " + out);
  REQUIRE(r.exit_code == 0);
  json j = json::parse(test::slurp(out));
  CHECK(j["records"].size() == 54 * 2);
  auto inspect = run_mfsim("inspect --json " + out);
  json s = json::parse(inspect.out);
  CHECK(s["phases"]["bwd_data"]["records"] == 0);
  CHECK(s["phases"]["fwd"]["macs"] == s["phases"]["bwd_weight"]["macs"]);
  auto bad = run_mfsim("trace --network resnet34 --batch 1 -o " + out);
  CHECK(bad.err == "mfsim: error: --network: unknown network \"resnet34\"; expected "
                   "resnet18|resnet50|vgg16|mobilenetv2|transformer-base\n");
  bad = run_mfsim("trace --network vgg16 --batch 1 --image 224 -o " + out);
  CHECK(bad.err == "mfsim: error: trace: --image: expected HxW with positive integers, got \"224\"\n");
  bad = run_mfsim("trace --network vgg16 --batch 1 --phases fwd,bwd -o " + out);
  CHECK(bad.err == "mfsim: error: trace: --phases: unknown phase \"bwd\"; expected fwd|bwd_data|bwd_weight\n");
  bad = run_mfsim("trace --network vgg16 -o " + out);
  CHECK(bad.err == "mfsim: error: trace: missing option --batch; see 'mfsim trace --help'\n");
  std::string topo = dir.file("topo.csv");
  test::spit(topo, "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                   "Conv1, 58, 58, 3, 3, 64, 64, 1,\nbad, 58, 58, 3, 3, 64, 64,\n");
  bad = run_mfsim("trace --scalesim-topology " + topo + " --batch 1 -o " + out);
  CHECK(bad.exit_code == 2);
  CHECK(bad.err == "mfsim: error: " + topo + ": line 3: expected 8 or 9 fields (Layer name, IFMAP Height, IFMAP "
                   "Width, Filter Height, Filter Width, Channels, Num Filter, Strides), got 7\n");
  test::spit(topo, "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                   "Conv1, 58, 58, 3, 3, 64, 64, 1,\n");
  auto ok = run_mfsim("trace --scalesim-topology " + topo + " --batch 4 -o " + out);
  REQUIRE(ok.exit_code == 0);
  json t = json::parse(test::slurp(out));
  REQUIRE(t["records"].size() == 1);  // forward only, as SCALE-Sim
  CHECK(t["records"][0]["M"] == 56 * 56 * 4);
  CHECK(t["records"][0]["K"] == 576);
  auto train = run_mfsim("trace --scalesim-topology " + topo + " --training --batch 4 -o " + out);
  CHECK(json::parse(test::slurp(out))["records"].size() == 2);  // fwd + bwd_weight (first layer)
}

TEST_CASE("simulate: a strided SCALE-Sim row reads its feature map, not its im2col matrix (issue 22)", "[smoke]") {
  // Conv1 of a SCALE-Sim ResNet-18 topology on SCALE-Sim's terms: 32x32 INT8, one-byte outputs,
  // OS, 512/512/256 KiB. SCALE-Sim rounds its output up to 110x110; imported without geometry the
  // layer moved its im2col matrix (12100 x 147 B) from DRAM.
  TempDir dir;
  const std::string topo = dir.file("r18.csv"), gemm = dir.file("g.csv"), trace = dir.file("t.json"),
                    gtrace = dir.file("g.json"), rep = dir.file("r.json"), grep = dir.file("gr.json");
  test::spit(topo, "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                   "Conv1, 224, 224, 7, 7, 3, 64, 2,\n");
  test::spit(gemm, "Layer, M, N, K,\nConv1, 12100, 64, 147,\n");
  REQUIRE(run_mfsim("trace --scalesim-topology " + topo + " --batch 1 --format int8 -o " + trace).exit_code == 0);
  REQUIRE(run_mfsim("trace --scalesim-topology " + gemm + " --gemm --batch 1 --format int8 -o " + gtrace).exit_code == 0);
  const std::string params = " --array int8 --dataflow os --rows 32 --cols 32 --set pe.acc_bits=8 --set sram.a_kib=512 "
                             "--set sram.b_kib=512 --set sram.c_kib=256 --mode timing --report ";
  REQUIRE(run_mfsim("simulate -q --trace " + trace + params + rep).exit_code == 0);
  REQUIRE(run_mfsim("simulate -q --trace " + gtrace + params + grep).exit_code == 0);
  const json conv = json::parse(test::slurp(rep))["gemms"][0], plain = json::parse(test::slurp(grep))["gemms"][0];
  CHECK(conv["layer_type"] == "conv");
  // The physical minimum: the image 224x224x3, the weights 7x7x3x64, the output 110x110x64, once.
  const std::uint64_t minimum = 224 * 224 * 3 + 7 * 7 * 3 * 64 + 110 * 110 * 64;  // 934,336 B
  const std::uint64_t im2col_view = 12100 * 147 + 7 * 7 * 3 * 64 + 110 * 110 * 64;  // 2,562,508 B
  CHECK(conv["dram"]["compulsory_bytes"] == minimum);
  CHECK(conv["dram"]["compulsory_bytes_gemm_view"] == im2col_view);
  CHECK(plain["dram"]["bytes"] == im2col_view);
  CHECK(conv["dram"]["bytes"].get<std::uint64_t>() >= minimum);
  CHECK(conv["dram"]["bytes"].get<std::uint64_t>() < im2col_view);
  CHECK(conv["mapping"]["im2col"] == "onchip");
  // SCALE-Sim's cycle figure is the GEMM's, whatever the memory plan.
  CHECK(conv["cycles"]["scalesim_compatible"] == plain["cycles"]["scalesim_compatible"]);
}

TEST_CASE("simulate: counters never wrap, and timing mode costs per distinct fold", "[smoke]") {
  TempDir dir;
  std::string trace = dir.file("r50.json"), rep = dir.file("r.json");
  REQUIRE(run_mfsim("trace --network resnet50 --batch 32 -o " + trace).exit_code == 0);
  // 4096 x 4096 PEs for ~1e15 cycles: the PE-cycle counters pass 2^64.
  auto big = run_mfsim("simulate -q --trace " + trace + " --mode timing --array fp32 --rows 4096 --cols 4096 "
                       "--set dram.bandwidth=0.001 --set map.policy=fixed --set array.overlap=false --report " + rep);
  CHECK(big.exit_code == 2);
  CHECK(big.err == "mfsim: error: " + trace + ": totals: pe_cycles_idle: exceeds 2^64 - 1; the trace or the "
                   "parameters are too large to count in 64 bits\n");
  CHECK_FALSE(test::file_exists(rep));
  // A 1x1 array runs ResNet-50's 1.0e9 folds in closed form, per distinct fold.
  auto one = run_mfsim("simulate -q --trace " + trace + " --mode timing --array mfmac --rows 1 --cols 1 --set map.policy=fixed --report " + rep);
  REQUIRE(one.exit_code == 0);
  json j = json::parse(test::slurp(rep));
  std::uint64_t folds = 0;  // OS on 1x1: one fold per output element
  for (const auto& g : j["gemms"]) folds += g["M"].get<std::uint64_t>() * g["N"].get<std::uint64_t>() * g["repeat"].get<std::uint64_t>();
  CHECK(j["total"]["folds"].get<std::uint64_t>() == folds);
  CHECK(folds > 1'000'000'000ull);
  CHECK(j["total"]["cycles"]["total"].get<std::uint64_t>() >= j["total"]["macs"].get<std::uint64_t>());
  CHECK(j["performance"]["wall_seconds"].get<double>() < 5.0);
}

TEST_CASE("simulate: --vcd changes no counter and no energy, on every array and dataflow", "[smoke]") {
  TempDir dir;
  for (const char* array : {"mfmac", "int8", "fp32"}) {
    for (const char* df : {"os", "ws", "is"}) {
      INFO(array << " " << df);
      const std::string base = fmt::format("simulate -q --trace {} --array {} --rows 4 --cols 4 --dataflow {} "
                                           "--set dram.bandwidth=3 --energy-table paper --report ",
                                           test::example_trace(), array, df);
      auto a = run_mfsim(base + dir.file("plain.json"));
      auto b = run_mfsim(base + dir.file("vcd.json") + " --vcd " + dir.file("w.vcd"));
      REQUIRE(a.exit_code == 0);
      REQUIRE(b.exit_code == 0);
      json ja = json::parse(test::slurp(dir.file("plain.json"))), jb = json::parse(test::slurp(dir.file("vcd.json")));
      CHECK(ja["total"] == jb["total"]);
      CHECK(ja["energy_pj"] == jb["energy_pj"]);
      for (std::size_t i = 0; i < ja["gemms"].size(); ++i) {
        CHECK(ja["gemms"][i]["cycles"] == jb["gemms"][i]["cycles"]);
        CHECK(ja["gemms"][i]["events"] == jb["gemms"][i]["events"]);
      }
    }
  }
}

TEST_CASE("compare: zero gating is the same on every array, and the saving is reported both ways", "[smoke]") {
  TempDir dir;
  for (const char* gating : {"true", "false"}) {
    INFO("pe.zero_gating=" << gating);
    std::string rep = dir.file(std::string("cmp-") + gating + ".json");
    auto r = run_mfsim(fmt::format("compare --trace {} --rows 4 --cols 4 --dataflow os --energy-table paper "
                                   "--set pe.zero_gating={} --set array.second=none --report {} --runs-dir {}",
                                   test::example_trace(), gating, rep, dir.file(gating)));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find(fmt::format("zero gating: {} (pe.zero_gating, the same on every array)",
                                 std::string(gating) == "true" ? "on" : "off")) != std::string::npos);
    json j = json::parse(test::slurp(rep));
    const json& e = j["energy_pj"];
    const double zero_fraction = e["fp32"]["zero_gating"]["zero_product_fraction"].get<double>();
    CHECK(zero_fraction > 0.1);
    for (const char* a : {"int8", "mfmac"}) {
      CHECK(e[a]["zero_gating"]["zero_product_fraction"].get<double>() == zero_fraction);
    }
    // Per product under the paper table: FP32 3.7 + 0.9 pJ, MF-MAC 0.00375 + 0.015 + 0.081 + 0.14.
    CHECK(e["fp32"]["zero_gating"]["arithmetic_pj_per_product"].get<double>() == Approx(4.6));
    CHECK(e["mfmac"]["zero_gating"]["arithmetic_pj_per_product"].get<double>() == Approx(0.23975));
    const json& s = j["savings_vs_fp32"]["mfmac"];
    CHECK(s["arithmetic"].get<double>() == Approx(1 - 0.23975 / 4.6));
    CHECK(s["arithmetic_zero_gating_on"].get<double>() == Approx(1 - 0.23975 / 4.6));
    CHECK(s["arithmetic_zero_gating_off"].get<double>() == Approx(1 - 0.23975 / 4.6));
    CHECK(s["arithmetic_gated_vs_ungated_fp32"].get<double>() ==
          Approx(1 - 0.23975 * (1 - zero_fraction) / 4.6));
    // The FP32 array's own counts follow the switch.
    const json fp = json::parse(test::slurp(dir.file(std::string(gating) + "/simulate-fp32.json")))["total"]["events"];
    const auto slots = fp["mac_slots"].get<std::uint64_t>(), zero = fp["products_zero"].get<std::uint64_t>();
    CHECK(fp["fp32_mul"].get<std::uint64_t>() == (std::string(gating) == "true" ? slots - zero : slots));
  }
}

TEST_CASE("bad paths: directories and unwritable VCDs are one clear error before any work", "[smoke]") {
  TempDir dir;
  const std::string d = dir.path(), ex = test::example_trace(), rep = dir.file("r.json");
  auto r = run_mfsim(fmt::format("simulate -q --trace {} --report {} --vcd /nonexistent/w.vcd", ex, rep));
  CHECK(r.exit_code == 2);
  CHECK(r.err == "mfsim: error: /nonexistent/w.vcd: cannot create file: no directory /nonexistent\n");
  r = run_mfsim(fmt::format("simulate -q --trace {} --report {} --vcd {}", ex, rep, d));
  CHECK(r.exit_code == 2);
  CHECK(r.err == fmt::format("mfsim: error: simulate: --vcd: \"{}\" must end in .vcd (the waveform file's name)\n", d));
  std::string vdir = dir.file("w.vcd");
  REQUIRE(std::system(("mkdir " + vdir).c_str()) == 0);
  r = run_mfsim(fmt::format("simulate -q --trace {} --report {} --vcd {}", ex, rep, vdir));
  CHECK(r.exit_code == 2);
  CHECK(r.err == fmt::format("mfsim: error: {}: is a directory, expected a file\n", vdir));
  r = run_mfsim(fmt::format("simulate -q --trace {} --report {}", ex, d));
  CHECK(r.exit_code == 2);
  CHECK(r.err == fmt::format("mfsim: error: {}: is a directory, expected a file\n", d));
  r = run_mfsim(fmt::format("simulate -q --trace {} --report {} --energy-table {}", ex, rep, d));
  CHECK(r.exit_code == 2);
  CHECK(r.err == fmt::format("mfsim: error: {}: is a directory, expected a file\n", d));
  r = run_mfsim(fmt::format("trace --scalesim-topology {} --batch 1 -o {}", d, dir.file("t.json")));
  CHECK(r.exit_code == 2);
  CHECK(r.err == fmt::format("mfsim: error: {}: is a directory, expected a file\n", d));
  r = run_mfsim(fmt::format("simulate -q --trace {} --report {}", d, rep));
  CHECK(r.exit_code == 2);
  CHECK(r.err == fmt::format("mfsim: error: {}: is a directory; expected a trace file (.json)\n", d));
  // Nothing was left behind: no report, no temporary file.
  CHECK(std::system(("ls " + d + " | grep -v '^w.vcd$' | grep -q .").c_str()) != 0);
}

TEST_CASE("trace: --batch beyond the trace format's limits names the option and the limit", "[smoke]") {
  TempDir dir;
  const std::string out = dir.file("t.json");
  auto r = run_mfsim("trace --network resnet50 --batch 1000000 -o " + out);
  CHECK(r.exit_code == 2);
  CHECK(r.err == "mfsim: error: trace: --batch: 1000000 is too large for resnet50: its GEMM dimensions would pass "
                 "2^31 - 1 (at most 171196 per step)\n");
  r = run_mfsim("trace --network resnet50 --batch 100000000000 -o " + out);
  CHECK(r.exit_code == 2);
  CHECK(r.err == "mfsim: error: trace: --batch: 100000000000 is too large (at most 2147483647)\n");
  r = run_mfsim("trace --network resnet50 --batch 12a -o " + out);
  CHECK(r.err == "mfsim: error: trace: --batch: expected a positive integer, got \"12a\"\n");
  r = run_mfsim("trace --network resnet50 --batch 171196 --phases fwd -o " + out);
  CHECK(r.exit_code == 0);
  CHECK_FALSE(test::file_exists(dir.file("none.json")));
}

TEST_CASE("help and listings: aligned columns, plain defaults", "[smoke]") {
  auto r = run_mfsim("simulate --list-params");
  REQUIRE(r.exit_code == 0);
  std::stringstream in(r.out);
  std::string line;
  std::size_t column = std::string::npos;
  while (std::getline(in, line)) {
    const std::size_t at = line.find_first_not_of(' ', line.find(' '));  // start of the second column
    if (column == std::string::npos) column = at;
    INFO(line);
    CHECK(at == column);
  }
  auto help = run_mfsim("train --help");
  CHECK(help.out.find("(=0.9)") != std::string::npos);
  CHECK(help.out.find("0.9000000") == std::string::npos);
  CHECK(help.out.find("0.0200000") == std::string::npos);
}

TEST_CASE("simulate: the mapping in the report, pinned tilings, their errors", "[smoke]") {
  TempDir dir;
  const std::string rep = dir.file("r.json"), ex = test::example_trace();
  auto r = run_mfsim(fmt::format("simulate -q --trace {} --rows 4 --cols 4 --dataflow ws --report {}", ex, rep));
  REQUIRE(r.exit_code == 0);
  json j = json::parse(test::slurp(rep));
  for (const auto& g : j["gemms"]) {
    CHECK(g["mapping"]["kind"] == "searched");
    CHECK(g["dram"]["bytes"].get<std::uint64_t>() >= g["dram"]["compulsory_bytes"].get<std::uint64_t>());
    std::uint64_t causes = 0;
    for (const auto& c : g["cycles"]["stall_by_cause"]) causes += c.get<std::uint64_t>();
    CHECK(causes == g["cycles"]["stall"].get<std::uint64_t>());
  }
  CHECK(j["total"]["dram"]["ratio_to_compulsory"].get<double>() >= 1.0);
  // A pinned tiling: every GEMM uses it (clamped to its dimensions), value mode stays bit-exact.
  r = run_mfsim(fmt::format("simulate -q --trace {} --rows 4 --cols 4 --dataflow ws --set map.tiles=8x4xk:nkm --report {}",
                            ex, rep));
  REQUIRE(r.exit_code == 0);
  j = json::parse(test::slurp(rep));
  CHECK(j["verification"]["mismatches"] == 0);
  CHECK(j["gemms"][0]["mapping"]["kind"] == "pinned");
  CHECK(j["gemms"][0]["mapping"]["order"] == "nkm");
  CHECK(j["gemms"][0]["mapping"]["tiles"]["M"] == 7);  // clamped to M = 7
  CHECK(j["gemms"][0]["mapping"]["tiles"]["N"] == 4);
  // map.policy=fixed is the untiled mapping.
  r = run_mfsim(fmt::format("simulate -q --trace {} --rows 4 --cols 4 --set map.policy=fixed --report {}", ex, rep));
  REQUIRE(r.exit_code == 0);
  CHECK(json::parse(test::slurp(rep))["gemms"][0]["mapping"]["kind"] == "fixed");
  // Errors.
  r = run_mfsim(fmt::format("simulate -q --trace {} --set map.tiles=8x4 --report {}", ex, rep));
  CHECK(r.exit_code == 2);
  CHECK(r.err == "mfsim: error: --set map.tiles=8x4: map.tiles: expected auto or MtxNtxKt:ORDER, got \"8x4\"\n");
  r = run_mfsim(fmt::format("simulate -q --trace {} --set map.tiles=8x4x2:mmk --report {}", ex, rep));
  CHECK(r.err == "mfsim: error: --set map.tiles=8x4x2:mmk: map.tiles: expected auto or MtxNtxKt:ORDER, got \"8x4x2:mmk\"\n");
  r = run_mfsim(fmt::format("simulate -q --trace {} --set map.tiles=mxnxk:mnk --set sram.c_kib=1 --report {}",
                            test::source_dir() + "/traces/examples/mlp-tiny.json", rep));
  CHECK(r.exit_code == 2);
  CHECK(r.err == "mfsim: error: " + test::source_dir() + "/traces/examples/mlp-tiny.json: records[4] (fc1 bwd_weight): "
                 "map.tiles: mxnxk:mnk (20x12x7:mnk for this GEMM) does not fit GEMM 20x12x7 on this configuration "
                 "(each tile in half its buffer, the output tile in half the C buffer)\n");
  CHECK_FALSE(test::file_exists(rep + ".tmp"));
}

TEST_CASE("compare: every array gates the same zero products, also one that cannot hold the trace's operands",
          "[smoke]") {
  TempDir dir;
  auto r = run_mfsim(fmt::format("compare -q --trace {} --rows 4 --cols 4 --report {} --runs-dir {}",
                                 test::example_trace(), dir.file("c.json"), dir.file("runs")));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json want = json::parse(test::slurp(dir.file("runs/simulate-mfmac.json")))["total"]["events"];
  REQUIRE(want["products_zero"].get<std::uint64_t>() > 0);
  for (const PeType* pe : pe_types()) {
    const json rep = json::parse(test::slurp(dir.file(fmt::format("runs/simulate-{}.json", pe->name))));
    INFO(pe->name);
    CHECK(rep["total"]["events"]["products_zero"] == want["products_zero"]);
    for (const auto& g : rep["gemms"]) CHECK(g["zero_products_measured"] == true);
  }
}

TEST_CASE("simulate: GEMMs priced as another arithmetic are counted, one note per kind, details per GEMM", "[smoke]") {
  TempDir dir;
  // The example trace has 5 PoT4, 1 INT8 and 1 FP32 GEMM: on INT4 none is exact.
  auto r = run_mfsim(fmt::format("simulate --trace {} --array int4 --report {}", test::example_trace(), dir.file("r.json")));
  REQUIRE(r.exit_code == 0);
  const json j = json::parse(test::slurp(dir.file("r.json")));
  CHECK(j["verification"]["gemms"] == 7);
  CHECK(j["verification"]["gemms_exact"] == 0);
  CHECK(j["verification"]["macs_exact_fraction"] == 0.0);
  CHECK(j["notes"].size() == 3);  // one per (format, array), not one per GEMM
  CHECK(r.out.find("note: 5 of 7 GEMMs (63.64% of the MACs) are estimates: pot4 operands on the int4 array are not "
                   "exact, so they are priced as its products (5 with operands: timing mode, not verified)\n") !=
        std::string::npos);
  int with_note = 0;
  for (const auto& g : j["gemms"]) with_note += g.contains("note") ? 1 : 0;
  CHECK(with_note == 7);
  // On MF-MAC the PoT4 GEMMs are exact and verified; the INT8 and FP32 ones are estimates.
  auto m = run_mfsim(fmt::format("simulate -q --trace {} --array mfmac --report {}", test::example_trace(), dir.file("m.json")));
  REQUIRE(m.exit_code == 0);
  const json mj = json::parse(test::slurp(dir.file("m.json")));
  CHECK(mj["verification"]["gemms_exact"] == 5);
  CHECK(mj["verification"]["gemms_checked"] == 5);
  CHECK(mj["verification"]["macs_exact_fraction"].get<double>() == Approx(1 - 2 * 0.1818181818).epsilon(1e-6));
  CHECK(mj["notes"].size() == 2);
}
