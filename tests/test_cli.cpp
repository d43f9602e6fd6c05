// The mfsim command line end to end: usage, exit codes, inspect, the shipped example.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include <cstdlib>
#include <random>

#include "common/crc32.h"
#include "tests/test_util.h"
#include "traces/example_trace.h"

using namespace mfsim;
using mfsim::test::run_mfsim;
using mfsim::test::TempDir;

namespace {
int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }
}  // namespace

TEST_CASE("mfsim --help, --version and usage errors", "[smoke]") {
  auto help = run_mfsim("--help");
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("usage: mfsim <command> [options]") != std::string::npos);
  CHECK(help.out.find("inspect") != std::string::npos);
  auto version = run_mfsim("--version");
  CHECK(version.exit_code == 0);
  CHECK(version.out == fmt::format("mfsim {}\n", MFSIM_VERSION));
  auto none = run_mfsim("");
  CHECK(none.exit_code == 2);
  auto unknown = run_mfsim("simulatee");
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.err ==
        "mfsim: error: unknown command \"simulatee\"; expected train|inspect|trace|simulate|compare|sweep|capture|example-trace (see 'mfsim "
        "--help')\n");
  auto sub_help = run_mfsim("inspect --help");
  CHECK(sub_help.exit_code == 0);
  CHECK(sub_help.out.find("--recompute") != std::string::npos);
  auto bad_opt = run_mfsim("inspect --colour " + test::example_trace());
  CHECK(bad_opt.exit_code == 2);
  CHECK(bad_opt.err ==
        "mfsim: error: inspect: unrecognised option '--colour'; see 'mfsim inspect --help'\n");
  auto missing = run_mfsim("inspect");
  CHECK(missing.exit_code == 2);
  CHECK(missing.err == "mfsim: error: inspect: missing argument trace; see 'mfsim inspect --help'\n");
  auto conflict = run_mfsim("inspect --no-verify --recompute " + test::example_trace());
  CHECK(conflict.exit_code == 2);
  CHECK(conflict.err == "mfsim: error: inspect: --recompute needs the payloads; drop --no-verify\n");
}

TEST_CASE("mfsim inspect summarises the shipped example and recomputes it", "[smoke]") {
  auto r = run_mfsim("inspect --recompute " + test::example_trace());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.empty());
  CHECK(r.out.find("records    7 (7 with payload, 5,540 payload bytes, checksums verified)") !=
        std::string::npos);
  CHECK(r.out.find("recomputed 7 GEMMs: all match the reference arithmetic") != std::string::npos);
  // 7x12x20 (three times: pot4, int8, fp32) + 7x10x12 = 5880 forward MACs.
  CHECK(r.out.find("fwd                 4               5,880  pot4 x2, int8 x1, fp32 x1") !=
        std::string::npos);
  CHECK(r.out.find("bwd_data            1                 840  pot4 x1") != std::string::npos);
  CHECK(r.out.find("total               7               9,240") != std::string::npos);

  auto j = run_mfsim("inspect --json " + test::example_trace());
  REQUIRE(j.exit_code == 0);
  auto doc = nlohmann::json::parse(j.out);
  CHECK(doc["records"] == 7);
  CHECK(doc["records_with_payload"] == 7);
  CHECK(doc["checksums_verified"] == true);
  CHECK(doc["macs_total"] == 9240);
  CHECK(doc["phases"]["fwd"]["macs"] == 5880);
  CHECK(doc["phases"]["bwd_weight"]["records"] == 2);
  CHECK(doc["phases"]["fwd"]["formats"]["int8"] == 1);
  CHECK(doc["layers"] == nlohmann::json::array({"fc1", "fc2"}));
}

TEST_CASE("mfsim inspect: bad input exits 2 with one line naming file and field", "[smoke]") {
  TempDir dir;
  std::string path = dir.file("bad.json");
  test::spit(path, R"({"format":"mfsim-trace","version":1,"records":[{"layer":"fc","phase":"fwd",)"
                   R"("M":4,"N":4,"K":-3,"a":{"format":"fp32"},"b":{"format":"fp32"}}]})");
  auto r = run_mfsim("inspect " + path);
  CHECK(r.exit_code == 2);
  CHECK(r.out.empty());
  CHECK(r.err == "mfsim: error: " + path + ": records[0].K: expected a positive integer below 2^31, got -3\n");
  CHECK(count_lines(r.err) == 1);
  auto missing = run_mfsim("inspect " + dir.file("absent.json"));
  CHECK(missing.exit_code == 2);
  CHECK(missing.err == "mfsim: error: " + dir.file("absent.json") +
                           ": cannot open file: No such file or directory\n");
}

