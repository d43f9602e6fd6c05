// Malformed traces: each gets one clear error naming the file and the field (pinned here).
#include <catch2/catch.hpp>

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "common/crc32.h"
#include "common/error.h"
#include "models/gemm_ref.h"
#include "tests/test_util.h"
#include "traces/example_trace.h"
#include "traces/trace_reader.h"
#include "traces/trace_writer.h"

using namespace mfsim;
using mfsim::test::TempDir;
using nlohmann::json;

namespace {

// A valid trace with payloads (the example: record 0 is pot4 7x12x20, 5 is int8, 6 is fp32).
struct Fixture {
  TempDir dir;
  std::string path = dir.file("t.json");
  std::string bin = dir.file("t.bin");
  Fixture() { write_example_trace(path, 1); }

  void edit_json(const std::function<void(json&)>& f) {
    json j = json::parse(test::slurp(path));
    f(j);
    test::spit(path, j.dump(1));
  }
  // The error of opening the trace and reading every payload ("" if none).
  std::string error() const {
    try {
      TraceReader r(path);
      for (std::size_t i = 0; i < r.trace().records.size(); ++i) {
        if (r.trace().records[i].has_payload) r.read_payload(i);
      }
    } catch (const InputError& e) {
      return e.what();
    }
    return "";
  }
  std::string err(const std::string& rest) const { return path + ": " + rest; }
};

}  // namespace

TEST_CASE("the unmodified fixture is valid", "[unit]") {
  Fixture fx;
  CHECK(fx.error().empty());
}

TEST_CASE("trace errors: empty file and not JSON", "[unit]") {
  Fixture fx;
  test::spit(fx.path, "");
  CHECK(fx.error() == fx.err("empty file; expected a JSON document"));
  test::spit(fx.path, " \n\t\n");
  CHECK(fx.error() == fx.err("empty file; expected a JSON document"));
  test::spit(fx.path, "{\"format\": \"mfsim-trace\",\n \"version\": 1,\n \"records\": [}");
  CHECK(fx.error() ==
        fx.err("not valid JSON: line 3, column 14: syntax error while parsing value - unexpected '}'"));
  test::spit(fx.path, "\x89PNG\r\n");
  CHECK(fx.error().rfind(fx.err("not valid JSON: line 1, column 1: syntax error"), 0) == 0);
}

TEST_CASE("trace errors: document level", "[unit]") {
  Fixture fx;
  const std::string good = test::slurp(fx.path);
  test::spit(fx.path, "[1, 2]");
  CHECK(fx.error() == fx.err("document: expected an object, got an array"));
  test::spit(fx.path, good);
  fx.edit_json([](json& j) { j["format"] = "scalesim-topology"; });
  CHECK(fx.error() == fx.err("format: unknown value \"scalesim-topology\"; expected mfsim-trace"));
  fx.edit_json([](json& j) { j["format"] = "mfsim-trace"; j["version"] = 2; });
  CHECK(fx.error() == fx.err("version: unsupported trace format version 2; this mfsim reads version 1"));
  fx.edit_json([](json& j) { j["version"] = "1"; });
  CHECK(fx.error() == fx.err("version: expected an integer, got \"1\""));
  fx.edit_json([](json& j) { j["version"] = 1; j.erase("records"); });
  CHECK(fx.error() == fx.err("records: missing required field"));
  fx.edit_json([](json& j) { j["records"] = json::object(); });
  CHECK(fx.error() == fx.err("records: expected an array, got an object"));
  fx.edit_json([](json& j) { j["records"] = json::array(); j["comment"] = "x"; });
  CHECK(fx.error() == fx.err("comment: unknown key"));
}

