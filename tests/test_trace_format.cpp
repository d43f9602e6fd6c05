// Trace format round trips (traces/trace_writer.h, traces/trace_reader.h).
#include <catch2/catch.hpp>

#include <cstring>
#include <cmath>
#include <filesystem>
#include <random>

#include "common/error.h"
#include "models/gemm_ref.h"
#include "tests/test_util.h"
#include "traces/trace_reader.h"
#include "traces/trace_writer.h"

using namespace mfsim;
using mfsim::test::TempDir;

namespace {

TraceRecord rec(const char* layer, Phase ph, std::int64_t m, std::int64_t n, std::int64_t k,
                NumFormat f) {
  TraceRecord r;
  r.layer = layer;
  r.phase = ph;
  r.shape = GemmShape{m, n, k};
  r.a.format = r.b.format = f;
  return r;
}

void check_same_metadata(const TraceRecord& x, const TraceRecord& y) {
  CHECK(x.layer == y.layer);
  CHECK(x.phase == y.phase);
  CHECK(x.shape.m == y.shape.m);
  CHECK(x.shape.n == y.shape.n);
  CHECK(x.shape.k == y.shape.k);
  CHECK(x.a.format == y.a.format);
  CHECK(x.a.scale_exp == y.a.scale_exp);
  CHECK(x.a.scale == y.a.scale);
  CHECK(x.b.scale_exp == y.b.scale_exp);
  CHECK(x.b.scale == y.b.scale);
  CHECK(x.accumulator.bits == y.accumulator.bits);
  CHECK(x.accumulator.overflow == y.accumulator.overflow);
  CHECK(x.fp32_fma == y.fp32_fma);
}

}  // namespace

TEST_CASE("shape-only trace round-trips and writes no payload file", "[unit]") {
  TempDir dir;
  std::string path = dir.file("shapes.json");
  std::vector<TraceRecord> in;
  in.push_back(rec("conv1", Phase::kFwd, 401408, 64, 147, NumFormat::kPot4));
  in.back().a.scale_exp = -120;
  in.back().b.scale_exp = 127;
  in.push_back(rec("conv1", Phase::kBwdWeight, 147, 64, 401408, NumFormat::kInt8));
  in.back().a.scale = 0.0123f;
  in.back().b.scale = 3.5e-7f;
  in.back().accumulator = AccumulatorSpec{48, OverflowPolicy::kSaturate};
  in.push_back(rec("fc", Phase::kBwdData, 2147483647, 1, 3, NumFormat::kFp32));
  in.back().fp32_fma = true;
  in.push_back(rec("attn.scores", Phase::kFwd, 128, 128, 64, NumFormat::kPot4));
  in.back().repeat = 256;  // batch 32 x 8 heads
  {
    TraceWriter w(path, "test", "three records");
    for (const auto& r : in) w.add_shape(r);
    w.commit();
  }
  CHECK_FALSE(test::file_exists(dir.file("shapes.bin")));
  TraceReader reader(path);
  const Trace& t = reader.trace();
  CHECK(t.generator == "test");
  CHECK(t.description == "three records");
  CHECK(t.payload_path.empty());
  REQUIRE(t.records.size() == in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    check_same_metadata(t.records[i], in[i]);
    CHECK(t.records[i].repeat == in[i].repeat);
    CHECK_FALSE(t.records[i].has_payload);
  }
  CHECK(t.total_macs() == 401408ull * 64 * 147 * 2 + 2147483647ull * 3 + 256ull * 128 * 128 * 64);
  CHECK_THROWS_AS(reader.read_payload(0), InputError);
}