TEST_CASE("mfsim inspect --recompute: a wrong expected output exits 3 naming GEMM and element", "[smoke]") {
  TempDir dir;
  std::string path = dir.file("t.json"), bin = dir.file("t.bin");
  write_example_trace(path, 1);
  auto doc = nlohmann::json::parse(test::slurp(path));
  auto& ref = doc["records"][1]["payload"]["expected"];
  std::string bytes = test::slurp(bin);
  auto offset = ref["offset"].get<std::size_t>(), size = ref["bytes"].get<std::size_t>();
  // Element (1, 3) of the 7x10 output: int32 index 13.
  bytes[offset + 13 * 4] = static_cast<char>(bytes[offset + 13 * 4] + 1);
  test::spit(bin, bytes);
  ref["crc32"] = fmt::format("{:08x}", crc32(bytes.data() + offset, size));  // still consistent
  test::spit(path, doc.dump());
  auto plain = run_mfsim("inspect " + path);
  CHECK(plain.exit_code == 0);  // checksums fine; values not recomputed
  auto r = run_mfsim("inspect --recompute " + path);
  CHECK(r.exit_code == 3);
  CHECK(r.err.rfind("mfsim: mismatch: " + path + ": records[1] (fc2 fwd): first mismatch at output "
                    "element (1, 3) of 7x10: recomputed ",
                    0) == 0);
  CHECK(count_lines(r.err) == 1);
}

TEST_CASE("the shipped example trace regenerates byte for byte", "[golden]") {
  TempDir dir;
  std::string path = dir.file("mlp-tiny.json");
  auto r = run_mfsim("example-trace --seed 1 -o " + path);
  REQUIRE(r.exit_code == 0);
  INFO("regenerate with: build/mfsim example-trace --seed 1 -o traces/examples/mlp-tiny.json");
  CHECK(test::slurp(path) == test::slurp(test::example_trace()));
  CHECK(test::slurp(dir.file("mlp-tiny.bin")) ==
        test::slurp(test::source_dir() + "/traces/examples/mlp-tiny.bin"));
}

namespace {
// A trace to simulate: the ResNet-18 step written beside `out` once.
std::string before_path(const std::string& out, const mfsim::test::TempDir& dir) {
  (void)out;
  const std::string path = dir.file("r18.json");
  if (!mfsim::test::file_exists(path)) {
    if (mfsim::test::run_mfsim("trace --network resnet18 --batch 32 -o " + path).exit_code != 0) return "";
  }
  return path;
}
}  // namespace

TEST_CASE("writers killed mid-write leave the previous file or none, and a full disk is a clear error", "[smoke]") {
  TempDir dir;
  const std::string out = dir.file("t.json");
  // The previous, complete file.
  REQUIRE(run_mfsim("trace --network resnet18 --batch 1 -o " + out).exit_code == 0);
  const std::string before = test::slurp(out);
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> us(0, 40000);
  for (int kill = 0; kill < 10; ++kill) {
    const int delay = us(rng);
    const std::string cmd = fmt::format("timeout -s KILL 0.{:06d} {} trace --network transformer-base --batch 64 -o {} "
                                        ">/dev/null 2>&1", delay, MFSIM_BINARY, out);
    CHECK(std::system(cmd.c_str()) != -1);
    INFO("killed after " << delay << " us");
    const std::string now = test::slurp(out);
    // Either the previous trace or a complete new one: never a partial file.
    if (now != before) CHECK_NOTHROW(nlohmann::json::parse(now));
  }
  // The same for a report: simulate's report of the ResNet-18 step (about 0.2 s of work).
  const std::string rep = dir.file("r.json");
  REQUIRE(run_mfsim(fmt::format("simulate -q --trace {} --mode timing --report {}", before_path(out, dir), rep)).exit_code == 0);
  const std::string old_report = test::slurp(rep);
  std::uniform_int_distribution<int> ms(0, 250);
  for (int kill = 0; kill < 10; ++kill) {
    const int delay = ms(rng);
    const std::string cmd = fmt::format("timeout -s KILL 0.{:03d} {} simulate -q --trace {} --mode timing --rows 16 "
                                        "--cols 16 --report {} >/dev/null 2>&1",
                                        delay, MFSIM_BINARY, before_path(out, dir), rep);
    CHECK(std::system(cmd.c_str()) != -1);
    INFO("killed after " << delay << " ms");
    const std::string now = test::slurp(rep);
    if (now != old_report) CHECK_NOTHROW(nlohmann::json::parse(now));
  }
  // A file-size limit (as a full disk): one clear line, no file under the target name.
  const std::string big = dir.file("big.json");
  const std::string cmd = fmt::format("bash -c 'ulimit -f 8; {} trace --network resnet50 --batch 32 -o {}' 2> {}",
                                      MFSIM_BINARY, big, dir.file("err"));
  const int rc = std::system(cmd.c_str());
  CHECK(WEXITSTATUS(rc) == 1);
  CHECK(test::slurp(dir.file("err")) == "mfsim: failure: " + big + ": write failed: File too large\n");
  CHECK_FALSE(test::file_exists(big));
  CHECK(std::system(fmt::format("ls {} | grep -q big.json.tmp", dir.path()).c_str()) != 0);
  // Killed writers leave their temporary file; the next writer of the same target removes it.
  REQUIRE(run_mfsim(fmt::format("simulate -q --trace {} --mode timing --report {}", before_path(out, dir), rep)).exit_code == 0);
  CHECK(std::system(fmt::format("ls {} | grep -q 'r.json.tmp'", dir.path()).c_str()) != 0);
}