TEST_CASE("trace errors: record fields", "[unit]") {
  Fixture fx;
  const json good = json::parse(test::slurp(fx.path));
  auto with = [&](const std::function<void(json&)>& f) {
    fx.edit_json([&](json& j) {
      j = good;
      f(j);
    });
    return fx.error();
  };
  CHECK(with([](json& j) { j["records"][0].erase("K"); }) ==
        fx.err("records[0].K: missing required field"));
  CHECK(with([](json& j) { j["records"][3]["K"] = -3; }) ==
        fx.err("records[3].K: expected a positive integer below 2^31, got -3"));
  CHECK(with([](json& j) { j["records"][1]["M"] = 0; }) ==
        fx.err("records[1].M: expected a positive integer below 2^31, got 0"));
  CHECK(with([](json& j) { j["records"][1]["N"] = 2147483648LL; }) ==
        fx.err("records[1].N: expected a positive integer below 2^31, got 2147483648"));
  CHECK(with([](json& j) { j["records"][0]["M"] = "7"; }) ==
        fx.err("records[0].M: expected a positive integer below 2^31, got \"7\""));
  CHECK(with([](json& j) { j["records"][0]["M"] = 7.5; }) ==
        fx.err("records[0].M: expected a positive integer below 2^31, got 7.5"));
  CHECK(with([](json& j) { j["records"][2]["phase"] = "forward"; }) ==
        fx.err("records[2].phase: unknown value \"forward\"; expected fwd|bwd_data|bwd_weight"));
  CHECK(with([](json& j) { j["records"][0]["a"]["format"] = "int2"; }) ==
        fx.err("records[0].a.format: unknown value \"int2\"; expected pot4|int8|fp32|int4|fp8e4m3|fp8e5m2|bf16|apot"));
  CHECK(with([](json& j) { j["records"][0]["layer"] = 3; }) ==
        fx.err("records[0].layer: expected a string, got 3"));
  CHECK(with([](json& j) { j["records"][0]["batch"] = 7; }) ==
        fx.err("records[0].batch: unknown key"));
  CHECK(with([](json& j) { j["records"][0]["a"]["scale_exp"] = 200; }) ==
        fx.err("records[0].a.scale_exp: expected an integer scale exponent in [-120, 127], got 200"));
  CHECK(with([](json& j) { j["records"][5]["b"]["scale"] = 0; }) ==
        fx.err("records[5].b.scale: expected a positive finite float32 value, got 0"));
  CHECK(with([](json& j) { j["records"][5]["b"]["scale"] = 0.1; }) ==
        fx.err("records[5].b.scale: expected a positive finite float32 value, got 0.1"));
  CHECK(with([](json& j) { j["records"][0]["b"] = {{"format", "int4"}, {"scale", 0.5}}; }) ==
        fx.err("records[0].b.format: \"int4\" differs from a.format \"pot4\"; both operands of a "
               "GEMM must use one format (or fp8e4m3 with fp8e5m2, or pot4 with int8, or apot with apot, pot4 or int8)"));
  CHECK(with([](json& j) { j["records"][0]["b"] = {{"format", "fp32"}}; }) ==
        fx.err("records[0].b.format: \"fp32\" differs from a.format \"pot4\"; both operands of a "
               "GEMM must use one format (or fp8e4m3 with fp8e5m2, or pot4 with int8, or apot with apot, pot4 or int8)"));
  CHECK(with([](json& j) { j["records"][6]["accumulator"] = {{"bits", 32}, {"overflow", "error"}}; }) ==
        fx.err("records[6].accumulator: fp32 GEMMs have no integer accumulator; remove this field"));
  CHECK(with([](json& j) { j["records"][0]["accumulator"]["bits"] = 65; }) ==
        fx.err("records[0].accumulator.bits: expected an integer in [2, 64], got 65"));
  CHECK(with([](json& j) { j["records"][0]["repeat"] = 0; }) ==
        fx.err("records[0].repeat: expected a positive integer below 2^31, got 0"));
  CHECK(with([](json& j) { j["records"][0]["repeat"] = 2; }) ==
        fx.err("records[0].payload: a record with repeat > 1 cannot carry a payload"));
  CHECK(with([](json& j) { j["records"][0]["accumulator"]["overflow"] = "wrap"; }) ==
        fx.err("records[0].accumulator.overflow: unknown value \"wrap\"; expected error|saturate"));
}

TEST_CASE("trace errors: dimensions that overflow size computations", "[unit]") {
  Fixture fx;
  fx.edit_json([](json& j) {
    j["records"][1]["M"] = 2147483647;
    j["records"][1]["N"] = 2147483647;
    j["records"][1]["K"] = 2147483647;
  });
  CHECK(fx.error() ==
        fx.err("records[1]: M*N*K = 2147483647*2147483647*2147483647 overflows 64 bits"));
  fx.edit_json([](json& j) {
    j["records"][1]["K"] = 1;
  });
  CHECK(fx.error() == fx.err("records[1].payload: output of M*N = 2147483647*2147483647 elements "
                             "is too large for a payload (limit 2^61)"));
  // Shape-only records whose MACs add up past 2^64.
  fx.edit_json([](json& j) {
    j.erase("payload_file");
    json r = {{"layer", "x"}, {"phase", "fwd"}, {"M", 2147483647}, {"N", 2147483647}, {"K", 3},
              {"a", {{"format", "fp32"}}}, {"b", {{"format", "fp32"}}}};
    j["records"] = json::array({r, r});
  });
  CHECK(fx.error() == fx.err("records[1]: total MACs of the trace overflow 64 bits"));
}

