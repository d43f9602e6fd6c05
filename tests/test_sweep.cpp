// mfsim sweep end to end: grid order, results, resume, interruption, failures, timeouts, MPI.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "models/gemm_ref.h"
#include "tests/test_util.h"
#include "traces/trace_writer.h"

using namespace mfsim;
using mfsim::test::run_mfsim;
using mfsim::test::TempDir;
using nlohmann::json;

namespace {

const std::string kGrid = "--arrays mfmac,int8 --rows 4,7 --cols 5 --dataflow os,ws --set pe.acc_bits=10,32";

// `s` with every occurrence of the directory `d` replaced by "DIR".
std::string strip(std::string s, const std::string& d) {
  for (auto p = s.find(d); p != std::string::npos; p = s.find(d)) s.replace(p, d.size(), "DIR");
  return s;
}

// results.csv without the wall_seconds column and with the output directory removed from
// error messages: what must not depend on how or where the sweep ran.
std::string stable_csv(const std::string& dir) {
  std::stringstream in(test::slurp(dir + "/results.csv"));
  std::string line, out;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::string cell;
    bool quoted = false;
    for (char c : line) {
      if (c == '"') quoted = !quoted;
      if (c == ',' && !quoted) {
        f.push_back(cell);
        cell.clear();
      } else {
        cell += c;
      }
    }
    f.push_back(cell);
    REQUIRE(f.size() == 21);
    f[18] = "";  // wall_seconds
    f[20] = strip(f[20], dir);
    for (const auto& x : f) out += x + "|";
    out += "\n";
  }
  return out;
}

// A trace of one 256x256x256 PoT4 GEMM with operands: about a second of value mode on a 1x1 array.
std::string slow_trace(const TempDir& dir) {
  const std::string path = dir.file("slow.json");
  TraceRecord r;
  r.layer = "big";
  r.shape = GemmShape{256, 256, 256};
  std::vector<Pot4Code> a(256 * 256), b(256 * 256);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<Pot4Code>((i * 7 + 3) % 16);
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<Pot4Code>((i * 5 + 1) % 16);
  std::vector<std::int64_t> c(256 * 256);
  gemm_pot4_ref(r.shape, a.data(), b.data(), r.accumulator, c.data());
  TraceWriter w(path, "test");
  w.add_pot4(r, a.data(), b.data(), c.data());
  w.commit();
  return path;
}

}  // namespace

TEST_CASE("sweep: a stopped sweep stops its children and leaves no temporary files", "[smoke]") {
  TempDir dir;
  const std::string trace = slow_trace(dir), out = dir.file("s");
  for (const char* sig : {"TERM", "INT"}) {
    INFO("SIG" << sig);
    // The sweep runs in the background; the signal comes while two points are simulating.
    const std::string cmd = fmt::format(
        "{} sweep -q --trace {} --arrays mfmac --rows 1,1 --cols 1 -j 2 --out {} & pid=$!; sleep 1; "
        "kill -{} $pid; wait $pid; echo $? > {}",
        MFSIM_BINARY, trace, out, sig, dir.file("rc"));
    REQUIRE(std::system(cmd.c_str()) == 0);
    const int rc = std::stoi(test::slurp(dir.file("rc")));
    CHECK(rc == (std::string(sig) == "TERM" ? 143 : 130));
    // No simulate child of this sweep is left running.
    CHECK(std::system(fmt::format("pgrep -f '[s]imulate -q --trace {}' > /dev/null", trace).c_str()) != 0);
    // No temporary file is left, and --resume finishes the sweep.
    for (const auto& e : std::filesystem::directory_iterator(out + "/points")) {
      CHECK(e.path().filename().string().find(".tmp.") == std::string::npos);
    }
    auto r = run_mfsim(fmt::format("sweep -q --resume --trace {} --arrays mfmac --rows 1,1 --cols 1 -j 2 --out {}",
                                   trace, out));
    CHECK(r.exit_code == 0);
    CHECK(test::file_exists(out + "/results.csv"));
    std::filesystem::remove_all(out);
  }
}

