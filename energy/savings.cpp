#include "energy/savings.h"

#include <fmt/format.h>

#include <algorithm>

#include "energy/energy_model.h"
#include "sim/pe_type.h"

namespace mfsim {

using ojson = nlohmann::ordered_json;

namespace {

const char* const kColors[] = {"#d62728", "#ff7f0e", "#1f77b4", "#6baed6", "#9ecae1", "#9467bd", "#2ca02c", "#8c564b"};  // one per energy_components() entry

static_assert(sizeof(kColors) / sizeof(kColors[0]) == 8, "one colour per energy component (energy_components())");

double saving(double x, double base) { return base > 0 ? 1.0 - x / base : 0.0; }

std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

// An array's label in tables and charts says what ran: its kind; "kind+second" when a second
// array (array.second) ran some of its GEMMs; "second (kind row)" when the second ran them all.
// A trailing "*" marks a row with estimates: GEMMs priced as the array's products although their
// operands are not exact on it.
// Whether a row's verification counts GEMMs priced as another arithmetic's products.
bool has_estimates(const ojson& v) { return v.contains("gemms_exact") && v["gemms_exact"] != v["gemms"]; }

std::string array_label(const ojson& r, const std::string& kind) {
  const ojson& arrays = r["arrays"];
  if (!arrays.contains(kind)) return kind;
  const ojson& a = arrays[kind];
  std::string label = kind;
  if (a.contains("second_array")) {
    const ojson& s = a["second_array"];
    const std::string second = s["kind"].get<std::string>();
    label = s["gemms"] == s["of_gemms"] ? second + " (" + kind + " row)" : kind + "+" + second;
  }
  if (has_estimates(a["verification"])) label += "*";
  return label;
}

// The footnote of a row with estimates or a second array: what ran where, how much was exact
// and verified.
std::string coverage_line(const ojson& r, const std::string& kind) {
  const ojson& a = r["arrays"][kind];
  const ojson& v = a["verification"];
  std::string out;
  if (a.contains("second_array")) {
    const ojson& s = a["second_array"];
    out += fmt::format("{}: {} of {} GEMMs ran on the second array ({}, array.second), whose PE prices them; ",
                       array_label(r, kind), s["gemms"].get<std::uint64_t>(), s["of_gemms"].get<std::uint64_t>(),
                       s["kind"].get<std::string>());
  } else if (has_estimates(v)) {
    out += array_label(r, kind) + ": ";
  } else {
    return "";
  }
  if (!v.contains("gemms_exact")) return out + "\n";
  const auto gemms = v["gemms"].get<std::uint64_t>(), exact = v["gemms_exact"].get<std::uint64_t>();
  out += fmt::format("{} of {} GEMMs ({:.2f}% of the MACs) ran in their traced arithmetic, {} verified bit for bit",
                     exact, gemms, 100 * v["macs_exact_fraction"].get<double>(), v["gemms_checked"].get<std::uint64_t>());
  if (exact != gemms) {
    out += fmt::format("; the other {} are estimates, priced as this array's products", gemms - exact);
  }
  return out + "\n";
}

}  // namespace

ojson build_savings_report(const std::vector<std::pair<std::string, ojson>>& reports,
                           const std::vector<EnergyTable>& tables, const ojson& meta) {
  ojson out = meta;
  out["report"] = "compare";
  out["units"] = ojson{{"energy", "pJ"}, {"per_mac", "pJ per multiply-accumulate"},
                       {"savings", "fraction 0..1 of the FP32 array's energy saved"}};
  ojson arrays = ojson::object();
  ojson by_table = ojson::object();
  for (const auto& t : tables) {
    ojson per_array = ojson::object();
    for (auto [kind, rep] : reports) {  // copy: add_energy writes into the report
      ojson e = add_energy(rep, t);
      per_array[kind] = e;
      if (&t == &tables.front()) {
        const ojson& tot = rep["total"];
        ojson a;
        a["cycles"] = tot["cycles"];
        a["time_seconds"] = tot["time_seconds"];
        a["utilization"] = tot["utilization"];
        a["macs"] = tot["macs"];
        a["verification"] = rep["verification"];
        a["notes"] = rep["notes"];
        // GEMMs whose operands this array cannot hold, run on the second array (array.second).
        if (tot.value("gemms_on_second_array", std::uint64_t{0}) > 0) {
          a["second_array"] = ojson{{"kind", rep["config"]["array.second"]}, {"gemms", tot["gemms_on_second_array"]},
                                    {"of_gemms", tot["gemms"]}};
        }
        if (tot.contains("dram")) a["dram"] = tot["dram"];
        // The whole step (a trace with non-GEMM operations): the vector unit's cycles and DRAM
        // traffic, the step's cycles and the GEMMs' share of them (the energy share is per table).
        if (tot.contains("non_gemm")) {
          const ojson& ng = tot["non_gemm"];
          a["non_gemm"] = ojson{{"cycles", ng["cycles"]}, {"dram", ng["dram"]}, {"fusion", ng["fusion"]}};
          a["step"] = tot["step"];
          a["linear_share"] = ojson{{"cycles", tot["linear_share"]["cycles"]}};
        }
        // The mapping of every GEMM (docs/mapping.md), as the compare page lists it.
        ojson maps = ojson::array();
        for (const auto& g : rep["gemms"]) {
          if (!g.contains("mapping")) continue;
          maps.push_back(ojson{{"layer", g["layer"]}, {"phase", g["phase"]}, {"M", g["M"]}, {"N", g["N"]}, {"K", g["K"]},
                               {"mapping", g["mapping"]["text"]}, {"dram", g["dram"]}, {"cycles", g["cycles"]}});
        }
        a["gemms"] = maps;
        arrays[kind] = a;
      }
    }
    ojson tab;
    tab["table_origin"] = t.origin;
    tab["description"] = t.description;
    ojson energy = ojson::object();
    ojson savings = ojson::object();
    const ojson& fp = per_array["fp32"];
    const double fp_arith = fp["by_component"]["pe_arithmetic"].get<double>();
    const double fp_total = fp["total"].get<double>();
    for (auto it = per_array.begin(); it != per_array.end(); ++it) {
      const ojson& e = it.value();
      const double arith = e["by_component"]["pe_arithmetic"].get<double>();
      const double quant = e["by_component"]["quantization"].get<double>();
      energy[it.key()] = ojson{{"total", e["total"]}, {"per_mac", e["per_mac"]},
                               {"arithmetic_per_mac", e["arithmetic_per_mac"]}, {"zero_gating", e["zero_gating"]},
                               {"by_component", e["by_component"]},
                               {"by_phase", e["by_phase"]},
                               {"by_layer", e["by_layer"]}};
      if (e.contains("non_gemm")) {  // the whole step: the GEMMs and the vector unit's work
        energy[it.key()]["non_gemm"] = e["non_gemm"]["total"];
        energy[it.key()]["non_gemm_by_kind"] = e["non_gemm"]["by_kind"];
        energy[it.key()]["step_total"] = e["step_total"];
        energy[it.key()]["linear_share"] = e["linear_share"];
      }
      if (it.key() == "fp32") continue;
      const ojson& zg = e["zero_gating"];
      const ojson& fzg = fp["zero_gating"];
      savings[it.key()] = ojson{{"arithmetic", saving(arith, fp_arith)},
                                {"arithmetic_zero_gating_on", saving(zg["arithmetic_gated"].get<double>(),
                                                                     fzg["arithmetic_gated"].get<double>())},
                                {"arithmetic_zero_gating_off", saving(zg["arithmetic_ungated"].get<double>(),
                                                                      fzg["arithmetic_ungated"].get<double>())},
                                {"arithmetic_gated_vs_ungated_fp32", saving(zg["arithmetic_gated"].get<double>(),
                                                                            fzg["arithmetic_ungated"].get<double>())},
                                {"arithmetic_and_quantization", saving(arith + quant, fp_arith)},
                                {"total", saving(e["total"].get<double>(), fp_total)}};
      if (e.contains("non_gemm") && fp.contains("non_gemm")) {
        savings[it.key()]["step_total"] = saving(e["step_total"].get<double>(), fp["step_total"].get<double>());
      }
    }
    tab["energy_pj"] = energy;
    tab["savings_vs_fp32"] = savings;
    by_table[t.name] = tab;
  }
  out["arrays"] = arrays;
  out["energy_table"] = tables.front().name;
  out["savings_vs_fp32"] = by_table[tables.front().name]["savings_vs_fp32"];
  out["energy_pj"] = by_table[tables.front().name]["energy_pj"];
  out["by_table"] = by_table;
  return out;
}

std::string savings_text(const ojson& r) {
  std::string out = fmt::format("trace {}   array {}x{} {}\n", r["trace"].get<std::string>(), r["rows"].get<int>(),
                                r["cols"].get<int>(), r["dataflow"].get<std::string>());
  if (r.contains("iso_area")) {
    const ojson& iso = r["iso_area"];
    out += fmt::format("\nequal area: budget {:.4g} mm2 ({}; {} area table); each array the largest square-ish size "
                       "within it\n",
                       iso["budget_mm2"].get<double>(), iso["budget_from"].get<std::string>(),
                       iso["area_table"].get<std::string>());
    out += fmt::format("{:<8}{:>11}{:>12}{:>14}{:>14}\n", "array", "size", "area mm2", "step s", "energy uJ");
    for (const PeType* pe : pe_types()) {
      if (!iso["arrays"].contains(pe->name)) continue;
      const ojson& a = iso["arrays"][pe->name];
      out += fmt::format("{:<8}{:>11}{:>12.4g}{:>14.4g}{:>14.4g}\n", pe->name,
                         fmt::format("{}x{}", a["rows"].get<int>(), a["cols"].get<int>()), a["area_mm2"].get<double>(),
                         a["time_seconds"].get<double>(), a["energy_pj"].get<double>() * 1e-6);
    }
  }
  for (auto it = r["by_table"].begin(); it != r["by_table"].end(); ++it) {
    const ojson& t = it.value();
    out += fmt::format("\nenergy table: {}\n", it.key());
    std::size_t w = 7;  // the first column: wider when a label names a second array
    for (const PeType* pe : pe_types()) w = std::max(w, array_label(r, pe->name).size() + 1);
    out += fmt::format("{:<{}}{:>14}{:>8}{:>14}{:>14}{:>13}{:>14}{:>11}{:>9}{:>10}\n", "array", w, "cycles", "util",
                       "arith pJ/MAC", "total pJ/MAC", "total uJ", "saving arith", "total", "exact", "verified");
    for (const PeType* pe : pe_types()) {
      const char* a = pe->name;
      if (!t["energy_pj"].contains(a)) continue;
      const ojson& e = t["energy_pj"][a];
      const ojson& arr = r["arrays"][a];
      std::string sa = "-", st = "-";
      if (t["savings_vs_fp32"].contains(a)) {
        sa = fmt::format("{:.2f}%", 100 * t["savings_vs_fp32"][a]["arithmetic"].get<double>());
        st = fmt::format("{:.2f}%", 100 * t["savings_vs_fp32"][a]["total"].get<double>());
      }
      const ojson& v = arr["verification"];
      const std::string exact = v.contains("gemms_exact")
                                    ? fmt::format("{}/{}", v["gemms_exact"].get<std::uint64_t>(), v["gemms"].get<std::uint64_t>())
                                    : "-";
      out += fmt::format("{:<{}}{:>14}{:>7.1f}%{:>14.4g}{:>14.4g}{:>13.4g}{:>14}{:>11}{:>9}{:>10}\n", array_label(r, a), w,
                         arr["cycles"]["total"].get<std::uint64_t>(), 100 * arr["utilization"].get<double>(),
                         e["arithmetic_per_mac"].get<double>(), e["per_mac"].get<double>(),
                         e["total"].get<double>() * 1e-6, sa, st, exact, v["gemms_checked"].get<std::uint64_t>());
    }
    out += "exact: GEMMs run in their traced arithmetic (the others priced as the array's products, marked *); "
           "verified: GEMMs checked bit for bit\n";
    for (const PeType* pe : pe_types()) {
      if (t["energy_pj"].contains(pe->name)) out += coverage_line(r, pe->name);
    }
    if (t["energy_pj"].contains("fp32") && t["savings_vs_fp32"].contains("mfmac")) {
      const ojson& zg = t["energy_pj"]["fp32"]["zero_gating"];
      const ojson& sv = t["savings_vs_fp32"]["mfmac"];
      out += fmt::format(
          "zero gating: {} (pe.zero_gating, the same on every array); {:.1f}% of products have a zero "
          "operand.\n{} arithmetic saving: {:.2f}% with gating on every array, {:.2f}% with gating on "
          "none, {:.2f}% if only MF-MAC gated (not a fair comparison)\n",
          zg["enabled"].get<bool>() ? "on" : "off", 100 * zg["zero_product_fraction"].get<double>(),
          array_label(r, "mfmac") == "mfmac" ? std::string("MF-MAC") : "MF-MAC (" + array_label(r, "mfmac") + ")",
          100 * sv["arithmetic_zero_gating_on"].get<double>(), 100 * sv["arithmetic_zero_gating_off"].get<double>(),
          100 * sv["arithmetic_gated_vs_ungated_fp32"].get<double>());
    }
    // The whole step (the trace has non-GEMM operations): the linear layers' share and the saving
    // with the vector unit's work counted (Amdahl's law in numbers).
    std::string step_rows;
    for (const PeType* pe : pe_types()) {
      if (!t["energy_pj"].contains(pe->name) || !t["energy_pj"][pe->name].contains("step_total")) continue;
      const ojson& e = t["energy_pj"][pe->name];
      const std::string saving = t["savings_vs_fp32"].contains(pe->name)
                                     ? fmt::format("{:.2f}%", 100 * t["savings_vs_fp32"][pe->name]["step_total"].get<double>())
                                     : "-";
      step_rows += fmt::format("{:<14}{:>14.4g}{:>16.4g}{:>13.2f}%{:>16}\n", array_label(r, pe->name),
                               e["total"].get<double>() * 1e-6, e["non_gemm"].get<double>() * 1e-6,
                               100 * e["linear_share"].get<double>(), saving);
    }
    if (!step_rows.empty()) {
      const ojson& first = r["arrays"].begin().value();
      out += fmt::format("\nwhole step, non-GEMM work on the vector unit ({} table, {}):\n{:<14}{:>14}{:>16}{:>14}{:>16}\n",
                         it.key(), first["non_gemm"]["fusion"]["mode"].get<std::string>(), "array", "GEMMs uJ",
                         "non-GEMM uJ", "linear share", "step saving") +
             step_rows;
    }
  }
  return out;
}

std::string savings_html(const ojson& r) {
  const std::string table = r["energy_table"].get<std::string>();
  const ojson& en = r["energy_pj"];
  std::vector<const PeType*> arrays;  // the arrays of the report, in registry order
  for (const PeType* pe : pe_types()) {
    if (en.contains(pe->name)) arrays.push_back(pe);
  }
  // Chart 1: energy per MAC by component (stacked). Chart 2: MAC arithmetic per MAC.
  double max_total = 0, max_arith = 0;
  for (const PeType* pe : arrays) {
    max_total = std::max(max_total, en[pe->name]["per_mac"].get<double>());
    max_arith = std::max(max_arith, en[pe->name]["arithmetic_per_mac"].get<double>());
  }
  bool labels_wide = false;  // a label naming a second array ("mfmac+int8") needs more room
  for (const PeType* pe : arrays) labels_wide = labels_wide || array_label(r, pe->name) != pe->name;
  const int left = labels_wide ? 100 : 70, width = 560, bar_h = 34, gap = 18;
  auto chart = [&](const std::string& title, bool stacked) {
    const double scale = width / (stacked ? max_total : max_arith);
    std::string s = fmt::format("<h2>{}</h2>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
                                "font-family=\"sans-serif\" font-size=\"13\">\n",
                                html_escape(title), left + width + 130,
                                static_cast<int>(arrays.size()) * (bar_h + gap) + 10);
    int y = 5;
    for (const PeType* pe : arrays) {
      const char* a = pe->name;
      s += fmt::format("<text x=\"0\" y=\"{}\">{}</text>\n", y + bar_h / 2 + 5, html_escape(array_label(r, a)));
      double x = left;
      if (stacked) {
        for (std::size_t c = 0; c < energy_components().size(); ++c) {
          double v = en[a]["by_component"][energy_components()[c]].get<double>() / r["arrays"][a]["macs"].get<double>();
          double w = v * scale;
          if (w <= 0) continue;
          s += fmt::format("<rect x=\"{:.2f}\" y=\"{}\" width=\"{:.2f}\" height=\"{}\" fill=\"{}\"><title>{} {}: "
                           "{:.4g} pJ/MAC</title></rect>\n",
                           x, y, w, bar_h, kColors[c], a, energy_components()[c], v);
          x += w;
        }
        s += fmt::format("<text x=\"{:.1f}\" y=\"{}\">{:.3g} pJ/MAC</text>\n", x + 6, y + bar_h / 2 + 5,
                         en[a]["per_mac"].get<double>());
      } else {
        double v = en[a]["arithmetic_per_mac"].get<double>();
        // One colour per arithmetic (the PE type's, as in scripts/plot_sweep.py).
        const char* color = pe->color;
        s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{:.2f}\" height=\"{}\" fill=\"{}\"/>\n", left, y, v * scale,
                         bar_h, color);
        s += fmt::format("<text x=\"{:.1f}\" y=\"{}\">{:.4g} pJ/MAC</text>\n", left + v * scale + 6, y + bar_h / 2 + 5, v);
      }
      y += bar_h + gap;
    }
    return s + "</svg>\n";
  };
  std::string legend = "<p>";
  for (std::size_t c = 0; c < energy_components().size(); ++c) {
    legend += fmt::format("<span style=\"display:inline-block;width:12px;height:12px;background:{};margin:0 4px 0 "
                          "12px\"></span>{}",
                          kColors[c], energy_components()[c]);
  }
  legend += "</p>\n";
  std::string rows;
  for (auto it = r["by_table"].begin(); it != r["by_table"].end(); ++it) {
    for (const PeType* pe : arrays) {
      const char* a = pe->name;
      if (!it.value()["savings_vs_fp32"].contains(a)) continue;
      const ojson& s = it.value()["savings_vs_fp32"][a];
      rows += fmt::format("<tr><td>{}</td><td>{}</td><td>{:.2f}%</td><td>{:.2f}%</td><td>{:.2f}%</td></tr>\n",
                          html_escape(it.key()), html_escape(array_label(r, a)), 100 * s["arithmetic"].get<double>(),
                          100 * s["arithmetic_and_quantization"].get<double>(), 100 * s["total"].get<double>());
    }
  }
  std::string html = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>mfsim savings report</title>\n"
                     "<style>body{font-family:sans-serif;max-width:900px;margin:2em auto;color:#222}"
                     "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}"
                     "td:first-child,td:nth-child(2){text-align:left}.arrays td:nth-child(2){text-align:right}</style></head><body>\n";
  html += fmt::format("<h1>Savings report</h1>\n<p>Trace <code>{}</code> on a {}x{} {} array; energy table "
                      "<b>{}</b>. Same GEMMs on every array.</p>\n",
                      html_escape(r["trace"].get<std::string>()), r["rows"].get<int>(), r["cols"].get<int>(),
                      html_escape(r["dataflow"].get<std::string>()), html_escape(table));
  html += chart("Energy per MAC by component (" + table + ")", true) + legend;
  html += chart("MAC arithmetic only, per MAC (the paper's scope)", false);
  std::string arrays_rows;
  for (const PeType* pe : arrays) {
    const char* a = pe->name;
    const ojson& arr = r["arrays"][a];
    const ojson& v = arr["verification"];
    arrays_rows += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{:.1f}%</td><td>{:.1f}</td><td>{}</td><td>{}</td></tr>\n", html_escape(array_label(r, a)),
        arr["cycles"]["total"].get<std::uint64_t>(), 100 * arr["utilization"].get<double>(),
        en[a]["total"].get<double>() * 1e-6,
        v.contains("gemms_exact") ? fmt::format("{} of {} ({:.2f}% of MACs)", v["gemms_exact"].get<std::uint64_t>(),
                                                v["gemms"].get<std::uint64_t>(), 100 * v["macs_exact_fraction"].get<double>())
                                  : std::string("-"),
        v["gemms_checked"].get<std::uint64_t>());
  }
  std::string footnotes;
  for (const PeType* pe : arrays) {
    const std::string line = coverage_line(r, pe->name);
    if (!line.empty()) footnotes += "<li>" + html_escape(line.substr(0, line.size() - 1)) + "</li>\n";
  }
  html += "<h2>Arrays</h2>\n<table class=\"arrays\"><tr><th>array</th><th>cycles</th><th>utilization</th><th>energy (uJ, " +
          html_escape(table) + ")</th><th>GEMMs exact</th><th>verified</th></tr>\n" + arrays_rows + "</table>\n" +
          "<p>GEMMs exact: run in their traced arithmetic; the others are estimates, priced as the array's products "
          "(rows marked *). Verified: checked bit for bit.</p>\n" +
          (footnotes.empty() ? std::string() : "<ul>\n" + footnotes + "</ul>\n");
  html += "<h2>Savings against the FP32 array</h2>\n<p>The paper reports up to 95.8% less energy in the linear "
          "layers' arithmetic; compare the <i>arithmetic</i> column.</p>\n<table><tr><th>table</th><th>array</th><th>arithmetic</th>"
          "<th>arithmetic + quantization</th><th>total (with registers, SRAM, DRAM)</th></tr>\n" +
          rows + "</table>\n";
  // The whole step, when the trace has non-GEMM operations (docs/non-gemm.md).
  std::string step_rows;
  for (const PeType* pe : arrays) {
    const ojson& e = en[pe->name];
    if (!e.contains("step_total")) continue;
    const ojson& sv = r["savings_vs_fp32"];
    step_rows += fmt::format("<tr><td>{}</td><td>{:.4g}</td><td>{:.4g}</td><td>{:.2f}%</td><td>{}</td></tr>\n", pe->name,
                             e["total"].get<double>() * 1e-6, e["non_gemm"].get<double>() * 1e-6,
                             100 * e["linear_share"].get<double>(),
                             sv.contains(pe->name) ? fmt::format("{:.2f}%", 100 * sv[pe->name]["step_total"].get<double>())
                                                   : std::string("-"));
  }
  if (!step_rows.empty()) {
    const ojson& first = r["arrays"].begin().value();
    html += "<h2>The whole step</h2>\n<p>The trace's operations outside the GEMMs run on the vector unit "
            "(docs/non-gemm.md), " + html_escape(first["non_gemm"]["fusion"]["mode"].get<std::string>()) +
            " with the array (vector.fusion); energy in uJ (" + html_escape(table) + " table).</p>\n<table><tr><th>array</th>"
            "<th>GEMMs</th><th>non-GEMM</th><th>linear share</th><th>whole-step saving</th></tr>\n" + step_rows + "</table>\n";
  }
  // The mapping of every GEMM, per array.
  html += "<h2>Mapping per GEMM</h2>\n<p>Tile sizes and loop order the mapper chose (docs/mapping.md), DRAM bytes "
          "against the compulsory minimum (every operand read once, every output written once; feature maps for "
          "convolutions read on chip) and the stall share of the GEMM's cycles.</p>\n";
  for (const PeType* pe : arrays) {
    const char* a = pe->name;
    const ojson& arr = r["arrays"][a];
    if (!arr.contains("gemms") || arr["gemms"].empty()) continue;
    std::string body;
    for (const auto& g : arr["gemms"]) {
      const auto total = g["cycles"]["total"].get<std::uint64_t>();
      body += fmt::format("<tr><td>{}</td><td>{}</td><td>{}x{}x{}</td><td style=\"text-align:left\">{}</td><td>{}</td>"
                          "<td>{:.2f}</td><td>{:.1f}%</td></tr>\n",
                          html_escape(g["layer"].get<std::string>()), html_escape(g["phase"].get<std::string>()),
                          g["M"].get<std::int64_t>(), g["N"].get<std::int64_t>(), g["K"].get<std::int64_t>(),
                          html_escape(g["mapping"].get<std::string>()), g["dram"]["bytes"].get<std::uint64_t>(),
                          g["dram"]["ratio_to_compulsory"].get<double>(),
                          total > 0 ? 100.0 * static_cast<double>(g["cycles"]["stall"].get<std::uint64_t>()) /
                                          static_cast<double>(total)
                                    : 0.0);
    }
    html += fmt::format("<details{}><summary>{} array: DRAM {:.2f}x the compulsory bytes</summary>\n<table><tr><th>layer</th>"
                        "<th>phase</th><th>M x N x K</th><th>mapping</th><th>DRAM bytes</th><th>/ compulsory</th>"
                        "<th>stall</th></tr>\n{}</table></details>\n",
                        std::string(a) == "mfmac" ? " open" : "", a,
                        arr.contains("dram") ? arr["dram"]["ratio_to_compulsory"].get<double>() : 0.0, body);
  }
  html += "<p>Every figure is derived from <code>" + html_escape(r.value("report_file", std::string("the JSON report"))) +
          "</code>; how each term is computed: docs/energy-accounting.md.</p>\n</body></html>\n";
  return html;
}

}  // namespace mfsim

