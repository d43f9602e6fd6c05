// mfsim train on networks the data or the machine cannot hold, and runs that diverge: one line and
// exit 2 before anything is allocated or trained; divergence reported, not hidden.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "tests/test_util.h"

using mfsim::test::run_mfsim;
using mfsim::test::TempDir;
using nlohmann::json;

TEST_CASE("train: a classifier with fewer or more outputs than the data's classes is refused", "[smoke]") {
  TempDir dir;
  mfsim::test::write_dataset(dir.path(), 64, 16);
  for (const auto& [spec, outputs] : {std::pair<const char*, int>{"flatten,fc:1", 1}, {"flatten,fc:12", 12},
                                      {"conv:4:3:1:1,relu", 3136}}) {
    INFO(spec);
    auto r = run_mfsim(fmt::format("train -q --spec {} --quant fp32 --epochs 1 --data {} --report {}", spec, dir.path(),
                                   dir.file("r.json")));
    CHECK(r.exit_code == 2);
    CHECK(r.err == fmt::format("mfsim: error: network spec \"{}\": the last layer gives {} outputs per example, but the "
                               "data has 10 classes; end the network with fc:10\n",
                               spec, outputs));
    CHECK_FALSE(mfsim::test::file_exists(dir.file("r.json")));
  }
}

TEST_CASE("train: networks too large to hold are refused before allocation, naming the layer", "[smoke]") {
  TempDir dir;
  const struct {
    const char* spec;
    std::string error;
  } cases[] = {
      {"flatten,fc:2000000000",
       "network spec \"flatten,fc:2000000000\": \"fc:2000000000\": the network would have 1570000000000 weights, "
       "more than the 268435456 the training core holds"},
      {"conv:100000:5:1:2,relu,flatten,fc:10",
       "network spec \"conv:100000:5:1:2,relu,flatten,fc:10\": \"conv:100000:5:1:2\": its output has 78400000 elements "
       "per example, more than the 67108864 the training core holds"},
      {"conv:8:3:1:2147483647,flatten,fc:10",
       "network spec \"conv:8:3:1:2147483647,flatten,fc:10\": \"conv:8:3:1:2147483647\": kernel, stride and padding must "
       "be at most 4096"},
  };
  for (const auto& c : cases) {
    INFO(c.spec);
    auto r = run_mfsim(fmt::format("train -q --spec {} --quant fp32 --epochs 1 --data {} --report {}", c.spec,
                                   dir.path(), dir.file("r.json")));
    CHECK(r.exit_code == 2);
    CHECK(r.err == "mfsim: error: " + c.error + "\n");
  }
  // A network that fits per example but not as a batch.
  mfsim::test::write_dataset(dir.path(), 64, 16);
  auto b = run_mfsim(fmt::format("train -q --spec conv:1000:5:1:2,relu,flatten,fc:10 --batch 2000 --quant fp32 "
                                 "--epochs 1 --data {} --report {}",
                                 dir.path(), dir.file("r.json")));
  CHECK(b.exit_code == 2);
  CHECK(b.err == "mfsim: error: network spec \"conv:1000:5:1:2,relu,flatten,fc:10\": a batch of 2000 needs "
                 "1568000000 elements in its largest tensor, more than the 1073741824 the training core holds; use a "
                 "smaller --batch\n");
}

TEST_CASE("train: a loss that explodes is divergence, reported with a failing exit code", "[smoke]") {
  TempDir dir;
  mfsim::test::write_dataset(dir.path(), 128, 32);
  auto r = run_mfsim(fmt::format("train -q --model mlp --quant fp32 --epochs 2 --batch 32 --lr 1e30 --data {} --report {}",
                                 dir.path(), dir.file("r.json")));
  CHECK(r.exit_code == 1);
  const json j = json::parse(mfsim::test::slurp(dir.file("r.json")));
  CHECK(j["diverged"] == true);
  // Every epoch the report lists ended with a finite loss no more than 100x the first step's.
  for (const auto& l : j["train_loss_per_epoch"]) CHECK(l.get<double>() < 100 * 2.31);
  // A sane learning rate does not diverge.
  auto ok = run_mfsim(fmt::format("train -q --model mlp --quant fp32 --epochs 1 --batch 32 --data {} --report {}",
                                  dir.path(), dir.file("ok.json")));
  CHECK(ok.exit_code == 0);
  CHECK(json::parse(mfsim::test::slurp(dir.file("ok.json")))["diverged"] == false);
}

// Run under the sanitizer tier (scripts/sanitize.sh runs the whole suite with ASan and UBSan):
// a short training of every built-in network and of odd specs, so an out-of-bounds access in
// any layer's forward or backward pass is caught.
TEST_CASE("train: every built-in network and odd specs train a few steps cleanly", "[smoke]") {
  TempDir dir;
  mfsim::test::write_dataset(dir.path(), 48, 16);
  const std::string common = fmt::format("--epochs 1 --batch 16 --data {} --report {}", dir.path(), dir.file("r.json"));
  std::vector<std::string> runs;
  for (const char* model : {"mlp", "cnn", "cnn-bn", "resnet8"}) {
    for (const char* quant : {"fp32", "als-potq"}) runs.push_back(fmt::format("--model {} --quant {}", model, quant));
  }
  for (const char* spec : {"flatten,fc:10", "conv:3:1:1:0,flatten,fc:10", "conv:2:5:3:0,relu,maxpool:2,flatten,fc:10",
                           "conv:4:3:2:1,bn,relu,res:4:2,res:6:2,gap,fc:10", "bn,relu,flatten,fc:7,relu,fc:10",
                           "conv:5:2:4:1,flatten,fc:10", "maxpool:7,flatten,fc:10", "conv:3:28:1:0,flatten,fc:10"}) {
    runs.push_back(fmt::format("--spec {} --quant als-potq --first-last int8", spec));
  }
  for (const auto& args : runs) {
    INFO(args);
    auto r = run_mfsim(fmt::format("train -q {} {}", args, common));
    INFO(r.err);
    CHECK(r.exit_code == 0);
    if (r.exit_code != 0) continue;
    const json j = json::parse(mfsim::test::slurp(dir.file("r.json")));
    CHECK(j["diverged"] == false);
    CHECK(j["train_loss_per_epoch"][0].get<double>() > 0);
  }
  auto t = run_mfsim(fmt::format("train -q --model transformer:layers=1,d=16,heads=2,ff=32,seq=8,vocab=17 --quant als-potq "
                                 "--epochs 1 --batch 8 --train-examples 32 --test-examples 8 --report {}",
                                 dir.file("t.json")));
  INFO(t.err);
  CHECK(t.exit_code == 0);
}
