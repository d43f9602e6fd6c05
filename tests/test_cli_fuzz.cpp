// A seeded, randomized campaign over whole command lines: random subcommands with options and
// values drawn from the declared parameters and from hostile values (0, -1, NaN, huge, empty,
// directories, devices, symbolic links, the run's own inputs as outputs). Every run must end with
// exit 0, 2 or 3 (no crash, no hang, no sanitizer report: the sanitizer tier runs this test under
// ASan and UBSan), print one error line when it fails, leave no temporary file, and change no file
// other than the outputs it names; an input of the run never changes, even when named as output.
//
// MFSIM_CLI_FUZZ_SEED and MFSIM_CLI_FUZZ_RUNS override the seed and the number of runs (the
// campaign in docs/reliability.md ran many more).
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "sim/params.h"
#include "sim/pe_type.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using mfsim::test::TempDir;

namespace {

struct FileState {
  std::uintmax_t size = 0;
  std::int64_t mtime_ns = 0;
  ino_t ino = 0;
  mode_t mode = 0;
  std::string link;  // a symbolic link's target
  bool operator==(const FileState& o) const {
    return size == o.size && mtime_ns == o.mtime_ns && ino == o.ino && mode == o.mode && link == o.link;
  }
};

std::map<std::string, FileState> snapshot(const std::string& root) {
  std::map<std::string, FileState> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    FileState f;
    f.size = static_cast<std::uintmax_t>(st.st_size);
    f.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    f.ino = st.st_ino;
    f.mode = st.st_mode;
    if (S_ISLNK(st.st_mode)) f.link = fs::read_symlink(it->path()).string();
    out[fs::relative(it->path(), root).string()] = f;
  }
  return out;
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

class Campaign {
 public:
  explicit Campaign(std::uint64_t seed) : rng_(seed) {}

  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[std::uniform_int_distribution<std::size_t>(0, v.size() - 1)(rng_)];
  }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }

  // Hostile values any option may get.
  std::string hostile() {
    static const std::vector<std::string> v = {"0",    "-1", "nan",  "inf", "-inf", "1e308", "18446744073709551616",
                                               "",     "x",  "1.5",  "3",   "7",    "4096",  "2147483648",
                                               "dir",  "/dev/null", "link.json", "t.json", "mlp-tiny.bin",
                                               "missing/x.json", "/proc/mfsim-x.json", "cfg.json", "g.csv"};
    return pick(v);
  }
  std::string output() {
    static const std::vector<std::string> v = {"o1.json", "o2.csv", "o3.vcd", "out/o4.json", "dir/o5.json"};
    return chance(0.7) ? pick(v) : hostile();
  }
  std::string number(const std::vector<std::string>& good) { return chance(0.7) ? pick(good) : hostile(); }

  // NAME=VALUE for a declared parameter: its default, bounds, a choice, or a hostile value.
  std::string assignment() {
    const auto& specs = mfsim::param_specs();
    const mfsim::ParamSpec& s = specs[std::uniform_int_distribution<std::size_t>(0, specs.size() - 1)(rng_)];
    std::vector<std::string> values = {s.default_value};
    if (s.type == mfsim::ParamType::kInt || s.type == mfsim::ParamType::kNumber) {
      values.push_back(fmt::format("{}", s.min));
      values.push_back(fmt::format("{}", s.max));
    }
    if (s.choices != nullptr && *s.choices != '\0') {
      std::string c = s.choices;
      for (std::size_t p = 0, q; p <= c.size(); p = q + 1) {
        q = c.find('|', p);
        if (q == std::string::npos) q = c.size();
        values.push_back(c.substr(p, q - p));
      }
    }
    if (s.type == mfsim::ParamType::kBool) values = {"true", "false"};
    return fmt::format("{}={}", chance(0.05) ? std::string("no.such") : std::string(s.name),
                       chance(0.8) ? pick(values) : hostile());
  }

  // One random command line; `inputs` and `outputs` get the paths it names as each.
  std::vector<std::string> command(std::vector<std::string>& inputs, std::vector<std::string>& outputs) {
    static const std::vector<std::string> commands = {"simulate", "simulate", "simulate", "compare", "trace", "trace",
                                                      "inspect", "sweep", "train", "example-trace", "bogus"};
    const std::string cmd = pick(commands);
    std::vector<std::string> a = {cmd};
    auto input = [&](const std::string& flag, const std::vector<std::string>& good) {
      const std::string v = chance(0.85) ? pick(good) : hostile();
      if (!flag.empty()) a.push_back(flag);
      a.push_back(v);
      inputs.push_back(v);
    };
    auto out = [&](const std::string& flag) {
      const std::string v = output();
      a.push_back(flag);
      a.push_back(v);
      outputs.push_back(v);
    };
    const std::vector<std::string> traces = {"t.json", "shapes.json", "t.json", "link.json"};
    std::vector<std::string> kinds;
    for (const mfsim::PeType* pe : mfsim::pe_types()) kinds.emplace_back(pe->name);
    auto array_options = [&](double p) {
      if (chance(p)) a.insert(a.end(), {"--rows", number({"1", "3", "4", "8", "16"})});
      if (chance(p)) a.insert(a.end(), {"--cols", number({"1", "2", "5", "8", "16"})});
      if (chance(p)) a.insert(a.end(), {"--dataflow", number({"os", "ws", "is"})});
      if (chance(0.2)) input("--config", {"cfg.json"});
      for (int i = 0; i < 3; ++i) {
        if (chance(0.3)) a.insert(a.end(), {"--set", assignment()});
      }
      if (chance(0.3)) a.insert(a.end(), {"--mode", number({"auto", "value", "timing"})});
      if (chance(0.2)) input("--energy-table", {"paper", "horowitz45", "aladdin45", "paper,aladdin45"});
    };
    if (cmd == "simulate") {
      if (chance(0.95)) input("--trace", traces);
      if (chance(0.95)) out("--report");
      if (chance(0.5)) a.insert(a.end(), {"--array", number(kinds)});
      array_options(0.5);
      if (chance(0.1)) out("--vcd");
      if (chance(0.1)) out("--energy-csv");
      a.push_back("-q");
    } else if (cmd == "compare") {
      input("--trace", traces);
      out("--report");
      a.insert(a.end(), {"--mode", chance(0.8) ? "timing" : "auto"});
      array_options(0.3);
      if (chance(0.2)) out("--html");
      if (chance(0.3)) a.insert(a.end(), {"--arrays", number({"mfmac", "int8,mfmac", "int4"})});
      a.push_back("-q");
    } else if (cmd == "trace") {
      if (chance(0.7)) {
        a.insert(a.end(), {"--network", number({"resnet18", "transformer-base", "vgg16", "mobilenetv2",
                                                "transformer:layers=1,d=8,heads=2,ff=16,seq=4,vocab=5"})});
      } else {
        input("--scalesim-topology", {"g.csv"});
        if (chance(0.3)) a.push_back("--gemm");
        if (chance(0.3)) a.push_back("--training");
      }
      if (chance(0.9)) a.insert(a.end(), {"--batch", number({"1", "2", "4"})});
      if (chance(0.3)) a.insert(a.end(), {"--image", number({"32x32", "16x16", "7x9"})});
      if (chance(0.2)) a.insert(a.end(), {"--seq", number({"4", "16"})});
      if (chance(0.1)) a.insert(a.end(), {"--tokens", number({"16", "64"})});
      if (chance(0.2)) a.insert(a.end(), {"--phases", number({"fwd", "bwd_data", "fwd,bwd_weight"})});
      if (chance(0.2)) a.insert(a.end(), {"--format", number({"pot4", "int8", "fp32", "bf16"})});
      out("-o");
    } else if (cmd == "inspect") {
      input("", traces);
      if (chance(0.3)) a.push_back("--recompute");
      if (chance(0.3)) a.push_back("--json");
    } else if (cmd == "sweep") {
      input("--trace", {"shapes.json", "t.json"});
      a.insert(a.end(), {"--mode", "timing", "--arrays", number({"mfmac", "int8,mfmac"})});
      a.insert(a.end(), {"--rows", number({"4", "4,8"}), "--cols", number({"4", "8"})});
      if (chance(0.3)) a.insert(a.end(), {"--set", assignment()});
      if (chance(0.3)) a.insert(a.end(), {"-j", number({"1", "2"})});
      if (chance(0.2)) a.insert(a.end(), {"--point-timeout", number({"30", "60"})});
      if (chance(0.2)) a.push_back("--resume");
      const std::string d = chance(0.8) ? pick(std::vector<std::string>{"sw", "out/sw"}) : hostile();
      a.insert(a.end(), {"--out", d});
      outputs.push_back(d);
      a.push_back("--quiet");
    } else if (cmd == "train") {
      a.insert(a.end(), {"--data", "data", "--train-limit", "32", "--test-limit", "16", "--epochs", "1", "--batch", "16"});
      if (chance(0.5)) {
        a.insert(a.end(), {"--spec", number({"flatten,fc:10", "conv:2:3:2:1,relu,flatten,fc:10", "flatten,fc:1",
                                             "conv:4:3:1:1,bn,relu,res:4:2,gap,fc:10", "maxpool:3,flatten,fc:10"})});
      } else {
        a.insert(a.end(), {"--model", number({"mlp", "cnn", "cnn-bn", "resnet8"})});
      }
      a.insert(a.end(), {"--quant", number({"fp32", "int8", "als-potq", "int4", "bf16", "fp8"})});
      if (chance(0.2)) a.insert(a.end(), {"--first-last", number({"potq", "int8", "fp32"})});
      if (chance(0.2)) a.insert(a.end(), {"--prc-operands", number({"a,w", "g", "a,w,g"})});
      if (chance(0.1)) a.push_back("--no-prc");
      if (chance(0.2)) a.insert(a.end(), {"--lr", chance(0.5) ? std::string("0.02") : pick(std::vector<std::string>{"0", "-1", "nan", "x"})});
      out("--report");
      if (chance(0.3)) out("--trace-out");
      a.push_back("-q");
    } else if (cmd == "example-trace") {
      out("-o");
    } else {
      a.push_back(hostile());
    }
    if (chance(0.03)) a.push_back("--help");
    if (chance(0.03)) a.push_back(hostile());  // a stray argument
    return a;
  }

 private:
  std::mt19937_64 rng_;
};

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

}  // namespace

