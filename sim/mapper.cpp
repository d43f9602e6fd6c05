// The mapper: a search over buffer-level tilings of one GEMM (docs/mapping.md).
//
// Candidates: every order of the three tile loops; for each dimension its whole extent, the
// array's size times powers of two and a few partial arrays (the dimensions the array spreads
// over its rows or columns), or powers of two from 16 (the streamed dimension; an OS fold that
// continues a K tile first preloads its partial sums); for a convolution, feature maps read with
// im2col on chip or the im2col matrices. A candidate must fit the buffers (FoldPlan::fits).
// The objective (map.objective):
//  - dram (default): least DRAM bytes; among the candidates within 5% of the least (a tie), the
//    least cycles (the full timeline of the 8 with the fewest compute cycles);
//  - cycles: least cycles among the 16 candidates with the lowest bound (compute cycles plus
//    DRAM transfer cycles); among equals, least DRAM bytes;
//  - energy, edp: least DRAM + SRAM + register energy (the run's table; the MAC arithmetic is
//    the same for every mapping), or that energy times cycles, among the 32 candidates with the
//    least DRAM bytes and the 32 with the fewest compute cycles.
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

// Compute cycles of every fold (no memory), per distinct fold.
std::uint64_t compute_cycles(const FoldPlan& plan) {
  std::uint64_t total = 0;
  plan.for_each_distinct(plan.levels(), [&](const LoopIndex& idx, std::uint64_t mult) {
    total += static_cast<std::uint64_t>(fold_length(plan.config(), plan.fold_at(idx))) * mult;
  });
  return total;
}

struct Candidate {
  TileMapping tiles;
  std::uint64_t dram = 0, compute = 0, cycles = 0;
  double energy = 0;  // pJ of DRAM, SRAM and registers (map.objective = energy | edp)
};

double mapping_energy(const FoldPlan& plan, const GemmTiming& t, const MapCosts& c) {
  const EventCounts e = analytic_events(plan, t, 0);
  return c.dram_byte * static_cast<double>(e.dram_read_bytes + e.dram_write_bytes) +
         c.sram_a_bit * static_cast<double>(e.sram_a_read_bits + e.sram_a_write_bits) +
         c.sram_b_bit * static_cast<double>(e.sram_b_read_bits + e.sram_b_write_bits) +
         c.sram_c_bit * static_cast<double>(e.sram_c_read_bits + e.sram_c_write_bits) +
         c.register_bit * static_cast<double>(e.reg_operand_write_bits + e.reg_acc_write_bits);
}

}  // namespace

std::uint64_t tiled_dram_bytes(const FoldPlan& plan) {
  // Every distinct tile: its loads happen before its first fold, its store after its last.
  std::uint64_t total = 0;
  plan.for_each_distinct(plan.tile_level(), [&](const LoopIndex& tile, std::uint64_t mult) {
    LoopIndex last = tile;
    last[3] = plan.level_count(3, tile) - 1;
    last[4] = plan.level_count(4, last) - 1;
    const std::uint64_t bytes = plan.fold_at(tile).load_bytes() + plan.fold_at(last).store_c_bytes;
    total = checked_add(total, checked_mul(bytes, mult, "dram bytes"), "dram bytes");
  });
  return total;
}