TEST_CASE("trace errors: payload references", "[unit]") {
  Fixture fx;
  const json good = json::parse(test::slurp(fx.path));
  auto with = [&](const std::function<void(json&)>& f) {
    fx.edit_json([&](json& j) {
      j = good;
      f(j);
    });
    return fx.error();
  };
  CHECK(with([](json& j) { j["records"][0]["payload"]["a"]["bytes"] = 69; }) ==
        fx.err("records[0].payload.a.bytes: expected 70 bytes for 7x20 pot4 elements, got 69"));
  CHECK(with([](json& j) { j["records"][5]["payload"]["expected"]["bytes"] = 100; }) ==
        fx.err("records[5].payload.expected.bytes: expected 336 bytes for 7x12 i32 elements, got 100"));
  CHECK(with([](json& j) { j["records"][0]["payload"]["b"]["offset"] = 5599; }) ==
        fx.err("records[0].payload.b: bytes [5599, 5719) lie outside the payload file (5600 bytes)"));
  CHECK(with([](json& j) { j["records"][0]["payload"]["b"]["offset"] = 3; }) ==
        fx.err("records[0].payload.b.offset: expected a byte offset >= 16 (after the payload file "
               "header), got 3"));
  CHECK(with([](json& j) { j["records"][0]["payload"]["a"]["crc32"] = "XYZ"; }) ==
        fx.err("records[0].payload.a.crc32: expected 8 lower-case hex digits, got \"XYZ\""));
  CHECK(with([](json& j) { j["records"][0]["payload"]["expected"]["type"] = "i64"; }) ==
        fx.err("records[0].payload.expected.type: expected \"i32\" for a pot4 GEMM with a 32-bit "
               "accumulator, got \"i64\""));
  CHECK(with([](json& j) { j["records"][0]["payload"].erase("expected"); }) ==
        fx.err("records[0].payload.expected: missing required field"));
  CHECK(with([](json& j) { j.erase("payload_file"); }) ==
        fx.err("records[0].payload: the record has a payload but the trace has no payload_file"));
  CHECK(with([](json& j) { j["payload_file"]["path"] = "missing.bin"; }) ==
        fx.err("payload_file.path: cannot open " + fx.dir.file("missing.bin") +
               ": No such file or directory"));
  CHECK(with([](json& j) { j["payload_file"]["bytes"] = 5608; }) ==
        fx.err("payload_file.bytes: " + fx.bin + " has 5600 bytes, the trace says 5608 (truncated "
               "or replaced payload file)"));
}

TEST_CASE("trace errors: damaged payload file", "[unit]") {
  Fixture fx;
  std::string bytes = test::slurp(fx.bin);
  SECTION("truncated") {
    test::spit(fx.bin, bytes.substr(0, 1000));
    CHECK(fx.error() == fx.err("payload_file.bytes: " + fx.bin + " has 1000 bytes, the trace says "
                               "5600 (truncated or replaced payload file)"));
  }
  SECTION("a flipped bit fails the checksum") {
    bytes[20] = static_cast<char>(bytes[20] ^ 0x10);
    test::spit(fx.bin, bytes);
    CHECK(fx.error().rfind(fx.err("records[0].payload.a: checksum mismatch (crc32 recorded "
                                  "8fcfff87, computed "),
                           0) == 0);
  }
  SECTION("bad magic") {
    bytes[0] = 'X';
    test::spit(fx.bin, bytes);
    CHECK(fx.error() == fx.bin + ": not an mfsim payload file (bad magic; expected MFSIMBIN)");
  }
  SECTION("empty payload file") {
    test::spit(fx.bin, "");
    CHECK(fx.error() == fx.bin + ": not an mfsim payload file (bad magic; expected MFSIMBIN)");
  }
  SECTION("payload file version") {
    bytes[8] = 2;
    test::spit(fx.bin, bytes);
    CHECK(fx.error() == fx.bin + ": unsupported payload file version 2; expected 1");
  }
}

