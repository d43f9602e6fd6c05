// Malformed inputs of every format a user writes, each pinned to its one-line message (more are
// in test_trace_errors.cpp, test_energy.cpp and the CLI tests). Inputs found by fuzzing are in
// tests/fuzz/regressions.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/mfsim/sweep_state.h"
#include "common/error.h"
#include "common/json_fields.h"
#include "training/dataset.h"
#include "sim/params.h"
#include "tests/test_util.h"
#include "traces/networks.h"

using namespace mfsim;

namespace {

template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

// Each (input, message) case: parsing the input throws InputError with exactly the message.
template <class Parse>
void check_messages(const std::vector<std::pair<std::string, std::string>>& cases, Parse parse) {
  for (const auto& c : cases) {
    INFO(c.first.substr(0, 80));
    CHECK(error_of([&] { parse(c.first); }) == c.second);
  }
}

std::string bytes(const char* b64);

}  // namespace

TEST_CASE("malformed hardware configs and --set values", "[unit]") {
  const std::vector<std::pair<std::string, std::string>> configs = {
      {"[1,2]", "cfg.json: document: expected an object of parameters"},  // config: not an object
      {"{\"array\":{\"rows\":0}}", "cfg.json: array.rows: expected an integer in [1, 4096], got \"0\""},  // config: rows 0
      {"{\"array.rows\":\"8\"}", "cfg.json: array.rows: expected an integer in [1, 4096], got \"8\""},  // config: rows as string
      {"{\"array\":{\"kind\":\"int16\"}}", "cfg.json: array.kind: expected " + pe_type_names() + ", got \"int16\""},  // config: unknown kind
      {"{\"nope\":1}", "cfg.json: unknown parameter \"nope\"; see 'mfsim simulate --list-params'"},  // config: unknown parameter
      {"{\"pe\":{\"zero_gating\":\"yes\"}}", "cfg.json: pe.zero_gating: expected true|false, got \"yes\""},  // config: bool as string
      {"{\"dram\":{\"bandwidth\":1e9}}", "cfg.json: dram.bandwidth: expected a number in [0.001, 1000000], got \"1000000000.0\""},  // config: bandwidth out of range
      {"{\"map\":{\"tiles\":\"8x8\"}}", "cfg.json: map.tiles: expected auto or MtxNtxKt:ORDER, got \"8x8\""},  // config: tiles without order
      {"{\"map\":{\"tiles\":\"0x8x8:mnk\"}}", "cfg.json: map.tiles: expected auto or MtxNtxKt:ORDER, got \"0x8x8:mnk\""},  // config: zero tile
      {"{\"map\":{\"tiles\":\"8x8x8:mnkk\"}}", "cfg.json: map.tiles: expected auto or MtxNtxKt:ORDER, got \"8x8x8:mnkk\""},  // config: bad order
      {"{\"array\":{\"rows\":[1]}}", "cfg.json: array.rows: expected an integer in [1, 4096], got [1]"},  // config: array value
      {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", "cfg.json: not valid JSON: line 1, column 129: nested deeper than 128 levels"},  // config: nesting too deep
      {"{\"clock\":{\"mhz\":1e400}}", "cfg.json: not valid JSON: number overflow parsing '1e400'"},  // config: number overflow
      {"{\"array\":{\"rows\":4}} x", "cfg.json: not valid JSON: line 1, column 22: syntax error while parsing value - invalid literal"},  // config: trailing garbage
      {"{\"array\":{\"overlap\":2}}", "cfg.json: array.overlap: expected true|false, got \"2\""},  // config: overlap not bool
      {"{\"pe\":{\"acc_bits\":65}}", "cfg.json: pe.acc_bits: expected an integer in [2, 64], got \"65\""},  // config: acc_bits too wide
      {"{\"pe\":{\"acc_bits\":16,\"acc_bits\":32}}", "cfg.json: pe.acc_bits: key given twice in one object"},  // config: duplicate key
      {"{\"pe\":{\"acc_bits\":16},\"pe\":{\"zero_gating\":false}}", "cfg.json: pe: key given twice in one object"},  // config: duplicate object
      {"{\"pe\":{\"acc_bits\":16},\"pe.acc_bits\":32}", "cfg.json: pe.acc_bits: given twice (as a nested and a dotted key)"},  // config: nested and dotted
      {"{\"array.rows\":8,\"array.rows\":8}", "cfg.json: array.rows: key given twice in one object"},  // config: the same value twice
  };
  check_messages(configs, [](const std::string& text) {
    ParamSet p;
    p.load_config_text(text, "cfg.json");
  });
  const std::vector<std::pair<std::string, std::string>> sets = {
      {"array.rows", "--set array.rows: expected NAME=VALUE"},  // set: no equals
      {"=5", "--set =5: expected NAME=VALUE"},  // set: empty name
      {"array.rows=8.5", "--set array.rows=8.5: array.rows: expected an integer in [1, 4096], got \"8.5\""},  // set: fractional rows
      {"conv.im2col=host", "--set conv.im2col=host: conv.im2col: expected onchip|dram, got \"host\""},  // set: unknown im2col
      {"map.objective=power", "--set map.objective=power: map.objective: expected dram|cycles|energy|edp, got \"power\""},  // set: unknown objective
      {"map.policy=greedy", "--set map.policy=greedy: map.policy: expected search|fixed, got \"greedy\""},  // set: unknown policy
      {"map.tiles=axbxc:mnk", "--set map.tiles=axbxc:mnk: map.tiles: expected auto or MtxNtxKt:ORDER, got \"axbxc:mnk\""},  // set: tiles letters
      {"pe.mac_latency=-1", "--set pe.mac_latency=-1: pe.mac_latency: expected an integer in [1, 64], got \"-1\""},  // set: negative latency
  };
  check_messages(sets, [](const std::string& assignment) {
    ParamSet p;
    p.set_assignment(assignment);
  });
  // A name --set twice (even to the same value) is an error naming it; a --set over a config
  // value or a shorthand is not.
  ParamSet p;
  p.load_config_text("{\"array\":{\"rows\":4}}", "cfg.json");
  p.set("array.cols", "8", "--cols");
  p.set_assignment("array.rows=8");
  p.set_assignment("array.cols=16");
  CHECK(p.get("array.rows") == "8");
  CHECK(error_of([&] { p.set_assignment("array.rows=8"); }) == "--set array.rows=8: array.rows is already set by --set array.rows=8");
  CHECK(error_of([&] { p.set_assignment("array.cols=4"); }) == "--set array.cols=4: array.cols is already set by --set array.cols=16");
  CHECK(p.get("array.cols") == "16");
}

TEST_CASE("a key given twice in any JSON document is an error naming its path", "[unit]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"a\":1,\"a\":1}", "doc.json: a: key given twice in one object"},
      {"{\"records\":[{\"K\":1},{\"M\":2,\"K\":3,\"K\":4}]}", "doc.json: records[1].K: key given twice in one object"},
      {"[[1,2],[3,{\"x\":{\"y\":[0,{\"z\":1,\"z\":2}]}}]]", "doc.json: [1][1].x.y[1].z: key given twice in one object"},
  };
  check_messages(cases, [](const std::string& text) { parse_json_document(text, "doc.json"); });
  // The same key in different objects is fine.
  CHECK(parse_json_document("{\"a\":{\"k\":1},\"b\":{\"k\":2},\"c\":[{\"k\":3},{\"k\":4}]}", "doc.json")["c"][1]["k"] == 4);
}

