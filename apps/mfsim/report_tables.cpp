#include "apps/mfsim/report_tables.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <vector>

#include "common/error.h"

namespace mfsim {

using ojson = nlohmann::ordered_json;

bool parse_report_table(const std::string& s, ReportTable* out) {
  if (s == "gemm") *out = ReportTable::kGemm;
  else if (s == "layer") *out = ReportTable::kLayer;
  else if (s == "phase") *out = ReportTable::kPhase;
  else return false;
  return true;
}

namespace {

std::uint64_t u64(const ojson& j, const char* key) { return j.contains(key) ? j.at(key).get<std::uint64_t>() : 0; }

// The summed columns of a GEMM's row (counts as integers, energies in pJ), in table order.
struct Sums {
  std::uint64_t gemms = 0, macs = 0, cycles = 0, compute = 0, stall = 0, mac_slots = 0, dram = 0, compulsory = 0;
  std::vector<std::pair<std::string, double>> energy;  // "total" then each component

  void add(const Sums& o) {
    gemms += o.gemms;
    macs += o.macs;
    cycles += o.cycles;
    compute += o.compute;
    stall += o.stall;
    mac_slots += o.mac_slots;
    dram += o.dram;
    compulsory += o.compulsory;
    if (energy.empty()) {
      energy = o.energy;
    } else {
      for (std::size_t i = 0; i < energy.size(); ++i) energy[i].second += o.energy[i].second;
    }
  }
};

Sums gemm_sums(const ojson& g) {
  Sums s;
  s.gemms = u64(g, "repeat");
  s.macs = u64(g, "macs");
  s.cycles = u64(g["cycles"], "total");
  s.compute = u64(g["cycles"], "compute");
  s.stall = u64(g["cycles"], "stall");
  s.mac_slots = u64(g["events"], "mac_slots");
  s.dram = u64(g["dram"], "bytes");
  s.compulsory = u64(g["dram"], "compulsory_bytes");
  if (g.contains("energy_pj")) {
    s.energy.emplace_back("energy_pj", g["energy_pj"]["total"].get<double>());
    for (const auto& [component, pj] : g["energy_pj"]["by_component"].items()) {
      s.energy.emplace_back("energy_" + component + "_pj", pj.get<double>());
    }
  }
  return s;
}

void put_sums(ojson& row, const Sums& s, double pes, double clock_hz, double total_energy) {
  row["gemms"] = s.gemms;
  row["macs"] = s.macs;
  row["cycles"] = s.cycles;
  row["compute_cycles"] = s.compute;
  row["stall_cycles"] = s.stall;
  row["time_seconds"] = clock_hz > 0 ? static_cast<double>(s.cycles) / clock_hz : 0.0;
  row["utilization"] = s.cycles > 0 ? static_cast<double>(s.mac_slots) / (pes * static_cast<double>(s.cycles)) : 0.0;
  row["dram_bytes"] = s.dram;
  row["dram_compulsory_bytes"] = s.compulsory;
  for (const auto& [name, pj] : s.energy) row[name] = pj;
  if (!s.energy.empty()) row["energy_share"] = total_energy > 0 ? s.energy.front().second / total_energy : 0.0;
}

}  // namespace

ojson report_table(const ojson& report, ReportTable which) {
  if (!report.contains("gemms") || !report.contains("config")) {
    throw InputError("report_table: not a simulate report (no \"gemms\" or \"config\")");
  }
  const ojson& cfg = report["config"];
  const double pes = cfg.at("array.rows").get<double>() * cfg.at("array.cols").get<double>();
  const double clock_hz = cfg.at("clock.mhz").get<double>() * 1e6;
  const double total_energy = report.contains("energy_pj") ? report["energy_pj"]["total"].get<double>() : 0.0;
  ojson rows = ojson::array();
  if (which == ReportTable::kGemm) {
    for (const ojson& g : report["gemms"]) {
      ojson row;
      for (const char* k : {"index", "layer", "phase", "layer_type", "format", "array", "M", "N", "K", "repeat", "mode"}) {
        row[k] = g.at(k);
      }
      put_sums(row, gemm_sums(g), pes, clock_hz, total_energy);
      row["mapping"] = g["mapping"]["text"];
      const ojson& v = g["verification"];
      row["verified"] = v.value("checked", false) && v.value("match", false);
      rows.push_back(std::move(row));
    }
    return rows;
  }
  // Groups in order of first appearance (layers in trace order; phases fwd, bwd_data, bwd_weight).
  const char* key = which == ReportTable::kLayer ? "layer" : "phase";
  std::vector<std::string> order;
  std::map<std::string, std::pair<Sums, std::string>> groups;  // name -> sums, layer type
  if (which == ReportTable::kPhase) {
    for (const char* p : {"fwd", "bwd_data", "bwd_weight"}) {
      order.emplace_back(p);
      groups[p];
    }
  }
  for (const ojson& g : report["gemms"]) {
    const std::string name = g.at(key).get<std::string>();
    auto [it, fresh] = groups.try_emplace(name);
    if (fresh) {
      order.push_back(name);
      it->second.second = g.at("layer_type").get<std::string>();
    }
    it->second.first.add(gemm_sums(g));
  }
  for (const std::string& name : order) {
    const auto& [sums, type] = groups.at(name);
    ojson row;
    row[key] = name;
    if (which == ReportTable::kLayer) row["layer_type"] = type;
    put_sums(row, sums, pes, clock_hz, total_energy);
    rows.push_back(std::move(row));
  }
  // A phase without GEMMs still has every column (energy columns as in the other rows).
  if (which == ReportTable::kPhase && !rows.empty()) {
    ojson full;
    for (const auto& r : rows) {
      if (r.size() > full.size()) full = r;
    }
    for (auto& r : rows) {
      for (auto it = full.begin(); it != full.end(); ++it) {
        if (!r.contains(it.key())) r[it.key()] = it.value().is_number_float() ? ojson(0.0) : ojson(0);
      }
    }
  }
  return rows;
}

namespace {

std::string cell(const ojson& v, bool csv) {
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (csv && s.find_first_of(",\"\n") != std::string::npos) {
      std::string q = "\"";
      for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
      return q + "\"";
    }
    return s;
  }
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_float()) return csv ? fmt::format("{}", v.get<double>()) : fmt::format("{:.4g}", v.get<double>());
  return v.dump();
}

}  // namespace