TEST_CASE("sweep: grid order, results, failures recorded, resume without re-simulation", "[smoke]") {
  TempDir dir;
  const std::string out = dir.file("sw");
  auto r = run_mfsim(fmt::format("sweep -q --trace {} {} --energy-table paper -j 2 --out {}", test::example_trace(), kGrid, out));
  INFO(r.err);
  // Failed points make the sweep fail, each listed on one line: these are accumulator overflows,
  // verification failures (exit 3).
  REQUIRE(r.exit_code == 3);
  CHECK(r.err.rfind(fmt::format("mfsim: sweep: p00000 (array.kind=mfmac array.rows=4 array.cols=5 array.dataflow=os "
                                "pe.acc_bits=10): failed: {}: records[0] (fc1 fwd): mfmac array accumulator overflow",
                                test::example_trace()),
                    0) == 0);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 9);
  CHECK(r.err.find(fmt::format("(log: {}/points/p00014.log)\nmfsim: sweep: 8 of 16 points failed; results in {}/results.csv\n",
                               out, out)) != std::string::npos);
  json j = json::parse(test::slurp(out + "/results.json"));
  REQUIRE(j["points"].size() == 16);
  CHECK(j["points_failed"] == 8);  // a 10-bit accumulator overflows on this trace
  for (std::size_t i = 0; i < 16; ++i) {
    const json& p = j["points"][i];
    CHECK(p["point"] == fmt::format("p{:05d}", i));
    CHECK(p["status"] == (i % 2 == 0 ? "failed" : "ok"));  // pe.acc_bits varies fastest
    if (i % 2 == 0) CHECK(p["error"].get<std::string>().find("accumulator overflow") != std::string::npos);
  }
  CHECK(j["points"][5]["params"] == json({{"array.kind", "mfmac"}, {"array.rows", "7"}, {"array.cols", "5"},
                                          {"array.dataflow", "os"}, {"pe.acc_bits", "32"}}));
  // A point equals a direct simulation of the same configuration.
  auto single = run_mfsim(fmt::format("simulate -q --trace {} --array mfmac --rows 7 --cols 5 --dataflow os --report {}",
                                      test::example_trace(), dir.file("one.json")));
  REQUIRE(single.exit_code == 0);
  json one = json::parse(test::slurp(dir.file("one.json")));
  CHECK(j["points"][5]["report"]["total"]["cycles"] == one["total"]["cycles"]);
  CHECK(j["points"][5]["energy_pj"]["paper"]["total"] == one["energy_pj"]["total"]);
  const std::string first = stable_csv(out);

  // A second run without --resume refuses to overwrite.
  auto again = run_mfsim(fmt::format("sweep -q --trace {} {} --out {}", test::example_trace(), kGrid, out));
  CHECK(again.exit_code == 2);
  CHECK(again.err == "mfsim: error: --out: " + out + " already holds a sweep; pass --resume to continue it or choose "
                                                     "another directory\n");

  // --resume with one more energy table: no finished point is simulated again.
  auto t_before = std::filesystem::last_write_time(out + "/points/p00005.json");
  auto res = run_mfsim(fmt::format("sweep -q --resume --trace {} {} --energy-table paper,aladdin45 -j 2 --out {}",
                                   test::example_trace(), kGrid, out));
  REQUIRE(res.exit_code == 3);
  CHECK(std::filesystem::last_write_time(out + "/points/p00005.json") == t_before);
  json k = json::parse(test::slurp(out + "/results.json"));
  CHECK(k["points"][5]["energy_pj"].contains("aladdin45"));
  CHECK(k["points"][5]["energy_pj"]["paper"] == j["points"][5]["energy_pj"]["paper"]);
  CHECK(k["points"][5]["wall_seconds"] == j["points"][5]["wall_seconds"]);

  // Interrupted: lose some finished points (as a kill between report and meta would), resume.
  std::filesystem::remove(out + "/points/p00003.meta.json");
  std::filesystem::remove(out + "/points/p00007.json");
  std::filesystem::remove(out + "/results.csv");
  auto resumed = run_mfsim(fmt::format("sweep -q --resume --trace {} {} --energy-table paper -j 2 --out {}", test::example_trace(),
                                       kGrid, out));
  REQUIRE(resumed.exit_code == 3);
  CHECK(stable_csv(out) == first);
}

