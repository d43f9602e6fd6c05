#include "sim/fold_model.h"

#include <algorithm>
#include <cmath>

namespace mfsim {

Mapping map_gemm(Dataflow d, const GemmShape& s) {
  switch (d) {
    case Dataflow::kOs: return Mapping{s.m, s.n, s.k};
    case Dataflow::kWs: return Mapping{s.k, s.n, s.m};
    case Dataflow::kIs: return Mapping{s.k, s.m, s.n};
  }
  return {};
}

std::uint64_t packed_bytes(std::uint64_t elements, int bits) {
  return (elements * static_cast<std::uint64_t>(bits) + 7) / 8;
}

namespace {
std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }
}  // namespace

FoldPlan::FoldPlan(const SimConfig& cfg, const GemmShape& shape)
    : cfg_(cfg), shape_(shape), map_(map_gemm(cfg.dataflow, shape)) {
  row_blocks_ = ceil_div(map_.sr, cfg.rows);
  col_blocks_ = ceil_div(map_.sc, cfg.cols);
  switch (cfg.array) {
    case ArrayKind::kMfMac: operand_bits_ = 4; break;
    case ArrayKind::kInt8: operand_bits_ = 8; break;
    case ArrayKind::kFp32: operand_bits_ = 32; break;
  }
  if (cfg.array == ArrayKind::kFp32) {
    output_bits_ = acc_register_bits_ = 32;
  } else {
    acc_register_bits_ = cfg.accumulator.bits;
    output_bits_ = (cfg.accumulator.bits + 7) / 8 * 8;
  }
  auto m = static_cast<std::uint64_t>(shape.m), n = static_cast<std::uint64_t>(shape.n),
       k = static_cast<std::uint64_t>(shape.k);
  a_whole_fits_ = packed_bytes(m * k, operand_bits_) <= cfg.sram_a_bytes / 2;
  b_whole_fits_ = packed_bytes(k * n, operand_bits_) <= cfg.sram_b_bytes / 2;
}

Fold FoldPlan::fold(std::int64_t index) const {
  Fold f;
  f.index = index;
  const bool os = cfg_.dataflow == Dataflow::kOs;
  if (os) {
    f.row_block = index / col_blocks_;
    f.col_block = index % col_blocks_;
  } else {
    f.row_block = index % row_blocks_;
    f.col_block = index / row_blocks_;
  }
  f.r = static_cast<int>(std::min<std::int64_t>(cfg_.rows, map_.sr - f.row_block * cfg_.rows));
  f.c = static_cast<int>(std::min<std::int64_t>(cfg_.cols, map_.sc - f.col_block * cfg_.cols));
  f.t = map_.t;
  const auto r = static_cast<std::uint64_t>(f.r), c = static_cast<std::uint64_t>(f.c),
             t = static_cast<std::uint64_t>(f.t);
  const auto K = static_cast<std::uint64_t>(shape_.k);
  const int ob = operand_bits_;
  if (os) {
    std::uint64_t a_tile = packed_bytes(r * K, ob);
    f.load_a_bytes = (f.col_block == 0 || a_tile > cfg_.sram_a_bytes / 2) ? a_tile : 0;
    f.load_b_bytes = (!b_whole_fits_ || f.row_block == 0) ? packed_bytes(K * c, ob) : 0;
    f.store_c_bytes = packed_bytes(r * c, output_bits_);
    return f;
  }
  f.first_k = f.row_block == 0;
  f.last_k = f.row_block == row_blocks_ - 1;
  std::uint64_t stationary = packed_bytes(r * c, ob);
  std::uint64_t stream = packed_bytes(t * r, ob);
  bool stream_whole_fits = cfg_.dataflow == Dataflow::kWs ? a_whole_fits_ : b_whole_fits_;
  std::uint64_t stream_load = (!stream_whole_fits || f.col_block == 0) ? stream : 0;
  if (cfg_.dataflow == Dataflow::kWs) {
    f.load_a_bytes = stream_load;
    f.load_b_bytes = stationary;
  } else {
    f.load_a_bytes = stationary;
    f.load_b_bytes = stream_load;
  }
  std::uint64_t psums = packed_bytes(t * c, output_bits_);
  if (psums <= cfg_.sram_c_bytes / 2) {  // partial sums stay on chip until final
    f.store_c_bytes = f.last_k ? psums : 0;
  } else {  // partial sums go to DRAM after every fold and come back for the next K block
    f.store_c_bytes = psums;
    f.load_c_bytes = f.first_k ? 0 : psums;
  }
  return f;
}

std::int64_t fold_cycles(Dataflow d, int mac_latency, int r, int c, std::int64_t t) {
  if (d == Dataflow::kOs) return 2 * r + c + t * mac_latency - 2;
  return r + static_cast<std::int64_t>(r) * mac_latency + c + t - 2;
}

std::int64_t first_output_cycle(Dataflow d, int mac_latency, int r, int c, std::int64_t t) {
  if (d == Dataflow::kOs) return r + c + t * mac_latency - 2;
  return r + static_cast<std::int64_t>(r) * mac_latency - 1;
}

std::uint64_t scalesim_cycles(Dataflow d, int rows, int cols, const GemmShape& s) {
  Mapping m = map_gemm(d, s);
  auto folds = static_cast<std::uint64_t>(ceil_div(m.sr, rows) * ceil_div(m.sc, cols));
  auto per_fold = static_cast<std::uint64_t>(
      (d == Dataflow::kOs ? rows : 2 * rows) + cols + m.t - 2);
  return folds * per_fold - 1;
}