namespace mfsim {

std::string savings_csv(const ojson& r) {
  std::string out =
      "energy_table,array,cycles,step_cycles,linear_share_cycles,energy_gemm_pj,energy_non_gemm_pj,energy_step_pj,"
      "linear_share_energy,saving_vs_fp32_gemm,saving_vs_fp32_step,dram_bytes,non_gemm_dram_bytes,fusion\n";
  const auto num = [](const ojson& v) { return fmt::format("{}", v.get<double>()); };
  for (auto it = r["by_table"].begin(); it != r["by_table"].end(); ++it) {
    const ojson& t = it.value();
    for (auto a = r["arrays"].begin(); a != r["arrays"].end(); ++a) {
      const ojson& arr = a.value();
      const ojson& e = t["energy_pj"][a.key()];
      const bool step = arr.contains("step");
      const bool fp = t["savings_vs_fp32"].contains(a.key());
      std::uint64_t dram = 0, ng_dram = 0;
      if (arr.contains("dram")) dram = arr["dram"]["bytes"].get<std::uint64_t>();
      if (step) ng_dram = arr["non_gemm"]["dram"]["read_bytes"].get<std::uint64_t>() + arr["non_gemm"]["dram"]["write_bytes"].get<std::uint64_t>();
      // Empty cells: no non-GEMM work in the trace (step columns), or the FP32 array itself (savings).
      out += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", it.key(), a.key(),
                         arr["cycles"]["total"].get<std::uint64_t>(),
                         step ? fmt::format("{}", arr["step"]["cycles"].get<std::uint64_t>()) : "",
                         step ? num(arr["linear_share"]["cycles"]) : "", num(e["total"]),
                         step ? num(e["non_gemm"]) : "", step ? num(e["step_total"]) : "",
                         step ? num(e["linear_share"]) : "", fp ? num(t["savings_vs_fp32"][a.key()]["total"]) : "",
                         fp && step ? num(t["savings_vs_fp32"][a.key()]["step_total"]) : "", dram,
                         step ? fmt::format("{}", ng_dram) : "",
                         step ? arr["non_gemm"]["fusion"]["mode"].get<std::string>() : "");
    }
  }
  return out;
}

}  // namespace mfsim