TEST_CASE("sweep: killed at any moment and resumed gives the same results", "[smoke]") {
  TempDir dir;
  const std::string full = dir.file("full"), cut = dir.file("cut");
  REQUIRE(run_mfsim(fmt::format("sweep -q --trace {} {} -j 2 --out {}", test::example_trace(), kGrid, full)).exit_code == 3);
  // SIGKILL the whole sweep at ten random moments (children may be mid-write), resuming each
  // time; then let it finish.
  std::mt19937 rng(20261129);
  std::uniform_int_distribution<int> ms(20, 400);
  for (int kill = 0; kill < 10; ++kill) {
    const int delay = ms(rng);
    INFO("kill " << kill << " after " << delay << " ms");
    // --resume once the sweep has written its definition (a kill before it leaves nothing to resume).
    const bool resume = test::file_exists(cut + "/sweep.json");
    std::string cmd = fmt::format("timeout -s KILL {}.{:03d} {} sweep -q {} --trace {} {} -j 2 --out {} >/dev/null 2>&1",
                                  delay / 1000, delay % 1000, MFSIM_BINARY, resume ? "--resume" : "",
                                  test::example_trace(), kGrid, cut);
    CHECK(std::system(cmd.c_str()) != -1);
  }
  auto r = run_mfsim(fmt::format("sweep -q --resume --trace {} {} -j 2 --out {}", test::example_trace(), kGrid, cut));
  REQUIRE(r.exit_code == 3);  // the grid's 10-bit accumulators overflow
  std::string a = stable_csv(full), b = stable_csv(cut);
  // Error messages name the report path, which differs between the two directories.
  CHECK(strip(a, full) == strip(b, cut));
}

TEST_CASE("sweep: timeouts, bad grids", "[smoke]") {
  TempDir dir;
  auto t = run_mfsim(fmt::format("sweep -q --trace {} --arrays mfmac --rows 4 --cols 4 --point-timeout 0.000001 --out {}",
                                 test::example_trace(), dir.file("t")));
  REQUIRE(t.exit_code == 1);  // a timeout is a failure, neither bad input nor a mismatch
  CHECK(t.err == fmt::format("mfsim: sweep: p00000 (array.kind=mfmac array.rows=4 array.cols=4 array.dataflow=os): timeout: "
                             "killed after 1e-06 s (--point-timeout) (log: {0}/points/p00000.log)\n"
                             "mfsim: sweep: 1 of 1 points failed; results in {0}/results.csv\n",
                             dir.file("t")));
  json j = json::parse(test::slurp(dir.file("t") + "/results.json"));
  CHECK(j["points"][0]["status"] == "timeout");
  CHECK(j["points"][0]["error"] == "killed after 1e-06 s (--point-timeout)");
  auto bad = run_mfsim(fmt::format("sweep -q --trace {} --rows 0,8 --out {}", test::example_trace(), dir.file("b")));
  CHECK(bad.exit_code == 2);
  CHECK(bad.err == "mfsim: error: --rows: array.rows: expected an integer in [1, 4096], got \"0\"\n");
  bad = run_mfsim(fmt::format("sweep -q --trace {} --set dram.bw=1,2 --out {}", test::example_trace(), dir.file("b")));
  CHECK(bad.err == "mfsim: error: --set dram.bw: unknown parameter \"dram.bw\"; see 'mfsim simulate --list-params'\n");
  bad = run_mfsim(fmt::format("sweep -q --trace {} --set array.rows=4 --out {}", test::example_trace(), dir.file("b")));
  CHECK(bad.err == "mfsim: error: --set array.rows=4: array.rows is already swept\n");
}

TEST_CASE("sweep under mpirun -np 2 gives the single-process results", "[smoke]") {
  if (std::system("command -v mpirun >/dev/null 2>&1") != 0) {
    WARN("mpirun not installed: the MPI sweep is not tested");
    return;
  }
  TempDir dir;
  const std::string one = dir.file("one"), two = dir.file("two");
  REQUIRE(run_mfsim(fmt::format("sweep -q --trace {} {} -j 2 --out {}", test::example_trace(), kGrid, one)).exit_code == 3);
  std::string cmd = fmt::format(
      // Open MPI itself leaks at MPI_Finalize: LeakSanitizer must not fail sanitizer builds on it.
      "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_mpi_warn_on_fork=0 ASAN_OPTIONS=detect_leaks=0 "
      "mpirun --oversubscribe -np 2 {} sweep -q --trace {} {} -j 1 --out {} > {} 2>&1",
      MFSIM_BINARY, test::example_trace(), kGrid, two, dir.file("mpi.log"));
  int rc = std::system(cmd.c_str());
  INFO(test::slurp(dir.file("mpi.log")));
  REQUIRE(WIFEXITED(rc));
  REQUIRE(WEXITSTATUS(rc) == 3);  // rank 0's exit code: the grid's 10-bit accumulators overflow
  json j = json::parse(test::slurp(two + "/results.json"));
  CHECK(j["mpi_ranks"] == 2);
  CHECK(strip(stable_csv(one), one) == strip(stable_csv(two), two));
}

