// Two-term power-of-two operands (NumFormat::kApot, models/apot.h) through the chain: the trace
// writer and reader, the reference recomputation, bit-exact replay on the two-term shift-add PE
// (and on INT8's multiplier) in every dataflow, the per-term op counts, the quantized elements, and
// the pinned errors of malformed records.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "common/error.h"
#include "models/apot.h"
#include "tests/test_util.h"
#include "traces/trace_reader.h"
#include "traces/trace_writer.h"

using namespace mfsim;
using json = nlohmann::json;
using mfsim::test::TempDir;

namespace {

// A random operand of `f` (n elements) for the writer: PoT4 codes, or integers (INT8 in
// [-127, 127], two-term levels), about a fifth of them zero.
struct Operand {
  std::vector<Pot4Code> codes;
  std::vector<std::int8_t> ints;
  std::vector<std::int64_t> image;  // the integer each element stands for
};
Operand random_operand(NumFormat f, std::size_t n, std::mt19937& rng) {
  std::vector<int> levels;
  for (int v = -96; v <= 96; ++v) {
    if (apot_level(v)) levels.push_back(v);
  }
  Operand o;
  for (std::size_t i = 0; i < n; ++i) {
    const bool zero = rng() % 5 == 0;
    if (f == NumFormat::kPot4) {
      const Pot4Code c = zero ? pot4_encode(false, 0) : pot4_encode(rng() % 2 == 0, static_cast<unsigned>(1 + rng() % 7));
      o.codes.push_back(c);
      o.image.push_back(pot4_int(c));
    } else {
      const int v = zero ? 0
                    : f == NumFormat::kApot ? levels[rng() % levels.size()]
                                            : static_cast<int>(rng() % 255) - 127;
      o.ints.push_back(static_cast<std::int8_t>(v));
      o.image.push_back(v);
    }
  }
  return o;
}

struct Case {
  const char* layer;
  Phase phase;
  NumFormat a, b;
  std::int64_t m, n, k;
  int terms;  // shifts per executed product on the two-term PE
};
const Case kCases[] = {
    {"fc1", Phase::kFwd, NumFormat::kInt8, NumFormat::kApot, 9, 7, 37, 2},
    {"fc1", Phase::kBwdData, NumFormat::kApot, NumFormat::kApot, 9, 5, 7, 2},
    {"fc1", Phase::kBwdWeight, NumFormat::kPot4, NumFormat::kApot, 5, 7, 9, 1},
    {"fc0", Phase::kBwdWeight, NumFormat::kApot, NumFormat::kInt8, 6, 11, 13, 2},
};

// Writes the cases as one trace with exact expected outputs (an independent integer sum).
void write_trace(const std::string& path) {
  TraceWriter w(path, "test");
  std::mt19937 rng(7);
  for (const Case& c : kCases) {
    TraceRecord r;
    r.layer = c.layer;
    r.phase = c.phase;
    r.shape = GemmShape{c.m, c.n, c.k};
    r.a.format = c.a;
    r.b.format = c.b;
    r.a.scale = r.b.scale = 0.25f;
    r.a.scale_exp = r.b.scale_exp = 3;
    const Operand a = random_operand(c.a, static_cast<std::size_t>(c.m * c.k), rng);
    const Operand b = random_operand(c.b, static_cast<std::size_t>(c.k * c.n), rng);
    std::vector<std::int64_t> expected(static_cast<std::size_t>(c.m * c.n), 0);
    for (std::int64_t i = 0; i < c.m; ++i) {
      for (std::int64_t j = 0; j < c.n; ++j) {
        for (std::int64_t k = 0; k < c.k; ++k) {
          expected[i * c.n + j] += a.image[i * c.k + k] * b.image[k * c.n + j];
        }
      }
    }
    w.add_apot(r, a.codes.empty() ? nullptr : a.codes.data(), a.codes.empty() ? a.ints.data() : nullptr,
               b.codes.empty() ? nullptr : b.codes.data(), b.codes.empty() ? b.ints.data() : nullptr, expected.data());
  }
  w.commit();
}

}  // namespace

