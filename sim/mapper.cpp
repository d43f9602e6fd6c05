// The mapper: a search over buffer-level tilings of one GEMM (docs/mapping.md).
//
// Candidates: every order of the three tile loops; for each dimension its whole extent, the
// array's size times powers of two and a few partial arrays (the dimensions the array spreads
// over its rows or columns), or powers of two from 16 (the streamed dimension; an OS fold that
// continues a K tile first preloads its partial sums); for a convolution, feature maps read with
// im2col on chip or the im2col matrices. A candidate must fit the buffers (FoldPlan::fits; a B
// tile that does not fit half the B buffer fits when it can be streamed fold by fold).
// The objective (map.objective), each with its tie-breakers:
//  - edp (default): least energy x cycles; then fewer cycles, less energy, fewer DRAM bytes;
//  - energy: least energy (DRAM, SRAM and register energy under the run's table; the MAC
//    arithmetic is the same for every mapping); then fewer cycles, fewer DRAM bytes;
//  - cycles: fewest cycles; then less energy, fewer DRAM bytes;
//  - dram: least DRAM bytes; the candidates within 5% of the least are ties, among which the
//    fewest cycles win (then fewer bytes).
// The search is exact: every candidate is ranked by a lower bound of its objective (cheap
// bounds first, then one from its folds), and candidates are evaluated in bound order until
// the next bound exceeds the best value found, so no candidate that could win or tie is skipped.
// Without per-action costs (a library caller without an energy table; the command line always
// has one), a mapping's energy is taken as its DRAM bytes.
// Ties left after that go to the first candidate in enumeration order: deterministic.
#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/error.h"
#include "sim/fold_model.h"

