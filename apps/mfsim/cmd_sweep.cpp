// mfsim sweep --trace FILE --out DIR [--arrays A,..] [--rows R,..] [--cols C,..]
//             [--dataflow D,..] [--set NAME=V1,V2,...] [--config FILE] [--energy-table T,..]
//             [--mode M] [-j N] [--resume] [--point-timeout S] [--quiet]
// Every point of the grid is its own `mfsim simulate` process, -j at a time; under mpirun the
// points are spread over the ranks and rank 0 gathers the results (docs/sweeps.md).
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>
#include <thread>

#include "apps/mfsim/cli.h"
#include "apps/mfsim/process.h"
#include "apps/mfsim/sweep_state.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "energy/area_model.h"
#include "energy/energy_model.h"
#include "sim/params.h"
#include "sim/replay.h"

#ifdef MFSIM_HAVE_MPI
#include <mpi.h>
#endif

namespace po = boost::program_options;
using ojson = nlohmann::ordered_json;

namespace mfsim::cli {

namespace {

struct Axis {
  std::string param;
  std::vector<std::string> values;
};

struct Point {
  std::size_t index = 0;
  std::string id;
  std::vector<std::pair<std::string, std::string>> params;  // in axis order
  std::string identity;  // canonical JSON of everything that determines the result (sweep_state.h)
  std::string status;    // ok | failed | timeout | missing | over_budget (--area-budget: not run)
  std::string error;
  double area_mm2 = -1;  // the array's area (published45 table, as the point's report has it); -1: none
  int exit_code = 0;     // the point's `mfsim simulate` exit code (kExitFailure: timeout, signal)
  double wall_seconds = 0;
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) out.push_back(item);
  if (!s.empty() && s.back() == sep) out.emplace_back();
  return out;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

bool is_terminal() { return ::isatty(2) != 0; }

void progress(std::size_t done, std::size_t total, std::size_t failed, double elapsed, bool final) {
  const int width = 30;
  const double d = static_cast<double>(done), t = static_cast<double>(total);
  const int filled = total == 0 ? width : static_cast<int>(width * d / t);
  const double eta = done == 0 ? 0 : elapsed / d * (t - d);
  std::fprintf(stderr, "\r[%s%s] %zu/%zu points, %zu failed, %.0f s elapsed, ETA %.0f s   %s",
               std::string(static_cast<std::size_t>(filled), '=').c_str(),
               std::string(static_cast<std::size_t>(width - filled), ' ').c_str(), done, total, failed, elapsed, eta,
               final ? "\n" : "");
}

// Temporary files (`*.tmp.PID`) that a killed writer left in DIR/points (those of point `id`
// only, when given).
void remove_temporary_files(const std::string& dir, const std::string& id = "") {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/points", ec)) {
    const std::string name = e.path().filename().string();
    if (name.find(".tmp.") != std::string::npos && name.rfind(id, 0) == 0) std::filesystem::remove(e.path(), ec);
  }
}

// Reads a finished point (its meta file says ok and its report is complete: sweep_state.h).
bool load_finished(const std::string& dir, Point& p) {
  const std::string meta = fmt::format("{}/points/{}.meta.json", dir, p.id);
  const std::string rep = fmt::format("{}/points/{}.json", dir, p.id);
  if (!std::filesystem::is_regular_file(meta) || !std::filesystem::is_regular_file(rep)) return false;
  try {
    double wall = 0;
    if (!finished_point(read_file(meta), read_file(rep), p.identity, &wall)) return false;
    p.status = "ok";
    p.wall_seconds = wall;
    return true;
  } catch (const InputError&) {
    return false;
  }
}

void write_meta(const std::string& dir, const Point& p) {
  ojson m{{"id", p.id}, {"status", p.status}, {"exit_code", p.exit_code}, {"wall_seconds", p.wall_seconds}};
  if (!p.error.empty()) m["error"] = p.error;
  m["identity"] = nlohmann::json::parse(p.identity);
  write_file_atomic(fmt::format("{}/points/{}.meta.json", dir, p.id), m.dump(1) + "\n");
}

}  // namespace