TEST_CASE("two-term records: written, read, recomputed, replayed bit for bit on shift2 and int8, counted per term",
          "[smoke]") {
  TempDir dir;
  const std::string trace = dir.file("t.json");
  write_trace(trace);
  {
    TraceReader reader(trace);
    REQUIRE(reader.trace().records.size() == 4);
    for (std::size_t i = 0; i < 4; ++i) {
      const TraceRecord& r = reader.trace().records[i];
      CHECK(r.apot_pair());
      CHECK(check_record_result(r, reader.read_payload(i)).empty());
    }
    CHECK(reader.trace().records[0].format_name() == "int8+apot");
    CHECK(reader.trace().records[1].format_name() == "apot");
    CHECK(reader.trace().records[2].format_name() == "pot4+apot");
    CHECK(reader.trace().records[3].format_name() == "int8+apot");
  }
  auto ins = test::run_mfsim(fmt::format("inspect --json --recompute {}", trace));
  REQUIRE(ins.exit_code == 0);
  const json ij = json::parse(ins.out);
  CHECK(ij["gemms_recomputed"] == 4);
  CHECK(ij["phases"]["fwd"]["formats"]["int8+apot"] == 1);
  CHECK(ij["phases"]["bwd_data"]["formats"]["apot"] == 1);
  CHECK(ij["phases"]["bwd_weight"]["formats"]["pot4+apot"] == 1);
  CHECK(ij["phases"]["bwd_weight"]["formats"]["int8+apot"] == 1);

  for (const char* array : {"shift2", "int8"}) {
    for (const char* df : {"os", "ws", "is"}) {
      INFO(array << " " << df);
      const std::string common = fmt::format("simulate -q --trace {} --array {} --dataflow {} --rows 4 --cols 3", trace, array, df);
      auto v = test::run_mfsim(fmt::format("{} --mode value --report {}", common, dir.file("v.json")));
      INFO(v.err);
      REQUIRE(v.exit_code == 0);
      REQUIRE(test::run_mfsim(fmt::format("{} --mode timing --report {}", common, dir.file("t2.json"))).exit_code == 0);
      const json vj = json::parse(test::slurp(dir.file("v.json")));
      const json tj = json::parse(test::slurp(dir.file("t2.json")));
      CHECK(vj["verification"]["gemms_checked"] == 4);
      CHECK(vj["verification"]["checked_against_trace"] == 4);
      CHECK(vj["verification"]["mismatches"] == 0);
      CHECK(vj["total"]["events"] == tj["total"]["events"]);
      CHECK(vj["total"]["cycles"] == tj["total"]["cycles"]);
      CHECK(vj["energy_pj"]["by_component"] == tj["energy_pj"]["by_component"]);
      if (std::string(array) != "shift2") continue;
      std::uint64_t shifts = 0;
      for (std::size_t i = 0; i < 4; ++i) {
        const json& e = vj["gemms"][i]["events"];
        const auto executed = e["mac_slots"].get<std::uint64_t>() - e["products_zero"].get<std::uint64_t>();
        CHECK(e["mac_slots"] == kCases[i].m * kCases[i].n * kCases[i].k);
        CHECK(e["shift2_xor"] == executed);
        CHECK(e["shift2_shift"] == executed * static_cast<std::uint64_t>(kCases[i].terms));
        CHECK(e["shift2_term_add"] == (kCases[i].terms == 2 ? executed : 0));
        CHECK(e["shift2_acc_add"] == executed);
        CHECK(tj["gemms"][i]["events"] == e);
        shifts += e["shift2_shift"].get<std::uint64_t>();
      }
      // The energy items price what was counted: the shifts at the table's shift8 row.
      int shift_items = 0;
      for (const auto& it : vj["energy_pj"]["items"]) {
        if (it["component"] == "pe_arithmetic" && it["action"] == "shift") {
          CHECK(it["count"] == shifts);
          ++shift_items;
        }
      }
      CHECK(shift_items == 1);
      // Zero gating from the same counts: the gated arithmetic is the arithmetic priced, and the
      // per-product figure is its mean over the executed products (one- and two-term codes mixed).
      const json& zg = vj["energy_pj"]["zero_gating"];
      const double arith = vj["energy_pj"]["by_component"]["pe_arithmetic"].get<double>();
      std::uint64_t slots = 0, zero = 0;
      for (const auto& g : vj["gemms"]) {
        slots += g["events"]["mac_slots"].get<std::uint64_t>();
        zero += g["events"]["products_zero"].get<std::uint64_t>();
      }
      CHECK(zg["arithmetic_gated"].get<double>() == Approx(arith));
      CHECK(zg["arithmetic_pj_per_product"].get<double>() == Approx(arith / static_cast<double>(slots - zero)));
      CHECK(zg["arithmetic_ungated"].get<double>() ==
            Approx(zg["arithmetic_pj_per_product"].get<double>() * static_cast<double>(slots)));
    }
  }
  // The shift PE holds no two-term value: timing mode, said per GEMM; value mode refuses.
  auto s = test::run_mfsim(fmt::format("simulate -q --trace {} --array shift --report {}", trace, dir.file("s.json")));
  REQUIRE(s.exit_code == 0);
  const json sj = json::parse(test::slurp(dir.file("s.json")));
  CHECK(sj["gemms"][0]["mode"] == "timing");
  CHECK(sj["gemms"][0]["note"] == "int8+apot operands cannot be represented exactly on the shift array: timing mode, "
                                  "priced as its products");
  s = test::run_mfsim(fmt::format("simulate -q --trace {} --array shift --mode value --report {}", trace, dir.file("s.json")));
  CHECK(s.exit_code == 2);
}