TEST_CASE("sweep resume state: a point is reused only with its own identity, and hostile files are never trusted", "[unit]") {
  const std::string id = nlohmann::json{{"mode", "timing"}, {"params", {{"array.rows", 8}}}}.dump();
  const std::string report = "{\"total\": {}}";
  auto meta = [](const std::string& identity) {
    return "{\"status\": \"ok\", \"wall_seconds\": 0.5, \"identity\": " + identity + "}";
  };
  double wall = 0;
  CHECK(cli::finished_point(meta(id), report, id, &wall));
  CHECK(wall == 0.5);
  // Another grid value, key order as written by hand, no identity, damaged files.
  CHECK_FALSE(cli::finished_point(meta("{\"mode\":\"timing\",\"params\":{\"array.rows\":128}}"), report, id, &wall));
  CHECK(cli::finished_point(meta("{\"params\":{\"array.rows\":8},\"mode\":\"timing\"}"), report, id, &wall));
  CHECK_FALSE(cli::finished_point("{\"status\": \"ok\", \"wall_seconds\": 0.5}", report, id, &wall));
  CHECK_FALSE(cli::finished_point(meta("\"x\""), report, id, &wall));
  CHECK_FALSE(cli::finished_point(meta(id), "{\"total\": {", id, &wall));
  CHECK_FALSE(cli::finished_point(meta(id).substr(0, 30), report, id, &wall));
  CHECK_FALSE(cli::finished_point(meta(id) + meta(id), report, id, &wall));
  CHECK_FALSE(cli::finished_point("{\"status\": \"ok\", \"status\": \"ok\", \"wall_seconds\": 0.5, \"identity\": " + id + "}",
                                  report, id, &wall));
  // The sweep definition: the first difference, in words; anything unreadable is a difference.
  const nlohmann::json cur = {{"mfsim_version", "1.0"},
                              {"trace", {{"path", "/t.json"}, {"hash", "h1"}}},
                              {"mode", "timing"},
                              {"energy_table", {{"name", "paper"}, {"hash", "e1"}}}};
  CHECK(cli::definition_difference(cur.dump(), cur).empty());
  auto with = [&](const nlohmann::json::json_pointer& at, const nlohmann::json& v) {
    nlohmann::json d = cur;
    d[at] = v;
    return cli::definition_difference(d.dump(), cur);
  };
  CHECK(with("/trace/hash"_json_pointer, "h2") == "of /t.json as it was before it changed");
  CHECK(with("/trace"_json_pointer, {{"path", "/u.json"}, {"hash", "h2"}}) == "of another trace (/u.json)");
  CHECK(with("/mode"_json_pointer, "value") == "in --mode value");
  CHECK(with("/mfsim_version"_json_pointer, "0.9") == "of mfsim 0.9");
  CHECK(with("/energy_table/name"_json_pointer, "x.json") == "");  // the same content under another name
  CHECK(with("/energy_table"_json_pointer, {{"name", "aladdin45"}, {"hash", "e2"}}) == "simulated with energy table aladdin45");
  CHECK(with("/mode"_json_pointer, 3) == "with an unreadable sweep.json (not a sweep definition)");
  CHECK(with("/mode"_json_pointer, "line\nbreak") == "in --mode line?break");
  CHECK(cli::definition_difference("", cur) == "with an unreadable sweep.json (empty file; expected a JSON document)");
  CHECK(cli::definition_difference("[1]", cur) == "with an unreadable sweep.json (not a sweep definition)");
  CHECK(cli::definition_difference(cur.dump().substr(0, 20), cur).rfind("with an unreadable sweep.json (not valid JSON: ", 0) == 0);
  // Content hashes: equal for equal bytes, different for one changed or added byte.
  CHECK(cli::content_hash("abc") == cli::content_hash(std::string("abc")));
  CHECK(cli::content_hash("abc") != cli::content_hash("abd"));
  CHECK(cli::content_hash("abc") != cli::content_hash("abc\n"));
  CHECK(cli::content_hash("") == "fnv1a64:cbf29ce484222325,crc32:00000000,bytes:0");
}

