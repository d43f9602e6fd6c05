// mfsim._core: the native part of the Python module (python/mfsim/__init__.py is its interface).
// Every call goes to the C++ library the command line uses (apps/mfsim/api.h, the cmd_* functions):
// reports cross as their canonical JSON text, so the Python dict is the CLI's report key by key.
// Simulations release the GIL; Ctrl-C in the main thread stops them between GEMMs (common/cancel.h)
// and raises KeyboardInterrupt. Errors become mfsim.InputError (exit kind 2) and
// mfsim.VerificationError (exit kind 3) with the command line's one-line message.
#include <fmt/format.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "apps/mfsim/api.h"
#include "apps/mfsim/cli.h"
#include "apps/mfsim/process.h"
#include "apps/mfsim/report_tables.h"
#include "common/cancel.h"
#include "common/error.h"
#include "energy/area_model.h"
#include "energy/energy_table.h"
#include "sim/params.h"
#include "sim/pe_type.h"
#include "traces/trace_reader.h"

namespace py = pybind11;
using ojson = nlohmann::ordered_json;

namespace {

// simulate's mismatch: the message and the report that goes with it (VerificationError.report).
struct MismatchError : mfsim::VerificationError {
  MismatchError(const std::string& msg, std::string report) : mfsim::VerificationError(msg), report_text(std::move(report)) {}
  std::string report_text;
};

// A trace held by Python: read from a file, or from JSON text and payload bytes in memory.
struct PyTrace {
  std::shared_ptr<mfsim::TraceReader> reader;
  std::string name;
  bool in_memory = false;
};

// SIGINT (and SIGTERM) request a cancel while a call runs in the main thread; the handlers
// Python had are restored when it returns.
class CancelScope {
 public:
  explicit CancelScope(bool active) : active_(active) {
    mfsim::clear_cancel();
    if (!active_) return;
    struct sigaction a {};
    a.sa_handler = [](int sig) { mfsim::request_cancel(sig); };
    sigemptyset(&a.sa_mask);
    sigaction(SIGINT, &a, &saved_int_);
    sigaction(SIGTERM, &a, &saved_term_);
  }
  ~CancelScope() {
    if (active_) {
      sigaction(SIGINT, &saved_int_, nullptr);
      sigaction(SIGTERM, &saved_term_, nullptr);
    }
    mfsim::clear_cancel();
  }
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;

