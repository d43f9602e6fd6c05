// The step's work outside the GEMMs (docs/non-gemm.md): the generated operations of the known
// networks (parameter counts against torchvision's, closed forms of their arithmetic), the trace
// format's "ops" (round trip, errors), the vector unit's closed form, and the simulate report's
// whole-step totals (GEMMs + vector unit) through the CLI.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/error.h"
#include "sim/params.h"
#include "sim/vector_unit.h"
#include "tests/test_util.h"
#include "traces/network_ops.h"
#include "traces/networks.h"
#include "traces/trace_reader.h"
#include "traces/trace_writer.h"
#include "training/transformer.h"

using namespace mfsim;
using json = nlohmann::json;
using mfsim::test::TempDir;

namespace {
const NonGemmOp& find_op(const std::vector<NonGemmOp>& ops, OpKind kind, OpPhase phase) {
  for (const auto& op : ops) {
    if (op.kind == kind && op.phase == phase) return op;
  }
  FAIL("no such operation");
  return ops.front();
}
}  // namespace

TEST_CASE("non-GEMM ops: the optimizer updates every parameter of the network", "[model]") {
  NetworkOptions o;
  o.batch = 2;
  // torchvision's parameter counts (sum of p.numel() over model.parameters(), 1000 classes),
  // as its model documentation lists them.
  const std::pair<const char*, std::uint64_t> published[] = {
      {"resnet18", 11689512}, {"resnet50", 25557032}, {"vgg16", 138357544}, {"mobilenetv2", 3504872}};
  for (const auto& [name, params] : published) {
    INFO(name);
    const NetworkOpsResult r = network_ops(name, o, network_layers(name, o));
    CHECK(r.parameters == params);
    CHECK(r.optimizer == "sgd_momentum");
    const NonGemmOp& upd = find_op(r.ops, OpKind::kOptimizer, OpPhase::kUpdate);
    CHECK(upd.elements == params);
    CHECK(upd.flops[static_cast<int>(FpOp::kMul)] == 3 * params);  // momentum, weight decay, learning rate
  }
  // The decoder-only Transformer: the training core's own model, counted tensor by tensor.
  const std::string spec = "transformer:layers=2,d=32,heads=4,ff=64,seq=16,vocab=23";
  const TransformerConfig c = parse_transformer_spec(spec);
  TransformerModel model(c, 1);
  std::uint64_t core = 0;
  for (auto& [value, grad] : model.params()) core += value->size();
  const NetworkOpsResult t = network_ops(spec, o, network_layers(spec, o));
  CHECK(t.parameters == core);
  CHECK(t.optimizer == "adam");
  CHECK(find_op(t.ops, OpKind::kOptimizer, OpPhase::kUpdate).flops[static_cast<int>(FpOp::kSqrt)] == core);
}

TEST_CASE("non-GEMM ops: closed forms of ResNet-18's operations", "[model]") {
  NetworkOptions o;
  o.batch = 4;
  const auto layers = network_layers("resnet18", o);
  const NetworkOpsResult r = network_ops("resnet18", o, layers);
  std::uint64_t bn_fwd = 0, bn = 0, relu = 0, adds = 0, pools = 0, losses = 0;
  for (const auto& op : r.ops) {
    if (op.name == "batchnorm") ++bn;
    if (op.name == "batchnorm" && op.phase == OpPhase::kFwd) bn_fwd += op.elements;
    if (op.name == "relu" && op.phase == OpPhase::kFwd) ++relu;
    if (op.name == "residual_add" && op.phase == OpPhase::kFwd) ++adds;
    if (op.kind == OpKind::kPooling) ++pools;
    if (op.kind == OpKind::kLoss) ++losses;
  }
  // 20 convolutions (17 + 3 downsample), each with a batch norm forward and backward; ReLU after
  // conv1, after the first convolution of each of the 8 blocks and after each block's addition.
  CHECK(bn == 2 * 20);
  std::uint64_t conv_out = 0;
  for (const auto& l : layers) {
    if (l.type == LayerType::kConv) conv_out += static_cast<std::uint64_t>(l.m * l.n * l.repeat);
  }
  CHECK(bn_fwd == conv_out);  // a batch norm normalizes every convolution output once
  CHECK(relu == 1 + 8 + 8);
  CHECK(adds == 8);
  CHECK(pools == 4);   // max-pool and average pool, forward and backward
  CHECK(losses == 2);  // softmax cross-entropy forward and backward
  // The first batch norm: 4 x 64 x 112 x 112 outputs, 64 channels, 4 adds and 3 multiplies per
  // element, a division and a square root per channel.
  const NonGemmOp& bn1 = r.ops.front();
  CHECK(bn1.name == "batchnorm");
  CHECK(bn1.elements == 4ULL * 64 * 112 * 112);
  CHECK(bn1.flops[static_cast<int>(FpOp::kAdd)] == 4 * bn1.elements + 3 * 64);
  CHECK(bn1.flops[static_cast<int>(FpOp::kMul)] == 3 * bn1.elements + 6 * 64);
  CHECK(bn1.flops[static_cast<int>(FpOp::kDiv)] == 64);
  CHECK(bn1.flops[static_cast<int>(FpOp::kSqrt)] == 64);
  CHECK(bn1.read_bytes() == 4 * (bn1.elements + 2 * 64));
  // The backward ops run in the reverse order of the forward ones, then the update.
  CHECK(r.ops.back().kind == OpKind::kOptimizer);
  CHECK(r.ops[r.ops.size() - 2].name == "batchnorm");
  CHECK(r.ops[r.ops.size() - 2].phase == OpPhase::kBwd);
  CHECK_THROWS_AS(network_ops("nosuch", o, layers), InputError);
}