TEST_CASE("plot_sweep.py draws the four plots of a sweep", "[smoke]") {
  if (std::system("/usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1") != 0) {
    WARN("python3-matplotlib not installed: the plots are not tested");
    return;
  }
  TempDir dir;
  const std::string out = dir.file("sw");
  REQUIRE(run_mfsim(fmt::format("sweep -q --trace {} --arrays mfmac,fp32 --rows 4,8 --cols 4,8 --dataflow os,ws -j 2 "
                                "--out {}",
                                test::example_trace(), out))
              .exit_code == 0);
  std::string cmd = fmt::format("{}/scripts/plot_sweep.py {} > {} 2>&1", test::source_dir(), out, dir.file("plot.log"));
  int rc = std::system(cmd.c_str());
  INFO(test::slurp(dir.file("plot.log")));
  REQUIRE(rc == 0);
  for (const char* name : {"energy_per_mac", "cycles_utilization", "edp_heatmap", "area_pareto"}) {
    for (const char* ext : {"png", "svg"}) {
      std::string f = fmt::format("{}/{}.{}", out, name, ext);
      CHECK(test::file_exists(f));
      CHECK(std::filesystem::file_size(f) > 1000);
    }
  }
  std::string bad = fmt::format("{}/scripts/plot_sweep.py {} > {} 2>&1", test::source_dir(), dir.file("none"),
                                dir.file("bad.log"));
  CHECK(std::system(bad.c_str()) != 0);
  CHECK(test::slurp(dir.file("bad.log")).rfind("plot_sweep: " + dir.file("none") + "/results.json:", 0) == 0);
}

TEST_CASE("sweep: a grid beyond a million points is one error before anything is created", "[smoke]") {
  TempDir dir;
  std::string rows = "4", cols = "4";
  for (int i = 0; i < 999; ++i) rows += ",4";
  for (int i = 0; i < 1000; ++i) cols += ",4";
  auto r = run_mfsim(fmt::format("sweep -q --trace {} --arrays mfmac --rows {} --cols {} --out {}", test::example_trace(),
                                 rows, cols, dir.file("s")));
  CHECK(r.exit_code == 2);
  CHECK(r.err == "mfsim: error: sweep: the grid has more than 1000000 points; split it into several sweeps\n");
  CHECK_FALSE(std::filesystem::exists(dir.file("s")));
}

namespace {

int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

// The cells of results.csv (header included), row by row, without wall_seconds.
std::vector<std::vector<std::string>> csv_cells(const std::string& dir) {
  std::vector<std::vector<std::string>> rows;
  std::stringstream in(test::slurp(dir + "/results.csv"));
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ls(line);
    std::string cell;
    while (std::getline(ls, cell, ',')) f.push_back(cell);
    rows.push_back(f);
  }
  const auto& head = rows.front();
  const auto wall = std::find(head.begin(), head.end(), "wall_seconds") - head.begin();
  for (auto& r : rows) {
    if (static_cast<std::size_t>(wall) < r.size()) r.erase(r.begin() + wall);
  }
  return rows;
}

}  // namespace