std::uint64_t transfer_cycles(std::uint64_t bytes, double bytes_per_cycle) {
  if (bytes == 0) return 0;
  double q = static_cast<double>(bytes) / bytes_per_cycle;
  auto c = static_cast<std::uint64_t>(std::ceil(q * (1.0 - 1e-12)));
  return std::max<std::uint64_t>(c, 1);
}

GemmTiming analytic_timing(const FoldPlan& plan) {
  const SimConfig& cfg = plan.config();
  const double bw = cfg.dram_bytes_per_cycle;
  GemmTiming g;
  g.folds = static_cast<std::uint64_t>(plan.count());
  std::uint64_t dram_free = 0;
  // Issue a request at `at`; returns its completion time.
  auto issue = [&](std::uint64_t at, std::uint64_t bytes) {
    if (bytes == 0) return at;
    std::uint64_t done = std::max(at, dram_free) + transfer_cycles(bytes, bw);
    dram_free = done;
    return done;
  };
  Fold cur = plan.fold(0);
  std::uint64_t ready = issue(0, cur.load_bytes());
  std::uint64_t prev_end = 0;
  for (std::int64_t i = 0; i < plan.count(); ++i) {
    std::uint64_t start = std::max(prev_end, ready);
    g.stall += start - prev_end;
    auto len = static_cast<std::uint64_t>(fold_cycles(cfg.dataflow, cfg.mac_latency, cur.r, cur.c, cur.t));
    std::uint64_t end = start + len;
    g.compute += len;
    bool has_next = i + 1 < plan.count();
    Fold next = has_next ? plan.fold(i + 1) : Fold{};
    if (has_next && next.load_c_bytes == 0) ready = issue(start, next.load_bytes());
    issue(end, cur.store_c_bytes);
    if (has_next && next.load_c_bytes != 0) ready = issue(end, next.load_bytes());
    prev_end = end;
    cur = next;
  }
  g.total = std::max(prev_end, dram_free);
  g.stall += g.total - prev_end;
  return g;
}

EventCounts analytic_events(const FoldPlan& plan, const GemmTiming& timing,
                            std::uint64_t zero_products) {
  const SimConfig& cfg = plan.config();
  const std::uint64_t ob = static_cast<std::uint64_t>(plan.operand_bits());
  const std::uint64_t outb = static_cast<std::uint64_t>(plan.output_bits());
  const std::uint64_t accb = static_cast<std::uint64_t>(plan.acc_register_bits());
  const bool os = cfg.dataflow == Dataflow::kOs;
  EventCounts e;
  std::uint64_t operand_writes = 0, acc_writes = 0;
  for (std::int64_t i = 0; i < plan.count(); ++i) {
    Fold f = plan.fold(i);
    const auto r = static_cast<std::uint64_t>(f.r), c = static_cast<std::uint64_t>(f.c),
               t = static_cast<std::uint64_t>(f.t);
    const std::uint64_t slots = r * c * t;
    e.mac_slots += slots;
    if (os) {
      operand_writes += 2 * slots;
      acc_writes += c * r * (r - 1) / 2;  // output drain shifts (accumulate writes added below)
      e.sram_a_read_bits += r * t * ob;
      e.sram_b_read_bits += c * t * ob;
      e.sram_c_write_bits += r * c * outb;
    } else {
      operand_writes += c * r * (r + 1) / 2 + slots;  // stationary preload, streamed operand
      acc_writes += slots;                            // partial sums
      std::uint64_t stream_bits = r * t * ob, stationary_bits = r * c * ob;
      (cfg.dataflow == Dataflow::kWs ? e.sram_a_read_bits : e.sram_b_read_bits) += stream_bits;
      (cfg.dataflow == Dataflow::kWs ? e.sram_b_read_bits : e.sram_a_read_bits) += stationary_bits;
      e.sram_c_write_bits += t * c * outb;
      if (!f.first_k) e.sram_c_read_bits += t * c * outb;
    }
    e.sram_a_write_bits += f.load_a_bytes * 8;
    e.sram_b_write_bits += f.load_b_bytes * 8;
    e.sram_c_write_bits += f.load_c_bytes * 8;
    e.sram_c_read_bits += f.store_c_bytes * 8;
    e.dram_read_bytes += f.load_bytes();
    e.dram_write_bytes += f.store_c_bytes;
  }
  e.products_zero = zero_products;
  const std::uint64_t active = e.mac_slots - zero_products;
  switch (cfg.array) {
    case ArrayKind::kMfMac:
      e.mfmac_xor = e.mfmac_exp_add = e.mfmac_decode = e.mfmac_acc_add = active;
      if (os) acc_writes += active;  // gated products leave the accumulator untouched
      break;
    case ArrayKind::kInt8:
      e.int8_mul = e.int8_add = e.mac_slots;
      if (os) acc_writes += e.mac_slots;
      break;
    case ArrayKind::kFp32:
      if (cfg.fp32_fma) {
        e.fp32_fma = e.mac_slots;
      } else {
        e.fp32_mul = e.fp32_add = e.mac_slots;
      }
      if (os) acc_writes += e.mac_slots;
      break;
  }
  e.reg_operand_write_bits = operand_writes * ob;
  e.reg_acc_write_bits = acc_writes * accb;
  e.pe_cycles_busy = e.mac_slots;
  e.pe_cycles_idle = static_cast<std::uint64_t>(cfg.rows) * static_cast<std::uint64_t>(cfg.cols) *
                         timing.total - e.mac_slots;
  return e;
}

}  // namespace mfsim
