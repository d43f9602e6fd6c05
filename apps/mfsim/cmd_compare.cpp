// mfsim compare --trace FILE --report FILE.json [--rows R] [--cols C] [--dataflow D]
//               [--energy-table T[,T...]] [--config FILE] [--set NAME=VALUE ...] [--mode M]
//               [--html FILE.html] [--runs-dir DIR]
//               [--arrays A,B,...] [--iso area] [--area-budget MM2]
// Runs `mfsim simulate` on every array type (or those --arrays names; FP32, the baseline, always),
// one process per simulation (in parallel), then evaluates energy under each table and writes
// the savings report.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sstream>

#include "apps/mfsim/cli.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "apps/mfsim/process.h"
#include "energy/area_model.h"
#include "energy/savings.h"
#include "sim/params.h"
#include "sim/pe_type.h"
#include "traces/trace_reader.h"

namespace po = boost::program_options;

namespace mfsim::cli {

namespace {

struct Child {
  std::string array, report, log;
  std::string second;  // the second array compare chose for the GEMMs `array` cannot hold (empty: none)
  int rows = 0, cols = 0;  // --iso area: the array's size (0: the parameters')
};

// `mfsim simulate` of one array, with the options compare passes on.
std::vector<std::string> simulate_argv(const std::string& exe, const po::variables_map& vm, const Child& c) {
  const std::string tables = vm["energy-table"].as<std::string>();
  std::vector<std::string> argv = {exe, "simulate", "-q", "--trace", vm["trace"].as<std::string>(), "--array", c.array,
                                   "--report", c.report, "--mode", vm["mode"].as<std::string>(),
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

// The PE types named by --arrays (all when empty), in registry order, with the FP32 baseline.
std::vector<const PeType*> select_arrays(const std::string& list) {
  std::vector<const PeType*> out;
  std::vector<std::string> names;
  std::stringstream ss(list);
  for (std::string n; std::getline(ss, n, ',');) {
    if (find_pe_type(n) == nullptr) {
      throw InputError(fmt::format("compare: --arrays: unknown array \"{}\"; expected {}", n, pe_type_names()));
    }
    names.push_back(n);
  }
  for (const PeType* pe : pe_types()) {
    if (list.empty() || std::string(pe->name) == "fp32" ||
        std::find(names.begin(), names.end(), pe->name) != names.end()) {
      out.push_back(pe);
    }
  }
  return out;
}

// The second array for the records of `trace` that `array` cannot run exactly, when it runs
// some of them: the narrowest PE type (fewest formats held) that runs all the others (each
// record's pair of formats: the shift-add pair of an MF-MAC step gets the shift array). Empty
// when the array runs every record (nothing to add) or none (the whole row is then a what-if
// estimate of the step on that array, marked as such in the report).
std::string auto_second(const PeType& array, const Trace& trace) {
  std::vector<std::pair<NumFormat, NumFormat>> missing;
  bool runs_some = false;
  for (const TraceRecord& r : trace.records) {
    const std::pair<NumFormat, NumFormat> pair{r.a.format, r.b.format};
    if (!array.runs_exactly(pair.first, pair.second)) {
      if (std::find(missing.begin(), missing.end(), pair) == missing.end()) missing.push_back(pair);
    } else {
      runs_some = true;
    }
  }
  if (missing.empty() || !runs_some) return "";
  const PeType* best = nullptr;
  for (const PeType* pe : pe_types()) {
    bool all = true;
    for (const auto& [a, b] : missing) all = all && pe->runs_exactly(a, b);
    if (all && (best == nullptr || pe->holds.size() < best->holds.size())) best = pe;
  }
  return best == nullptr ? "" : best->name;
}

// --iso area / --area-budget: each child's rows x cols, the largest square-ish array within the
// budget (area_model.h, largest_array_within); the budget is --area-budget or the MF-MAC array's
// area at the parameters' size (the MF-MAC array then keeps that size).
nlohmann::ordered_json size_to_area(const ParamSet& params, std::vector<Child>& children, const Trace& trace,
                                    bool user_second, double budget_mm2) {
  const AreaTable table = load_area_table("published45");
  const SimConfig base = params.build();
  auto config_of = [&](const PeType& pe, const std::string& second) {
    SimConfig c = base;
    c.array = &pe;
    if (!user_second) c.second = second.empty() ? nullptr : &pe_type(second);
    return c;
  };
  nlohmann::ordered_json j;
  const bool from_mfmac = budget_mm2 <= 0;
  if (from_mfmac) {
    const PeType& mf = pe_type("mfmac");
    const ArrayArea a = array_area(config_of(mf, user_second ? "" : auto_second(mf, trace)), table);
    if (!a.complete()) throw InputError(fmt::format("compare: --iso area: the {} area table has no row for {}", table.name, a.missing.front()));
    budget_mm2 = a.total_um2 * 1e-6;
    j["budget_from"] = fmt::format("the mfmac array at {}x{}", base.rows, base.cols);
  } else {
    j["budget_from"] = "--area-budget";
  }
  j["budget_mm2"] = budget_mm2;
  j["area_table"] = table.name;
  j["rule"] = "rows x cols is the largest of 1x1, 1x2, 2x2, 2x3, 3x3, ... (cols = rows or rows + 1) whose area "
              "(PEs, registers, SRAM buffers) is within the budget";
  nlohmann::ordered_json arrays = nlohmann::ordered_json::object();
  for (Child& c : children) {
    const SimConfig cfg = config_of(pe_type(c.array), c.second);
    if (from_mfmac && c.array == "mfmac") {
      c.rows = base.rows;
      c.cols = base.cols;
      arrays[c.array] = nlohmann::ordered_json{{"rows", c.rows}, {"cols", c.cols}, {"sized", false}};
      continue;
    }
    const IsoAreaSize s = largest_array_within(cfg, table, budget_mm2 * 1e6);
    if (s.rows == 0) {
      throw InputError(fmt::format("compare: --area-budget: {} mm2 fits no {} array (1x1 with its SRAM buffers takes "
                                   "{:.4g} mm2)",
                                   budget_mm2, c.array, s.next_um2 * 1e-6));
    }
    c.rows = s.rows;
    c.cols = s.cols;
    nlohmann::ordered_json a{{"rows", s.rows}, {"cols", s.cols}, {"sized", true}};
    if (s.next_rows > 0) {
      a["next_rows"] = s.next_rows;
      a["next_cols"] = s.next_cols;
      a["next_area_mm2"] = s.next_um2 * 1e-6;
    }
    arrays[c.array] = a;
  }
  j["arrays"] = arrays;
  return j;
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
  const std::vector<const PeType*> selected = select_arrays(vm.count("arrays") != 0 ? vm["arrays"].as<std::string>() : "");
  // The parameters every simulation gets, validated here once (one line for a bad one, before
  // any child runs). compare runs each array itself: array.kind may not be set.
  ParamSet params;
  if (vm.count("config") != 0) params.load_config_file(vm["config"].as<std::string>());
  for (const char* flag : {"rows", "cols", "dataflow"}) {
    if (vm.count(flag) != 0) {
      params.set(std::string("array.") + flag, vm[flag].as<std::string>(), fmt::format("--{}", flag));
    }
  }
  if (vm.count("set") != 0) {
    for (const auto& s : vm["set"].as<std::vector<std::string>>()) params.set_assignment(s);
  }
  if (!params.origin("array.kind").empty()) {
    throw InputError(fmt::format("compare: {}: array.kind cannot be set; compare runs every array itself "
                                 "(choose them with --arrays)",
                                 params.origin("array.kind")));
  }
  const bool user_second = !params.origin("array.second").empty();
  // The trace, read here too: a bad trace fails before any child starts, it is known as an
  // input (no output may overwrite it), and it tells which arrays need a second array.
  const TraceReader trace_reader(vm["trace"].as<std::string>());
  trace_reader.require_gemms("compare");
  std::vector<EnergyTable> tables;
  {
    std::stringstream ss(vm["energy-table"].as<std::string>());
    std::string t;
    while (std::getline(ss, t, ',')) tables.push_back(load_energy_table(t));
  }
  // Equal area (--iso area, --area-budget): each array's rows x cols from the area table.
  const bool iso = vm.count("iso") != 0 || vm.count("area-budget") != 0;
  if (vm.count("iso") != 0 && vm["iso"].as<std::string>() != "area") {
    throw InputError(fmt::format("compare: --iso: unknown value \"{}\"; expected area", vm["iso"].as<std::string>()));
  }
  double budget_mm2 = 0;
  if (vm.count("area-budget") != 0) {
    const std::string v = vm["area-budget"].as<std::string>();
    const std::optional<double> b = parse_finite_number(v);
    if (!b || !(*b > 0)) throw InputError(fmt::format("compare: --area-budget: expected a positive area in mm2, got \"{}\"", v));
    budget_mm2 = *b;
  }
  if (iso) {
    for (const char* p : {"array.rows", "array.cols"}) {
      if (params.origin(p).rfind("--set", 0) == 0) {
        throw InputError(fmt::format("compare: --iso area: {} sizes every array; give the MF-MAC array's size with "
                                     "--rows and --cols",
                                     params.origin(p)));
      }
    }
  }
  const std::string report_path = vm["report"].as<std::string>();
  AtomicFile report_file(report_path);
  std::unique_ptr<AtomicFile> html_file;
  if (vm.count("html") != 0) html_file = std::make_unique<AtomicFile>(vm["html"].as<std::string>());

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
  for (const PeType* pe : selected) {
    Child c;
    c.array = pe->name;
    c.report = fmt::format("{}/simulate-{}.json", dir, c.array);
    c.log = fmt::format("{}/simulate-{}.log", dir, c.array);
    if (!user_second) c.second = auto_second(*pe, trace_reader.trace());
    children.push_back(c);
  }
  nlohmann::ordered_json iso_json;
  if (iso) iso_json = size_to_area(params, children, trace_reader.trace(), user_second, budget_mm2);
  // Every array's simulation at once, each its own process (process.h).
  std::vector<ChildResult> results(children.size());
  ProcessPool::Callbacks cb;
  cb.start = [&](std::size_t i) { return std::pair{simulate_argv(exe, vm, children[i]), children[i].log}; };
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
      first_error = fmt::format("{} array: {}", children[i].array,
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
    reports.emplace_back(c.array, nlohmann::ordered_json::parse(read_file(c.report)));
  }
  cleanup();
  const auto& cfg = reports.front().second["config"];
  nlohmann::ordered_json meta;
  meta["mfsim_version"] = MFSIM_VERSION;
  std::string cmd = "mfsim compare";
  for (const auto& a : args) cmd += " " + a;
  meta["command"] = cmd;
  meta["trace"] = vm["trace"].as<std::string>();
  meta["rows"] = cfg["array.rows"];
  meta["cols"] = cfg["array.cols"];
  if (iso) {  // the arrays' sizes differ: the header gives the parameters' (MF-MAC's) size
    const SimConfig base = params.build();
    meta["rows"] = base.rows;
    meta["cols"] = base.cols;
  }
  meta["dataflow"] = cfg["array.dataflow"];
  meta["config"] = cfg;
  nlohmann::ordered_json seconds = nlohmann::ordered_json::object();
  for (const auto& c : children) {
    if (!c.second.empty()) seconds[c.array] = c.second;
  }
  // The arrays compare gave a second array (array.second) for the GEMMs they cannot hold.
  meta["second_arrays_chosen"] = seconds;
  if (iso) {
    // The size each array ran at and its area (from its report), its step time and energy.
    for (const auto& [kind, rep] : reports) {
      auto& a = iso_json["arrays"][kind];
      a["area_mm2"] = rep["area"]["total_mm2"];
      a["time_seconds"] = rep["total"]["time_seconds"];
    }
    meta["iso_area"] = iso_json;
  }
  meta["report_file"] = report_path;
  nlohmann::ordered_json out = build_savings_report(reports, tables, meta);
  if (iso) {
    for (auto& [kind, a] : out["iso_area"]["arrays"].items()) {
      a["energy_pj"] = out["energy_pj"][kind]["total"];
      a["energy_table"] = out["energy_table"];
    }
  }
  report_file.write(out.dump(2) + "\n");
  report_file.commit();
  if (html_file) {
    html_file->write(savings_html(out));
    html_file->commit();
  }
  if (vm.count("quiet") == 0) std::fputs(savings_text(out).c_str(), stdout);
  return kExitOk;
}

}  // namespace mfsim::cli