TEST_CASE("options that conflict or do not apply are one line, exit 2, before any work", "[smoke]") {
  TempDir dir;
  const std::string out = dir.file("o.json"), t = test::example_trace();
  test::spit(dir.file("topo.csv"), "Layer name, M, N, K,\nfc, 4, 4, 4,\n");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"trace --network transformer-base --tokens 256 --batch 2 --seq 128 -o " + out,
       "trace: --tokens and --batch: give one (--tokens sets the batch to tokens / --seq)"},
      {"trace --network resnet18 --batch 2 --seq 64 -o " + out,
       "trace: --seq: applies only to Transformers (transformer-base, transformer:...), not resnet18"},
      {"trace --network resnet18 --tokens 64 -o " + out,
       "trace: --tokens: applies only to Transformers (transformer-base, transformer:...), not resnet18"},
      {"trace --network vgg16 --batch 2 --vocab 100 -o " + out,
       "trace: --vocab: applies only to Transformers (transformer-base, transformer:...), not vgg16"},
      {"trace --network transformer-base --batch 2 --image 32x32 -o " + out,
       "trace: --image: applies only to CNNs, not transformer-base"},
      {"trace --network resnet18 --batch 2 --gemm -o " + out, "trace: --gemm: applies only to --scalesim-topology"},
      {"trace --network resnet18 --batch 2 --training -o " + out, "trace: --training: applies only to --scalesim-topology"},
      {"trace --scalesim-topology " + dir.file("topo.csv") + " --gemm --batch 2 --seq 8 -o " + out,
       "trace: --seq: applies only to --network, not --scalesim-topology"},
      {"train --no-prc --prc-operands a --report " + out, "train: --prc-operands: PRC is off (--no-prc); drop one of the two"},
      {"train --no-prc --prc-criterion mse --report " + out,
       "train: --prc-criterion: PRC is off (--no-prc); drop one of the two"},
      {"train --quant int8 --no-wbc --report " + out, "train: --no-wbc: applies only to --quant als-potq, not int8"},
      {"train --quant fp32 --error-scale floor --report " + out,
       "train: --error-scale: applies only to --quant als-potq, not fp32"},
      {"train --model cnn --attention-quant fp32 --report " + out, "train: --attention-quant: applies only to the transformer, not cnn"},
      {"train --spec flatten,fc:10 --train-examples 10 --report " + out,
       "train: --train-examples: applies only to the transformer, not a --spec network"},
      {"train --model transformer --train-limit 10 --report " + out,
       "train: --train-limit: does not apply to the transformer (its task is generated; --train-examples and "
       "--test-examples size it)"},
      {"train --model transformer --conv-path direct --report " + out,
       "train: --conv-path: does not apply to the transformer (it has no convolutions)"},
      {"train --model cnn --spec flatten,fc:10 --report " + out, "train: --spec and --model: give one (--spec is a custom network)"},
      {"simulate --trace " + t + " --set dram.bandwidth=4 --set dram.bandwidth=8 --report " + out,
       "--set dram.bandwidth=8: dram.bandwidth is already set by --set dram.bandwidth=4"},
      {"simulate --trace " + t + " --set array.rows=4 --set array.rows=4 --report " + out,
       "--set array.rows=4: array.rows is already set by --set array.rows=4"},
  };
  for (const auto& [args, message] : cases) {
    INFO(args);
    auto r = run_mfsim(args);
    CHECK(r.exit_code == 2);
    CHECK(r.err == "mfsim: error: " + message + "\n");
    CHECK_FALSE(test::file_exists(out));
  }
  // compare passes --set to each simulation; the repeated key is still one line.
  auto r = run_mfsim(fmt::format("compare --trace {} --arrays mfmac --set pe.acc_bits=16 --set pe.acc_bits=32 --report {}", t,
                                 dir.file("c.json")));
  CHECK(r.exit_code == 2);
  CHECK(count_lines(r.err) == 1);
  CHECK(r.err.find("--set pe.acc_bits=32: pe.acc_bits is already set by --set pe.acc_bits=16") != std::string::npos);
  // A duplicate key in a config file names the key and the file.
  test::spit(dir.file("cfg.json"), "{\"dram\": {\"bandwidth\": 4, \"bandwidth\": 8}}");
  r = run_mfsim(fmt::format("simulate --trace {} --config {} --report {}", t, dir.file("cfg.json"), out));
  CHECK(r.exit_code == 2);
  CHECK(r.err == "mfsim: error: " + dir.file("cfg.json") + ": dram.bandwidth: key given twice in one object\n");
}