#ifdef MFSIM_HAVE_MPI
// Rank 0 gathers every other rank's finished points (report and meta), so that the results
// are complete even without a shared file system.
void gather_points(const std::vector<Point>& points, int rank, int ranks, const std::string& dir) {
  if (rank != 0) {
    for (const auto& p : points) {
      if (p.index % static_cast<std::size_t>(ranks) != static_cast<std::size_t>(rank)) continue;
      std::string rep, meta;
      try {
        rep = read_file(fmt::format("{}/points/{}.json", dir, p.id));
      } catch (...) {
      }
      meta = read_file(fmt::format("{}/points/{}.meta.json", dir, p.id));
      std::string msg = std::to_string(p.index) + "\n" + std::to_string(meta.size()) + "\n" + meta + rep;
      MPI_Send(msg.data(), static_cast<int>(msg.size()), MPI_CHAR, 0, 7, MPI_COMM_WORLD);
    }
  } else {
    std::size_t expected = 0;
    for (const auto& p : points) expected += p.index % static_cast<std::size_t>(ranks) != 0 ? 1 : 0;
    for (std::size_t m = 0; m < expected; ++m) {
      MPI_Status st;
      MPI_Probe(MPI_ANY_SOURCE, 7, MPI_COMM_WORLD, &st);
      int len = 0;
      MPI_Get_count(&st, MPI_CHAR, &len);
      std::string msg(static_cast<std::size_t>(len), '\0');
      MPI_Recv(msg.data(), len, MPI_CHAR, st.MPI_SOURCE, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      auto nl1 = msg.find('\n'), nl2 = msg.find('\n', nl1 + 1);
      std::size_t idx = std::stoul(msg.substr(0, nl1)), mlen = std::stoul(msg.substr(nl1 + 1, nl2 - nl1 - 1));
      std::string meta = msg.substr(nl2 + 1, mlen), rep = msg.substr(nl2 + 1 + mlen);
      const Point& p = points[idx];
      if (!rep.empty()) write_file_atomic(fmt::format("{}/points/{}.json", dir, p.id), rep);
      write_file_atomic(fmt::format("{}/points/{}.meta.json", dir, p.id), meta);
    }
  }
}
#endif

// Pareto fronts over (area, cost): on[i] is true when no other point has an area and a cost at
// most point i's with one of them smaller. Points with a negative area or cost take no part.
std::vector<bool> pareto_front(const std::vector<double>& area, const std::vector<double>& cost) {
  std::vector<std::size_t> idx;
  for (std::size_t i = 0; i < area.size(); ++i) {
    if (area[i] >= 0 && cost[i] >= 0) idx.push_back(i);
  }
  std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
    return area[a] != area[b] ? area[a] < area[b] : cost[a] < cost[b];
  });
  std::vector<bool> on(area.size(), false);
  double best = INFINITY;  // the least cost of every smaller area
  for (std::size_t g = 0; g < idx.size();) {
    std::size_t h = g;
    while (h < idx.size() && area[idx[h]] == area[idx[g]]) ++h;
    const double least = cost[idx[g]];  // the group's least cost (sorted)
    if (least < best) {
      for (std::size_t j = g; j < h && cost[idx[j]] == least; ++j) on[idx[j]] = true;
      best = least;
    }
    g = h;
  }
  return on;
}

