// Finer power-of-two scales (models/scaled_gemm.h) through the whole chain: the training core
// traces each group's exponent, the MF-MAC and shift-add arrays replay the exact aligned sums bit
// for bit in every dataflow, timing mode counts what value mode counts, and the scale events,
// traffic and energy items follow their closed forms (docs/energy-accounting.md, "Finer scales").
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "models/scaled_gemm.h"
#include "tests/test_util.h"
#include "traces/trace_reader.h"
#include "traces/trace_writer.h"

using namespace mfsim;
using json = nlohmann::json;
using mfsim::test::TempDir;

namespace {

// K-chunks per output, from the record alone: K cut every `scale_block` of the smaller block.
std::int64_t chunks_of(const json& rec) {
  const auto k = rec["K"].get<std::int64_t>();
  std::int64_t len = k;
  for (const char* side : {"a", "b"}) {
    if (rec[side].contains("scale_block")) len = std::min(len, rec[side]["scale_block"].get<std::int64_t>());
  }
  return (k + len - 1) / len;
}

}  // namespace

TEST_CASE("finer scales: traced, replayed bit for bit in every dataflow, counted alike in timing mode", "[smoke]") {
  TempDir dir;
  struct Variant {
    const char* name;
    const char* options;
    const char* arrays[2];
  } variants[] = {
      {"blocks", "--scales a=block16,w=outer,g=block32", {"mfmac", "shift"}},
      {"shift-pair", "--policy int8-activations --scales w=block16,g=outer", {"shift", nullptr}},
  };
  for (const auto& v : variants) {
    const std::string trace = dir.file(std::string(v.name) + ".json");
    auto res = test::run_mfsim(fmt::format(
        "train -q --spec conv:4:3:1:1,relu,maxpool:2,flatten,fc:16,relu,fc:10 --epochs 1 --train-limit 16 "
        "--test-limit 4 --batch 8 --quant als-potq {} --seed 3 --trace-out {} --report {}",
        v.options, trace, dir.file("train.json")));
    INFO(v.name << ": " << res.err);
    REQUIRE(res.exit_code == 0);
    const json t = json::parse(test::slurp(trace));
    REQUIRE(t["records"].size() == 8);
    for (const auto& rec : t["records"]) {
      CHECK((rec["a"].contains("scale_block") || rec["b"].contains("scale_block")));
      CHECK(rec["accumulator"]["bits"] == 64);
    }
    // inspect counts them, recomputes every GEMM with the reference, and its payload bytes include
    // the scale arrays.
    res = test::run_mfsim(fmt::format("inspect --json --recompute {}", trace));
    REQUIRE(res.exit_code == 0);
    const json ins = json::parse(res.out);
    CHECK(ins["finer_scale_records"] == 8);
    CHECK(ins["gemms_recomputed"] == 8);
    std::uint64_t bytes = 0;
    for (const auto& rec : t["records"]) {
      for (const auto& [key, ref] : rec["payload"].items()) bytes += ref["bytes"].get<std::uint64_t>();
    }
    CHECK(ins["payload_bytes"] == bytes);
    for (const char* array : v.arrays) {
      if (array == nullptr) continue;
      for (const char* df : {"os", "ws", "is"}) {
        INFO(v.name << " on " << array << " " << df);
        const std::string rv = dir.file("v.json"), rt = dir.file("t.json");
        const std::string common = fmt::format("simulate -q --trace {} --array {} --set array.dataflow={} --rows 8 --cols 4",
                                               trace, array, df);
        res = test::run_mfsim(fmt::format("{} --mode value --report {}", common, rv));
        REQUIRE(res.exit_code == 0);
        REQUIRE(test::run_mfsim(fmt::format("{} --mode timing --report {}", common, rt)).exit_code == 0);
        const json jv = json::parse(test::slurp(rv)), jt = json::parse(test::slurp(rt));
        CHECK(jv["verification"]["gemms_checked"] == 8);
        CHECK(jv["verification"]["checked_against_trace"] == 8);
        CHECK(jv["verification"]["mismatches"] == 0);
        CHECK(jv["total"]["events"] == jt["total"]["events"]);
        CHECK(jv["total"]["cycles"] == jt["total"]["cycles"]);
        std::uint64_t adds = 0, scale_bytes = 0, scale_exps = 0;
        for (std::size_t i = 0; i < 8; ++i) {
          const json& rec = t["records"][i];
          const json& gv = jv["gemms"][i];
          CHECK(gv["events"] == jt["gemms"][i]["events"]);
          const std::uint64_t align =
              rec["M"].get<std::uint64_t>() * rec["N"].get<std::uint64_t>() * static_cast<std::uint64_t>(chunks_of(rec));
          // The scale arrays (one byte per group) are read from DRAM, part of the physical minimum,
          // and their least exponent found with one comparison per group.
          std::uint64_t groups = 0;
          for (const char* side : {"a", "b"}) {
            if (!rec[side].contains("scale_block")) continue;
            const auto outer = rec[std::string(side) == "a" ? "M" : "N"].get<std::uint64_t>();
            const auto blk = rec[side]["scale_block"].get<std::uint64_t>(), k = rec["K"].get<std::uint64_t>();
            groups += outer * ((k + blk - 1) / blk);
          }
          CHECK(gv["events"]["scale_exponent_adds"] == 2 * align + groups);
          CHECK(gv["events"]["scale_align_shifts"] == align);
          CHECK(gv["events"]["scale_wide_adds"] == align);
          adds += 2 * align + groups;
          // A fully connected PoT4 GEMM's physical minimum: its packed codes, its results in FP32
          // (each aligned sum rounded once as it leaves), and its scale arrays.
          if (rec.value("layer_type", "fc") == "fc" && std::string(array) == "mfmac") {
            const auto M = rec["M"].get<std::uint64_t>(), N = rec["N"].get<std::uint64_t>(), K = rec["K"].get<std::uint64_t>();
            CHECK(gv["dram"]["compulsory_bytes"] == (M * K + 1) / 2 + (K * N + 1) / 2 + 4 * M * N + groups);
          }
          scale_bytes += groups;
          scale_exps += groups;
          CHECK(gv["dram"]["bytes"].get<std::uint64_t>() >= gv["dram"]["compulsory_bytes"].get<std::uint64_t>());
        }
        CHECK(jv["total"]["events"]["scale_exponent_adds"] == adds);
        CHECK(scale_bytes > 0);
        CHECK(scale_exps == scale_bytes);
        // The energy items price the counters (their counts are the counters).
        bool priced = false;
        for (const auto& it : jv["energy_pj"]["items"]) {
          if (it["action"] == "scale_exponent_add") {
            CHECK(it["count"].get<double>() == static_cast<double>(adds));
            CHECK(it["pj"].get<double>() > 0);
            priced = true;
          }
        }
        CHECK(priced);
      }
    }
    // An array without finer scales runs the records in timing mode, priced as their products,
    // with no scale events; a value-mode request says why.
    const std::string rf = dir.file("f.json");
    REQUIRE(test::run_mfsim(fmt::format("simulate -q --trace {} --array fp32 --report {}", trace, rf)).exit_code == 0);
    const json jf = json::parse(test::slurp(rf));
    CHECK(jf["verification"]["gemms_checked"] == 0);
    CHECK(jf["total"]["events"]["scale_exponent_adds"] == 0);
    res = test::run_mfsim(fmt::format("simulate -q --trace {} --array int8 --mode value --report {}", trace, rf));
    CHECK(res.exit_code == 2);
  }
}