namespace mfsim {

namespace {

std::vector<std::int64_t> candidates(std::int64_t d, std::int64_t granule, bool streamed) {
  std::vector<std::int64_t> v{d};
  if (streamed) {
    for (std::int64_t x = 16; x < d; x *= 2) v.push_back(x);
  } else {  // multiples of the array's size, and a few partial arrays (fewer active PEs)
    for (std::int64_t x = granule; x < d; x *= 2) v.push_back(x);
    for (std::int64_t x = granule / 2; x >= 8 && x < d; x /= 2) v.push_back(x);
  }
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

struct Candidate {
  TileMapping tiles;
  std::size_t index = 0;  // enumeration order (the last tie-breaker)
  std::uint64_t dram = 0, cycles = 0;
  double energy = 0;       // pJ of DRAM, SRAM and registers (or DRAM bytes without costs)
  double bound0 = 0;       // a cheap lower bound of the objective
};

double mapping_energy(const FoldPlan& plan, const MapCosts& c, std::uint64_t dram) {
  if (!c.set) return static_cast<double>(dram);
  const EventCounts e = analytic_events(plan, GemmTiming{}, 0);  // the PE-cycle counts are not used
  return c.dram_byte * static_cast<double>(e.dram_read_bytes + e.dram_write_bytes) +
         c.sram_a_bit * static_cast<double>(e.sram_a_read_bits + e.sram_a_write_bits) +
         c.sram_b_bit * static_cast<double>(e.sram_b_read_bits + e.sram_b_write_bits) +
         c.sram_c_bit * static_cast<double>(e.sram_c_read_bits + e.sram_c_write_bits) +
         c.register_bit * static_cast<double>(e.reg_operand_write_bits + e.reg_acc_write_bits);
}

// A lower bound of the energy of every mapping moving `dram` bytes: each A and B element is read
// from its buffer at least once, each output written to the C buffer at least once, and each
// product writes at least one operand register.
double energy_floor(const SimConfig& cfg, const GemmShape& s, const ConvView& conv, const MapCosts& c,
                    std::uint64_t dram) {
  if (!c.set) return static_cast<double>(dram);
  const ArrayWidths w = array_widths(cfg, conv);
  const double m = static_cast<double>(s.m), n = static_cast<double>(s.n), k = static_cast<double>(s.k);
  return c.dram_byte * static_cast<double>(dram) + c.sram_a_bit * m * k * w.a + c.sram_b_bit * k * n * w.b +
         c.sram_c_bit * m * n * w.output + c.register_bit * m * n * k * w.operand;
}

// A lower bound of a plan's cycles from its folds: the first fold waits for its loads, the folds
// occupy the array one after another (their visible parts, then the last drain), the last store
// leaves after that; and the channel moves every byte.
std::uint64_t cycles_floor(const FoldPlan& plan, const Bandwidth& bw, std::uint64_t dram) {
  const SimConfig& cfg = plan.config();
  std::uint64_t occupied = 0;
  LoopIndex last{};
  plan.for_each_distinct(plan.levels(), [&](const LoopIndex& idx, std::uint64_t mult) {
    occupied = checked_add(occupied,
                           checked_mul(static_cast<std::uint64_t>(fold_visible_length(cfg, plan.fold_at(idx))), mult,
                                       "cycles"),
                           "cycles");
  });
  for (int l = 0; l < plan.levels(); ++l) last[static_cast<std::size_t>(l)] = plan.level_count(l, last) - 1;
  const Fold first = plan.fold_at(LoopIndex{}), end = plan.fold_at(last);
  const std::uint64_t serial = transfer_cycles(first.load_bytes(), bw) + occupied +
                               static_cast<std::uint64_t>(fold_hidden_tail(cfg, end)) +
                               transfer_cycles(end.store_c_bytes, bw);
  return std::max(serial, transfer_cycles(dram, bw));
}

}  // namespace

std::uint64_t tiled_dram_bytes(const FoldPlan& plan) {
  // Every distinct tile: its loads happen before its first fold, its store after its last; with
  // a streamed B every fold loads its part of B (every distinct fold is summed).
  std::uint64_t total = 0;
  if (plan.b_streamed()) {
    plan.for_each_distinct(plan.levels(), [&](const LoopIndex& idx, std::uint64_t mult) {
      const Fold f = plan.fold_at(idx);
      total = checked_add(total, checked_mul(f.load_bytes() + f.store_c_bytes, mult, "dram bytes"), "dram bytes");
    });
    return total;
  }
  plan.for_each_distinct(plan.tile_level(), [&](const LoopIndex& tile, std::uint64_t mult) {
    LoopIndex last = tile;
    for (int l = plan.tile_level(); l < plan.levels(); ++l) {
      last[static_cast<std::size_t>(l)] = plan.level_count(l, last) - 1;
    }
    const std::uint64_t bytes = plan.fold_at(tile).load_bytes() + plan.fold_at(last).store_c_bytes;
    total = checked_add(total, checked_mul(bytes, mult, "dram bytes"), "dram bytes");
  });
  return total;
}

namespace {

// The candidate that minimises the objective (with its tie-breakers), by branch and bound over
// lower bounds: exact, never skipping a candidate that could win or tie.
TileMapping select(const SimConfig& cfg, const GemmShape& shape, const ConvView& conv, std::vector<Candidate> all) {
  const MapObjective obj = cfg.map_objective;
  const Bandwidth bw = Bandwidth::from_double(cfg.dram_bytes_per_cycle);
  const MapCosts& costs = cfg.map_costs;
  if (obj == MapObjective::kDram) {  // the pool: within 5% of the least DRAM bytes
    std::uint64_t least = all.front().dram;
    for (const auto& c : all) least = std::min(least, c.dram);
    std::vector<Candidate> pool;
    for (const auto& c : all) {
      if (c.dram <= least + least / 20) pool.push_back(c);
    }
    all.swap(pool);
  }
  // Cheap bounds: cycles from the bytes and the MACs (every fold streams at least t cycles and
  // does at most R x C x t products), energy from the bytes and the on-chip floor.
  __extension__ typedef unsigned __int128 u128;
  const u128 macs = static_cast<u128>(shape.m) * static_cast<u128>(shape.n) * static_cast<u128>(shape.k);
  const u128 pes = static_cast<u128>(cfg.rows) * static_cast<u128>(cfg.cols);
  const u128 floor128 = (macs + pes - 1) / pes;
  const std::uint64_t mac_floor = floor128 > ~std::uint64_t{0} ? ~std::uint64_t{0} : static_cast<std::uint64_t>(floor128);
  const bool need_energy = obj != MapObjective::kDram;
  auto primary = [&](double energy, std::uint64_t cycles, std::uint64_t dram) {
    switch (obj) {
      case MapObjective::kEdp: return energy * static_cast<double>(cycles);
      case MapObjective::kEnergy: return energy;
      case MapObjective::kCycles:
      case MapObjective::kDram: break;
    }
    (void)dram;
    return static_cast<double>(cycles);
  };
  for (auto& c : all) {
    const std::uint64_t cyc0 = std::max(transfer_cycles(c.dram, bw), mac_floor);
    c.bound0 = primary(need_energy ? energy_floor(cfg, shape, conv, costs, c.dram) : 0.0, cyc0, c.dram);
  }
  std::stable_sort(all.begin(), all.end(), [](const Candidate& a, const Candidate& b) { return a.bound0 < b.bound0; });
  // The full order: the objective, then its tie-breakers, then enumeration order.
  auto better = [&](const Candidate& a, const Candidate& b) {
    const double pa = primary(a.energy, a.cycles, a.dram), pb = primary(b.energy, b.cycles, b.dram);
    if (pa != pb) return pa < pb;
    switch (obj) {
      case MapObjective::kEdp:
      case MapObjective::kEnergy:
        if (a.cycles != b.cycles) return a.cycles < b.cycles;
        if (a.energy != b.energy) return a.energy < b.energy;
        break;
      case MapObjective::kCycles:
        if (a.energy != b.energy) return a.energy < b.energy;
        break;
      case MapObjective::kDram: break;
    }
    if (a.dram != b.dram) return a.dram < b.dram;
    return a.index < b.index;
  };
  const Candidate* best = nullptr;
  double best_value = 0;
  for (auto& c : all) {
    if (best != nullptr && c.bound0 > best_value) break;  // every later bound is larger still
    FoldPlan plan(cfg, shape, c.tiles, conv);
    if (need_energy) c.energy = mapping_energy(plan, costs, c.dram);
    if (best != nullptr && primary(c.energy, cycles_floor(plan, bw, c.dram), c.dram) > best_value) continue;
    c.cycles = analytic_timing(plan).total;
    if (best == nullptr || better(c, *best)) {
      best = &c;
      best_value = primary(c.energy, c.cycles, c.dram);
    }
  }
  return best->tiles;
}

}  // namespace

std::vector<TileMapping> mapping_candidates(const SimConfig& cfg, const GemmShape& shape, const ConvView& conv) {
  // Which dimensions the array spreads over its rows / columns, which one it streams.
  const bool os = cfg.dataflow == Dataflow::kOs, ws = cfg.dataflow == Dataflow::kWs;
  const std::int64_t gm = os ? cfg.rows : ws ? 0 : cfg.cols;
  const std::int64_t gn = os ? cfg.cols : ws ? cfg.cols : 0;
  const std::int64_t gk = os ? 0 : cfg.rows;
  const auto cm = candidates(shape.m, gm, gm == 0), cn = candidates(shape.n, gn, gn == 0);
  const std::vector<std::int64_t> ck = candidates(shape.k, gk, gk == 0);
  static const char* const kOrders[] = {"mnk", "mkn", "nmk", "nkm", "kmn", "knm"};
  std::vector<TileMapping> out;
  // A convolution may read feature maps or the im2col matrices.
  std::vector<bool> fmap_choices{true};
  if (conv.active && cfg.conv_im2col_onchip) fmap_choices.push_back(false);
  for (bool fmap : fmap_choices) {
    for (const char* order : kOrders) {
      for (std::int64_t mt : cm) {
        for (std::int64_t nt : cn) {
          for (std::int64_t kt : ck) {
            const TileMapping t{mt, nt, kt, {order[0], order[1], order[2]}, fmap};
            if (FoldPlan(cfg, shape, t, conv).fits()) out.push_back(t);
          }
        }
      }
    }
  }
  return out;
}

namespace {
// The searched mappings of one replay, by everything that decides them. Cleared when a replay
// starts (clear_mapping_memo): a process that runs several replays (the Python module, compare in
// one process) never reuses a mapping chosen under another configuration.
std::map<std::string, std::pair<bool, TileMapping>>& mapping_memo() {
  static std::map<std::string, std::pair<bool, TileMapping>> memo;
  return memo;
}
}  // namespace

void clear_mapping_memo() { mapping_memo().clear(); }

bool choose_tiles(const SimConfig& cfg, const GemmShape& shape, const ConvView& conv, TileMapping* out) {
  const std::string key =
      fmt::format("{} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {}", shape.m, shape.n, shape.k, cfg.array->name,
                  static_cast<int>(cfg.dataflow), cfg.rows, cfg.cols, cfg.mac_latency, cfg.accumulator.bits,
                  cfg.sram_a_bytes, cfg.sram_b_bytes, cfg.sram_c_bytes, cfg.dram_bytes_per_cycle,
                  static_cast<int>(cfg.map_objective), cfg.fp32_fma, cfg.overlap);
  const std::string cost_key =
      cfg.map_objective != MapObjective::kDram
          ? fmt::format(" costs {} {} {} {} {} {}", cfg.map_costs.set, cfg.map_costs.dram_byte, cfg.map_costs.sram_a_bit,
                        cfg.map_costs.sram_b_bit, cfg.map_costs.sram_c_bit, cfg.map_costs.register_bit)
          : "";
  const std::string conv_key =
      conv.active && cfg.conv_im2col_onchip
          ? fmt::format(" conv {} {} {} {} {} {} {} {} {} {} {}", static_cast<int>(conv.phase), conv.geo.batch,
                        conv.geo.in_h, conv.geo.in_w, conv.geo.in_c, conv.geo.kernel_h, conv.geo.kernel_w,
                        conv.geo.stride, conv.geo.pad, conv.geo.pad_end_h, conv.geo.pad_end_w)
          : "";
  const ArrayWidths widths = array_widths(cfg, conv);  // the operands' widths in memory
  const std::string width_key = fmt::format(" bits {} {} {}", widths.a, widths.b, widths.output);
  auto& memo = mapping_memo();
  if (auto it = memo.find(key + conv_key + cost_key + width_key); it != memo.end()) {
    *out = it->second.second;
    return it->second.first;
  }
  std::vector<Candidate> all;
  for (const TileMapping& t : mapping_candidates(cfg, shape, conv)) {
    Candidate c;
    c.tiles = t;
    c.dram = tiled_dram_bytes(FoldPlan(cfg, shape, t, conv));
    c.index = all.size();
    all.push_back(c);
  }
  bool found = !all.empty();
  TileMapping chosen;
  if (found) chosen = select(cfg, shape, conv, all);
  memo.emplace(key + conv_key + cost_key + width_key, std::make_pair(found, chosen));
  *out = chosen;
  return found;
}

}  // namespace mfsim

namespace mfsim {

std::vector<ParamSpec> mapping_params() {
  return {
      {"map.policy", ParamType::kChoice, "search", "", 0, 0, "search|fixed",
       "search: the mapper tiles each GEMM for the objective; fixed: the untiled mapping (docs/mapping.md)",
       [](const std::string& v, SimConfig& c) { c.map_policy = v == "fixed" ? MapPolicy::kFixed : MapPolicy::kSearch; }},
      {"conv.im2col", ParamType::kChoice, "onchip", "", 0, 0, "onchip|dram",
       "convolutions read feature maps and expand im2col on chip (col2im for bwd_data), or move the im2col matrices",
       [](const std::string& v, SimConfig& c) { c.conv_im2col_onchip = v == "onchip"; }},
      {"map.objective", ParamType::kChoice, "edp", "", 0, 0, "dram|cycles|energy|edp",
       "what the mapper minimises (exactly, over its candidates): energy x cycles (ties: cycles), energy (the run's "
       "energy table, without the MAC arithmetic, which no mapping changes; ties: cycles), cycles (ties: energy) or "
       "DRAM bytes (ties within 5%: cycles)",
       [](const std::string& v, SimConfig& c) {
         c.map_objective = v == "cycles"   ? MapObjective::kCycles
                           : v == "energy" ? MapObjective::kEnergy
                           : v == "edp"    ? MapObjective::kEdp
                                           : MapObjective::kDram;
       }},
      {"map.tiles", ParamType::kTiles, "auto", "", 0, 0, nullptr,
       "pin one tiling for every GEMM instead of searching: MtxNtxKt:ORDER, e.g. 128x64xk:nmk",
       [](const std::string& v, SimConfig& c) {
         c.map_pinned = v != "auto";
         if (c.map_pinned) parse_tile_mapping(v, &c.map_tiles);
       }},
  };
}

}  // namespace mfsim