TEST_CASE("two-term records: quantized elements by operand, priced by the two-term quantizer", "[unit]") {
  TempDir dir;
  const std::string trace = dir.file("t.json");
  write_trace(trace);
  TraceReader reader(trace);
  const std::vector<QuantizedElements> q = quantized_elements(reader.trace());
  // fc1 fwd: A (9 x 37) INT8 activations, B (37 x 7) two-term weights.
  CHECK(q[0].activations == 9 * 37);
  CHECK(q[0].int8_activations == 9 * 37);
  CHECK(q[0].weights == 37 * 7);
  CHECK(q[0].apot_weights == 37 * 7);
  // fc1 bwd_data: no own G (fc1 has a bwd_weight record), W^T not re-quantized.
  CHECK(q[1].errors == 0);
  CHECK(q[1].apot_errors == 0);
  CHECK(q[1].apot_weights == 0);
  // fc1 bwd_weight: G (9 x 7) two-term errors; fc0's: G (13 x 11) INT8 errors.
  CHECK(q[2].errors == 9 * 7);
  CHECK(q[2].apot_errors == 9 * 7);
  CHECK(q[3].errors == 13 * 11);
  CHECK(q[3].int8_errors == 13 * 11);
  CHECK(q[3].apot_errors == 0);
}

TEST_CASE("two-term records: compare's savings, the quantizers' operations and the PE's area", "[smoke]") {
  TempDir dir;
  const std::string trace = dir.file("t.json");
  write_trace(trace);
  auto c = test::run_mfsim(fmt::format("compare -q --trace {} --arrays shift2 --rows 4 --cols 3 --energy-table paper "
                                       "--report {}",
                                       trace, dir.file("c.json")));
  INFO(c.err);
  REQUIRE(c.exit_code == 0);
  const json cj = json::parse(test::slurp(dir.file("c.json")));
  // With gating on every array, the headline arithmetic saving is the gated one.
  const json& sv = cj["savings_vs_fp32"]["shift2"];
  CHECK(sv["arithmetic"].get<double>() == Approx(sv["arithmetic_zero_gating_on"].get<double>()));
  auto s = test::run_mfsim(fmt::format("simulate -q --trace {} --array shift2 --rows 4 --cols 3 --report {}", trace,
                                       dir.file("s.json")));
  REQUIRE(s.exit_code == 0);
  const json sj = json::parse(test::slurp(dir.file("s.json")));
  // Quantization: every quantized element of this trace is INT8 (the power-of-two-scaled integer
  // quantizer: 2 compares and an exponent subtraction each, a random number per error) or two-term
  // (3 compares, 3 exponent subtractions and an FP32 add each; an error also a random number and a
  // compare); none PoT4. fc1 fwd: A 9 x 37 INT8, W 37 x 7 two-term; fc1 bwd_weight: G 9 x 7
  // two-term; fc0 bwd_weight: G 13 x 11 INT8.
  const double i8 = 9 * 37 + 13 * 11, i8_err = 13 * 11, ap = 37 * 7 + 9 * 7, ap_err = 9 * 7;
  std::map<std::string, double> want = {{"compare", 2 * i8 + 3 * ap + ap_err},
                                        {"exponent_subtract", i8 + 3 * ap},
                                        {"fp32_add", ap},
                                        {"fp32_multiply", 0},
                                        {"random_16bit", i8_err + ap_err}};
  int found = 0;
  for (const auto& it : sj["energy_pj"]["items"]) {
    if (it["component"] != "quantization") continue;
    INFO(it["action"]);
    CHECK(it["count"].get<double>() == Approx(want.at(it["action"].get<std::string>())));
    ++found;
  }
  CHECK(found == 5);
  // Area: each PE has two shifters, a 16-bit term adder (half the 32-bit accumulator adder: adders
  // scale linearly in width) and the accumulator adder.
  std::map<std::string, json> area;
  for (const auto& it : sj["area"]["items"]) {
    if (it["component"] == "pe_arithmetic") area[it["item"].get<std::string>()] = it;
  }
  REQUIRE(area.count("shift") == 1);
  REQUIRE(area.count("term_add") == 1);
  REQUIRE(area.count("accumulate") == 1);
  CHECK(area["shift"]["count"] == 2 * 4 * 3);
  CHECK(area["term_add"]["count"] == 4 * 3);
  CHECK(area["accumulate"]["count"] == 4 * 3);
  CHECK(area["term_add"]["um2_per_unit"].get<double>() ==
        Approx(area["accumulate"]["um2_per_unit"].get<double>() * 16 / 32));
}