TEST_CASE("sweep --resume reuses a point only when everything that determines it is the same", "[smoke]") {
  TempDir dir;
  const std::string t = test::example_trace(), d = dir.file("d");
  const std::string base = fmt::format("sweep -q --trace {} --mode timing --arrays mfmac --cols 32", t);
  // The same command into a fresh directory: what a resumed sweep must equal.
  auto fresh = [&](const std::string& grid) {
    const std::string f = dir.file("fresh");
    std::filesystem::remove_all(f);
    REQUIRE(run_mfsim(fmt::format("{} {} --out {}", base, grid, f)).exit_code == 0);
    return csv_cells(f);
  };
  REQUIRE(run_mfsim(fmt::format("{} --rows 8 --out {}", base, d)).exit_code == 0);
  const auto rows8 = csv_cells(d);

  SECTION("--rows changed: the point is simulated again") {
    auto r = run_mfsim(fmt::format("{} --rows 128 --out {} --resume", base, d));
    REQUIRE(r.exit_code == 0);
    const auto resumed = csv_cells(d);
    CHECK(resumed == fresh("--rows 128"));
    CHECK(resumed[1][6] != rows8[1][6]);  // cycles_total: 426 on 128 rows, 415 on 8
  }
  SECTION("--arrays changed: the point is simulated again") {
    REQUIRE(run_mfsim(fmt::format("sweep -q --trace {} --mode timing --arrays fp32 --cols 32 --rows 8 --out {} --resume", t, d))
                .exit_code == 0);
    CHECK(csv_cells(d) == [&] {
      const std::string f = dir.file("fresh");
      REQUIRE(run_mfsim(fmt::format("sweep -q --trace {} --mode timing --arrays fp32 --cols 32 --rows 8 --out {}", t, f))
                  .exit_code == 0);
      return csv_cells(f);
    }());
  }
  SECTION("another trace, mode or simulation energy table: refused, nothing changed") {
    const std::string other = dir.file("other.json");  // the example with one more byte
    test::spit(other, test::slurp(t) + "\n");
    std::filesystem::copy_file(t.substr(0, t.size() - 5) + ".bin", dir.file("mlp-tiny.bin"));  // as the trace names it
    const std::string csv = test::slurp(d + "/results.csv");
    auto r = run_mfsim(fmt::format("sweep -q --trace {} --mode timing --arrays mfmac --cols 32 --rows 8 --out {} --resume",
                                   other, d));
    CHECK(r.exit_code == 2);
    CHECK(r.err == fmt::format("mfsim: error: --out: {} holds a sweep of another trace ({}); choose another --out for this "
                               "one\n",
                               d, t));
    // The same path with other content.
    REQUIRE(run_mfsim(fmt::format("sweep -q --trace {} --mode timing --rows 8 --out {}", other, dir.file("o"))).exit_code == 0);
    test::spit(other, test::slurp(other) + "\n");
    r = run_mfsim(fmt::format("sweep -q --trace {} --mode timing --rows 8 --out {} --resume", other, dir.file("o")));
    CHECK(r.exit_code == 2);
    CHECK(r.err == fmt::format("mfsim: error: --out: {} holds a sweep of {} as it was before it changed; choose another "
                               "--out for this one\n",
                               dir.file("o"), other));
    r = run_mfsim(fmt::format("sweep -q --trace {} --mode auto --arrays mfmac --cols 32 --rows 8 --out {} --resume", t, d));
    CHECK(r.err == fmt::format("mfsim: error: --out: {} holds a sweep in --mode timing; choose another --out for this one\n", d));
    r = run_mfsim(fmt::format("{} --rows 8 --energy-table aladdin45,paper --out {} --resume", base, d));
    CHECK(r.err == fmt::format("mfsim: error: --out: {} holds a sweep simulated with energy table paper; choose another "
                               "--out for this one\n",
                               d));
    CHECK(test::slurp(d + "/results.csv") == csv);
    // A damaged definition is refused too; a directory without one has nothing to resume.
    test::spit(d + "/sweep.json", "{\"mode\": 7}");
    r = run_mfsim(fmt::format("{} --rows 8 --out {} --resume", base, d));
    CHECK(r.err == fmt::format("mfsim: error: --out: {} holds a sweep with an unreadable sweep.json (not a sweep "
                               "definition); choose another --out for this one\n",
                               d));
    r = run_mfsim(fmt::format("{} --rows 8 --out {} --resume", base, dir.file("none")));
    CHECK(r.exit_code == 2);
    CHECK(r.err == fmt::format("mfsim: error: sweep: --resume: {0} holds no sweep to resume (no {0}/sweep.json); run "
                               "without --resume to start one\n",
                               dir.file("none")));
    CHECK_FALSE(std::filesystem::exists(dir.file("none")));
  }
  SECTION("a --set list changed: only the points whose values changed are simulated again") {
    const std::string s = dir.file("s");
    REQUIRE(run_mfsim(fmt::format("{} --rows 8 --set pe.acc_bits=8,32 --out {}", base, s)).exit_code == 0);
    const auto kept = std::filesystem::last_write_time(s + "/points/p00000.json");
    REQUIRE(run_mfsim(fmt::format("{} --rows 8 --set pe.acc_bits=8,16 --out {} --resume", base, s)).exit_code == 0);
    CHECK(std::filesystem::last_write_time(s + "/points/p00000.json") == kept);  // acc_bits 8: the same point
    json j = json::parse(test::slurp(s + "/results.json"));
    CHECK(j["points"][0]["report"]["config"]["pe.acc_bits"] == 8);
    CHECK(j["points"][1]["params"]["pe.acc_bits"] == "16");
    CHECK(j["points"][1]["report"]["config"]["pe.acc_bits"] == 16);  // not the 32-bit point relabelled
    // A --config change reaches every point's identity.
    test::spit(dir.file("cfg.json"), "{\"dram\": {\"bandwidth\": 1}}");
    REQUIRE(run_mfsim(fmt::format("{} --rows 8 --set pe.acc_bits=8,16 --config {} --out {} --resume", base,
                                  dir.file("cfg.json"), s))
                .exit_code == 0);
    j = json::parse(test::slurp(s + "/results.json"));
    CHECK(j["points"][0]["report"]["config"]["dram.bandwidth"] == 1.0);
    CHECK(j["points"][1]["report"]["config"]["dram.bandwidth"] == 1.0);
  }
}

