// mfsim compare --trace FILE --report FILE.json [--rows R] [--cols C] [--dataflow D]
//               [--energy-table T[,T...]] [--config FILE] [--set NAME=VALUE ...] [--mode M]
//               [--html FILE.html] [--csv FILE.csv] [--runs-dir DIR]
//               [--arrays A,B,...] [--iso area] [--area-budget MM2]
// Runs `mfsim simulate` on every array type (or those --arrays names; FP32, the baseline, always),
// one process per simulation (in parallel), then evaluates energy under each table and writes
// the savings report.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "apps/mfsim/api.h"
#include "apps/mfsim/cli.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "apps/mfsim/process.h"
#include "energy/savings.h"
#include "traces/trace_reader.h"

namespace po = boost::program_options;

namespace mfsim::cli {

namespace {

struct Child {
  api::CompareRun run;
  std::string report, log;
};

// `mfsim simulate` of one array, with the options compare passes on.
std::vector<std::string> simulate_argv(const std::string& exe, const po::variables_map& vm, const api::CompareRun& c,
                                       const std::string& report) {
  const std::string tables = vm["energy-table"].as<std::string>();
  std::vector<std::string> argv = {exe, "simulate", "-q", "--trace", vm["trace"].as<std::string>(), "--array", c.array,
                                   "--report", report, "--mode", vm["mode"].as<std::string>(),
                                   "--energy-table", tables.substr(0, tables.find(','))};
  if (c.rows > 0) {
    for (const std::string& a : {std::string("--rows"), std::to_string(c.rows), std::string("--cols"), std::to_string(c.cols)}) {
      argv.push_back(a);
    }
  }
  for (const char* flag : {"rows", "cols", "dataflow", "config"}) {
    if (c.rows > 0 && (std::string(flag) == "rows" || std::string(flag) == "cols")) continue;
    if (vm.count(flag) != 0) {
      argv.push_back(fmt::format("--{}", flag));
      argv.push_back(vm[flag].as<std::string>());
    }
  }
  if (vm.count("set") != 0) {
    for (const auto& s : vm["set"].as<std::vector<std::string>>()) {
      argv.push_back("--set");
      argv.push_back(s);
    }
  }
  if (!c.second.empty()) {
    argv.push_back("--set");
    argv.push_back("array.second=" + c.second);
  }
  return argv;
}

}  // namespace

int cmd_compare(const Args& args) {
  po::options_description opts("options");
  opts.add_options()
      ("trace", po::value<std::string>(), "trace file (.json)")
      ("report", po::value<std::string>(), "savings report to write (JSON, atomically)")
      ("rows", po::value<std::string>(), "array rows (default: the parameter default)")
      ("cols", po::value<std::string>(), "array columns")
      ("dataflow", po::value<std::string>(), "os|ws|is")
      ("energy-table", po::value<std::string>()->default_value("paper"),
       "one or more tables, comma-separated: paper|horowitz45|aladdin45 or JSON files; the first is the headline")
      ("config", po::value<std::string>(), "JSON file of parameters, passed to every simulation")
      ("set", po::value<std::vector<std::string>>()->composing(), "NAME=VALUE, passed to every simulation")
      ("mode", po::value<std::string>()->default_value("auto"), "auto|value|timing, passed to every simulation")
      ("html", po::value<std::string>(), "also write a self-contained HTML page with the energy charts")
      ("csv", po::value<std::string>(), "also write a CSV, one line per energy table and array (cycles, whole step, "
                                        "energy, linear share, savings; derived from the report)")
      ("arrays", po::value<std::string>(), "comma-separated array kinds to compare (default: all; fp32 always)")
      ("runs-dir", po::value<std::string>(), "keep the simulate reports in this directory")
      ("iso", po::value<std::string>(), "area: size every other array to the MF-MAC array's area (--rows x --cols), "
       "the largest square-ish array that fits (docs/energy-accounting.md)")
      ("area-budget", po::value<std::string>(), "MM2: size every array, MF-MAC too, to this area in mm^2 (implies --iso area)")
      ("quiet,q", "no table on stdout");
  po::variables_map vm;
  if (!parse_or_help("compare", "--trace FILE --report FILE.json [options]", args, opts, {}, vm)) return kExitOk;
  for (const char* required : {"trace", "report"}) {
    if (vm.count(required) == 0) {
      throw InputError(fmt::format("compare: missing option --{}; see 'mfsim compare --help'", required));
    }
  }
  // The parameters every simulation gets, validated here once (one line for a bad one, before
  // any child runs). compare runs each array itself: array.kind may not be set.
  api::CompareRequest req;
  if (vm.count("arrays") != 0) req.arrays = vm["arrays"].as<std::string>();
  if (vm.count("config") != 0) req.params.load_config_file(vm["config"].as<std::string>());
  for (const char* flag : {"rows", "cols", "dataflow"}) {
    if (vm.count(flag) != 0) {
      req.params.set(std::string("array.") + flag, vm[flag].as<std::string>(), fmt::format("--{}", flag));
    }
  }
  if (vm.count("set") != 0) {
    for (const auto& s : vm["set"].as<std::vector<std::string>>()) req.params.set_assignment(s);
  }
  req.energy_tables = vm["energy-table"].as<std::string>();
  if (!parse_sim_mode(vm["mode"].as<std::string>(), &req.mode)) {
    throw InputError(fmt::format("compare: --mode: unknown value \"{}\"; expected auto|value|timing",
                                 vm["mode"].as<std::string>()));
  }
  // Equal area (--iso area, --area-budget): each array's rows x cols from the area table.
  req.iso_area = vm.count("iso") != 0 || vm.count("area-budget") != 0;
  if (vm.count("iso") != 0 && vm["iso"].as<std::string>() != "area") {
    throw InputError(fmt::format("compare: --iso: unknown value \"{}\"; expected area", vm["iso"].as<std::string>()));
  }
  if (vm.count("area-budget") != 0) {
    const std::string v = vm["area-budget"].as<std::string>();
    const std::optional<double> b = parse_finite_number(v);
    if (!b || !(*b > 0)) throw InputError(fmt::format("compare: --area-budget: expected a positive area in mm2, got \"{}\"", v));
    req.area_budget_mm2 = *b;
  }
  // The trace, read here too: a bad trace fails before any child starts, it is known as an
  // input (no output may overwrite it), and it tells which arrays need a second array.
  const TraceReader trace_reader(vm["trace"].as<std::string>());
  const api::ComparePlan plan = api::plan_compare(req, trace_reader);
  const std::string report_path = vm["report"].as<std::string>();
  AtomicFile report_file(report_path);
  std::unique_ptr<AtomicFile> html_file;
  if (vm.count("html") != 0) html_file = std::make_unique<AtomicFile>(vm["html"].as<std::string>());
  std::unique_ptr<AtomicFile> csv_file;
  if (vm.count("csv") != 0) csv_file = std::make_unique<AtomicFile>(vm["csv"].as<std::string>());

  std::string dir;
  bool keep = vm.count("runs-dir") != 0;
  if (keep) {
    dir = vm["runs-dir"].as<std::string>();
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw InputError(fmt::format("--runs-dir: cannot create {}: {}", dir, ec.message()));
  } else {
    std::string templ = (std::filesystem::temp_directory_path() / "mfsim-compare-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("compare: mkdtemp failed");
    dir = templ;
  }
  const std::string exe = self_executable();
  std::vector<Child> children;
  for (const api::CompareRun& run : plan.runs) {
    Child c;
    c.run = run;
    c.report = fmt::format("{}/simulate-{}.json", dir, run.array);
    c.log = fmt::format("{}/simulate-{}.log", dir, run.array);
    children.push_back(c);
  }
  // Every array's simulation at once, each its own process (process.h).
  std::vector<ChildResult> results(children.size());
  ProcessPool::Callbacks cb;
  cb.start = [&](std::size_t i) {
    return std::pair{simulate_argv(exe, vm, children[i].run, children[i].report), children[i].log};
  };
  cb.done = [&](std::size_t i, const ChildResult& r) { results[i] = r; };
  cb.on_stop = [&](int) {
    if (!keep) std::filesystem::remove_all(dir);
  };
  ProcessPool(static_cast<int>(children.size()), 0).run(children.size(), cb);
  // The first failing array in report order (whichever finished first), for a stable message.
  std::string first_error;
  int worst = kExitOk;
  for (std::size_t i = 0; i < children.size() && worst == kExitOk; ++i) {
    if (results[i].exit_code != kExitOk || results[i].signal != 0) {
      first_error = fmt::format("{} array: {}", children[i].run.array,
                                results[i].signal != 0 ? fmt::format("killed by signal {}", results[i].signal)
                                                       : last_error_line(children[i].log));
      worst = results[i].exit_code != kExitOk ? results[i].exit_code : kExitFailure;
    }
  }
  auto cleanup = [&] {
    if (!keep) std::filesystem::remove_all(dir);
  };
  if (worst != kExitOk) {
    // Bad input says everything in its message; any other failure names a report or log in
    // the runs directory, which is then kept.
    if (worst == kExitBadInput) {
      cleanup();
      throw InputError(first_error);
    }
    if (!keep) first_error += fmt::format(" (the runs' reports and logs are kept in {})", dir);
    if (worst == kExitMismatch) throw VerificationError(first_error);
    throw std::runtime_error(first_error);
  }
  std::vector<std::pair<std::string, nlohmann::ordered_json>> reports;
  for (const auto& c : children) {
    reports.emplace_back(c.run.array, nlohmann::ordered_json::parse(read_file(c.report)));
  }
  cleanup();
  std::string cmd = "mfsim compare";
  for (const auto& a : args) cmd += " " + a;
  const nlohmann::ordered_json out =
      api::compare_report(req, plan, reports, vm["trace"].as<std::string>(), cmd, report_path);
  report_file.write(out.dump(2) + "\n");
  report_file.commit();
  if (html_file) {
    html_file->write(savings_html(out));
    html_file->commit();
  }
  if (csv_file) {
    csv_file->write(savings_csv(out));
    csv_file->commit();
  }
  if (vm.count("quiet") == 0) std::fputs(savings_text(out).c_str(), stdout);
  return kExitOk;
}

}  // namespace mfsim::cli
