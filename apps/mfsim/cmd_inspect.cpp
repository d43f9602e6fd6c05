// mfsim inspect TRACE [--json] [--recompute] [--no-verify]
#include <fmt/format.h>

#include <array>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "apps/mfsim/cli.h"
#include "common/error.h"
#include "traces/trace_reader.h"

namespace po = boost::program_options;

namespace mfsim::cli {

namespace {

struct PhaseSummary {
  std::uint64_t records = 0, macs = 0;
  std::array<std::uint64_t, kNumFormats + 3> by_format{};  // then the mixed pairs
};

// The slot of a record's formats in PhaseSummary::by_format, and the slot's name: one per
// format, then the shift-add pair and the two mixed two-term pairs.
constexpr int kShiftPairSlot = kNumFormats, kInt8ApotSlot = kNumFormats + 1, kPot4ApotSlot = kNumFormats + 2;
constexpr int kLastSlot = kPot4ApotSlot;
int format_slot(const TraceRecord& r) {
  if (r.shift_pair()) return kShiftPairSlot;
  if (r.apot_pair() && r.a.format != r.b.format) {
    return r.a.format == NumFormat::kInt8 || r.b.format == NumFormat::kInt8 ? kInt8ApotSlot : kPot4ApotSlot;
  }
  return static_cast<int>(r.format());
}
std::string slot_name(int k) {
  return k == kShiftPairSlot ? "pot4+int8"
         : k == kInt8ApotSlot ? "int8+apot"
         : k == kPot4ApotSlot ? "pot4+apot"
                              : to_string(static_cast<NumFormat>(k));
}

std::string thousands(std::uint64_t v) {
  std::string s = std::to_string(v), out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

std::string formats_text(const std::array<std::uint64_t, kNumFormats + 3>& f) {
  std::string out;
  for (int i = 0; i <= kLastSlot; ++i) {
    if (f[i] == 0) continue;
    out += fmt::format("{}{} x{}", out.empty() ? "" : ", ", slot_name(i), f[i]);
  }
  return out.empty() ? "-" : out;
}

}  // namespace

int cmd_inspect(const Args& args) {
  po::options_description opts("options");
  opts.add_options()
      ("trace", po::value<std::string>()->required(), "trace file (.json)")
      ("json", "print the summary as JSON")
      ("no-verify", "skip reading payloads and checking their CRC-32 checksums")
      ("recompute", "recompute every GEMM with payload using the reference arithmetic and "
                    "compare with its expected output (exit 3 on a mismatch)");
  po::positional_options_description pos;
  pos.add("trace", 1);
  po::variables_map vm;
  if (!parse_or_help("inspect", "TRACE [--json] [--no-verify] [--recompute]", args, opts, pos, vm)) {
    return kExitOk;
  }
  const std::string path = vm["trace"].as<std::string>();
  const bool verify = vm.count("no-verify") == 0;
  const bool recompute = vm.count("recompute") != 0;
  if (recompute && !verify) {
    throw InputError("inspect: --recompute needs the payloads; drop --no-verify");
  }

  TraceReader reader(path);
  const Trace& t = reader.trace();
  std::array<PhaseSummary, kNumPhases> phases{};
  std::vector<std::string> layers;
  std::uint64_t payload_bytes = 0, recomputed = 0, scaled = 0;
  std::map<std::string, std::uint64_t> blocks;  // finer scales: "a=16", "b=K", ... -> records
  for (std::size_t i = 0; i < t.records.size(); ++i) {
    const TraceRecord& r = t.records[i];
    auto& ps = phases[static_cast<int>(r.phase)];
    ps.records++;
    ps.macs += r.macs();
    ps.by_format[format_slot(r)]++;
    if (std::find(layers.begin(), layers.end(), r.layer) == layers.end()) layers.push_back(r.layer);
    if (r.scaled()) {
      ++scaled;
      for (const auto& [side, op] : {std::pair{"a", &r.a}, std::pair{"b", &r.b}}) {
        if (op->scale_block > 0) {
          ++blocks[fmt::format("{}={}", side, op->scale_block == r.shape.k ? std::string("K") : std::to_string(op->scale_block))];
        }
      }
    }
    if (!r.has_payload) continue;
    payload_bytes += r.payload_a.bytes + r.payload_b.bytes + r.payload_expected.bytes + r.payload_a_scales.bytes +
                     r.payload_b_scales.bytes;
    if (!verify) continue;
    RecordPayload p = reader.read_payload(i);  // verifies sizes and checksums
    if (recompute) {
      std::string diff;
      try {
        diff = check_record_result(r, p);
      } catch (const AccumulatorOverflow& e) {
        diff = e.what();
      }
      if (!diff.empty()) {
        throw VerificationError(fmt::format("{}: records[{}] ({} {}): {}", path, i, r.layer,
                                            to_string(r.phase), diff));
      }
      ++recomputed;
    }
  }

  std::uint64_t total_macs = t.total_macs();
  std::size_t with_payload = t.records_with_payload();
  if (vm.count("json") != 0) {
    nlohmann::ordered_json j;
    j["trace"] = path;
    j["format_version"] = t.version;
    j["generator"] = t.generator;
    j["records"] = t.records.size();
    j["records_with_payload"] = with_payload;
    j["payload_bytes"] = payload_bytes;
    j["checksums_verified"] = verify && with_payload > 0;
    j["gemms_recomputed"] = recomputed;
    if (scaled > 0) {
      j["finer_scale_records"] = scaled;
      j["scale_blocks"] = blocks;  // operand=scale_block (K: one per row or column) -> records
    }
    nlohmann::ordered_json ph = nlohmann::ordered_json::object();
    for (int p = 0; p < kNumPhases; ++p) {
      nlohmann::ordered_json f = nlohmann::ordered_json::object();
      for (int k = 0; k <= kLastSlot; ++k) {
        f[slot_name(k)] = phases[p].by_format[k];
      }
      ph[to_string(static_cast<Phase>(p))] = {
          {"records", phases[p].records}, {"macs", phases[p].macs}, {"formats", f}};
    }
    j["phases"] = ph;
    j["macs_total"] = total_macs;
    j["layers"] = layers;
    std::printf("%s\n", j.dump(2).c_str());
    return kExitOk;
  }

  std::string out;
  out += fmt::format("trace      {} ({} v{})\n", path, kTraceFormatName, t.version);
  if (!t.generator.empty()) out += fmt::format("generator  {}\n", t.generator);
  if (!t.description.empty()) out += fmt::format("about      {}\n", t.description);
  out += fmt::format("records    {} ({} with payload, {} payload bytes{})\n", t.records.size(),
                     with_payload, thousands(payload_bytes),
                     with_payload == 0 ? ""
                     : verify          ? ", checksums verified"
                                       : ", checksums not checked");
  if (recompute) out += fmt::format("recomputed {} GEMMs: all match the reference arithmetic\n", recomputed);
  if (scaled > 0) {
    std::vector<std::string> parts;
    for (const auto& [k, n] : blocks) parts.push_back(fmt::format("{} x{}", k, n));
    out += fmt::format("scales     {} records with finer scales (scale_block: {})\n", scaled, fmt::join(parts, ", "));
  }
  out += fmt::format("layers     {}\n\n", fmt::join(layers, " "));
  out += fmt::format("{:<12}{:>9}{:>20}  {}\n", "phase", "records", "MACs", "formats");
  for (int p = 0; p < kNumPhases; ++p) {
    out += fmt::format("{:<12}{:>9}{:>20}  {}\n", to_string(static_cast<Phase>(p)),
                       phases[p].records, thousands(phases[p].macs), formats_text(phases[p].by_format));
  }
  out += fmt::format("{:<12}{:>9}{:>20}\n", "total", t.records.size(), thousands(total_macs));
  std::fputs(out.c_str(), stdout);
  return kExitOk;
}

}  // namespace mfsim::cli