TEST_CASE("sweep: failed points make the exit code: 3 mismatch, 2 bad input, 1 otherwise", "[smoke]") {
  TempDir dir;
  const std::string t = test::example_trace();
  // The INT8 array cannot hold this trace's FP32 records in value mode: bad input (exit 2).
  auto r = run_mfsim(fmt::format("sweep -q --trace {} --mode value --arrays int8,fp32 --rows 4 --cols 5 --out {}", t,
                                 dir.file("v")));
  CHECK(r.exit_code == 2);
  CHECK(r.err == fmt::format("mfsim: sweep: p00000 (array.kind=int8 array.rows=4 array.cols=5 array.dataflow=os): failed: "
                             "{0}: records[6] (fc1 fwd): fp32 operands cannot be represented exactly on the int8 array; "
                             "use --mode timing or auto, or array.second to run it on an array that holds it "
                             "(log: {1}/points/p00000.log)\n"
                             "mfsim: sweep: 1 of 2 points failed; results in {1}/results.csv\n",
                             t, dir.file("v")));
  // With an accumulator overflow (a verification failure) as well: 3 outranks 2. Without a
  // second array, INT4 and MF-MAC cannot hold the FP32 records (bad input); with an FP32 one,
  // MF-MAC's 10-bit accumulators overflow and INT4 passes.
  r = run_mfsim(fmt::format("sweep -q --trace {} --mode value --arrays int4,mfmac --rows 4 --cols 5 --set pe.acc_bits=10 "
                            "--set array.second=none,fp32 --out {}",
                            t, dir.file("w")));
  CHECK(r.exit_code == 3);
  CHECK(r.err.find(" array.second=none): failed: " + t + ": records[0] (fc1 fwd): pot4 operands cannot be represented "
                   "exactly on the int4 array;") != std::string::npos);
  CHECK(r.err.find("mfsim: sweep: p00003 (array.kind=mfmac array.rows=4 array.cols=5 array.dataflow=os pe.acc_bits=10 "
                   "array.second=fp32): failed: " + t + ": records[0] (fc1 fwd): mfmac array accumulator overflow") !=
        std::string::npos);
  CHECK(r.err.find("p00001") == std::string::npos);
  CHECK(count_lines(r.err) == 4);
  // No failure: exit 0, nothing on stderr.
  r = run_mfsim(fmt::format("sweep -q --trace {} --mode value --arrays fp32 --rows 4 --cols 5 --out {}", t, dir.file("ok")));
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
}

