// The mapper: a search over buffer-level tilings of one GEMM (docs/mapping.md).
//
// Candidates: every order of the three tile loops; for each dimension its whole extent, the
// array's size times powers of two (the dimensions the array spreads over its rows or columns),
// or powers of two from 16 (the streamed dimension; an OS fold that continues a K tile first
// preloads its partial sums). A candidate must fit the buffers (FoldPlan::fits). The objective:
//  - dram (default): least DRAM bytes; among equals, least cycles (the full timeline of the 8
//    with the fewest compute cycles), then the first in enumeration order;
//  - cycles: least cycles among the 16 candidates with the lowest bound (compute cycles plus
//    DRAM transfer cycles); among equals, least DRAM bytes.
#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <vector>

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

// Sum over every distinct tile (first, middle, last index of each tile loop) of `per(idx)`
// times its multiplicity, with idx's fold levels set by `fold_pos` (0: the tile's first fold,
// 1: its last).
std::uint64_t sum_over_tiles(const FoldPlan& plan, const std::function<std::uint64_t(const LoopIndex&)>& per) {
  std::uint64_t total = 0;
  LoopIndex idx{};
  std::function<void(int, std::uint64_t)> walk = [&](int level, std::uint64_t mult) {
    if (level == 3) {
      total = checked_add(total, checked_mul(per(idx), mult, "dram bytes"), "dram bytes");
      return;
    }
    for_each_class(plan.level_count(level, idx), [&](std::int64_t x, std::uint64_t times) {
      idx[static_cast<std::size_t>(level)] = x;
      walk(level + 1, checked_mul(mult, times, "folds"));
    });
    idx[static_cast<std::size_t>(level)] = 0;
  };
  walk(0, 1);
  return total;
}

// Compute cycles of every fold (no memory), per distinct fold.
std::uint64_t compute_cycles(const FoldPlan& plan) {
  const SimConfig& cfg = plan.config();
  std::uint64_t total = 0;
  LoopIndex idx{};
  std::function<void(int, std::uint64_t)> walk = [&](int level, std::uint64_t mult) {
    if (level == plan.levels()) {
      const Fold f = plan.fold_at(idx);
      total += static_cast<std::uint64_t>(fold_length(cfg, f)) * mult;
      return;
    }
    for_each_class(plan.level_count(level, idx), [&](std::int64_t x, std::uint64_t times) {
      idx[static_cast<std::size_t>(level)] = x;
      walk(level + 1, mult * times);
    });
    idx[static_cast<std::size_t>(level)] = 0;
  };
  walk(0, 1);
  return total;
}

struct Candidate {
  TileMapping tiles;
  std::uint64_t dram = 0, compute = 0, cycles = 0;
};

}  // namespace

std::uint64_t tiled_dram_bytes(const FoldPlan& plan) {
  return sum_over_tiles(plan, [&](const LoopIndex& tile) {
    LoopIndex first = tile, last = tile;
    first[3] = first[4] = 0;
    last[3] = plan.level_count(3, tile) - 1;
    last[4] = plan.level_count(4, last) - 1;
    return plan.fold_at(first).load_bytes() + plan.fold_at(last).store_c_bytes;
  });
}

bool choose_tiles(const SimConfig& cfg, const GemmShape& shape, const ConvView& conv, TileMapping* out) {
  const std::string key =
      fmt::format("{} {} {} {} {} {} {} {} {} {} {} {} {} {} {}", shape.m, shape.n, shape.k, static_cast<int>(cfg.array),
                  static_cast<int>(cfg.dataflow), cfg.rows, cfg.cols, cfg.mac_latency, cfg.accumulator.bits,
                  cfg.sram_a_bytes, cfg.sram_b_bytes, cfg.sram_c_bytes, cfg.dram_bytes_per_cycle,
                  static_cast<int>(cfg.map_objective), cfg.fp32_fma);
  const std::string conv_key =
      conv.active && cfg.conv_im2col_onchip
          ? fmt::format(" conv {} {} {} {} {} {} {} {} {}", static_cast<int>(conv.phase), conv.geo.batch, conv.geo.in_h,
                        conv.geo.in_w, conv.geo.in_c, conv.geo.kernel_h, conv.geo.kernel_w, conv.geo.stride, conv.geo.pad)
          : "";
  static std::map<std::string, std::pair<bool, TileMapping>> memo;
  if (auto it = memo.find(key + conv_key); it != memo.end()) {
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
        if (c.dram <= least + least / 10) pool.push_back(c);  // within tolerance: a tie
      }
      for (auto& c : pool) c.compute = compute_cycles(FoldPlan(cfg, shape, c.tiles, conv));
      std::stable_sort(pool.begin(), pool.end(), [](const Candidate& a, const Candidate& b) { return a.compute < b.compute; });
      if (pool.size() > 8) pool.resize(8);
    } else {
      for (auto& c : all) c.compute = compute_cycles(FoldPlan(cfg, shape, c.tiles, conv)) + transfer_cycles(c.dram, bw);
      std::stable_sort(all.begin(), all.end(), [](const Candidate& a, const Candidate& b) { return a.compute < b.compute; });
      pool.assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(16, all.size())));
    }
    for (auto& c : pool) c.cycles = analytic_timing(FoldPlan(cfg, shape, c.tiles, conv)).total;
    const bool dram_first = cfg.map_objective == MapObjective::kDram;
    auto better = [&](const Candidate& a, const Candidate& b) {
      if (dram_first) return a.dram != b.dram ? a.dram < b.dram : a.cycles < b.cycles;
      return a.cycles != b.cycles ? a.cycles < b.cycles : a.dram < b.dram;
    };
    const Candidate* best = &pool.front();
    for (const auto& c : pool) {
      if (better(c, *best)) best = &c;
    }
    chosen = best->tiles;
  }
  memo.emplace(key + conv_key, std::make_pair(found, chosen));
  *out = chosen;
  return found;
}

}  // namespace mfsim