// Results, in grid order: one row per point and energy table, energy from stored counts
// (results.csv), and every point with its report and energies (results.json, with `meta`).
// Returns the number of points that did not finish.
std::size_t write_results(const std::string& dir, const std::vector<Axis>& axes, std::vector<Point>& points,
                          const std::vector<EnergyTable>& tables, ojson res) {
  std::string csv = "point";
  for (const auto& a : axes) csv += "," + a.param;
  csv += ",energy_table,cycles_total,cycles_stall,utilization,energy_pj_total,energy_pj_per_mac,area_mm2,time_seconds,"
         "power_w,tops_per_w,pareto_area_time,pareto_area_energy,wall_seconds,status,error\n";
  ojson jpoints = ojson::array();
  std::size_t n_failed = 0;
  // Per point: its report's time and MACs (negative: no report), and per table its energy
  // (evaluated once: total, per MAC, by component) and that total in joules.
  std::vector<double> seconds(points.size(), -1), macs(points.size(), 0);
  std::vector<std::vector<double>> joules(tables.size(), std::vector<double>(points.size(), -1));
  std::vector<std::vector<ojson>> energy(tables.size(), std::vector<ojson>(points.size()));
  std::vector<ojson> reports(points.size());
  for (auto& p : points) {
    if (p.status.empty()) {
      try {
        auto m = nlohmann::json::parse(read_file(fmt::format("{}/points/{}.meta.json", dir, p.id)));
        p.status = m.at("status").get<std::string>();
        p.wall_seconds = m.at("wall_seconds").get<double>();
        p.error = m.value("error", std::string());
        p.exit_code = m.value("exit_code", kExitFailure);
      } catch (...) {
        p.status = "missing";
        p.error = "no result (the rank that ran it did not report)";
        p.exit_code = kExitFailure;
      }
    }
    ojson jp;
    jp["point"] = p.id;
    ojson params = ojson::object();
    for (const auto& [k, v] : p.params) params[k] = v;
    jp["params"] = params;
    jp["status"] = p.status;
    if (!p.error.empty()) jp["error"] = p.error;
    jp["wall_seconds"] = p.wall_seconds;
    ojson report;
    bool have = p.status == "ok";
    if (have) {
      try {
        report = ojson::parse(read_file(fmt::format("{}/points/{}.json", dir, p.id)));
      } catch (const std::exception& e) {
        have = false;
        p.status = "failed";
        p.error = e.what();
        p.exit_code = kExitFailure;
      }
    }
    if (p.status != "ok" && p.status != "over_budget") ++n_failed;
    if (have) {
      seconds[p.index] = report["total"]["time_seconds"].get<double>();
      macs[p.index] = static_cast<double>(report["total"]["macs"].get<std::uint64_t>());
      for (std::size_t t = 0; t < tables.size(); ++t) {
        ojson copy = report;
        ojson e = add_energy(copy, tables[t]);
        joules[t][p.index] = e["total"].get<double>() * 1e-12;
        energy[t][p.index] = ojson{{"total", e["total"]}, {"per_mac", e["per_mac"]}, {"by_component", e["by_component"]}};
      }
      reports[p.index] = std::move(report);
    }
    jpoints.push_back(std::move(jp));
  }
  // The fronts of area against time and against energy (per table), among the finished points.
  std::vector<double> area(points.size());
  for (const auto& p : points) area[p.index] = seconds[p.index] >= 0 ? p.area_mm2 : -1;
  const std::vector<bool> front_time = pareto_front(area, seconds);
  for (auto& p : points) {
    ojson& jp = jpoints[p.index];
    const bool have = seconds[p.index] >= 0;
    if (p.area_mm2 >= 0) jp["area_mm2"] = p.area_mm2;
    if (have) {
      jp["time_seconds"] = seconds[p.index];
      jp["pareto_area_time"] = static_cast<bool>(front_time[p.index]);
    }
    jp["energy_pj"] = ojson::object();
  }
  std::vector<std::vector<bool>> front_energy;
  for (std::size_t t = 0; t < tables.size(); ++t) front_energy.push_back(pareto_front(area, joules[t]));
  for (auto& p : points) {  // rows: point by point, a row per table
    const std::size_t i = p.index;
    for (std::size_t t = 0; t < tables.size(); ++t) {
      std::string row = p.id;
      for (const auto& [k, v] : p.params) row += "," + csv_field(v);
      row += "," + tables[t].name;
      if (seconds[i] >= 0) {
        const double power = joules[t][i] / seconds[i], tops_per_w = 2.0 * macs[i] / joules[t][i] * 1e-12;
        const bool on_e = front_energy[t][i];
        ojson& e = energy[t][i];
        e["power_w"] = power;
        e["tops_per_w"] = tops_per_w;
        e["pareto_area_energy"] = on_e;
        jpoints[i]["energy_pj"][tables[t].name] = e;
        const ojson& tot = reports[i]["total"];
        row += fmt::format(",{},{},{},{},{}", tot["cycles"]["total"].get<std::uint64_t>(),  // full precision
                           tot["cycles"]["stall"].get<std::uint64_t>(), tot["utilization"].get<double>(),
                           e["total"].get<double>(), e["per_mac"].get<double>());
        row += fmt::format(",{},{},{},{},{},{}", p.area_mm2, seconds[i], power, tops_per_w, front_time[i] ? 1 : 0,
                           on_e ? 1 : 0);
      } else {
        row += ",,,,,";
        row += p.area_mm2 >= 0 ? fmt::format(",{},,,,,", p.area_mm2) : std::string(",,,,,,");
      }
      row += fmt::format(",{:.3f},{},{}\n", p.wall_seconds, p.status, csv_field(p.error));
      csv += row;
    }
  }
  for (auto& p : points) {
    if (seconds[p.index] >= 0) jpoints[p.index]["report"] = std::move(reports[p.index]);
  }
  res["points_total"] = points.size();
  res["points_failed"] = n_failed;
  res["units"] = ojson{{"cycles", "clock cycles"}, {"energy", "pJ"},       {"wall_seconds", "s"}, {"area", "mm2"},
                       {"time", "s"},            {"power", "W"},         {"efficiency", "TOPS/W (2 operations per MAC)"}};
  res["pareto_rule"] = "a point is on a front when no other finished point has an area and a time (energy, per table) "
                       "at most its own with one of them smaller";
  res["points"] = std::move(jpoints);
  write_file_atomic(dir + "/results.json", res.dump(1) + "\n");
  write_file_atomic(dir + "/results.csv", csv);
  return n_failed;
}