TEST_CASE("two-term records: the writer and the reader reject what is not a two-term value with one line", "[unit]") {
  TempDir dir;
  TraceRecord r;
  r.layer = "l";
  r.shape = GemmShape{1, 1, 2};
  r.a.format = NumFormat::kInt8;
  r.b.format = NumFormat::kApot;
  r.a.scale = r.b.scale = 1.0f;
  const std::int8_t a[2] = {1, 2}, ok[2] = {96, -3}, bad[2] = {7, 1};
  const std::int64_t expected = 96 - 6;
  {
    TraceWriter w(dir.file("w.json"), "test");
    CHECK_THROWS_WITH(w.add_apot(r, nullptr, a, nullptr, bad, &expected),
                      "trace writer: l fwd: operand value 7 is not a apot value");
    TraceRecord r3 = r;
    r3.b.scale = 3.0f;
    CHECK_THROWS_WITH(w.add_apot(r3, nullptr, a, nullptr, ok, &expected),
                      "trace writer: l fwd: the apot operand's scale 3 is not a power of two");
    TraceRecord r4 = r;
    r4.b.format = NumFormat::kInt8;
    CHECK_THROWS_WITH(w.add_apot(r4, nullptr, a, nullptr, ok, &expected),
                      "trace writer: l fwd: operand formats int8 and int8 are not a two-term pair (apot with apot, pot4 "
                      "or int8; no finer scales)");
    // A two-term pair only through add_apot (which checks its levels and scales).
    CHECK_THROWS_WITH(w.add_int8(r, a, ok, &expected),
                      "trace writer: l fwd: operand formats int8 and apot do not fit this call");
    TraceRecord r5 = r;
    r5.a.scale = 0.375f;
    CHECK_THROWS_WITH(w.add_apot(r5, nullptr, a, nullptr, ok, &expected),
                      "trace writer: l fwd: the int8 operand's scale 0.375 is not a power of two");
  }
  // An INT8 x INT8 trace whose B is relabelled apot: 7 is no two-term value.
  const std::string path = dir.file("r.json");
  {
    TraceWriter w(path, "test");
    TraceRecord r8 = r;
    r8.b.format = NumFormat::kInt8;
    const std::int64_t e8 = 7 + 2;
    w.add_int8(r8, a, bad, &e8);
    w.commit();
  }
  std::string text = test::slurp(path);
  const std::string from = "\"b\":{\"format\":\"int8\"";
  REQUIRE(text.find(from) != std::string::npos);
  text.replace(text.find(from), from.size(), "\"b\":{\"format\":\"apot\"");
  std::ofstream(path) << text;
  try {
    TraceReader reader(path);
    (void)reader.read_payload(0);
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()) == path + ": records[0].payload.b: element 0 is 7; apot operands are 0, +-2^i or "
                                          "+-(2^i + 2^j) with 0 <= j < i <= 6");
  }
  // A two-term operand's scale is a power of two.
  std::string t3 = text;
  const auto at = t3.find("\"b\":{\"format\":\"apot\",\"scale\":1");
  REQUIRE(at != std::string::npos);
  const auto end = t3.find('}', at);
  t3.replace(at, end - at + 1, "\"b\":{\"format\":\"apot\",\"scale\":3}");
  std::ofstream(path) << t3;
  try {
    TraceReader reader(path);
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()) == path + ": records[0].b.scale: a two-term (apot) operand's scale is a power of two; got 3");
  }
  // The INT8 partner of a two-term operand has a power-of-two scale too; apot pairs with nothing else.
  const std::string good = dir.file("g.json");
  write_trace(good);
  const json base = json::parse(test::slurp(good));
  auto read_error = [&](const json& j) {
    std::ofstream(good) << j.dump();
    try {
      TraceReader reader(good);
      return std::string("no error");
    } catch (const InputError& e) {
      return std::string(e.what());
    }
  };
  json j = base;
  j["records"][0]["a"]["scale"] = 0.375;
  CHECK(read_error(j) == good + ": records[0].a.scale: the INT8 partner of a two-term (apot) operand has a "
                                "power-of-two scale; got 0.375");
  j = base;
  j["records"][0]["a"] = {{"format", "fp32"}};
  CHECK(read_error(j) == good + ": records[0].b.format: \"apot\" differs from a.format \"fp32\"; both operands of a "
                                "GEMM must use one format (or fp8e4m3 with fp8e5m2, or pot4 with int8, or apot with "
                                "apot, pot4 or int8)");
  CHECK(read_error(base) == "no error");
}