TEST_CASE("non-GEMM ops: the trace format round-trips them and rejects bad ones", "[unit]") {
  TempDir dir;
  NetworkOptions o;
  o.batch = 2;
  const std::string spec = "transformer:layers=1,d=16,heads=2,ff=32,seq=8,vocab=11";
  const auto layers = network_layers(spec, o);
  const NetworkOpsResult r = network_ops(spec, o, layers);
  const std::string path = dir.file("t.json");
  {
    TraceWriter w(path, "test");
    for (const auto& rec : training_records(layers, PhaseSelection{}, NumFormat::kPot4)) w.add_shape(rec);
    for (const auto& op : r.ops) w.add_op(op);
    w.commit();
  }
  TraceReader reader(path);
  REQUIRE(reader.trace().ops.size() == r.ops.size());
  for (std::size_t i = 0; i < r.ops.size(); ++i) {
    const NonGemmOp &a = r.ops[i], &b = reader.trace().ops[i];
    CHECK(a.kind == b.kind);
    CHECK(a.name == b.name);
    CHECK(a.layer == b.layer);
    CHECK(a.phase == b.phase);
    CHECK(a.elements == b.elements);
    for (int f = 0; f < kNumFpOps; ++f) CHECK(a.flops[f] == b.flops[f]);
    CHECK(a.read_bytes() == b.read_bytes());
    CHECK(a.write_bytes() == b.write_bytes());
    REQUIRE(a.reads.size() == b.reads.size());
    REQUIRE(a.writes.size() == b.writes.size());
    for (std::size_t t = 0; t < a.reads.size(); ++t) CHECK(a.reads[t].role == b.reads[t].role);
    for (std::size_t t = 0; t < a.writes.size(); ++t) CHECK(a.writes[t].role == b.writes[t].role);
  }
  // Bad operations: one line naming the field.
  auto bad = [&](const std::string& op) {
    const std::string text = fmt::format(
        R"({{"format":"mfsim-trace","version":1,"records":[{{"layer":"fc","phase":"fwd","M":2,"N":2,"K":2,"a":{{"format":"fp32"}},"b":{{"format":"fp32"}}}}],"ops":[{}]}})",
        op);
    try {
      parse_trace_json(text, "x.json", "");
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  CHECK(bad(R"({"kind":"magic","name":"x","phase":"fwd","elements":1})") ==
        "x.json: ops[0].kind: unknown value \"magic\"; expected elementwise|reduction|normalization|softmax|loss|optimizer|pooling|quantizer");
  CHECK(bad(R"({"kind":"elementwise","name":"x","phase":"later","elements":1})") ==
        "x.json: ops[0].phase: unknown value \"later\"; expected fwd|bwd|update");
  CHECK(bad(R"({"kind":"elementwise","name":"x","phase":"fwd","elements":-1})") ==
        "x.json: ops[0].elements: expected an element count below 2^48, got -1");
  CHECK(bad(R"({"kind":"elementwise","name":"x","phase":"fwd","elements":1,"flops":{"mod":1}})") ==
        "x.json: ops[0].flops.mod: unknown key");
  CHECK(bad(R"({"kind":"elementwise","name":"x","phase":"fwd","elements":1,"reads":[{"tensor":"a","elements":1,"format":"fp64"}]})") ==
        "x.json: ops[0].reads[0].format: unknown format \"fp64\"");
  CHECK(bad(R"({"kind":"elementwise","name":"x","phase":"fwd","elements":1,"reads":[{"tensor":"a","elements":1,"role":"save"}]})") ==
        "x.json: ops[0].reads[0].role: expected stream, saved or state (a read), got \"save\"");
  CHECK(bad(R"({"kind":"elementwise","name":"x","phase":"fwd","elements":1,"writes":[{"tensor":"a","elements":1,"role":"kept"}]})") ==
        "x.json: ops[0].writes[0].role: expected stream, state or save (a write), got \"kept\"");
  CHECK(bad(R"({"kind":"elementwise","name":"x","phase":"fwd","elements":1,"extra":1})") ==
        "x.json: ops[0].extra: unknown key");
}

TEST_CASE("vector unit: cycles and FP32 operations follow the closed form", "[model]") {
  SimConfig cfg;
  cfg.vector_lanes = 16;
  cfg.dram_bytes_per_cycle = 8;
  NonGemmOp op;
  op.elements = 1000;
  op.flops[static_cast<int>(FpOp::kAdd)] = 1000;
  op.flops[static_cast<int>(FpOp::kMul)] = 300;
  op.flops[static_cast<int>(FpOp::kDiv)] = 10;
  op.flops[static_cast<int>(FpOp::kSqrt)] = 10;
  op.flops[static_cast<int>(FpOp::kExp)] = 7;
  op.flops[static_cast<int>(FpOp::kCmp)] = 5;
  op.reads = {OpTensor{"x", 1000, NumFormat::kFp32}};
  op.writes = {OpTensor{"y", 1000, NumFormat::kPot4}};
  const VectorOpCost c = vector_op_cost(cfg, op);
  CHECK(c.adds == 1000 + 2 * 10 + 2 * 10 + 8 * 7);
  CHECK(c.muls == 300 + 5 * 10 + 9 * 10 + 7 * 7);
  CHECK(c.cmps == 5);
  CHECK(c.lane_ops == c.adds + c.muls + c.cmps);
  CHECK(c.compute == (c.lane_ops + 15) / 16);
  CHECK(c.dram_read_bytes == 4000);
  CHECK(c.dram_write_bytes == 500);  // PoT4: 4 bits per element
  CHECK(c.cycles == std::max<std::uint64_t>(c.compute, (4500 + 7) / 8));
  CHECK(c.stall == c.cycles - c.compute);
  CHECK(c.sram_bits == 4500 * 16);
  // Memory bound with a narrow channel, compute bound with a wide one.
  cfg.dram_bytes_per_cycle = 1;
  CHECK(vector_op_cost(cfg, op).cycles == 4500);
  cfg.dram_bytes_per_cycle = 1000;
  cfg.vector_lanes = 1;
  CHECK(vector_op_cost(cfg, op).cycles == c.lane_ops);
  CHECK(vector_op_cost(cfg, op).stall == 0);
  // The defaults of the division, square root and exponential times are their sequences' lengths.
  const SimConfig defaults;
  CHECK(defaults.vector_div_cycles == static_cast<int>(kDivMul + kDivAdd));
  CHECK(defaults.vector_sqrt_cycles == static_cast<int>(kSqrtMul + kSqrtAdd));
  CHECK(defaults.vector_exp_cycles == static_cast<int>(kExpMul + kExpAdd));
  // A faster unit (one lane cycle each) changes the time, not the operations the energy prices.
  cfg.vector_div_cycles = 1;
  cfg.vector_sqrt_cycles = 2;
  cfg.vector_exp_cycles = 3;
  const VectorOpCost fast = vector_op_cost(cfg, op);
  CHECK(fast.lane_ops == 1000 + 300 + 5 + 10 * 1 + 10 * 2 + 7 * 3);
  CHECK(fast.adds == c.adds);
  CHECK(fast.muls == c.muls);
  CHECK(fast.cycles == fast.lane_ops);  // one lane, a wide channel
}

TEST_CASE("simulate: the whole step is the GEMMs plus the vector unit, term by term", "[smoke]") {
  TempDir dir;
  const std::string t = dir.file("r18.json");
  REQUIRE(test::run_mfsim(fmt::format("trace -q --network resnet18 --batch 2 --image 64x64 --ops -o {}", t)).exit_code == 0);
  const std::string plain = dir.file("plain.json");
  REQUIRE(test::run_mfsim(fmt::format("trace -q --network resnet18 --batch 2 --image 64x64 -o {}", plain)).exit_code == 0);
  for (const char* overlap : {"false", "true"}) {
    INFO(overlap);
    const std::string rep = dir.file(fmt::format("rep-{}.json", overlap));
    const std::string rep0 = dir.file(fmt::format("rep0-{}.json", overlap));
    REQUIRE(test::run_mfsim(fmt::format("simulate -q --mode timing --trace {} --report {} --set vector.overlap={}", t, rep,
                                        overlap)).exit_code == 0);
    REQUIRE(test::run_mfsim(fmt::format("simulate -q --mode timing --trace {} --report {} --set vector.overlap={}", plain,
                                        rep0, overlap)).exit_code == 0);
    const json r = json::parse(test::slurp(rep)), r0 = json::parse(test::slurp(rep0));
    // The GEMMs' figures do not depend on the operations beside them.
    CHECK(r["total"]["cycles"] == r0["total"]["cycles"]);
    CHECK(r["total"]["events"] == r0["total"]["events"]);
    CHECK(r["energy_pj"]["total"] == r0["energy_pj"]["total"]);
    CHECK_FALSE(r0["total"].contains("non_gemm"));
    const json& ng = r["total"]["non_gemm"];
    // Sums: by kind and by phase add up to the totals.
    for (const char* part : {"by_kind", "by_phase"}) {
      std::uint64_t cycles = 0, ops = 0, rd = 0;
      for (const auto& [k, v] : ng[part].items()) {
        cycles += v["cycles"]["total"].get<std::uint64_t>();
        ops += v["ops"].get<std::uint64_t>();
        rd += v["dram"]["read_bytes"].get<std::uint64_t>();
      }
      CHECK(cycles == ng["cycles"]["total"].get<std::uint64_t>());
      CHECK(ops == ng["ops"].get<std::uint64_t>());
      CHECK(rd == ng["dram"]["read_bytes"].get<std::uint64_t>());
    }
    const auto gemm = r["total"]["cycles"]["total"].get<std::uint64_t>(), vec = ng["cycles"]["total"].get<std::uint64_t>();
    const auto step = r["total"]["step"]["cycles"].get<std::uint64_t>();
    CHECK(step == (std::string(overlap) == "true" ? std::max(gemm, vec) : gemm + vec));
    CHECK(r["total"]["linear_share"]["cycles"].get<double>() == Approx(static_cast<double>(gemm) / static_cast<double>(step)));
    const json& e = r["energy_pj"];
    CHECK(e["step_total"].get<double>() == Approx(e["total"].get<double>() + e["non_gemm"]["total"].get<double>()));
    double comp = 0, kinds = 0;
    for (const auto& [k, v] : e["non_gemm"]["by_component"].items()) comp += v.get<double>();
    for (const auto& [k, v] : e["non_gemm"]["by_kind"].items()) kinds += v.get<double>();
    CHECK(comp == Approx(e["non_gemm"]["total"].get<double>()));
    CHECK(kinds == Approx(e["non_gemm"]["total"].get<double>()));
    CHECK(r["total"]["linear_share"]["energy"].get<double>() ==
          Approx(e["total"].get<double>() / e["step_total"].get<double>()));
    // Remaining FP32 multiplications: none in the MF-MAC array's GEMMs; the vector unit's
    // multiplies (division, square root and exponential expanded).
    CHECK(r["total"]["fp32_multiplications"]["gemm"].get<double>() == 0);
    CHECK(r["total"]["fp32_multiplications"]["non_gemm"].get<double>() == ng["fp32_ops"]["mul"].get<double>());
  }
  // The energy CSV: the vector unit's items after the GEMMs', and a total that is their sum.
  const std::string csv = dir.file("e.csv");
  REQUIRE(test::run_mfsim(fmt::format("simulate -q --mode timing --trace {} --report {} --energy-csv {}", t,
                                      dir.file("csv.json"), csv)).exit_code == 0);
  {
    std::istringstream in(test::slurp(csv));
    std::string line;
    std::getline(in, line);  // header
    double items = 0, total = -1, gemm = -1, non_gemm = -1;
    bool vector_rows = false;
    while (std::getline(in, line)) {
      const double pj = std::stod(line.substr(line.rfind(',') + 1));
      if (line.rfind("total,", 0) == 0) total = pj;
      else if (line.rfind("gemm_total,", 0) == 0) gemm = pj;
      else if (line.rfind("non_gemm_total,", 0) == 0) non_gemm = pj;
      else items += pj;
      vector_rows = vector_rows || line.rfind("vector_", 0) == 0;
    }
    const json r = json::parse(test::slurp(dir.file("csv.json")));
    CHECK(vector_rows);
    CHECK(total == Approx(items));
    CHECK(total == Approx(r["energy_pj"]["step_total"].get<double>()));
    CHECK(gemm == Approx(r["energy_pj"]["total"].get<double>()));
    CHECK(non_gemm == Approx(r["energy_pj"]["non_gemm"]["total"].get<double>()));
  }
  // The FP32 array multiplies every product in FP32.
  const std::string f = dir.file("fp32.json");
  REQUIRE(test::run_mfsim(fmt::format("simulate -q --mode timing --array fp32 --trace {} --report {}", t, f)).exit_code == 0);
  const json rf = json::parse(test::slurp(f));
  CHECK(rf["total"]["fp32_multiplications"]["gemm"].get<double>() == rf["total"]["macs"].get<double>());
  // compare: the whole-step saving, beside the GEMM-only one.
  const std::string c = dir.file("cmp.json");
  auto res = test::run_mfsim(
      fmt::format("compare --mode timing --arrays mfmac --trace {} --report {} --html {}", t, c, dir.file("c.html")));
  REQUIRE(res.exit_code == 0);
  CHECK(res.out.find("whole step, non-GEMM work on the vector unit") != std::string::npos);
  CHECK(test::slurp(dir.file("c.html")).find("<h2>The whole step</h2>") != std::string::npos);
  CHECK(test::slurp(dir.file("c.html")).find("unfused with the array (vector.fusion)") != std::string::npos);
  const json rc = json::parse(test::slurp(c));
  const double mf = rc["energy_pj"]["mfmac"]["step_total"].get<double>(), fp = rc["energy_pj"]["fp32"]["step_total"].get<double>();
  CHECK(rc["savings_vs_fp32"]["mfmac"]["step_total"].get<double>() == Approx(1 - mf / fp));
  CHECK(rc["savings_vs_fp32"]["mfmac"]["step_total"].get<double>() < rc["savings_vs_fp32"]["mfmac"]["total"].get<double>());
  // --ops needs a known network and every phase.
  res = test::run_mfsim(fmt::format("trace --network resnet18 --batch 2 --ops --phases fwd -o {}", dir.file("x.json")));
  CHECK(res.exit_code == 2);
  CHECK(res.err == "mfsim: error: trace: --ops: the step's operations need every phase; drop --phases\n");
}

TEST_CASE("train --trace-out: the traced step records the non-GEMM operations the core ran", "[smoke]") {
  // Every kind of CNN layer: convolutions with batch norm and ReLU, max pooling, a residual block
  // with a projection shortcut, global average pooling and a classifier.
  TempDir dir;
  const std::string trace = dir.file("step.json"), report = dir.file("train.json");
  const int batch = 4;
  const auto res = test::run_mfsim(fmt::format(
      "train -q --spec conv:4:3:1:1,bn,relu,maxpool:2,res:8:2,gap,fc:10 --epochs 1 --train-limit 8 --test-limit 4 "
      "--batch {} --quant fp32 --seed 2 --trace-out {} --report {}",
      batch, trace, report));
  REQUIRE(res.exit_code == 0);
  TraceReader reader(trace);
  const Trace& t = reader.trace();
  const json rep = json::parse(test::slurp(report));
  // Independent counts: each layer's output from the forward GEMM records (M x N x repeat), the
  // parameters from the trainer's report, the logits from the batch and the classes.
  std::map<std::string, std::uint64_t> gemm_out;
  for (const auto& r : t.records) {
    if (r.phase == Phase::kFwd) gemm_out[r.layer] = r.shape.macs() / static_cast<std::uint64_t>(r.shape.k) * r.repeat;
  }
  std::map<std::string, int> count;
  std::uint64_t bn_fwd = 0, bias_fwd = 0, bias_bwd = 0;
  for (const auto& op : t.ops) {
    ++count[std::string(to_string(op.phase)) + ":" + op.name];
    if (op.name == "batchnorm" && op.phase == OpPhase::kFwd) bn_fwd += op.elements;
    if (op.name == "bias_add") bias_fwd += op.elements;
    if (op.name == "bias_grad") bias_bwd += op.elements;
  }
  // Batch norms after conv1, and in the block after conv1, conv2 and the shortcut.
  CHECK(count["fwd:batchnorm"] == 4);
  CHECK(count["bwd:batchnorm"] == 4);
  std::uint64_t conv_out = 0, all_out = 0;
  for (const auto& [layer, n] : gemm_out) {
    all_out += n;
    if (layer != "fc2" && layer.find("fc") == std::string::npos) conv_out += n;
  }
  CHECK(bn_fwd == conv_out);
  // Every linear layer adds its bias and sums its gradient.
  CHECK(bias_fwd == all_out);
  CHECK(bias_bwd == all_out);
  // ReLU after conv1, inside the block, and after the block's addition; forward and backward.
  CHECK(count["fwd:relu"] == 3);
  CHECK(count["bwd:relu"] == 3);
  CHECK(count["fwd:residual_add"] == 1);
  CHECK(count["bwd:residual_add"] == 1);
  CHECK(count["fwd:maxpool"] == 1);
  CHECK(count["fwd:avgpool"] == 1);
  CHECK(count["fwd:softmax_cross_entropy"] == 1);
  CHECK(count["bwd:softmax_cross_entropy"] == 1);
  const NonGemmOp& loss = find_op(t.ops, OpKind::kLoss, OpPhase::kFwd);
  CHECK(loss.elements == static_cast<std::uint64_t>(batch) * 10);
  const NonGemmOp& upd = t.ops.back();
  CHECK(upd.name == "sgd_momentum");
  CHECK(upd.elements == rep["parameters"].get<std::uint64_t>());
  // The forward operations come before the loss, the backward ones after it, the update last.
  std::size_t loss_at = 0;
  for (std::size_t i = 0; i < t.ops.size(); ++i) {
    if (t.ops[i].kind == OpKind::kLoss && t.ops[i].phase == OpPhase::kFwd) loss_at = i;
  }
  for (std::size_t i = 0; i < t.ops.size(); ++i) {
    if (i < loss_at) CHECK(t.ops[i].phase == OpPhase::kFwd);
    if (i > loss_at + 1 && i + 1 < t.ops.size()) CHECK(t.ops[i].phase == OpPhase::kBwd);
  }
  // The maxpool halves each side: its input and output elements.
  const NonGemmOp& pool = find_op(t.ops, OpKind::kPooling, OpPhase::kFwd);
  CHECK(pool.name == "maxpool");
  CHECK(pool.reads.front().elements == 4 * pool.elements);
  // The block's skip input (its projection's batch norm output) is saved for the fused addition.
  int skip_saved = 0;
  for (const auto& op : t.ops) {
    for (const auto& w : op.writes) {
      skip_saved += op.phase == OpPhase::kFwd && op.name == "batchnorm" && op.layer.find("shortcut") != std::string::npos &&
                            w.role == TensorRole::kSave && w.name == "y"
                        ? 1
                        : 0;
    }
  }
  CHECK(skip_saved == 1);
}

TEST_CASE("train --trace-out: the Transformer's recorded operations equal the generator's", "[smoke]") {
  // The training core runs its decoder-only Transformer; `mfsim trace --network SPEC --ops`
  // derives the same step's operations from the spec. Every operation but the loss (the core's
  // loss covers only the positions with a target) must agree in kind, name, phase and elements.
  TempDir dir;
  const std::string spec = "transformer:layers=2,d=16,heads=2,ff=32,seq=8,vocab=11";
  const std::string core = dir.file("core.json"), gen = dir.file("gen.json"), report = dir.file("r.json");
  REQUIRE(test::run_mfsim(fmt::format("train -q --model {} --epochs 1 --batch 4 --train-examples 8 --test-examples 4 "
                                      "--trace-out {} --report {}",
                                      spec, core, report)).exit_code == 0);
  REQUIRE(test::run_mfsim(fmt::format("trace -q --network {} --batch 4 --ops -o {}", spec, gen)).exit_code == 0);
  auto key = [](const NonGemmOp& op) {
    return fmt::format("{} {} {} {} {}", to_string(op.kind), op.name, op.layer, to_string(op.phase), op.elements);
  };
  std::multiset<std::string> a, b;
  std::uint64_t loss_rows = 0;
  TraceReader rc(core), rg(gen);
  for (const auto& op : rc.trace().ops) {
    if (op.kind == OpKind::kLoss) {
      if (op.phase == OpPhase::kFwd) loss_rows = op.flops[static_cast<int>(FpOp::kDiv)];  // one division per row
      continue;
    }
    a.insert(key(op));
  }
  for (const auto& op : rg.trace().ops) {
    if (op.kind != OpKind::kLoss) b.insert(key(op));
  }
  CHECK(a == b);
  CHECK(a.size() > 40);
  // The task predicts the L = seq/2 translation tokens of each sequence.
  CHECK(loss_rows == 4 * 4);
  const json rep = json::parse(test::slurp(report));
  CHECK(rc.trace().ops.back().name == "adam");
  CHECK(rc.trace().ops.back().elements == rep["parameters"].get<std::uint64_t>());
}

TEST_CASE("non-GEMM ops: fused, only saved tensors and state cross DRAM", "[model]") {
  // Unfused, an operation moves every tensor it reads or writes except the fused-only copies of
  // saved tensors; fused, only saved tensors, state and those copies.
  NetworkOptions o;
  o.batch = 2;
  for (const std::string net : {"resnet18", "transformer:layers=1,d=16,heads=2,ff=32,seq=8,vocab=11"}) {
    INFO(net);
    const NetworkOpsResult r = network_ops(net, o, network_layers(net, o));
    std::uint64_t saves = 0, saved_reads = 0;
    for (const auto& op : r.ops) {
      std::uint64_t rd[2] = {0, 0}, wr[2] = {0, 0};  // [unfused, fused]
      for (const auto& t : op.reads) {
        CHECK(t.role != TensorRole::kSave);
        if (t.role != TensorRole::kStream) rd[1] += t.bytes();
        rd[0] += t.bytes();
        if (t.role == TensorRole::kSaved) saved_reads += t.elements;
      }
      for (const auto& t : op.writes) {
        CHECK(t.role != TensorRole::kSaved);
        if (t.role != TensorRole::kStream) wr[1] += t.bytes();
        if (t.role != TensorRole::kSave) wr[0] += t.bytes();
        if (t.role == TensorRole::kSave) saves += t.elements;
      }
      CHECK(op.read_bytes() == rd[0]);
      CHECK(op.read_bytes(true) == rd[1]);
      CHECK(op.write_bytes() == wr[0]);
      CHECK(op.write_bytes(true) == wr[1]);
      // The optimizer's tensors are all state: the same in both modes.
      if (op.kind == OpKind::kOptimizer) CHECK(op.read_bytes(true) + op.write_bytes(true) == op.read_bytes() + op.write_bytes());
    }
    CHECK(saves > 0);
    CHECK(saved_reads > 0);
  }
  // Every residual addition's skip input has a fused writer: the output of the operation that
  // makes it is saved ("y"), or it is a pre-norm layer norm's saved input. Counted per network.
  const auto saves_y = [](const NonGemmOp& op) {
    for (const auto& t : op.writes) {
      if (t.role == TensorRole::kSave && t.name == "y") return true;
    }
    return false;
  };
  const auto count = [&](const std::vector<NonGemmOp>& ops, const std::string& name, bool saved_y) {
    int n = 0;
    for (const auto& op : ops) n += op.phase == OpPhase::kFwd && op.name == name && (!saved_y || saves_y(op)) ? 1 : 0;
    return n;
  };
  NetworkOptions big;
  big.batch = 2;
  big.seq = 16;
  {
    // ResNet-18: the max pool (the first block's skip), the three projections' batch norms, and the
    // ReLUs at every block's end (each the next block's skip).
    const auto ops = network_ops("resnet18", big, network_layers("resnet18", big)).ops;
    CHECK(count(ops, "maxpool", true) == 1);
    int down = 0;
    for (const auto& op : ops) down += op.phase == OpPhase::kFwd && op.layer.find("downsample.bn") != std::string::npos && saves_y(op) ? 1 : 0;
    CHECK(down == 3);
    CHECK(count(ops, "residual_add", false) == 8);
  }
  {
    // ResNet-50: every first block has a projection (the max pool's output is not a skip).
    const auto ops = network_ops("resnet50", big, network_layers("resnet50", big)).ops;
    CHECK(count(ops, "maxpool", true) == 0);
    int down = 0;
    for (const auto& op : ops) down += op.phase == OpPhase::kFwd && op.layer.find("downsample.bn") != std::string::npos && saves_y(op) ? 1 : 0;
    CHECK(down == 4);
  }
  {
    // Transformer-base (post-norm): each of the 30 sublayers' input, an embedding's or a norm's
    // output, is saved; the last norm's output (read by the generator only) is not.
    const auto ops = network_ops("transformer-base", big, network_layers("transformer-base", big)).ops;
    CHECK(count(ops, "residual_add", false) == 30);
    CHECK(count(ops, "embedding", true) + count(ops, "layernorm", true) == 30);
    CHECK(count(ops, "layernorm", false) == 30);
  }
  {
    // MobileNetV2: one saved block input per inverted residual with an addition.
    const auto ops = network_ops("mobilenetv2", big, network_layers("mobilenetv2", big)).ops;
    int saved_inputs = 0;
    for (const auto& op : ops) saved_inputs += op.phase == OpPhase::kFwd && op.name != "relu6" && saves_y(op) ? 1 : 0;
    CHECK(count(ops, "residual_add", false) == 10);
    CHECK(saved_inputs == 10);
  }
  const NonGemmOp bn = batchnorm_op("bn", OpPhase::kFwd, 1000, 10);
  CHECK(bn.read_bytes(true) == 4 * 20);           // gamma and beta only
  CHECK(bn.write_bytes(true) == 4 * 1000);        // x saved for the backward pass, y stays on chip
  CHECK(bn.write_bytes() == 4 * 1000);            // y (x is in DRAM already)
  const NonGemmOp bnb = batchnorm_op("bn", OpPhase::kBwd, 1000, 10);
  CHECK(bnb.read_bytes(true) == 4 * 1000);        // x again; dy arrives on chip
  CHECK(bnb.write_bytes(true) == 4 * 20);         // dgamma, dbeta
}

TEST_CASE("simulate: vector.fusion=fused hands results to the vector unit, term by term", "[smoke]") {
  TempDir dir;
  const std::string t = dir.file("r18.json"), tt = dir.file("tf.json");
  REQUIRE(test::run_mfsim(fmt::format("trace -q --network resnet18 --batch 2 --image 64x64 --ops -o {}", t)).exit_code == 0);
  REQUIRE(test::run_mfsim(fmt::format("trace -q --network transformer:layers=1,d=16,heads=2,ff=32,seq=8,vocab=11 --batch 2 "
                                      "--ops -o {}",
                                      tt))
              .exit_code == 0);
  for (const std::string& trace : {t, tt})
  for (const char* array : {"mfmac", "fp32"}) {
    INFO(trace << " " << array);
    TraceReader reader(trace);
    const std::string ru = dir.file("u.json"), rf = dir.file("f.json");
    REQUIRE(test::run_mfsim(fmt::format("simulate -q --mode timing --array {} --trace {} --report {}", array, trace, ru))
                .exit_code == 0);
    REQUIRE(test::run_mfsim(fmt::format("simulate -q --mode timing --array {} --trace {} --report {} --set "
                                        "vector.fusion=fused",
                                        array, trace, rf))
                .exit_code == 0);
    const json u = json::parse(test::slurp(ru)), f = json::parse(test::slurp(rf));
    const std::uint64_t out_bits = 32, op_bits = std::string(array) == "mfmac" ? 4 : 32;
    // Per GEMM: the same cycles and reads; a fwd or bwd_data result (each element once) goes to the
    // vector unit instead of DRAM, and leaves the physical minimum with it.
    std::uint64_t handed = 0, operands = 0, handed_fwd = 0, matmul_bwd_weight = 0;
    for (std::size_t i = 0; i < reader.trace().records.size(); ++i) {
      const TraceRecord& r = reader.trace().records[i];
      const json &gu = u["gemms"][i], &gf = f["gemms"][i];
      CHECK(gu["cycles"] == gf["cycles"]);
      CHECK(gu["events"]["dram_read_bytes"] == gf["events"]["dram_read_bytes"]);
      const auto rep = static_cast<std::uint64_t>(r.repeat), m = static_cast<std::uint64_t>(r.shape.m),
                 n = static_cast<std::uint64_t>(r.shape.n), k = static_cast<std::uint64_t>(r.shape.k);
      std::uint64_t out = 0;
      if (r.phase == Phase::kFwd) out = m * n * rep * out_bits / 8;
      if (r.phase == Phase::kBwdData) out = (r.layer_type == LayerType::kConv ? r.conv.input_elements() : m * n) * rep * out_bits / 8;
      // A matmul's bwd_weight result is an activation's gradient (attention: dK, dV), not a weight's.
      if (r.phase == Phase::kBwdWeight && r.layer_type == LayerType::kMatmul) {
        out = m * n * rep * out_bits / 8;
        matmul_bwd_weight += out;
      }
      CHECK(gf["dram"]["to_vector_unit_bytes"].get<std::uint64_t>() == out);
      CHECK_FALSE(gu["dram"].contains("to_vector_unit_bytes"));
      CHECK(gu["events"]["dram_write_bytes"].get<std::uint64_t>() - gf["events"]["dram_write_bytes"].get<std::uint64_t>() == out);
      CHECK(gu["dram"]["compulsory_bytes"].get<std::uint64_t>() - gf["dram"]["compulsory_bytes"].get<std::uint64_t>() == out);
      CHECK(gf["dram"]["bytes"].get<std::uint64_t>() >= gf["dram"]["compulsory_bytes"].get<std::uint64_t>());
      handed += out;
      if (r.phase == Phase::kFwd) handed_fwd += out;
      // The vector unit writes what the GEMM reads as activations (fwd: the layer's input feature
      // map) or errors (bwd_weight: G, its B operand), at the array's operand width.
      if (r.phase == Phase::kFwd) operands += (r.layer_type == LayerType::kConv ? r.conv.input_elements() : m * k) * rep * op_bits / 8;
      if (r.phase == Phase::kFwd && r.layer_type == LayerType::kMatmul) operands += k * n * rep * op_bits / 8;  // B too
      if (r.phase == Phase::kBwdWeight) operands += k * n * rep * op_bits / 8;
    }
    CHECK(f["total"]["dram"]["to_vector_unit_bytes"].get<std::uint64_t>() == handed);
    CHECK((matmul_bwd_weight > 0) == (trace == tt));
    CHECK(u["total"]["cycles"] == f["total"]["cycles"]);
    const json &ngu = u["total"]["non_gemm"], &ngf = f["total"]["non_gemm"];
    CHECK(ngu["fusion"]["mode"] == "unfused");
    CHECK(ngf["fusion"]["mode"] == "fused");
    CHECK(ngf["fusion"]["from_array_bytes"].get<std::uint64_t>() == handed);
    CHECK(ngf["fusion"]["operand_write_bytes"].get<std::uint64_t>() == operands);
    // The vector unit's DRAM: the operations' fused tensors plus the operands it writes.
    std::uint64_t rd = 0, wr = 0;
    for (const auto& op : reader.trace().ops) {
      rd += op.read_bytes(true);
      wr += op.write_bytes(true);
    }
    CHECK(ngf["dram"]["read_bytes"].get<std::uint64_t>() == rd);
    CHECK(ngf["dram"]["write_bytes"].get<std::uint64_t>() == wr + operands);
    CHECK(ngf["ops"] == ngu["ops"]);  // the operand writes are not trace operations
    CHECK(ngf["by_kind"]["quantizer"]["dram"]["write_bytes"].get<std::uint64_t>() == operands);
    CHECK(ngf["by_phase"]["fwd"]["sram_bits"].get<std::uint64_t>() >= handed_fwd * 16);
    for (const char* part : {"by_kind", "by_phase"}) {
      std::uint64_t cycles = 0, w = 0, sram = 0;
      for (const auto& [kname, v] : ngf[part].items()) {
        cycles += v["cycles"]["total"].get<std::uint64_t>();
        w += v["dram"]["write_bytes"].get<std::uint64_t>();
        sram += v["sram_bits"].get<std::uint64_t>();
      }
      CHECK(cycles == ngf["cycles"]["total"].get<std::uint64_t>());
      CHECK(w == ngf["dram"]["write_bytes"].get<std::uint64_t>());
      CHECK(sram == ngf["sram_bits"].get<std::uint64_t>());
    }
    // Totals stay sums of their parts, and fusion only removes traffic and energy here.
    const json &eu = u["energy_pj"], &ef = f["energy_pj"];
    CHECK(ef["step_total"].get<double>() == Approx(ef["total"].get<double>() + ef["non_gemm"]["total"].get<double>()));
    CHECK(ef["total"].get<double>() < eu["total"].get<double>());
    CHECK(ef["step_total"].get<double>() < eu["step_total"].get<double>());
    CHECK(f["total"]["step"]["cycles"].get<std::uint64_t>() < u["total"]["step"]["cycles"].get<std::uint64_t>());
  }
  // compare --csv: one line per table and array, each figure the report's.
  {
    const std::string c = dir.file("cmp.json"), csv = dir.file("cmp.csv");
    REQUIRE(test::run_mfsim(fmt::format("compare -q --mode timing --arrays int8,mfmac --energy-table paper,horowitz45 --trace "
                                        "{} --set vector.fusion=fused --report {} --csv {}",
                                        t, c, csv))
                .exit_code == 0);
    const json rc = json::parse(test::slurp(c));
    std::istringstream in(test::slurp(csv));
    std::string line;
    std::getline(in, line);
    CHECK(line ==
          "energy_table,array,cycles,step_cycles,linear_share_cycles,energy_gemm_pj,energy_non_gemm_pj,energy_step_pj,"
          "linear_share_energy,saving_vs_fp32_gemm,saving_vs_fp32_step,dram_bytes,non_gemm_dram_bytes,fusion");
    int rows = 0;
    while (std::getline(in, line)) {
      std::vector<std::string> f;
      std::istringstream ls(line);
      for (std::string x; std::getline(ls, x, ',');) f.push_back(x);
      if (line.back() == ',') f.emplace_back();
      REQUIRE(f.size() == 14);
      INFO(line);
      const json& arr = rc["arrays"][f[1]];
      const json& tab = rc["by_table"][f[0]];
      CHECK(std::stoull(f[2]) == arr["cycles"]["total"].get<std::uint64_t>());
      CHECK(std::stoull(f[3]) == arr["step"]["cycles"].get<std::uint64_t>());
      CHECK(std::stoull(f[3]) == std::stoull(f[2]) + arr["non_gemm"]["cycles"]["total"].get<std::uint64_t>());
      CHECK(std::stod(f[7]) == Approx(std::stod(f[5]) + std::stod(f[6])));
      CHECK(std::stod(f[7]) == Approx(tab["energy_pj"][f[1]]["step_total"].get<double>()));
      CHECK(std::stod(f[8]) == Approx(std::stod(f[5]) / std::stod(f[7])));
      CHECK(f[9].empty() == (f[1] == "fp32"));
      if (f[1] != "fp32") CHECK(std::stod(f[10]) == Approx(tab["savings_vs_fp32"][f[1]]["step_total"].get<double>()));
      CHECK(f[13] == "fused");
      CHECK(std::stod(f[4]) == Approx(arr["linear_share"]["cycles"].get<double>()));
      CHECK(std::stod(f[5]) == Approx(tab["energy_pj"][f[1]]["total"].get<double>()));
      CHECK(std::stoull(f[11]) == arr["dram"]["bytes"].get<std::uint64_t>());
      CHECK(std::stoull(f[12]) == arr["non_gemm"]["dram"]["read_bytes"].get<std::uint64_t>() +
                                      arr["non_gemm"]["dram"]["write_bytes"].get<std::uint64_t>());
      ++rows;
    }
    CHECK(rows == 2 * 3);
  }
  // A trace without operations has nothing to fuse: one line, exit code 2.
  const std::string plain = dir.file("plain.json");
  REQUIRE(test::run_mfsim(fmt::format("trace -q --network resnet18 --batch 2 --image 64x64 -o {}", plain)).exit_code == 0);
  const auto res = test::run_mfsim(fmt::format("simulate -q --trace {} --set vector.fusion=fused --report {}", plain,
                                               dir.file("no.json")));
  CHECK(res.exit_code == 2);
  CHECK(res.err == fmt::format("mfsim: error: {}: vector.fusion=fused: the trace has no non-GEMM operations (\"ops\") for "
                               "the vector unit to fuse with its GEMMs; write them with `mfsim trace --ops` or `mfsim "
                               "train --trace-out`\n",
                               plain));
  CHECK_FALSE(std::ifstream(dir.file("no.json")).good());
}

TEST_CASE("simulate: fused, value mode equals timing mode on every counter", "[smoke]") {
  TempDir dir;
  const std::string trace = dir.file("step.json");
  REQUIRE(test::run_mfsim(fmt::format(
              "train -q --spec conv:4:3:1:1,bn,relu,res:8:2,gap,fc:10 --epochs 1 --train-limit 8 --test-limit 4 --batch 4 "
              "--quant als-potq --seed 2 --trace-out {} --report {}",
              trace, dir.file("train.json")))
              .exit_code == 0);
  json reps[2];
  int i = 0;
  for (const char* mode : {"value", "timing"}) {
    const std::string rep = dir.file(fmt::format("{}.json", mode));
    REQUIRE(test::run_mfsim(fmt::format("simulate -q --mode {} --trace {} --set vector.fusion=fused --report {}", mode,
                                        trace, rep))
                .exit_code == 0);
    reps[i++] = json::parse(test::slurp(rep));
  }
  CHECK(reps[0]["total"]["events"] == reps[1]["total"]["events"]);
  CHECK(reps[0]["total"]["dram"] == reps[1]["total"]["dram"]);
  CHECK(reps[0]["total"]["non_gemm"] == reps[1]["total"]["non_gemm"]);
  CHECK(reps[0]["energy_pj"]["step_total"] == reps[1]["energy_pj"]["step_total"]);
  for (std::size_t g = 0; g < reps[0]["gemms"].size(); ++g) {
    CHECK(reps[0]["gemms"][g]["events"] == reps[1]["gemms"][g]["events"]);
    CHECK(reps[0]["gemms"][g]["dram"] == reps[1]["gemms"][g]["dram"]);
    CHECK(reps[0]["gemms"][g]["verification"]["match"] == true);
  }
}

TEST_CASE("trace --ops --optimizer: the update's optimizer is a choice", "[smoke]") {
  TempDir dir;
  const std::string sgd = dir.file("sgd.json"), adam = dir.file("adam.json");
  REQUIRE(test::run_mfsim(fmt::format("trace -q --network resnet18 --batch 2 --image 64x64 --ops -o {}", sgd)).exit_code == 0);
  REQUIRE(test::run_mfsim(fmt::format("trace -q --network resnet18 --batch 2 --image 64x64 --ops --optimizer adam -o {}",
                                      adam)).exit_code == 0);
  TraceReader a(adam), s(sgd);
  REQUIRE(a.trace().ops.size() == s.trace().ops.size());
  CHECK(s.trace().ops.back().name == "sgd_momentum");
  CHECK(a.trace().ops.back().name == "adam");
  CHECK(a.trace().ops.back().elements == 11689512);  // torchvision's ResNet-18: the same parameters
  CHECK(a.trace().ops.back().elements == s.trace().ops.back().elements);
  auto res = test::run_mfsim(fmt::format("trace --network resnet18 --batch 2 --ops --optimizer lamb -o {}", dir.file("x.json")));
  CHECK(res.exit_code == 2);
  CHECK(res.err == "mfsim: error: trace: --optimizer: unknown optimizer \"lamb\"; expected sgd or adam\n");
  res = test::run_mfsim(fmt::format("trace --network resnet18 --batch 2 --optimizer adam -o {}", dir.file("x.json")));
  CHECK(res.exit_code == 2);
  CHECK(res.err == "mfsim: error: trace: --optimizer: only with --ops (the optimizer is part of the step's non-GEMM work)\n");
  CHECK_FALSE(std::ifstream(dir.file("x.json")).good());
}