// How the points of a sweep run: `mfsim simulate` of each, `jobs` at a time.
struct SweepRun {
  std::string exe, dir, trace, mode, table, config;
  int jobs = 1;
  double timeout = 0;
  bool show = false;  // progress bar
};

// Runs the points `todo` (indices into `points`; `done` of `mine` already finished), each its
// own process (process.h), and records each point's status in points/ID.meta.json.
void run_points(const SweepRun& run, std::vector<Point>& points, const std::vector<std::size_t>& todo,
                std::size_t done, std::size_t mine) {
  std::error_code ec;
  std::size_t failed = 0;
  // A stopped sweep stops its children and leaves no temporary files (a resumed one removes
  // any that a killed sweep left). Only this process's points': under MPI another rank's
  // points are being written at the same time in the same directory.
  auto remove_own_temporaries = [&] {
    for (std::size_t i : todo) remove_temporary_files(run.dir, points[i].id + ".");
  };
  remove_own_temporaries();
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  ProcessPool::Callbacks cb;
  cb.start = [&](std::size_t j) {
    const Point& p = points[todo[j]];
    std::filesystem::remove(fmt::format("{}/points/{}.meta.json", run.dir, p.id), ec);
    std::vector<std::string> argv = {run.exe, "simulate", "-q", "--trace", run.trace, "--mode", run.mode,
                                     "--energy-table", run.table,
                                     "--report", fmt::format("{}/points/{}.json", run.dir, p.id)};
    if (!run.config.empty()) {
      argv.push_back("--config");
      argv.push_back(run.config);
    }
    for (const auto& [name, value] : p.params) {
      argv.push_back("--set");
      argv.push_back(name + "=" + value);
    }
    return std::pair{argv, fmt::format("{}/points/{}.log", run.dir, p.id)};
  };
  cb.done = [&](std::size_t j, const ChildResult& r) {
    Point& p = points[todo[j]];
    p.wall_seconds = r.wall_seconds;
    p.exit_code = r.timed_out || r.signal != 0 ? kExitFailure : r.exit_code;
    if (r.timed_out) {
      p.status = "timeout";
      p.error = fmt::format("killed after {} s (--point-timeout)", run.timeout);
    } else if (r.exit_code == kExitOk && r.signal == 0) {
      p.status = "ok";
      p.error.clear();
    } else {
      p.status = "failed";
      p.error = r.signal != 0 ? fmt::format("killed by signal {}", r.signal)
                              : last_error_line(fmt::format("{}/points/{}.log", run.dir, p.id));
    }
    if (p.status != "ok") {
      ++failed;
      remove_temporary_files(run.dir, p.id + ".");
    }
    write_meta(run.dir, p);
    ++done;
  };
  cb.tick = [&] {
    if (run.show) progress(done, mine, failed, elapsed(), false);
  };
  cb.on_stop = [&](int sig) {
    remove_own_temporaries();
    if (is_terminal()) std::fputc('\n', stderr);
    std::fprintf(stderr, "mfsim: sweep stopped by signal %d; %zu of %zu points done; continue with --resume\n", sig,
                 done, mine);
  };
  ProcessPool(run.jobs, run.timeout).run(todo.size(), cb);
  if (run.show) progress(done, mine, failed, elapsed(), true);
}

