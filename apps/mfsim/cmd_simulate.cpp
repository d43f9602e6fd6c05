// mfsim simulate --trace FILE --report FILE.json [--array A] [--rows R] [--cols C]
//                [--dataflow D] [--config FILE] [--set NAME=VALUE ...] [--mode M] [--vcd FILE]
//                [--layers-csv FILE] [--layers] [--list-params [--markdown]]
#include <fmt/format.h>

#include <cstdio>
#include <memory>

#include "apps/mfsim/api.h"
#include "apps/mfsim/cli.h"
#include "apps/mfsim/report_tables.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "energy/area_model.h"
#include "energy/energy_model.h"
#include "sim/params.h"
#include "sim/pe_type.h"
#include "sim/replay.h"

namespace po = boost::program_options;

namespace mfsim::cli {

int cmd_simulate(const Args& args) {
  po::options_description opts("options");
  const std::string array_help = "shorthand for --set array.kind=" + pe_type_names();  // from the PE registry
  opts.add_options()
      ("trace", po::value<std::string>(), "trace file (.json)")
      ("report", po::value<std::string>(), "JSON report to write (atomically)")
      ("array", po::value<std::string>(), array_help.c_str())
      ("rows", po::value<std::string>(), "shorthand for --set array.rows=R")
      ("cols", po::value<std::string>(), "shorthand for --set array.cols=C")
      ("dataflow", po::value<std::string>(), "shorthand for --set array.dataflow=os|ws|is")
      ("config", po::value<std::string>(), "JSON file of parameters (nested objects or dotted keys)")
      ("set", po::value<std::vector<std::string>>()->composing(), "NAME=VALUE, repeatable; overrides --config and the shorthands")
      ("mode", po::value<std::string>()->default_value("auto"), "auto|value|timing (docs/cycle-semantics.md)")
      ("vcd", po::value<std::string>(), "write a VCD waveform of the value-mode simulation (small runs)")
      ("energy-table", po::value<std::string>()->default_value("paper"), "energy table: paper|horowitz45|aladdin45 or a JSON file")
      ("energy-csv", po::value<std::string>(), "also write the energy items as an Accelergy-shaped CSV")
      ("area-table", po::value<std::string>(), "area table: published45 (the default) or a JSON file")
      ("layers-csv", po::value<std::string>(), "also write the per-layer table (cycles, DRAM bytes, energy) as CSV")
      ("layers", "print the per-layer table after the summary")
      ("quiet,q", "no summary on stdout")
      ("list-params", "print every parameter with default, unit and range, then exit")
      ("markdown", "with --list-params: print docs/params.md");
  po::variables_map vm;
  if (!parse_or_help("simulate", "--trace FILE --report FILE.json [options]", args, opts, {}, vm)) {
    return kExitOk;
  }
  if (vm.count("list-params") != 0) {
    std::fputs(vm.count("markdown") != 0 ? params_markdown().c_str() : params_table_text().c_str(), stdout);
    return kExitOk;
  }
  for (const char* required : {"trace", "report"}) {
    if (vm.count(required) == 0) {
      throw InputError(fmt::format("simulate: missing option --{}; see 'mfsim simulate --help'", required));
    }
  }
  ParamSet params;
  if (vm.count("config") != 0) params.load_config_file(vm["config"].as<std::string>());
  const std::pair<const char*, const char*> shorthands[] = {
      {"array", "array.kind"}, {"rows", "array.rows"}, {"cols", "array.cols"}, {"dataflow", "array.dataflow"}};
  for (const auto& [flag, name] : shorthands) {
    if (vm.count(flag) != 0) params.set(name, vm[flag].as<std::string>(), fmt::format("--{}", flag));
  }
  if (vm.count("set") != 0) {
    for (const auto& a : vm["set"].as<std::vector<std::string>>()) params.set_assignment(a);
  }
  (void)params.build();  // a parameter error first, as one line
  api::SimulateOptions opt;
  opt.params = params;
  if (!parse_sim_mode(vm["mode"].as<std::string>(), &opt.mode)) {
    throw InputError(fmt::format("simulate: --mode: unknown value \"{}\"; expected auto|value|timing",
                                 vm["mode"].as<std::string>()));
  }
  if (vm.count("vcd") != 0) {
    opt.vcd_path = vm["vcd"].as<std::string>();
    const std::string& v = opt.vcd_path;
    if (v.size() <= 4 || v.compare(v.size() - 4, 4, ".vcd") != 0) {
      throw InputError(fmt::format("simulate: --vcd: \"{}\" must end in .vcd (the waveform file's name)", v));
    }
    if (opt.mode == SimMode::kTiming) {
      throw InputError("simulate: --vcd: timing mode simulates no register, so there is no waveform; use --mode value or auto");
    }
  }
  std::string cmd = "mfsim simulate";
  for (const auto& a : args) cmd += " " + a;
  opt.command_line = cmd;
  const std::string report_path = vm["report"].as<std::string>();
  // The tables first (a bad table fails before any file is touched), then the trace: its files
  // are inputs, so no output may be one of them.
  opt.energy_table = load_energy_table(vm["energy-table"].as<std::string>());
  opt.area_table = load_area_table(vm.count("area-table") != 0 ? vm["area-table"].as<std::string>() : "published45");
  TraceReader reader(vm["trace"].as<std::string>());
  AtomicFile report_file(report_path);  // fails early if the report cannot be written
  // Before the simulation (SystemC cannot report a failed open); after the inputs are known.
  if (!opt.vcd_path.empty()) require_writable_file(opt.vcd_path);
  std::unique_ptr<AtomicFile> csv_file;
  if (vm.count("energy-csv") != 0) csv_file = std::make_unique<AtomicFile>(vm["energy-csv"].as<std::string>());
  std::unique_ptr<AtomicFile> layers_file;
  if (vm.count("layers-csv") != 0) layers_file = std::make_unique<AtomicFile>(vm["layers-csv"].as<std::string>());
  const ReplayOutcome res = api::simulate(reader, opt);
  const nlohmann::ordered_json& energy = res.report.at("energy_pj");
  report_file.write(res.report.dump(2) + "\n");
  report_file.commit();
  if (csv_file) {
    csv_file->write(energy_csv(energy));
    csv_file->commit();
  }
  if (layers_file) {
    layers_file->write(table_csv(report_table(res.report, ReportTable::kLayer)));
    layers_file->commit();
  }
  if (vm.count("quiet") == 0) {
    std::fputs(report_summary_text(res.report).c_str(), stdout);
    std::fputs(area_power_text(res.report).c_str(), stdout);
    if (vm.count("layers") != 0) std::fputs(("\n" + table_text(report_table(res.report, ReportTable::kLayer))).c_str(), stdout);
  }
  if (res.mismatches > 0) {
    throw VerificationError(api::mismatch_message(res, report_path));
  }
  return kExitOk;
}

}  // namespace mfsim::cli