TEST_CASE("malformed SCALE-Sim topology files", "[unit]") {
  const std::vector<std::pair<std::string, std::string>> conv = {
      {"Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n", "topo.csv: no layers (a header line, then one row per layer)"},  // topology: header only
      {"h\nc1, 5, 5,\n", "topo.csv: line 2: expected 8 or 9 fields (Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides), got 3"},  // topology: three fields
      {"h\nc1, -5, 5, 3, 3, 1, 1, 1,\n", "topo.csv: line 2: IFMAP Height: expected a positive integer, got \"-5\""},  // topology: negative height
      {"h\nc1, 5, 5, 7, 3, 1, 1, 1,\n", "topo.csv: line 2: filter 7x3 is larger than the IFMAP 5x5"},  // topology: filter larger
      {"h\nc1, 70000, 70000, 65536, 65536, 65536, 1, 1,\n", "topo.csv: line 2: the layer's K (filter height x width x channels) passes 2^31 - 1"},  // topology: K overflow
      {"h\n, 5, 5, 3, 3, 1, 1, 1,\n", "topo.csv: line 2: empty layer name"},  // topology: empty name
      {"h\nc1, 5.5, 5, 3, 3, 1, 1, 1,\n", "topo.csv: line 2: IFMAP Height: expected a positive integer, got \"5.5\""},  // topology: fractional
      {"h\nc1, 5, 5, 3, 3, 1, 1, 0,\n", "topo.csv: line 2: Strides: expected a positive integer, got \"0\""},  // topology: zero stride
      {"h\nc1, 5, 5, 3, 3, 1, 1, 1, 1, 1,\n", "topo.csv: line 2: expected 8 or 9 fields (Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides), got 10"},  // topology: ten fields
  };
  check_messages(conv, [](const std::string& text) { parse_scalesim_topology(text, "topo.csv", false, 1); });
  const std::vector<std::pair<std::string, std::string>> gemm = {
      {"h\nfc, 1, 2, 3, 4,\n", "topo.csv: line 2: expected 4 fields (Layer name, M, N, K), got 5"},  // topology gemm: five fields
      {"h\nfc, 2147483647, 2, 3,\n", "topo.csv: line 2: the layer's M x batch passes 2^31 - 1"},  // topology gemm: M x batch overflow
      {"h\nfc, x, 2, 3,\n", "topo.csv: line 2: M: expected a positive integer, got \"x\""},  // topology gemm: not a number
  };
  check_messages(gemm, [](const std::string& text) { parse_scalesim_topology(text, "topo.csv", true, 2); });
}