// The grid: the four array axes and every --set axis, each value validated against the
// parameter declarations, and its size checked before anything is allocated or created for it.
std::vector<Axis> parse_grid(const po::variables_map& vm) {
  const std::string arrays = vm["arrays"].as<std::string>();
  std::vector<std::string> kinds;
  if (arrays == "all") {
    for (const PeType* pe : pe_types()) kinds.emplace_back(pe->name);
  } else {
    kinds = split(arrays, ',');
  }
  std::vector<Axis> axes = {{"array.kind", kinds},
                            {"array.rows", split(vm["rows"].as<std::string>(), ',')},
                            {"array.cols", split(vm["cols"].as<std::string>(), ',')},
                            {"array.dataflow", split(vm["dataflow"].as<std::string>(), ',')}};
  if (vm.count("set") != 0) {
    for (const auto& s : vm["set"].as<std::vector<std::string>>()) {
      auto eq = s.find('=');
      if (eq == std::string::npos || eq == 0) throw InputError(fmt::format("--set {}: expected NAME=V1,V2,...", s));
      std::string name = s.substr(0, eq);
      for (const auto& a : axes) {
        if (a.param == name) throw InputError(fmt::format("--set {}: {} is already swept", s, name));
      }
      axes.push_back({name, split(s.substr(eq + 1), ',')});
    }
  }
  const char* flags[] = {"--arrays", "--rows", "--cols", "--dataflow"};
  constexpr std::size_t kMaxPoints = 1000000;
  std::size_t total = 1;
  for (const auto& a : axes) {
    if (__builtin_mul_overflow(total, a.values.size(), &total) || total > kMaxPoints) {
      throw InputError(fmt::format("sweep: the grid has more than {} points; split it into several sweeps", kMaxPoints));
    }
  }
  for (std::size_t a = 0; a < axes.size(); ++a) {
    std::string origin = a < 4 ? flags[a] : "--set " + axes[a].param;
    if (axes[a].values.empty()) throw InputError(fmt::format("{}: expected at least one value", origin));
    ParamSet probe;
    for (const auto& v : axes[a].values) probe.set(axes[a].param, v, origin);
  }
  return axes;
}

// The points of the grid in order (the last axis varies fastest), ids p00000, p00001, ...
std::vector<Point> enumerate_points(const std::vector<Axis>& axes) {
  std::size_t total = 1;
  for (const auto& a : axes) total *= a.values.size();  // checked by parse_grid
  std::vector<Point> points;

  for (std::size_t i = 0; i < total; ++i) {
    Point p;
    p.index = i;
    p.id = fmt::format("p{:05d}", i);
    std::size_t rest = i;
    std::vector<std::pair<std::string, std::string>> params(axes.size());
    for (std::size_t a = axes.size(); a-- > 0;) {
      params[a] = {axes[a].param, axes[a].values[rest % axes[a].values.size()]};
      rest /= axes[a].values.size();
    }
    p.params = params;
    points.push_back(p);
  }
  return points;
}

// What an energy table prices (its parsed rows, full precision): the point's identity holds it,
// because the table a point is simulated with steers map.objective = energy | edp and the
// energy inside the point's report.
std::string table_hash(const EnergyTable& t) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& e : t.entries) {
    rows.push_back({e.action, e.unit, e.value, e.node_nm, e.bits, e.capacity_kib, e.scaling, e.derivation});
  }
  return content_hash(nlohmann::json{{"name", t.name}, {"rows", rows}}.dump());
}

// --point-timeout: seconds in [0, 1e9] (0: no limit), as typed.
double parse_timeout(const std::string& s) {
  constexpr double kMax = 1e9;  // about 31 years: anything longer means "no limit", which is 0
  const std::optional<double> v = parse_finite_number(s);
  if (!v || *v < 0 || *v > kMax) {
    throw InputError(fmt::format("sweep: --point-timeout: expected seconds in [0, {:g}] (0: no limit), got \"{}\"", kMax, s));
  }
  return *v;
}