TEST_CASE("finer scales: the quantizer charges each GEMM's own copy of a scaled operand", "[model]") {
  // fc layer: fwd A (M x K) W (K x N); bwd_data G (M x N) W^T; bwd_weight A^T G. With A and W
  // scaled, A is quantized on fwd and again (A^T) on bwd_weight, W on fwd and again on bwd_data;
  // G (per tensor) once, on bwd_weight.
  Trace t;
  auto rec = [](Phase ph, std::int64_t m, std::int64_t n, std::int64_t k, std::int64_t ba, std::int64_t bb) {
    TraceRecord r;
    r.layer = "fc";
    r.phase = ph;
    r.shape = GemmShape{m, n, k};
    r.a.scale_block = ba;
    r.b.scale_block = bb;
    r.accumulator.bits = 64;
    return r;
  };
  const std::int64_t M = 8, K = 32, N = 4;
  t.records = {rec(Phase::kFwd, M, N, K, 16, K), rec(Phase::kBwdData, M, K, N, 0, N), rec(Phase::kBwdWeight, K, N, M, M, 0)};
  const std::vector<QuantizedElements> q = quantized_elements(t);
  CHECK(q[0].activations == M * K);
  CHECK(q[0].weights == K * N);
  CHECK(q[1].weights == N * K);  // W^T, re-quantized along its own K
  CHECK(q[1].errors == 0);       // G is charged on bwd_weight
  CHECK(q[2].activations == K * M);
  CHECK(q[2].errors == M * N);
  // A convolution: its A is charged as the M x K im2col matrix the GEMM quantizes, not as its
  // input feature map.
  Trace c;
  TraceRecord cr = rec(Phase::kFwd, 64, 8, 36, 16, 0);
  cr.layer_type = LayerType::kConv;
  cr.conv = ConvGeometry{1, 8, 8, 4, 3, 3, 1, 1};
  c.records = {cr};
  CHECK(quantized_elements(c)[0].activations == 64 * 36);
  c.records[0].a.scale_block = 0;
  CHECK(quantized_elements(c)[0].activations == 8 * 8 * 4);
  // Without finer scales, each tensor once.
  for (auto& r : t.records) r.a.scale_block = r.b.scale_block = 0;
  const std::vector<QuantizedElements> p = quantized_elements(t);
  CHECK(p[0].activations == M * K);
  CHECK(p[1].weights == 0);
  CHECK(p[2].activations == 0);
}