TEST_CASE("trace errors: the path is not a trace file", "[unit]") {
  TempDir dir;
  std::string missing = dir.file("nope.json");
  try {
    TraceReader r(missing);
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()) == missing + ": cannot open file: No such file or directory");
  }
  try {
    TraceReader r(dir.path());
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()) == dir.path() + ": is a directory; expected a trace file (.json)");
  }
}

TEST_CASE("trace errors: the shift-add pair's INT8 operand is range-checked on its own side", "[unit]") {
  // Two records, one of each orientation (PoT4 A with INT8 B, and the reverse), written by the
  // training core's writer; then one INT8 byte turned into -128 (checksum updated to match).
  TempDir dir;
  const std::string path = dir.file("s.json"), bin = dir.file("s.bin");
  const std::vector<Pot4Code> codes{0x7, 0xF, 0x1, 0x0, 0x3, 0xA};  // 64, -64, 1, 0, 4, -2
  const std::vector<std::int8_t> ints{127, -127, 5, 0, -3, 100};
  {
    TraceWriter w(path, "test");
    for (int o = 0; o < 2; ++o) {
      const bool a_pot4 = o == 0;
      TraceRecord r;
      r.layer = "fc";
      r.phase = a_pot4 ? Phase::kFwd : Phase::kBwdData;
      r.shape = GemmShape{2, 3, 2};  // A 2x2, B 2x3: A takes the first 4 elements
      r.a.format = a_pot4 ? NumFormat::kPot4 : NumFormat::kInt8;
      r.b.format = a_pot4 ? NumFormat::kInt8 : NumFormat::kPot4;
      r.a.scale = r.b.scale = 0.25f;
      std::vector<std::int8_t> a(4), b(6);
      for (std::size_t i = 0; i < 4; ++i) a[i] = a_pot4 ? static_cast<std::int8_t>(pot4_int(codes[i])) : ints[i];
      for (std::size_t i = 0; i < 6; ++i) b[i] = a_pot4 ? ints[i] : static_cast<std::int8_t>(pot4_int(codes[i]));
      std::vector<std::int64_t> c(6);
      gemm_int8_ref(r.shape, a.data(), b.data(), r.accumulator, c.data());
      const std::vector<Pot4Code> p(codes.begin(), codes.begin() + (a_pot4 ? 4 : 6));
      const std::vector<std::int8_t> i8(ints.begin(), ints.begin() + (a_pot4 ? 6 : 4));
      w.add_pot4_int8(r, p.data(), i8.data(), c.data());
    }
    w.commit();
  }
  {
    TraceReader reader(path);
    REQUIRE(reader.trace().records.size() == 2);
    for (std::size_t i = 0; i < 2; ++i) {
      const TraceRecord& r = reader.trace().records[i];
      CHECK(r.shift_pair());
      CHECK(r.format_name() == "pot4+int8");
      CHECK(check_record_result(r, reader.read_payload(i)).empty());  // the integer reference, exact
    }
  }
  const json meta = json::parse(test::slurp(path));
  auto corrupt = [&](std::size_t rec, const char* which) {
    json j = meta;
    std::string bytes = test::slurp(bin);
    const std::uint64_t off = j["records"][rec]["payload"][which]["offset"].get<std::uint64_t>();
    const std::uint64_t n = j["records"][rec]["payload"][which]["bytes"].get<std::uint64_t>();
    bytes[off] = static_cast<char>(0x80);  // -128
    j["records"][rec]["payload"][which]["crc32"] = fmt::format("{:08x}", crc32(bytes.data() + off, n));
    test::spit(bin, bytes);
    test::spit(path, j.dump(1));
    std::string error;
    try {
      TraceReader reader(path);
      reader.read_payload(rec);
    } catch (const InputError& e) {
      error = e.what();
    }
    return error;
  };
  const std::string original = test::slurp(bin);
  CHECK(corrupt(0, "b") == path + ": records[0].payload.b: element 0 is -128; int8 operands are symmetric in "
                                  "[-127, 127]");
  test::spit(bin, original);
  CHECK(corrupt(1, "a") == path + ": records[1].payload.a: element 0 is -128; int8 operands are symmetric in "
                                  "[-127, 127]");
  test::spit(bin, original);
  // The PoT4 side takes any code: 0x80 is the codes 0 (low nibble) and 8 (a negative zero).
  CHECK(corrupt(0, "a").empty());
}