// The energy tables: at least one, no name twice (results are keyed by the table's name).
std::vector<EnergyTable> load_tables(const std::vector<std::string>& args) {
  if (args.empty()) throw InputError("sweep: --energy-table: expected at least one table");
  std::vector<EnergyTable> tables;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i].empty()) throw InputError("sweep: --energy-table: empty table name in the list");
    for (std::size_t j = 0; j < i; ++j) {
      if (args[j] == args[i]) throw InputError(fmt::format("sweep: --energy-table: {} is given twice", args[i]));
    }
    tables.push_back(load_energy_table(args[i]));
    for (std::size_t j = 0; j < i; ++j) {
      if (tables[j].name == tables[i].name) {
        throw InputError(fmt::format("sweep: --energy-table: {} and {} are both named \"{}\"; results are keyed by name",
                                     args[j], args[i], tables[i].name));
      }
    }
  }
  return tables;
}

// One stderr line per failed point (the first 20; results.csv lists every one), and the exit
// code of a sweep with failures (docs/sweeps.md): 3 if any point's results did not verify, 2 if
// every failure was a point the simulator refused as bad input, 1 otherwise.
int report_failures(const std::string& dir, const std::vector<Point>& points) {
  constexpr std::size_t kListed = 20;
  std::size_t failed = 0;
  bool mismatch = false, all_bad_input = true;
  for (const auto& p : points) {
    if (p.status == "ok" || p.status == "over_budget") continue;
    ++failed;
    mismatch = mismatch || p.exit_code == kExitMismatch;
    all_bad_input = all_bad_input && p.exit_code == kExitBadInput;
    if (failed > kListed) continue;
    std::string params;
    for (const auto& [k, v] : p.params) params += (params.empty() ? "" : " ") + k + "=" + v;
    std::fprintf(stderr, "mfsim: sweep: %s (%s): %s: %s (log: %s/points/%s.log)\n", p.id.c_str(), params.c_str(),
                 p.status.c_str(), p.error.c_str(), dir.c_str(), p.id.c_str());
  }
  if (failed == 0) return kExitOk;
  if (failed > kListed) {
    std::fprintf(stderr, "mfsim: sweep: ... and %zu more failed points (all in %s/results.csv)\n", failed - kListed,
                 dir.c_str());
  }
  std::fprintf(stderr, "mfsim: sweep: %zu of %zu points failed; results in %s/results.csv\n", failed, points.size(),
               dir.c_str());
  return mismatch ? kExitMismatch : all_bad_input ? kExitBadInput : kExitFailure;
}