TEST_CASE("cli fuzz: random command lines end in 0, 2 or 3 and change only the files they name as outputs", "[smoke]") {
  const std::uint64_t seed = env_or("MFSIM_CLI_FUZZ_SEED", 1), runs = env_or("MFSIM_CLI_FUZZ_RUNS", 120);
  WARN("cli fuzz: seed " << seed << ", " << runs << " runs (MFSIM_CLI_FUZZ_SEED, MFSIM_CLI_FUZZ_RUNS)");
  TempDir tmp;
  // The pristine working directory every run starts from.
  const std::string pristine = tmp.file("pristine");
  fs::create_directories(pristine + "/dir");
  fs::create_directories(pristine + "/out");
  const std::string example = mfsim::test::example_trace();
  fs::copy_file(example, pristine + "/t.json");
  fs::copy_file(example.substr(0, example.size() - 5) + ".bin", pristine + "/mlp-tiny.bin");
  fs::create_symlink("t.json", pristine + "/link.json");
  mfsim::test::spit(pristine + "/cfg.json", "{\"array\": {\"rows\": 4, \"cols\": 4}, \"dram.bandwidth\": 8}\n");
  mfsim::test::spit(pristine + "/g.csv", "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
                                         "Num Filter, Strides,\nc1, 8, 8, 3, 3, 4, 8, 1,\nc2, 6, 6, 1, 1, 8, 4, 2,\n");
  fs::create_directories(pristine + "/data");
  mfsim::test::write_dataset(pristine + "/data", 32, 16);
  REQUIRE(mfsim::test::run_mfsim(fmt::format("trace --network resnet18 --image 32x32 --batch 1 --phases fwd,bwd_data -o {}",
                                             pristine + "/shapes.json"))
              .exit_code == 0);

  Campaign c(seed);
  std::map<int, int> exits;
  for (std::uint64_t run = 0; run < runs; ++run) {
    const std::string w = tmp.file(fmt::format("w{}", run % 2));
    fs::remove_all(w);
    fs::copy(pristine, w, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    std::vector<std::string> inputs, outputs;
    const std::vector<std::string> args = c.command(inputs, outputs);
    std::string line;
    for (const auto& x : args) line += " " + quote(x);
    const auto before = snapshot(w);
    const std::string cmd = fmt::format("cd {} && timeout -s KILL 120 {}{} >{}/stdout 2>{}/stderr </dev/null", quote(w),
                                        MFSIM_BINARY, line, tmp.path(), tmp.path());
    const int status = std::system(cmd.c_str());
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    const std::string err = mfsim::test::without_sanitizer_stack_notes(mfsim::test::slurp(tmp.file("stderr")));
    INFO("run " << run << ": mfsim" << line << "\nexit " << code << "\nstderr: " << err);
    ++exits[code];
    if (code == 3) WARN("a verification mismatch (exit 3), run " << run << ": mfsim" << line << "\n" << err);
    // Exit 1 is a failure of the environment or a bug; training that diverges is the one
    // documented exit 1 (never with these learning rates).
    CHECK((code == 0 || code == 2 || code == 3));
    if (code != 0) {
      CHECK(err.rfind("mfsim: ", 0) == 0);
      if (args[0] == "sweep" && err.rfind("mfsim: sweep: ", 0) == 0) {
        // A sweep whose points failed lists each (docs/sweeps.md): every line is mfsim's own.
        for (std::size_t p = 0; p < err.size(); p = err.find('\n', p) + 1) {
          CHECK(err.compare(p, 7, "mfsim: ") == 0);
          if (err.find('\n', p) == std::string::npos) break;
        }
      } else {
        CHECK(std::count(err.begin(), err.end(), '\n') == 1);
      }
    }
    // Which files may change: the named outputs (and what a named symbolic link points to, and
    // anything under a named output directory), never an input of the run.
    auto is_output = [&](const std::string& rel) {
      for (std::string o : outputs) {
        if (o.empty()) continue;
        if (o.rfind(w + "/", 0) == 0) o = o.substr(w.size() + 1);
        if (rel == o || rel.rfind(o + "/", 0) == 0 || rel.rfind(o + ".tmp.", 0) == 0) return true;
        // A trace's payload file goes beside its JSON (X.json or X -> X.bin).
        const bool json = o.size() > 5 && o.compare(o.size() - 5, 5, ".json") == 0;
        if (rel == (json ? o.substr(0, o.size() - 5) : o) + ".bin") return true;
        std::error_code ec;
        if (fs::is_symlink(fs::path(w) / o, ec) && fs::read_symlink(fs::path(w) / o, ec) == rel) return true;
      }
      return false;
    };
    std::set<std::string> protected_inputs;
    for (const auto& i : inputs) {
      protected_inputs.insert(i);
      if (i == "t.json" || i == "link.json") protected_inputs.insert("mlp-tiny.bin");
      if (i == "link.json") protected_inputs.insert("t.json");
    }
    const auto after = snapshot(w);
    for (const auto& [rel, st] : before) {
      const bool same = after.count(rel) != 0 && after.at(rel) == st;
      if (protected_inputs.count(rel) != 0) {
        INFO("input " << rel);
        CHECK(same);
      } else if (!is_output(rel) && !fs::is_directory(fs::path(w) / rel)) {
        INFO("file not named as an output: " << rel);
        CHECK(same);
      }
    }
    for (const auto& [rel, st] : after) {
      INFO("new file: " << rel);
      if (before.count(rel) == 0) CHECK(is_output(rel));
      CHECK(rel.find(".tmp.") == std::string::npos);
    }
  }
  std::string summary;
  for (const auto& [code, n] : exits) summary += fmt::format(" exit {}: {};", code, n);
  WARN("cli fuzz:" << summary);
}