TEST_CASE("malformed IDX data files", "[unit]") {
  struct Case {
    const char *images, *labels, *message;  // base64 images and labels files; the message with DIR
  };
  const Case cases[] = {
      {"AAA=", "AAAIAQAAAAIBAg==",
       "DIR/t10k-images-idx3-ubyte: not an IDX file (shorter than its header)"},  // idx: shorter than header
      {"AAAJAwAAAAIAAAACAAAAAgAAAAAAAAAA", "AAAIAQAAAAIBAg==",
       "DIR/t10k-images-idx3-ubyte: not an IDX file of unsigned bytes (magic 00000903)"},  // idx: wrong magic
      {"AAAIAgAAAAIAAAACAAAAAA==", "AAAIAQAAAAIBAg==",
       "DIR/t10k-images-idx3-ubyte: expected an IDX file with 3 dimensions, got 2"},  // idx: wrong dimension count
      {"AAAIAwAA", "AAAIAQAAAAIBAg==",
       "DIR/t10k-images-idx3-ubyte: truncated IDX header"},  // idx: truncated header
      {"AAAIAwAAAAIAAAAAAAAAAg==", "AAAIAQAAAAIBAg==",
       "DIR/t10k-images-idx3-ubyte: dimension 1 is 0"},  // idx: zero dimension
      {"AAAIAwABAAAAAQAAAAAAAg==", "AAAIAQAAAAIBAg==",
       "DIR/t10k-images-idx3-ubyte: the header declares more than 2147483648 data bytes"},  // idx: more than 2 GiB declared
      {"AAAIAwAAAAIAAAACAAAAAgAAAAAA", "AAAIAQAAAAIBAg==",
       "DIR/t10k-images-idx3-ubyte: expected 8 data bytes after the header, got 5 (truncated or corrupt file)"},  // idx: truncated data
      {"AAAIAwAAAAIAAAACAAAAAgAAAAAAAAAAAA==", "AAAIAQAAAAIBAg==",
       "DIR/t10k-images-idx3-ubyte: expected 8 data bytes after the header, found more (truncated or corrupt file)"},  // idx: trailing data
      {"H4sIAAWjC2sC/2Ng4GBmYGBgQsJgAADJY3h4eHh4eA==", "AAAIAQAAAAIBAg==",
       "DIR/t10k-images-idx3-ubyte: corrupt data file (incorrect data check)"},  // idx: corrupt gzip
      {"AAAIAwAAAAIAAAACAAAAAgAAAAAAAAAA", "AAAIAQAAAAMBAgM=",
       "DIR/t10k-labels-idx1-ubyte: 3 labels for 2 images in DIR/t10k-images-idx3-ubyte"},  // idx: label count mismatch
      {"AAAIAwAAAAIAAAACAAAAAgAAAAAAAAAA", "AAAIAQAAAAIBDA==",
       "DIR/t10k-labels-idx1-ubyte: label 12 of example 1 is not in 0..9"},  // idx: label out of range
  };
  test::TempDir dir;
  for (const Case& c : cases) {
    INFO(c.message);
    test::spit(dir.file("t10k-images-idx3-ubyte"), bytes(c.images));
    test::spit(dir.file("t10k-labels-idx1-ubyte"), bytes(c.labels));
    std::string want = c.message;
    for (auto at = want.find("DIR"); at != std::string::npos; at = want.find("DIR")) want.replace(at, 3, dir.path());
    CHECK(error_of([&] { load_idx_dataset(dir.path(), false); }) == want);
  }
}

namespace {
std::string bytes(const char* b64) {
  static const std::string digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::uint32_t val = 0;
  int bits = -8;
  for (const char* p = b64; *p != 0 && *p != '='; ++p) {
    val = ((val << 6) | static_cast<std::uint32_t>(digits.find(*p))) & 0xFFFFFFu;  // 24 bits are enough
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return out;
}
}  // namespace