int cmd_sweep(const Args& args) {
  po::options_description opts("options");
  opts.add_options()
      ("trace", po::value<std::string>(), "trace file (.json)")
      ("out", po::value<std::string>(), "output directory (sweep.json, results.csv, results.json, points/)")
      ("arrays", po::value<std::string>()->default_value("all"), "array kinds, comma-separated, or all (every PE type)")
      ("rows", po::value<std::string>()->default_value("32"), "array rows, comma-separated")
      ("cols", po::value<std::string>()->default_value("32"), "array columns, comma-separated")
      ("dataflow", po::value<std::string>()->default_value("os"), "dataflows, comma-separated")
      ("set", po::value<std::vector<std::string>>()->composing(), "NAME=V1,V2,... any declared parameter")
      ("config", po::value<std::string>(), "JSON file of parameters for every point")
      ("energy-table", po::value<std::string>()->default_value("paper"), "energy tables, comma-separated (no re-simulation per table; the first is the one points are simulated with)")
      ("mode", po::value<std::string>()->default_value("auto"), "auto|value|timing")
      ("jobs,j", po::value<int>(), "points at once, 1 to 1024 (default: the number of cores)")
      ("resume", "continue the sweep in DIR: reuse the points whose identity matches, run the rest")
      ("point-timeout", po::value<std::string>()->default_value("0"), "seconds before a point is killed (0: none)")
      ("area-budget", po::value<std::string>(), "MM2: run only the points whose array area (published45 table) is at most this; the others are listed as over_budget")
      ("quiet,q", "no progress bar, no summary line");
  po::variables_map vm;
  if (!parse_or_help("sweep", "--trace FILE --out DIR [grid options]", args, opts, {}, vm)) return kExitOk;
  for (const char* required : {"trace", "out"}) {
    if (vm.count(required) == 0) {
      throw InputError(fmt::format("sweep: missing option --{}; see 'mfsim sweep --help'", required));
    }
  }
  const std::string dir = vm["out"].as<std::string>();
  if (dir.empty()) throw InputError("sweep: --out: expected a directory, got \"\"");
  const std::vector<Axis> axes = parse_grid(vm);
  const std::vector<std::string> table_args = split(vm["energy-table"].as<std::string>(), ',');
  const std::vector<EnergyTable> tables = load_tables(table_args);
  const std::string mode = vm["mode"].as<std::string>();
  SimMode sim_mode{};
  if (!parse_sim_mode(mode, &sim_mode)) {
    throw InputError(fmt::format("sweep: --mode: unknown value \"{}\"; expected auto|value|timing", mode));
  }
  const bool resume = vm.count("resume") != 0;
  double budget_mm2 = -1;  // --area-budget; -1: none
  if (vm.count("area-budget") != 0) {
    const std::string b = vm["area-budget"].as<std::string>();
    const std::optional<double> v = parse_finite_number(b);
    if (!v || !(*v > 0)) {
      throw InputError(fmt::format("sweep: --area-budget: expected an area in mm^2 (a positive number), got \"{}\"", b));
    }
    budget_mm2 = *v;
  }
  const double timeout = parse_timeout(vm["point-timeout"].as<std::string>());
  constexpr int kMaxJobs = 1024;
  int jobs = vm.count("jobs") != 0
                 ? vm["jobs"].as<int>()
                 : static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, static_cast<unsigned>(kMaxJobs)));
  if (jobs < 1 || jobs > kMaxJobs) {
    throw InputError(fmt::format("sweep: -j: expected an integer in [1, {}], got {}", kMaxJobs, jobs));
  }
  // Every point's parameters start from the defaults and --config (each point's grid values
  // override them, as --set does in simulate).
  ParamSet base;
  if (vm.count("config") != 0) base.load_config_file(vm["config"].as<std::string>());
  // The trace is validated before anything runs; its JSON bytes (which hold every payload's
  // CRC-32, checked whenever a point reads the payload) identify its content.
  const std::string trace = std::filesystem::absolute(vm["trace"].as<std::string>()).string();
  TraceReader(trace).require_gemms("sweep");
  const std::string trace_hash = content_hash(read_file(trace));
  const std::string sim_table_hash = table_hash(tables.front());
  const nlohmann::json definition = {{"mfsim_version", MFSIM_VERSION},
                                     {"trace", {{"path", trace}, {"hash", trace_hash}}},
                                     {"mode", mode},
                                     {"energy_table", {{"name", table_args.front()}, {"hash", sim_table_hash}}}};
  const std::string def_path = dir + "/sweep.json";
  if (resume) {
    if (!std::filesystem::is_regular_file(def_path)) {
      throw InputError(fmt::format("sweep: --resume: {} holds no sweep to resume (no {}); run without --resume to start one",
                                   dir, def_path));
    }
    const std::string diff = definition_difference(read_file(def_path), definition);
    if (!diff.empty()) throw InputError(fmt::format("--out: {} holds a sweep {}; choose another --out for this one", dir, diff));
  }

  int rank = 0, ranks = 1;
#ifdef MFSIM_HAVE_MPI
  const bool under_mpi = std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMI_SIZE") != nullptr ||
                         std::getenv("PMIX_RANK") != nullptr;
  if (under_mpi) {
    MPI_Init(nullptr, nullptr);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  }