TEST_CASE("finer scales: the reader rejects malformed scaled records with one line", "[unit]") {
  TempDir dir;
  const std::string path = dir.file("s.json");
  // C (1 x 1) = A (1 x 32) . B (32 x 1), A in two groups of 16, B per tensor.
  auto write = [&](const std::string& file, std::vector<std::int8_t> scales) {
    TraceWriter w(file, "test");
    TraceRecord r;
    r.layer = "l";
    r.shape = GemmShape{1, 1, 32};
    r.a.scale_block = 16;
    r.a.scale_exp = 0;
    r.b.scale_exp = 0;
    Pot4Code a[32] = {}, b[32];
    a[0] = pot4_encode(false, 1);
    a[1] = pot4_encode(false, 2);
    a[16] = pot4_encode(true, 1);
    for (Pot4Code& x : b) x = pot4_encode(false, 1);
    // x = E - 6: the first group at scales[0] - 6, the second at scales[1] - 6; L = their least + (0 - 6).
    const int lo = std::min(scales[0], scales[1]);
    const std::int64_t expected =
        scales[0] - lo < 60 ? (std::int64_t{1} << (scales[0] - lo)) * 3 - (std::int64_t{1} << (scales[1] - lo)) : 0;
    w.add_scaled(r, a, nullptr, b, nullptr, scales.data(), nullptr, &expected);
    w.commit();
  };
  write(path, {2, 0});
  {
    TraceReader ok(path);
    const RecordPayload p = ok.read_payload(0);
    CHECK(check_record_result(ok.trace().records[0], p).empty());
    CHECK(p.expected_acc[0] == 11);  // (1 + 2) 2^2 - 1
  }
  const std::string text = test::slurp(path);
  auto edited = [&](const std::string& from, const std::string& to) {
    std::string s = text;
    const auto at = s.find(from);
    REQUIRE(at != std::string::npos);
    s.replace(at, from.size(), to);
    std::ofstream(path) << s;
    try {
      TraceReader r(path);
      (void)r.read_payload(0);
    } catch (const InputError& e) {
      std::ofstream(path) << text;
      return std::string(e.what());
    }
    std::ofstream(path) << text;
    return std::string("no error");
  };
  CHECK(edited("\"scale_block\":16", "\"scale_block\":64") ==
        path + ": records[0].a.scale_block: 64 is more than K = 32; a group lies along K");
  CHECK(edited("\"scale_block\":16", "\"scale_block\":8") ==
        path + ": records[0].a.scale_block: 8 is neither K = 32 nor a power of two of at least 16 (blocks nest, and each "
               "chunk is long enough to hide its alignment)");
  CHECK(edited("\"b\":{\"format\":\"pot4\",\"scale_exp\":0}", "\"b\":{\"format\":\"int8\",\"scale\":3}") ==
        path + ": records[0].b: a GEMM with finer scales pairs PoT4 with PoT4 or with INT8 whose scale is a power of two; "
               "got int8 with scale 3");
  CHECK(edited("\"bits\":64", "\"bits\":32") ==
        path + ": records[0].accumulator.bits: a GEMM with finer scales sums into the 64-bit aligned accumulator; got 32");
  CHECK(edited(",\"a_scales\"", ",\"x_scales\"").find("records[0].payload") != std::string::npos);
  // A scale exponent below the format's range.
  const std::string low = dir.file("low.json");
  write(low, {-125, -125});
  try {
    TraceReader r(low);
    (void)r.read_payload(0);
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()) == low + ": records[0].payload.a_scales: element 0 is -125; a scale exponent is in [-120, 127]");
  }
  // Exponents 120 octaves apart cannot be summed in 64 bits.
  const std::string wide = dir.file("wide.json");
  write(wide, {120, 0});
  try {
    TraceReader r(wide);
    (void)r.read_payload(0);
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()) ==
          wide + ": records[0].payload: the groups' exponents span 120 octaves: K 32 products of up to 4096 need 138.0 "
                 "bits, more than the 64-bit aligned accumulator holds");
  }
}
