// Output paths as users know them from cp, tar and compilers: an output that is an input of the
// run is refused before any work (device and inode compared, not names); character devices and
// FIFOs are written through; symbolic links are followed and kept; a replaced file keeps its
// permissions. Also: the VCD is checked before the simulation and never left half-written, and
// empty traces are refused.
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "tests/test_util.h"

using mfsim::test::run_mfsim;
using mfsim::test::TempDir;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// A copy of the example trace in `dir`: t.json and the payload it names, mlp-tiny.bin.
std::string copy_example(const TempDir& dir) {
  const std::string src = mfsim::test::example_trace();
  fs::copy_file(src, dir.file("t.json"));
  fs::copy_file(src.substr(0, src.size() - 5) + ".bin", dir.file("mlp-tiny.bin"));
  return dir.file("t.json");
}

// The report minus what legitimately differs between two runs (the command line, wall times).
json stable(json j) {
  j.erase("command");
  j.erase("performance");
  return j;
}

}  // namespace

TEST_CASE("outputs: an output that is an input is refused before any work, the input unchanged", "[smoke]") {
  TempDir dir;
  const std::string trace = copy_example(dir);
  const std::string before = mfsim::test::slurp(trace), bin_before = mfsim::test::slurp(dir.file("mlp-tiny.bin"));
  fs::create_symlink("t.json", dir.file("link-to-trace.json"));
  fs::create_hard_link(trace, dir.file("hard.json"));
  const struct {
    std::string args, error;
  } cases[] = {
      {fmt::format("simulate -q --trace {0} --report {0}", trace),
       fmt::format("{0}: is the same file as the input {0}; refusing to overwrite an input", trace)},
      {fmt::format("simulate -q --trace {} --report {}", trace, dir.file("mlp-tiny.bin")),
       fmt::format("{}: is the same file as the input {}; refusing to overwrite an input", dir.file("mlp-tiny.bin"),
                   dir.file("mlp-tiny.bin"))},
      {fmt::format("simulate -q --trace {} --report {}", trace, dir.file("link-to-trace.json")),
       fmt::format("{}: is the same file as the input {}; refusing to overwrite an input",
                   dir.file("link-to-trace.json"), trace)},
      {fmt::format("simulate -q --trace {} --report {}", dir.file("hard.json"), trace),
       fmt::format("{}: is the same file as the input {}; refusing to overwrite an input", trace, dir.file("hard.json"))},
      {fmt::format("simulate -q --trace {} --report {} --energy-csv {}", trace, dir.file("r.json"), trace),
       fmt::format("{0}: is the same file as the input {0}; refusing to overwrite an input", trace)},
      {fmt::format("compare -q --trace {0} --report {0}", trace),
       fmt::format("{0}: is the same file as the input {0}; refusing to overwrite an input", trace)},
      {fmt::format("compare -q --trace {} --report {} --html {}", trace, dir.file("c.json"), trace),
       fmt::format("{0}: is the same file as the input {0}; refusing to overwrite an input", trace)},
      {fmt::format("simulate -q --trace {} --report {} --vcd {}", trace, dir.file("r.json"), dir.file("link.vcd")), ""},
  };
  fs::create_symlink("t.json", dir.file("link.vcd"));
  for (const auto& c : cases) {
    INFO(c.args);
    auto r = run_mfsim(c.args);
    CHECK(r.exit_code == 2);
    if (!c.error.empty()) CHECK(r.err == "mfsim: error: " + c.error + "\n");
    CHECK(r.err.find("refusing to overwrite an input") != std::string::npos);
    CHECK(mfsim::test::slurp(trace) == before);
    CHECK(mfsim::test::slurp(dir.file("mlp-tiny.bin")) == bin_before);
  }
  CHECK_FALSE(fs::exists(dir.file("r.json")));
  CHECK_FALSE(fs::exists(dir.file("c.json")));
  // A SCALE-Sim topology written over by its own trace.
  const std::string topo = dir.file("g.csv");
  mfsim::test::spit(topo, "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
                          "Strides,\nc1, 8, 8, 3, 3, 4, 8, 1,\n");
  const std::string topo_before = mfsim::test::slurp(topo);
  auto t = run_mfsim(fmt::format("trace --scalesim-topology {0} --batch 1 -o {0}", topo));
  CHECK(t.exit_code == 2);
  CHECK(t.err == fmt::format("mfsim: error: {0}: is the same file as the input {0}; refusing to overwrite an input\n", topo));
  CHECK(mfsim::test::slurp(topo) == topo_before);
  // Two outputs that are the same file.
  auto two = run_mfsim(fmt::format("simulate -q --trace {} --report {} --energy-csv {}", trace, dir.file("o.json"),
                                   dir.file("o.json")));
  CHECK(two.exit_code == 2);
  CHECK(two.err == fmt::format("mfsim: error: {0}: is the same file as the output {0}; name each output once\n",
                               dir.file("o.json")));
  CHECK_FALSE(fs::exists(dir.file("o.json")));
}