#endif

  std::error_code ec;
  std::filesystem::create_directories(dir + "/points", ec);
  if (ec) throw InputError(fmt::format("--out: cannot create {}: {}", dir, ec.message()));
  if (!resume && rank == 0 && std::filesystem::exists(dir + "/results.csv")) {
    throw InputError(fmt::format("--out: {} already holds a sweep; pass --resume to continue it or choose another directory", dir));
  }
  // The definition first (before any point runs: a resume compares against it), then the
  // resolved --config that every point is simulated with (a later edit of the file cannot make
  // points disagree with their identities).
  write_file_atomic(def_path, definition.dump(1) + "\n");
  std::string config_snapshot;
  if (vm.count("config") != 0) {
    config_snapshot = dir + "/config.json";
    write_file_atomic(config_snapshot, base.to_json().dump(1) + "\n");
  }

  // Every point (the last axis varies fastest), with its area (the function that writes the
  // area of its simulate report, same table); this rank's share below, each with its identity.
  std::vector<Point> points = enumerate_points(axes);
  const AreaTable area_table = load_area_table("published45");
  for (auto& p : points) {
    ParamSet ps = base;
    for (const auto& [name, value] : p.params) ps.set(name, value, "--set " + name);  // validated by parse_grid
    try {  // a combination the simulator refuses fails as its point, with simulate's message
      const ArrayArea a = array_area(ps.build(), area_table);
      if (a.complete()) p.area_mm2 = a.total_um2 * 1e-6;
    } catch (const InputError&) {
    }
    if (budget_mm2 > 0 && p.area_mm2 > budget_mm2) {
      p.status = "over_budget";
      p.error = fmt::format("area {:.6g} mm^2 exceeds --area-budget {:.6g} mm^2: not run", p.area_mm2, budget_mm2);
    }
  }
  std::vector<std::size_t> todo;
  std::size_t done = 0;
  for (auto& p : points) {
    if (p.index % static_cast<std::size_t>(ranks) != static_cast<std::size_t>(rank)) continue;
    if (p.status == "over_budget") continue;
    ParamSet ps = base;
    for (const auto& [name, value] : p.params) ps.set(name, value, "--set " + name);  // validated by parse_grid
    p.identity = nlohmann::json{{"mfsim_version", MFSIM_VERSION},
                                {"trace", trace_hash},
                                {"mode", mode},
                                {"energy_table", sim_table_hash},
                                {"params", ps.to_json()}}
                     .dump();
    if (resume && load_finished(dir, p)) {
      ++done;
      continue;
    }
    todo.push_back(p.index);
  }
  const std::size_t mine = todo.size() + done;
  SweepRun run;
  run.exe = self_executable();
  run.dir = dir;
  run.trace = trace;
  run.mode = mode;
  run.table = table_args.front();
  run.config = config_snapshot;
  run.jobs = jobs;
  run.timeout = timeout;
  run.show = vm.count("quiet") == 0 && is_terminal() && rank == 0;
  run_points(run, points, todo, done, mine);

#ifdef MFSIM_HAVE_MPI
  if (ranks > 1) {
    gather_points(points, rank, ranks, dir);
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Finalize();
    if (rank != 0) return kExitOk;
  }
#endif

  ojson res;
  res["mfsim_version"] = MFSIM_VERSION;
  std::string cmd = "mfsim sweep";
  for (const auto& a : args) cmd += " " + a;
  res["command"] = cmd;
  res["trace"] = trace;
  res["trace_hash"] = trace_hash;
  ojson jaxes = ojson::object();
  for (const auto& a : axes) jaxes[a.param] = a.values;
  res["axes"] = jaxes;
  std::vector<std::string> tnames;
  for (const auto& t : tables) tnames.push_back(t.name);
  res["energy_tables"] = tnames;
  ojson arrays = ojson::object();  // the swept PE types' titles and chart colours, in report order
  for (const PeType* pe : pe_types()) {
    const auto& kinds = axes.front().values;
    if (std::find(kinds.begin(), kinds.end(), pe->name) != kinds.end()) {
      arrays[pe->name] = ojson{{"title", pe->title}, {"color", pe->color}};
    }
  }
  res["arrays"] = arrays;
  res["mpi_ranks"] = ranks;
  res["area_table"] = area_table.name;
  if (budget_mm2 > 0) res["area_budget_mm2"] = budget_mm2;
  const std::size_t n_failed = write_results(dir, axes, points, tables, std::move(res));
  if (vm.count("quiet") == 0) {
    const auto over = static_cast<std::size_t>(
        std::count_if(points.begin(), points.end(), [](const Point& p) { return p.status == "over_budget"; }));
    std::printf("sweep: %zu points (%zu failed%s), %zu energy table%s -> %s/results.csv\n", points.size(), n_failed,
                over == 0 ? "" : fmt::format(", {} over the area budget", over).c_str(), tables.size(),
                tables.size() == 1 ? "" : "s", dir.c_str());
  }
  return report_failures(dir, points);
}

}  // namespace mfsim::cli
