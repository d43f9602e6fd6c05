#include "sim/params.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include <cmath>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_fields.h"

namespace mfsim {

const char* to_string(Dataflow d) {
  switch (d) {
    case Dataflow::kOs: return "os";
    case Dataflow::kWs: return "ws";
    case Dataflow::kIs: return "is";
  }
  return "?";
}

ParamApply set_int(int SimConfig::*field) {
  return [field](const std::string& v, SimConfig& c) { c.*field = std::stoi(v); };
}
ParamApply set_number(double SimConfig::*field) {
  return [field](const std::string& v, SimConfig& c) { c.*field = std::stod(v); };
}
ParamApply set_bool(bool SimConfig::*field) {
  return [field](const std::string& v, SimConfig& c) { c.*field = v == "true"; };
}
ParamApply set_kib(std::uint64_t SimConfig::*field) {
  return [field](const std::string& v, SimConfig& c) { c.*field = std::stoull(v) * 1024; };
}

const std::vector<ParamSpec>& param_specs() {
  static const std::vector<ParamSpec> specs = [] {
    std::vector<ParamSpec> all;
    for (auto part : {pe_params, array_params, memory_params, mapping_params, report_params, vector_params}) {
      for (auto& p : part()) all.push_back(std::move(p));
    }
    return all;
  }();
  return specs;
}

std::string to_string(const TileMapping& m) {
  auto size = [](std::int64_t v, char letter) { return v == 0 ? std::string(1, letter) : std::to_string(v); };
  return fmt::format("{}x{}x{}:{}{}{}", size(m.mt, 'm'), size(m.nt, 'n'), size(m.kt, 'k'), m.order[0], m.order[1],
                     m.order[2]);
}

bool parse_tile_mapping(const std::string& text, TileMapping* out) {
  const auto colon = text.find(':');
  if (colon == std::string::npos) return false;
  const std::string sizes = text.substr(0, colon), order = text.substr(colon + 1);
  std::int64_t v[3] = {0, 0, 0};
  const char letters[3] = {'m', 'n', 'k'};
  std::size_t start = 0;
  for (int i = 0; i < 3; ++i) {
    const std::size_t x = i < 2 ? sizes.find('x', start) : sizes.size();
    if (x == std::string::npos) return false;
    const std::string tok = sizes.substr(start, x - start);
    if (tok.size() == 1 && (tok[0] == letters[i] || tok[0] == letters[i] - 32)) {
      v[i] = 0;
    } else {
      if (tok.empty() || tok.size() > 10 || tok.find_first_not_of("0123456789") != std::string::npos) return false;
      v[i] = std::stoll(tok);
      if (v[i] < 1 || v[i] > 2147483647) return false;
    }
    start = x + 1;
  }
  if (start != sizes.size() + 1) return false;
  if (order.size() != 3) return false;
  std::string sorted = order;
  std::sort(sorted.begin(), sorted.end());
  if (sorted != "kmn") return false;
  out->mt = v[0];
  out->nt = v[1];
  out->kt = v[2];
  for (int i = 0; i < 3; ++i) out->order[i] = order[static_cast<std::size_t>(i)];
  return true;
}

const ParamSpec* find_param(const std::string& name) {
  for (const auto& s : param_specs()) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

namespace {

std::string expectation(const ParamSpec& s) {
  switch (s.type) {
    case ParamType::kInt:
      return fmt::format("an integer in [{}, {}]", static_cast<std::int64_t>(s.min),
                         static_cast<std::int64_t>(s.max));
    case ParamType::kNumber: return fmt::format("a number in [{}, {}]", s.min, s.max);
    case ParamType::kChoice: return s.choices;
    case ParamType::kBool: return "true|false";
    case ParamType::kTiles: return "auto or MtxNtxKt:ORDER";
  }
  return "";
}

// Returns the canonical text of a valid value, or "" if invalid.
std::string canonical(const ParamSpec& s, const std::string& v) {
  switch (s.type) {
    case ParamType::kInt: {
      if (v.empty() || v.find_first_not_of("0123456789-+") != std::string::npos) return "";
      try {
        std::size_t used = 0;
        long long x = std::stoll(v, &used);
        auto xd = static_cast<double>(x);
        if (used != v.size() || xd < s.min || xd > s.max) return "";
        return std::to_string(x);
      } catch (...) {
        return "";
      }
    }
    case ParamType::kNumber: {
      try {
        std::size_t used = 0;
        double x = std::stod(v, &used);
        if (used != v.size() || !std::isfinite(x) || x < s.min || x > s.max) return "";
        return fmt::format("{}", x);
      } catch (...) {
        return "";
      }
    }
    case ParamType::kChoice: {
      std::string choices = s.choices;
      std::size_t start = 0;
      while (start <= choices.size()) {
        std::size_t bar = choices.find('|', start);
        if (bar == std::string::npos) bar = choices.size();
        if (choices.compare(start, bar - start, v) == 0 && bar - start == v.size()) return v;
        start = bar + 1;
      }
      return "";
    }
    case ParamType::kBool:
      if (v == "true" || v == "1") return "true";
      if (v == "false" || v == "0") return "false";
      return "";
    case ParamType::kTiles: {
      if (v == "auto") return v;
      TileMapping m;
      return parse_tile_mapping(v, &m) ? to_string(m) : "";
    }
  }
  return "";
}

std::string unknown_param_message(const std::string& name) {
  return fmt::format("unknown parameter \"{}\"; see 'mfsim simulate --list-params'", name);
}

}  // namespace

ParamSet::ParamSet() {
  for (const auto& s : param_specs()) values_[s.name] = s.default_value;
}

void ParamSet::set(const std::string& name, const std::string& value, const std::string& origin) {
  const ParamSpec* s = find_param(name);
  if (s == nullptr) throw InputError(fmt::format("{}: {}", origin, unknown_param_message(name)));
  std::string c = canonical(*s, value);
  if (c.empty()) {
    throw InputError(fmt::format("{}: {}: expected {}, got \"{}\"", origin, name, expectation(*s), value));
  }
  values_[name] = c;
  origins_[name] = origin;
}

void ParamSet::set_assignment(const std::string& assignment) {
  auto eq = assignment.find('=');
  std::string origin = fmt::format("--set {}", assignment);
  if (eq == std::string::npos || eq == 0) {
    throw InputError(fmt::format("{}: expected NAME=VALUE", origin));
  }
  const std::string name = assignment.substr(0, eq);
  const auto earlier = assigned_.find(name);
  if (earlier != assigned_.end()) {
    throw InputError(fmt::format("{}: {} is already set by --set {}", origin, name, earlier->second));
  }
  set(name, assignment.substr(eq + 1), origin);
  assigned_[name] = assignment;
}

namespace {
void flatten(const nlohmann::json& j, const std::string& prefix, const std::string& file,
             std::vector<std::pair<std::string, const nlohmann::json*>>& out) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
    if (it->is_object()) {
      flatten(*it, key, file, out);
    } else {
      out.emplace_back(key, &*it);
    }
  }
}
}  // namespace