std::string table_csv(const ojson& rows) {
  if (rows.empty()) return "";
  std::string out;
  bool first = true;
  for (auto it = rows[0].begin(); it != rows[0].end(); ++it) {
    out += (first ? "" : ",") + it.key();
    first = false;
  }
  out += "\n";
  for (const auto& r : rows) {
    first = true;
    for (auto it = r.begin(); it != r.end(); ++it) {
      out += (first ? "" : ",") + cell(it.value(), true);
      first = false;
    }
    out += "\n";
  }
  return out;
}

std::string table_text(const ojson& rows) {
  if (rows.empty()) return "";
  std::vector<std::string> header;
  for (auto it = rows[0].begin(); it != rows[0].end(); ++it) header.push_back(it.key());
  std::vector<std::vector<std::string>> cells;
  std::vector<std::size_t> width(header.size());
  for (std::size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
  for (const auto& r : rows) {
    std::vector<std::string> line;
    std::size_t c = 0;
    for (auto it = r.begin(); it != r.end(); ++it, ++c) {
      line.push_back(cell(it.value(), false));
      width[c] = std::max(width[c], line.back().size());
    }
    cells.push_back(std::move(line));
  }
  auto put = [&](const std::vector<std::string>& line) {
    std::string s;
    for (std::size_t c = 0; c < line.size(); ++c) {
      s += c == 0 ? fmt::format("{:<{}}", line[c], width[c]) : fmt::format("  {:>{}}", line[c], width[c]);
    }
    return s + "\n";
  };
  std::string out = put(header);
  for (const auto& line : cells) out += put(line);
  return out;
}

}  // namespace mfsim