TEST_CASE("outputs: devices and FIFOs are written through, symbolic links followed and kept, modes kept", "[smoke]") {
  TempDir dir;
  const std::string trace = copy_example(dir);
  auto plain = run_mfsim(fmt::format("simulate -q --trace {} --report {}", trace, dir.file("plain.json")));
  REQUIRE(plain.exit_code == 0);
  const json expected = stable(json::parse(mfsim::test::slurp(dir.file("plain.json"))));
  // /dev/null stays the character device it is (the habit `--report /dev/null`).
  auto null = run_mfsim(fmt::format("simulate -q --trace {} --report /dev/null --energy-csv /dev/null", trace));
  CHECK(null.exit_code == 0);
  struct stat st {};
  REQUIRE(::stat("/dev/null", &st) == 0);
  CHECK(S_ISCHR(st.st_mode));
  // A FIFO: the report arrives through it, whole, and the FIFO stays a FIFO.
  const std::string fifo = dir.file("pipe");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  std::string received;
  std::thread reader([&] { received = mfsim::test::slurp(fifo); });
  auto through = run_mfsim(fmt::format("simulate -q --trace {} --report {}", trace, fifo));
  reader.join();
  CHECK(through.exit_code == 0);
  CHECK(stable(json::parse(received)) == expected);
  REQUIRE(::lstat(fifo.c_str(), &st) == 0);
  CHECK(S_ISFIFO(st.st_mode));
  // A symbolic link: the target gets the report, the link stays a link. A dangling link's
  // target is created.
  mfsim::test::spit(dir.file("target.json"), "old");
  fs::create_symlink("target.json", dir.file("link.json"));
  fs::create_symlink("new-target.json", dir.file("dangling.json"));
  for (const char* name : {"link.json", "dangling.json"}) {
    auto r = run_mfsim(fmt::format("simulate -q --trace {} --report {}", trace, dir.file(name)));
    CHECK(r.exit_code == 0);
    CHECK(fs::is_symlink(dir.file(name)));
  }
  CHECK(stable(json::parse(mfsim::test::slurp(dir.file("target.json")))) == expected);
  CHECK(stable(json::parse(mfsim::test::slurp(dir.file("new-target.json")))) == expected);
  // A file replaced keeps its permissions.
  REQUIRE(::chmod(dir.file("plain.json").c_str(), 0640) == 0);
  auto again = run_mfsim(fmt::format("simulate -q --trace {} --report {}", trace, dir.file("plain.json")));
  CHECK(again.exit_code == 0);
  REQUIRE(::stat(dir.file("plain.json").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0640);
  // No temporary file is left anywhere.
  for (const auto& e : fs::directory_iterator(dir.path())) {
    CHECK(e.path().filename().string().find(".tmp.") == std::string::npos);
  }
}

TEST_CASE("outputs: the VCD is checked before the simulation and never left cut short", "[smoke]") {
  TempDir dir;
  const std::string trace = copy_example(dir), rep = dir.file("r.json");
  // A place no file can be created in, even as root: one line, exit 2, nothing left behind.
  auto proc = run_mfsim(fmt::format("simulate -q --trace {} --report {} --vcd /proc/mfsim-x.vcd", trace, rep));
  CHECK(proc.exit_code == 2);
  CHECK(proc.err.rfind("mfsim: error: /proc/mfsim-x.vcd: cannot create file: ", 0) == 0);
  CHECK(std::count(proc.err.begin(), proc.err.end(), '\n') == 1);
  CHECK_FALSE(fs::exists(rep));
  // Timing mode and shape-only traces make no waveform: said, not ignored.
  auto timing = run_mfsim(fmt::format("simulate -q --trace {} --report {} --mode timing --vcd {}", trace, rep,
                                      dir.file("w.vcd")));
  CHECK(timing.exit_code == 2);
  CHECK(timing.err ==
        "mfsim: error: simulate: --vcd: timing mode simulates no register, so there is no waveform; use --mode value or "
        "auto\n");
  const std::string shapes = dir.file("shapes.json");
  REQUIRE(run_mfsim(fmt::format("trace --network resnet18 --image 32x32 --batch 1 -o {}", shapes)).exit_code == 0);
  auto shape_only = run_mfsim(fmt::format("simulate -q --trace {} --report {} --vcd {}", shapes, rep, dir.file("w.vcd")));
  CHECK(shape_only.exit_code == 2);
  CHECK(shape_only.err == fmt::format("mfsim: error: {}: --vcd: no GEMM of this trace runs in value mode on the mfmac "
                                      "array (shape-only records, or operands it does not hold), so there is no "
                                      "waveform\n",
                                      shapes));
  CHECK_FALSE(fs::exists(dir.file("w.vcd")));
  // A complete waveform ends with its final time stamp; one cut short by a file-size limit is
  // removed, with a message, and the report is not written.
  auto ok = run_mfsim(fmt::format("simulate -q --trace {} --report {} --vcd {}", trace, rep, dir.file("w.vcd")));
  REQUIRE(ok.exit_code == 0);
  const auto vcd_size = fs::file_size(dir.file("w.vcd"));
  REQUIRE(vcd_size > 8192);
  fs::remove(rep);
  const std::string cmd = fmt::format("ulimit -f 4; {} simulate -q --trace {} --report {} --vcd {} 2>{}", MFSIM_BINARY,
                                      trace, rep, dir.file("cut.vcd"), dir.file("err"));
  const int status = std::system(fmt::format("sh -c '{}'", cmd).c_str());
  CHECK(WEXITSTATUS(status) == 1);
  CHECK(mfsim::test::without_sanitizer_stack_notes(mfsim::test::slurp(dir.file("err"))) ==
        fmt::format("mfsim: failure: {}: write failed: the waveform was cut short; removed\n", dir.file("cut.vcd")));
  CHECK_FALSE(fs::exists(dir.file("cut.vcd")));
  CHECK_FALSE(fs::exists(rep));
  for (const auto& e : fs::directory_iterator(dir.path())) {
    CHECK(e.path().filename().string().find(".tmp.") == std::string::npos);
  }
}

TEST_CASE("outputs: empty traces are refused, not reported as 0% savings", "[smoke]") {
  TempDir dir;
  const std::string empty = dir.file("empty.json");
  mfsim::test::spit(empty, "{\"format\": \"mfsim-trace\", \"version\": 1, \"generator\": \"test\", \"description\": \"\", "
                           "\"records\": []}\n");
  auto s = run_mfsim(fmt::format("simulate -q --trace {} --report {}", empty, dir.file("r.json")));
  CHECK(s.exit_code == 2);
  CHECK(s.err == fmt::format("mfsim: error: {}: records: the trace has no GEMMs; nothing to simulate\n", empty));
  auto c = run_mfsim(fmt::format("compare -q --trace {} --report {}", empty, dir.file("c.json")));
  CHECK(c.exit_code == 2);
  CHECK(c.err == fmt::format("mfsim: error: {}: records: the trace has no GEMMs; nothing to compare\n", empty));
  auto sw = run_mfsim(fmt::format("sweep -q --trace {} --mode timing --arrays mfmac --out {}", empty, dir.file("sw")));
  CHECK(sw.exit_code == 2);
  CHECK(sw.err == fmt::format("mfsim: error: {}: records: the trace has no GEMMs; nothing to sweep\n", empty));
  CHECK_FALSE(fs::exists(dir.file("sw")));
  auto t = run_mfsim(fmt::format("trace --network resnet18 --batch 1 --phases \"\" -o {}", dir.file("t.json")));
  CHECK(t.exit_code == 2);
  CHECK(t.err == "mfsim: error: trace: --phases: empty value; see 'mfsim trace --help'\n");
  auto t2 = run_mfsim(fmt::format("trace --network resnet18 --batch 1 --phases , -o {}", dir.file("t.json")));
  CHECK(t2.exit_code == 2);
  CHECK(t2.err == "mfsim: error: trace: --phases: no phase given; expected one or more of fwd,bwd_data,bwd_weight\n");
  auto e = run_mfsim(fmt::format("simulate --trace {} --report \"\"", empty));
  CHECK(e.exit_code == 2);
  CHECK(e.err == "mfsim: error: simulate: --report: empty value; see 'mfsim simulate --help'\n");
  CHECK_FALSE(fs::exists(dir.file("r.json")));
  CHECK_FALSE(fs::exists(dir.file("c.json")));
  CHECK_FALSE(fs::exists(dir.file("t.json")));
}

TEST_CASE("outputs: sweep's results.csv carries every energy at full precision", "[smoke]") {
  TempDir dir;
  auto r = run_mfsim(fmt::format("sweep -q --trace {} --mode timing --arrays mfmac,int8 --rows 4,8 --out {}",
                                 mfsim::test::example_trace(), dir.file("sw")));
  REQUIRE(r.exit_code == 0);
  const json j = json::parse(mfsim::test::slurp(dir.file("sw/results.json")));
  std::stringstream csv(mfsim::test::slurp(dir.file("sw/results.csv")));
  std::string header, line;
  std::getline(csv, header);
  // Columns: id, the swept parameters, table, cycles, stall, utilization, energy, per MAC, ...
  std::vector<std::string> names;
  for (std::stringstream hs(header); std::getline(hs, line, ',');) names.push_back(line);
  const auto col = [&](const std::string& n) {
    return static_cast<std::size_t>(std::find(names.begin(), names.end(), n) - names.begin());
  };
  REQUIRE(col("energy_pj_total") < names.size());
  std::size_t rows = 0;
  for (const auto& p : j["points"]) {
    REQUIRE(std::getline(csv, line));
    std::vector<std::string> f;
    for (std::stringstream ls(line); std::getline(ls, header, ',');) f.push_back(header);
    const json& e = p["energy_pj"][f[col("energy_table")]];
    CHECK(std::stod(f[col("energy_pj_total")]) == e["total"].get<double>());
    CHECK(std::stod(f[col("energy_pj_per_mac")]) == e["per_mac"].get<double>());
    ++rows;
  }
  CHECK(rows == 4);
}