void ParamSet::load_config_file(const std::string& path) {
  note_input(path);
  load_config_text(read_file(path), path);
}

void ParamSet::load_config_text(const std::string& content, const std::string& path) {
  nlohmann::json doc = parse_json_document(content, path);
  if (!doc.is_object()) throw InputError(fmt::format("{}: document: expected an object of parameters", path));
  std::vector<std::pair<std::string, const nlohmann::json*>> items;
  flatten(doc, "", path, items);
  std::set<std::string> named;  // a parameter given twice (a nested and a dotted key) is an error
  for (const auto& [name, v] : items) {
    const ParamSpec* s = find_param(name);
    if (s == nullptr) throw InputError(fmt::format("{}: {}", path, unknown_param_message(name)));
    if (!named.insert(name).second) {
      throw InputError(fmt::format("{}: {}: given twice (as a nested and a dotted key)", path, name));
    }
    std::string text;
    if (v->is_string()) {
      text = v->get<std::string>();
    } else if (v->is_boolean() || v->is_number()) {
      text = v->dump();
    } else {
      throw InputError(fmt::format("{}: {}: expected {}, got {}", path, name, expectation(*s),
                                   json_excerpt(*v)));
    }
    if ((s->type == ParamType::kInt || s->type == ParamType::kNumber) && v->is_string()) {
      throw InputError(fmt::format("{}: {}: expected {}, got {}", path, name, expectation(*s),
                                   json_excerpt(*v)));
    }
    set(name, text, path);
  }
}

SimConfig ParamSet::build() const {
  SimConfig c;
  for (const auto& spec : param_specs()) spec.apply(values_.at(spec.name), c);
  if (c.second == c.array) c.second = nullptr;  // a second array of the first's type would hold nothing more
  return c;
}

nlohmann::json ParamSet::to_json() const {
  nlohmann::ordered_json j;
  for (const auto& s : param_specs()) {
    const std::string& v = values_.at(s.name);
    switch (s.type) {
      case ParamType::kInt: j[s.name] = std::stoll(v); break;
      case ParamType::kNumber: j[s.name] = std::stod(v); break;
      case ParamType::kBool: j[s.name] = v == "true"; break;
      case ParamType::kChoice: j[s.name] = v; break;
      case ParamType::kTiles: j[s.name] = v; break;
    }
  }
  return nlohmann::json::parse(j.dump());
}

std::string params_table_text() {
  std::size_t w = 9;  // the widest name sets the first column
  for (const auto& s : param_specs()) w = std::max(w, std::string(s.name).size());
  std::string out = fmt::format("{:<{}} {:<8} {:<12} {:<30} {}\n", "parameter", w, "default", "unit", "allowed",
                                "description");
  for (const auto& s : param_specs()) {
    out += fmt::format("{:<{}} {:<8} {:<12} {:<30} {}\n", s.name, w, s.default_value, s.unit, expectation(s),
                       s.description);
  }
  return out;
}

std::string params_markdown() {
  std::string out =
      "# Simulator parameters\n\n"
      "Generated from the declarations (each in the file of the component that uses it: "
      "`sim/fold_model.cpp`,\n`sim/pe_type.cpp`, `sim/pe/*.cpp`, `sim/mapper.cpp`) by "
      "`mfsim simulate --list-params --markdown`;\na test keeps this file in step with the code. Set them in a JSON config "
      "(`--config FILE`,\nnested objects or dotted keys) or with `--set NAME=VALUE`; "
      "`--rows`, `--cols`, `--dataflow` and\n`--array` are shorthands for the `array.*` "
      "parameters. A parameter given twice in one config file (a\nrepeated key, or a nested and "
      "a dotted key) or by two `--set` is an error naming it; a `--set`\noverrides the config "
      "file and the shorthands.\n\n"
      "| parameter | default | unit | allowed | description |\n|---|---|---|---|---|\n";
  for (const auto& s : param_specs()) {
    std::string allowed = expectation(s);
    std::string escaped;
    for (char ch : allowed) escaped += ch == '|' ? std::string("\\|") : std::string(1, ch);
    out += fmt::format("| `{}` | {} | {} | {} | {} |\n", s.name, s.default_value, s.unit, escaped,
                       s.description);
  }
  return out;
}

}  // namespace mfsim