 private:
  bool active_;
  struct sigaction saved_int_ {}, saved_term_ {};
};

// Runs `work` without the GIL. From the main thread (`main_thread`), SIGINT and SIGTERM stop it
// between GEMMs (CancelScope); otherwise the process pool's own handlers, or none, apply.
template <class Work>
auto without_gil(bool main_thread, Work&& work) {
  py::gil_scoped_release release;
  CancelScope cancel(main_thread);
  return work();
}

mfsim::SimMode mode_of(const std::string& s, const char* call) {
  mfsim::SimMode m{};
  if (!mfsim::parse_sim_mode(s, &m)) {
    throw mfsim::InputError(fmt::format("{}: mode: unknown value \"{}\"; expected auto|value|timing", call, s));
  }
  return m;
}

// The parameters of a call: the keyword shorthands (array, rows, cols, dataflow), then `params`
// (JSON text of a dict, nested objects or dotted keys, read as a --config file), which overrides
// them as --set overrides the command line's shorthands.
mfsim::ParamSet param_set(const std::string& params_json, const std::vector<std::pair<std::string, std::string>>& shorthands) {
  mfsim::ParamSet p;
  for (const auto& [name, value] : shorthands) {
    const std::string flag = name.substr(name.find('.') + 1);
    p.set(name, value, flag == "kind" ? "array" : flag);
  }
  if (!params_json.empty() && params_json != "{}") p.load_config_text(params_json, "params");
  return p;
}

std::string simulate(const PyTrace& t, const std::string& params_json,
                     const std::vector<std::pair<std::string, std::string>>& shorthands, const std::string& mode,
                     const std::string& energy_table, const std::string& area_table, const std::string& vcd,
                     bool main_thread) {
  mfsim::api::SimulateOptions o;
  o.params = param_set(params_json, shorthands);
  o.mode = mode_of(mode, "simulate");
  o.energy_table = mfsim::load_energy_table(energy_table);
  o.area_table = mfsim::load_area_table(area_table);
  o.vcd_path = vcd;
  const mfsim::ReplayOutcome res = without_gil(main_thread, [&] { return mfsim::api::simulate(*t.reader, o); });
  std::string text = res.report.dump(2) + "\n";
  if (res.mismatches > 0) {
    throw MismatchError(mfsim::api::mismatch_message(res, "the exception's .report"), text);
  }
  return text;
}

std::string compare(const PyTrace& t, const std::string& params_json,
                    const std::vector<std::pair<std::string, std::string>>& shorthands, const std::string& mode,
                    const std::string& tables, const std::string& arrays, bool iso_area, double area_budget_mm2,
                    bool main_thread) {
  mfsim::api::CompareRequest req;
  req.params = param_set(params_json, shorthands);
  req.mode = mode_of(mode, "compare");
  req.energy_tables = tables;
  req.arrays = arrays;
  req.iso_area = iso_area || area_budget_mm2 > 0;
  req.area_budget_mm2 = area_budget_mm2;
  const ojson out = without_gil(main_thread, [&] { return mfsim::api::compare(*t.reader, req, "mfsim.compare (Python)"); });
  return out.dump(2) + "\n";
}

// A subcommand of the command line, in this process (sweep runs its points as mfsim processes).
int run_command(const std::string& name, const std::vector<std::string>& args) {
  using Fn = int (*)(const mfsim::cli::Args&);
  static const std::pair<const char*, Fn> commands[] = {
      {"trace", mfsim::cli::cmd_trace}, {"sweep", mfsim::cli::cmd_sweep},
      {"example-trace", mfsim::cli::cmd_example_trace}, {"inspect", mfsim::cli::cmd_inspect}};
  for (const auto& [n, fn] : commands) {
    if (name == n) return without_gil(false, [&] { return fn(args); });  // sweep's pool handles Ctrl-C
  }
  throw mfsim::InputError(fmt::format("unknown command \"{}\"", name));
}

std::string params_json() {
  ojson out = ojson::array();
  const char* types[] = {"int", "number", "choice", "bool", "tiles"};
  for (const mfsim::ParamSpec& s : mfsim::param_specs()) {
    ojson p;
    p["name"] = s.name;
    p["type"] = types[static_cast<int>(s.type)];
    p["default"] = s.default_value;
    p["unit"] = s.unit;
    if (s.type == mfsim::ParamType::kInt || s.type == mfsim::ParamType::kNumber) {
      p["min"] = s.min;
      p["max"] = s.max;
    }
    if (s.type == mfsim::ParamType::kChoice) p["choices"] = s.choices;
    p["description"] = s.description;
    out.push_back(p);
  }
  return out.dump();
}

std::string energy_table_json(const std::string& name) {
  const mfsim::EnergyTable t = mfsim::load_energy_table(name);
  ojson out;
  out["name"] = t.name;
  out["description"] = t.description;
  out["origin"] = t.origin;
  ojson rows = ojson::array();
  for (const auto& e : t.entries) {
    ojson r{{"action", e.action}, {"value", e.value}, {"unit", e.unit}, {"node_nm", e.node_nm},
            {"bits", e.bits},     {"source", e.source}, {"derivation", e.derivation}, {"scaling", e.scaling}};
    if (e.capacity_kib > 0) r["capacity_kib"] = e.capacity_kib;
    rows.push_back(r);
  }
  out["entries"] = rows;
  ojson ops = ojson::object();
  for (const auto& [action, pj] : t.op_pj) ops[action] = pj;
  out["op_pj"] = ops;
  return out.dump();
}

std::string report_table_json(const std::string& report_text, const std::string& which, const std::string& format) {
  mfsim::ReportTable w{};
  if (!mfsim::parse_report_table(which, &w)) {
    throw mfsim::InputError(fmt::format("table: unknown table \"{}\"; expected gemm|layer|phase", which));
  }
  const ojson rows = mfsim::report_table(ojson::parse(report_text), w);
  if (format == "csv") return mfsim::table_csv(rows);
  if (format == "text") return mfsim::table_text(rows);
  return rows.dump();
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "mfsim's native core (use the mfsim package)";
  m.attr("version") = MFSIM_VERSION;

  // Errors: mfsim.errors defines the classes; C++ exceptions map onto them here.
  py::register_exception_translator([](std::exception_ptr p) {
    auto raise = [](const char* cls, const std::string& msg) {
      py::object type = py::module_::import("mfsim.errors").attr(cls);
      PyErr_SetObject(type.ptr(), py::str(msg).ptr());
    };
    try {
      if (p) std::rethrow_exception(p);
    } catch (const MismatchError& e) {
      py::object type = py::module_::import("mfsim.errors").attr("VerificationError");
      PyErr_SetObject(type.ptr(), py::make_tuple(e.what(), e.report_text).ptr());
    } catch (const mfsim::InputError& e) {
      raise("InputError", e.what());
    } catch (const mfsim::VerificationError& e) {
      raise("VerificationError", e.what());
    } catch (const mfsim::Cancelled&) {
      PyErr_SetNone(PyExc_KeyboardInterrupt);
    }
  });

  py::class_<PyTrace>(m, "NativeTrace")
      .def_readonly("name", &PyTrace::name)
      .def_readonly("in_memory", &PyTrace::in_memory)
      .def("gemm_count", [](const PyTrace& t) { return t.reader->trace().records.size(); });

  m.def("load_trace", [](const std::string& path) {
    PyTrace t;
    {
      py::gil_scoped_release release;
      t.reader = std::make_shared<mfsim::TraceReader>(path);
    }
    t.name = path;
    return t;
  }, py::arg("path"));
  m.def("trace_from_memory", [](const std::string& name, const std::string& json_text, const py::bytes& payload) {
    const std::string p = payload;
    PyTrace t;
    t.reader = std::make_shared<mfsim::TraceReader>(name, json_text, std::vector<std::uint8_t>(p.begin(), p.end()));
    t.name = name;
    t.in_memory = true;
    return t;
  }, py::arg("name"), py::arg("json_text"), py::arg("payload"));
  m.def("simulate", &simulate);
  m.def("compare", &compare);
  m.def("run_command", &run_command);
  // sweep's children: the mfsim executable this module was built with (MFSIM_EXECUTABLE in the
  // environment overrides it, in mfsim/__init__.py); a stop request raises KeyboardInterrupt
  // instead of ending the interpreter.
  mfsim::cli::set_executable(MFSIM_EXECUTABLE);
  mfsim::cli::set_stop_by_exception(true);
  m.attr("executable") = MFSIM_EXECUTABLE;
  m.def("set_executable", [](const std::string& path) { mfsim::cli::set_executable(path); });
  m.def("params", &params_json);
  m.def("pe_types", [] {
    std::vector<std::string> out;
    for (const mfsim::PeType* pe : mfsim::pe_types()) out.emplace_back(pe->name);
    return out;
  });
  m.def("energy_table", &energy_table_json);
  m.def("report_table", &report_table_json);
}