bool choose_tiles(const SimConfig& cfg, const GemmShape& shape, const ConvView& conv, TileMapping* out) {
  const std::string key =
      fmt::format("{} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {}", shape.m, shape.n, shape.k, cfg.array->name,
                  static_cast<int>(cfg.dataflow), cfg.rows, cfg.cols, cfg.mac_latency, cfg.accumulator.bits,
                  cfg.sram_a_bytes, cfg.sram_b_bytes, cfg.sram_c_bytes, cfg.dram_bytes_per_cycle,
                  static_cast<int>(cfg.map_objective), cfg.fp32_fma, cfg.overlap);
  const std::string cost_key =
      cfg.map_objective == MapObjective::kEnergy || cfg.map_objective == MapObjective::kEdp
          ? fmt::format(" costs {} {} {} {} {}", cfg.map_costs.dram_byte, cfg.map_costs.sram_a_bit,
                        cfg.map_costs.sram_b_bit, cfg.map_costs.sram_c_bit, cfg.map_costs.register_bit)
          : "";
  const std::string conv_key =
      conv.active && cfg.conv_im2col_onchip
          ? fmt::format(" conv {} {} {} {} {} {} {} {} {}", static_cast<int>(conv.phase), conv.geo.batch, conv.geo.in_h,
                        conv.geo.in_w, conv.geo.in_c, conv.geo.kernel_h, conv.geo.kernel_w, conv.geo.stride, conv.geo.pad)
          : "";
  static std::map<std::string, std::pair<bool, TileMapping>> memo;
  if (auto it = memo.find(key + conv_key + cost_key); it != memo.end()) {
    *out = it->second.second;
    return it->second.first;
  }
  // Which dimensions the array spreads over its rows / columns, which one it streams.
  const bool os = cfg.dataflow == Dataflow::kOs, ws = cfg.dataflow == Dataflow::kWs;
  const std::int64_t gm = os ? cfg.rows : ws ? 0 : cfg.cols;
  const std::int64_t gn = os ? cfg.cols : ws ? cfg.cols : 0;
  const std::int64_t gk = os ? 0 : cfg.rows;
  const auto cm = candidates(shape.m, gm, gm == 0), cn = candidates(shape.n, gn, gn == 0);
  const std::vector<std::int64_t> ck = candidates(shape.k, gk, gk == 0);
  static const char* const kOrders[] = {"mnk", "mkn", "nmk", "nkm", "kmn", "knm"};
  std::vector<Candidate> all;
  // A convolution may read feature maps or the im2col matrices, whichever moves less.
  std::vector<bool> fmap_choices{true};
  if (conv.active && cfg.conv_im2col_onchip) fmap_choices.push_back(false);
  for (bool fmap : fmap_choices) {
  for (const char* order : kOrders) {
    for (std::int64_t mt : cm) {
      for (std::int64_t nt : cn) {
        for (std::int64_t kt : ck) {
          Candidate c;
          c.tiles = TileMapping{mt, nt, kt, {order[0], order[1], order[2]}, fmap};
          FoldPlan plan(cfg, shape, c.tiles, conv);
          if (!plan.fits()) continue;
          c.dram = tiled_dram_bytes(plan);
          all.push_back(c);
        }
      }
    }
  }
  }
  bool found = !all.empty();
  TileMapping chosen;
  if (found) {
    const Bandwidth bw = Bandwidth::from_double(cfg.dram_bytes_per_cycle);
    std::vector<Candidate> pool;
    if (cfg.map_objective == MapObjective::kDram) {
      std::uint64_t least = all.front().dram;
      for (const auto& c : all) least = std::min(least, c.dram);
      for (const auto& c : all) {
        if (c.dram <= least + least / 20) pool.push_back(c);  // within 5% of the least: a tie
      }
      for (auto& c : pool) c.compute = compute_cycles(FoldPlan(cfg, shape, c.tiles, conv));
      std::stable_sort(pool.begin(), pool.end(), [](const Candidate& a, const Candidate& b) { return a.compute < b.compute; });
      if (pool.size() > 8) pool.resize(8);
    } else if (cfg.map_objective == MapObjective::kCycles) {
      for (auto& c : all) c.compute = compute_cycles(FoldPlan(cfg, shape, c.tiles, conv)) + transfer_cycles(c.dram, bw);
      std::stable_sort(all.begin(), all.end(), [](const Candidate& a, const Candidate& b) { return a.compute < b.compute; });
      pool.insert(pool.end(), all.begin(), all.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(16, all.size())));
    } else {  // energy, edp: the 32 with the least DRAM bytes and the 32 with the fewest compute cycles
      if (!cfg.map_costs.set) throw InputError("map.objective: energy and edp need an energy table (--energy-table)");
      std::vector<Candidate> by_dram = all, by_compute = all;
      std::stable_sort(by_dram.begin(), by_dram.end(), [](const Candidate& a, const Candidate& b) { return a.dram < b.dram; });
      for (auto& c : by_compute) c.compute = compute_cycles(FoldPlan(cfg, shape, c.tiles, conv));
      std::stable_sort(by_compute.begin(), by_compute.end(),
                       [](const Candidate& a, const Candidate& b) { return a.compute < b.compute; });
      for (std::size_t i = 0; i < 32 && i < all.size(); ++i) {
        pool.push_back(by_dram[i]);
        pool.push_back(by_compute[i]);
      }
    }
    for (auto& c : pool) {
      FoldPlan plan(cfg, shape, c.tiles, conv);
      const GemmTiming t = analytic_timing(plan);
      c.cycles = t.total;
      if (cfg.map_objective == MapObjective::kEnergy || cfg.map_objective == MapObjective::kEdp) {
        c.energy = mapping_energy(plan, t, cfg.map_costs);
      }
    }
    const MapObjective obj = cfg.map_objective;
    auto score = [&](const Candidate& c) {
      switch (obj) {
        case MapObjective::kEnergy: return c.energy;
        case MapObjective::kEdp: return c.energy * static_cast<double>(c.cycles);
        case MapObjective::kCycles: return static_cast<double>(c.cycles);
        case MapObjective::kDram: break;
      }
      return static_cast<double>(c.dram);
    };
    auto better = [&](const Candidate& a, const Candidate& b) {
      if (obj == MapObjective::kDram) return a.cycles != b.cycles ? a.cycles < b.cycles : a.dram < b.dram;  // DRAM ties
      const double sa = score(a), sb = score(b);
      if (sa != sb) return sa < sb;
      return a.dram < b.dram;
    };
    const Candidate* best = &pool.front();
    for (const auto& c : pool) {
      if (better(c, *best)) best = &c;
    }
    chosen = best->tiles;
  }
  memo.emplace(key + conv_key + cost_key, std::make_pair(found, chosen));
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
      {"map.objective", ParamType::kChoice, "dram", "", 0, 0, "dram|cycles|energy|edp",
       "what the mapper minimises: DRAM bytes (ties within 5%: cycles), cycles, energy (the run's energy table, "
       "without the MAC arithmetic, which no mapping changes) or energy x cycles",
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