TEST_CASE("payload trace round-trips operands and expected outputs of every format", "[unit]") {
  const unsigned seed = 99;
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  TempDir dir;
  std::string path = dir.file("step.json");

  // pot4 with odd element counts (last nibble padding), 32- and 40-bit accumulators.
  TraceRecord p4 = rec("fc1", Phase::kFwd, 3, 5, 7, NumFormat::kPot4);
  p4.a.scale_exp = -4;
  p4.b.scale_exp = 2;
  TraceRecord p4w = rec("fc1", Phase::kBwdWeight, 7, 5, 3, NumFormat::kPot4);
  p4w.accumulator = AccumulatorSpec{40, OverflowPolicy::kSaturate};
  std::uniform_int_distribution<int> code(0, 15), i8(-127, 127);
  auto codes = [&](std::size_t n) {
    std::vector<Pot4Code> v(n);
    for (auto& c : v) c = static_cast<Pot4Code>(code(rng));
    return v;
  };
  auto a1 = codes(21), b1 = codes(35), a2 = codes(21), b2 = codes(15);
  std::vector<std::int64_t> c1(15), c2(35);
  gemm_pot4_ref(p4.shape, a1.data(), b1.data(), p4.accumulator, c1.data());
  gemm_pot4_ref(p4w.shape, a2.data(), b2.data(), p4w.accumulator, c2.data());
  c2[0] = (std::int64_t{1} << 39) - 1;  // exercises the i64 storage beyond 32 bits

  TraceRecord q8 = rec("fc2", Phase::kBwdData, 2, 3, 4, NumFormat::kInt8);
  q8.a.scale = 0.25f;
  q8.b.scale = 1e-3f;
  std::vector<std::int8_t> a3(8), b3(12);
  for (auto& x : a3) x = static_cast<std::int8_t>(i8(rng));
  for (auto& x : b3) x = static_cast<std::int8_t>(i8(rng));
  std::vector<std::int64_t> c3(6);
  gemm_int8_ref(q8.shape, a3.data(), b3.data(), q8.accumulator, c3.data());

  TraceRecord f32 = rec("fc2", Phase::kFwd, 2, 2, 3, NumFormat::kFp32);
  f32.fp32_fma = true;
  std::vector<float> a4{1.5f, -2.0f, 0.1f, 3.0f, 1e-20f, -0.0f}, b4{1, 2, 3, 4, 5, 6}, c4(4);
  gemm_fp32_ref(f32.shape, a4.data(), b4.data(), true, c4.data());

  {
    TraceWriter w(path, "test");
    w.add_pot4(p4, a1.data(), b1.data(), c1.data());
    w.add_shape(rec("fc3", Phase::kFwd, 100, 100, 100, NumFormat::kPot4));  // mixed in
    w.add_pot4(p4w, a2.data(), b2.data(), c2.data());
    w.add_int8(q8, a3.data(), b3.data(), c3.data());
    w.add_fp32(f32, a4.data(), b4.data(), c4.data());
    w.commit();
  }
  TraceReader reader(path);
  const Trace& t = reader.trace();
  REQUIRE(t.records.size() == 5);
  CHECK(t.records_with_payload() == 4);
  CHECK(t.payload_path == dir.file("step.bin"));
  check_same_metadata(t.records[0], p4);
  check_same_metadata(t.records[2], p4w);
  check_same_metadata(t.records[3], q8);
  check_same_metadata(t.records[4], f32);
  CHECK(t.records[2].output_type() == OutputType::kI64);

  // Read out of order: payloads are loaded on demand.
  RecordPayload r4 = reader.read_payload(4);
  CHECK(r4.a_fp32 == a4);
  CHECK(r4.b_fp32 == b4);
  CHECK(std::memcmp(r4.expected_fp32.data(), c4.data(), 16) == 0);
  CHECK(std::signbit(r4.a_fp32[5]));
  RecordPayload r0 = reader.read_payload(0);
  CHECK(r0.a_pot4 == a1);
  CHECK(r0.b_pot4 == b1);
  CHECK(r0.expected_acc == c1);
  RecordPayload r2 = reader.read_payload(2);
  CHECK(r2.a_pot4 == a2);
  CHECK(r2.b_pot4 == b2);
  CHECK(r2.expected_acc == c2);
  RecordPayload r3 = reader.read_payload(3);
  CHECK(r3.a_int8 == a3);
  CHECK(r3.b_int8 == b3);
  CHECK(r3.expected_acc == c3);

  CHECK(check_record_result(t.records[0], r0).empty());
  CHECK(check_record_result(t.records[3], r3).empty());
  CHECK(check_record_result(t.records[4], r4).empty());
  // c2[0] was altered: the recomputation must notice and say where.
  std::string diff = check_record_result(t.records[2], r2);
  CHECK(diff.rfind("first mismatch at output element (0, 0) of 7x5: recomputed ", 0) == 0);

  // Payloads are 8-byte aligned in the payload file.
  for (const auto& r : t.records) {
    if (r.has_payload) {
      CHECK(r.payload_a.offset % 8 == 0);
      CHECK(r.payload_b.offset % 8 == 0);
      CHECK(r.payload_expected.offset % 8 == 0);
    }
  }
}

TEST_CASE("a writer that is not committed leaves no files", "[unit]") {
  TempDir dir;
  std::string path = dir.file("gone.json");
  {
    TraceWriter w(path, "test");
    TraceRecord r = rec("l", Phase::kFwd, 1, 1, 1, NumFormat::kPot4);
    Pot4Code a = 1, b = 1;
    std::int64_t c = 1;
    w.add_pot4(r, &a, &b, &c);
  }
  CHECK_FALSE(test::file_exists(path));
  CHECK_FALSE(test::file_exists(dir.file("gone.bin")));
  CHECK(std::filesystem::is_empty(dir.path()));
}