TEST_CASE("sweep: bad option values and conflicts are one line, exit 2, before anything is created", "[smoke]") {
  TempDir dir;
  test::spit(dir.file("cfg.json"), "{\"array\": {\"rows\": 8}, \"array.rows\": 16}");
  const std::string t = test::example_trace(), out = dir.file("s");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--point-timeout -1", "sweep: --point-timeout: expected seconds in [0, 1e+09] (0: no limit), got \"-1\""},
      {"--point-timeout nan", "sweep: --point-timeout: expected seconds in [0, 1e+09] (0: no limit), got \"nan\""},
      {"--point-timeout inf", "sweep: --point-timeout: expected seconds in [0, 1e+09] (0: no limit), got \"inf\""},
      {"--point-timeout 1e10", "sweep: --point-timeout: expected seconds in [0, 1e+09] (0: no limit), got \"1e10\""},
      {"--point-timeout 5s", "sweep: --point-timeout: expected seconds in [0, 1e+09] (0: no limit), got \"5s\""},
      {"-j 0", "sweep: -j: expected an integer in [1, 1024], got 0"},
      {"-j -3", "sweep: -j: expected an integer in [1, 1024], got -3"},
      {"-j 5000", "sweep: -j: expected an integer in [1, 1024], got 5000"},
      {"--energy-table ''", "sweep: --energy-table: empty value; see 'mfsim sweep --help'"},
      {"--energy-table paper,", "sweep: --energy-table: empty table name in the list"},
      {"--energy-table paper,aladdin45,paper", "sweep: --energy-table: paper is given twice"},
      {"--mode fast", "sweep: --mode: unknown value \"fast\"; expected auto|value|timing"},
      {"--rows 8,,16", "--rows: array.rows: expected an integer in [1, 4096], got \"\""},
      {"--set pe.acc_bits=8,32 --set pe.acc_bits=16", "--set pe.acc_bits=16: pe.acc_bits is already swept"},
      {"--config " + dir.file("cfg.json"), dir.file("cfg.json") + ": array.rows: given twice (as a nested and a dotted key)"},
      {"--area-budget 0", "sweep: --area-budget: expected an area in mm^2 (a positive number), got \"0\""},
      {"--area-budget -2", "sweep: --area-budget: expected an area in mm^2 (a positive number), got \"-2\""},
      {"--area-budget 3mm2", "sweep: --area-budget: expected an area in mm^2 (a positive number), got \"3mm2\""},
      {"--area-budget nan", "sweep: --area-budget: expected an area in mm^2 (a positive number), got \"nan\""},
      {"--resume", "sweep: --resume: " + out + " holds no sweep to resume (no " + out + "/sweep.json); run without --resume "
                   "to start one"},
  };
  for (const auto& [opts, message] : cases) {
    INFO(opts);
    auto r = run_mfsim(fmt::format("sweep -q --trace {} --arrays mfmac --out {} {}", t, out, opts));
    CHECK(r.exit_code == 2);
    CHECK(r.err == "mfsim: error: " + message + "\n");
    CHECK_FALSE(std::filesystem::exists(out));
  }
  auto r = run_mfsim(fmt::format("sweep -q --trace {} --out ''", t));
  CHECK(r.err == "mfsim: error: sweep: --out: empty value; see 'mfsim sweep --help'\n");
  r = run_mfsim(fmt::format("sweep -q --trace {} --out {}", dir.path(), out));
  CHECK(r.exit_code == 2);
  CHECK(r.err.rfind("mfsim: error: " + dir.path(), 0) == 0);
  CHECK_FALSE(std::filesystem::exists(out));
}

// Area, power and the Pareto fronts: every point's area is its report's; power and TOPS/W follow
// from its energy and time; the fronts equal a brute-force dominance check; --area-budget runs
// only the points within it, the others listed (with their area) and not counted as failures.
TEST_CASE("sweep: area, power, TOPS/W, Pareto fronts of area against time and energy, --area-budget", "[smoke]") {
  TempDir dir;
  const std::string grid = fmt::format("sweep -q --trace {} --mode timing --arrays mfmac,int8,fp32 --rows 4,8 --cols 4,8 "
                                       "--energy-table paper,horowitz45 -j 2",
                                       test::example_trace());
  REQUIRE(run_mfsim(grid + " --out " + dir.file("all")).exit_code == 0);
  const json all = json::parse(test::slurp(dir.file("all/results.json")));
  REQUIRE(all["points"].size() == 12);
  CHECK(all["area_table"] == "published45");
  std::vector<double> area, time;
  for (const auto& p : all["points"]) {
    INFO(p["point"]);
    REQUIRE(p["status"] == "ok");
    CHECK(p["area_mm2"].get<double>() == p["report"]["area"]["total_mm2"].get<double>());
    CHECK(p["time_seconds"].get<double>() == p["report"]["total"]["time_seconds"].get<double>());
    area.push_back(p["area_mm2"].get<double>());
    time.push_back(p["time_seconds"].get<double>());
    for (const auto& [t, e] : p["energy_pj"].items()) {
      const double joules = e["total"].get<double>() * 1e-12;
      CHECK(e["power_w"].get<double>() == Approx(joules / time.back()).epsilon(1e-12));
      CHECK(e["tops_per_w"].get<double>() ==
            Approx(2.0 * p["report"]["total"]["macs"].get<double>() / joules * 1e-12).epsilon(1e-12));
    }
  }
  // On a front: no other point at most as large and at most as slow (costly), one strictly.
  auto brute = [&](const std::vector<double>& cost, std::size_t i) {
    for (std::size_t j = 0; j < area.size(); ++j) {
      if (j != i && area[j] <= area[i] && cost[j] <= cost[i] && (area[j] < area[i] || cost[j] < cost[i])) return false;
    }
    return true;
  };
  int on_time = 0;
  for (std::size_t i = 0; i < area.size(); ++i) {
    CHECK(all["points"][i]["pareto_area_time"].get<bool>() == brute(time, i));
    on_time += brute(time, i) ? 1 : 0;
  }
  CHECK(on_time >= 2);  // the grid trades area for time
  for (const char* t : {"paper", "horowitz45"}) {
    std::vector<double> energy;
    for (const auto& p : all["points"]) energy.push_back(p["energy_pj"][t]["total"].get<double>());
    for (std::size_t i = 0; i < area.size(); ++i) {
      INFO(t << " point " << i);
      CHECK(all["points"][i]["energy_pj"][t]["pareto_area_energy"].get<bool>() == brute(energy, i));
    }
  }
  // The CSV carries the same figures.
  const auto rows = csv_cells(dir.file("all"));
  const auto& head = rows.front();
  const auto col = [&](const char* n) { return static_cast<std::size_t>(std::find(head.begin(), head.end(), n) - head.begin()); };
  REQUIRE(col("pareto_area_energy") < head.size());
  REQUIRE(rows.size() == 1 + 12 * 2);
  for (std::size_t r = 1; r < rows.size(); ++r) {
    const json& p = all["points"][(r - 1) / 2];
    const json& e = p["energy_pj"][rows[r][col("energy_table")]];
    CHECK(std::stod(rows[r][col("area_mm2")]) == p["area_mm2"].get<double>());
    CHECK(std::stod(rows[r][col("power_w")]) == e["power_w"].get<double>());
    CHECK(rows[r][col("pareto_area_time")] == (p["pareto_area_time"].get<bool>() ? "1" : "0"));
    CHECK(rows[r][col("pareto_area_energy")] == (e["pareto_area_energy"].get<bool>() ? "1" : "0"));
  }

  // A budget between the areas: the points over it are not run, the others are unchanged.
  std::vector<double> sorted = area;
  std::sort(sorted.begin(), sorted.end());
  const double budget = (sorted[5] + sorted[6]) / 2;
  auto r = run_mfsim(grid + fmt::format(" --area-budget {} --out {}", budget, dir.file("budget")));
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.empty());
  const json bud = json::parse(test::slurp(dir.file("budget/results.json")));
  CHECK(bud["area_budget_mm2"].get<double>() == budget);
  CHECK(bud["points_failed"] == 0);
  int over = 0;
  for (std::size_t i = 0; i < area.size(); ++i) {
    const json& p = bud["points"][i];
    INFO(p["point"]);
    CHECK(p["area_mm2"].get<double>() == area[i]);
    if (area[i] > budget) {
      ++over;
      CHECK(p["status"] == "over_budget");
      CHECK_FALSE(p.contains("report"));
      CHECK(p["error"].get<std::string>().find("exceeds --area-budget") != std::string::npos);
      CHECK_FALSE(test::file_exists(dir.file("budget/points/" + p["point"].get<std::string>() + ".json")));
    } else {
      CHECK(p["status"] == "ok");
      CHECK(p["report"]["total"]["cycles"] == all["points"][i]["report"]["total"]["cycles"]);
      CHECK(p["energy_pj"]["paper"]["total"] == all["points"][i]["energy_pj"]["paper"]["total"]);
    }
  }
  CHECK(over == 6);
  r = run_mfsim(fmt::format("sweep --trace {} --mode timing --arrays mfmac,int8,fp32 --rows 4,8 --cols 4,8 -j 2 "
                            "--area-budget {} --out {}",
                            test::example_trace(), budget, dir.file("loud")));
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("(0 failed, 6 over the area budget)") != std::string::npos);
}
