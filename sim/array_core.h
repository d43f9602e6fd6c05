// The register-level systolic array: an R x C grid of PE registers updated once per clock
// cycle, shared by all arithmetics (the PE policy, sim/pe_policy.h) and all dataflows. Plain
// C++; the SystemC model (sim/array_sim.cpp) calls step() from one clocked process.
//
// Every register changes once per cycle from the previous cycle's values: the update walks
// rows bottom-up and columns right-to-left, so each read sees the old value (the same result
// as double buffering, without the copy). Cycle semantics: docs/cycle-semantics.md.
#pragma once

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "sim/params.h"
#include "sim/pe_policy.h"

namespace mfsim {

template <class P>
class ArrayCore {
 public:
  using Op = typename P::Op;
  using Acc = typename P::Acc;

  struct FoldInput {
    Dataflow dataflow = Dataflow::kOs;
    int r = 0, c = 0;
    std::int64_t t = 0;
    const Op* west = nullptr;        // r x t: the stream entering row i from the left
    const Op* north = nullptr;       // OS: c x t, the stream entering column j from the top
    const Op* stationary = nullptr;  // WS/IS: r x c, preloaded from the top
    const Acc* psum_in = nullptr;    // WS/IS: t x c partial sums entering the top row (or zeros);
                                     // OS: r x c partial sums preloaded into the accumulators
    Acc* out = nullptr;              // OS: r x c; WS/IS: t x c
    std::int64_t base_row = 0, base_col = 0, base_k = 0;  // for overflow messages
  };

  struct Counters {
    PeTally tally;
    std::uint64_t operand_writes = 0;   // valid data written into operand registers
    std::uint64_t drain_writes = 0;     // OS accumulator shifts: output drain and partial-sum preload
    std::uint64_t west_reads = 0, north_reads = 0, stationary_reads = 0;  // edge feeds
    std::uint64_t psum_reads = 0, out_writes = 0;
  };

  ArrayCore(int rows, int cols, int mac_latency, typename P::Pe pe)
      : R_(rows), C_(cols), L_(mac_latency), pe_(pe),
        a_(static_cast<std::size_t>(rows) * cols, P::kBubble),
        b_(static_cast<std::size_t>(rows) * cols, P::kBubble),
        acc_(static_cast<std::size_t>(rows) * cols, Acc{}),
        pipe_(static_cast<std::size_t>(rows) * cols * mac_latency, Acc{}) {}

  // checked: every accumulation is range-checked (needed only when the accumulator can overflow).
  void begin(const FoldInput& in, bool checked) {
    in_ = in;
    checked_ = checked;
    cycle_ = 0;
    // OS folds after the first K tile start from the partial sums (preloaded from the top);
    // WS/IS folds start by preloading their stationary operands.
    phase_ = in.dataflow == Dataflow::kOs && in.psum_in == nullptr ? kCompute : kPreload;
    os_offset_ = in.dataflow == Dataflow::kOs && in.psum_in != nullptr ? in.r : 0;
    slots_at_begin_ = counters.tally.slots;
    emerged_ = 0;
    drain_row_ = 0;
    first_output_cycle = last_output_cycle = -1;
    std::fill(a_.begin(), a_.end(), P::kBubble);
    std::fill(b_.begin(), b_.end(), P::kBubble);
    std::fill(acc_.begin(), acc_.end(), Acc{});
  }

  // One clock cycle. Returns true when the fold's last output left the array in this cycle.
  bool step() {
    bool done = false;
    if (in_.dataflow == Dataflow::kOs) {
      done = checked_ ? step_os<true>() : step_os<false>();
    } else {
      done = checked_ ? step_stationary<true>() : step_stationary<false>();
    }
    ++cycle_;
    return done;
  }

  std::int64_t cycle() const { return cycle_; }  // cycles stepped in the current fold
  bool in_preload() const { return phase_ == kPreload; }
  bool in_drain() const { return phase_ == kDrain; }
  const Op& west_reg(int i, int j) const { return a_[idx(i, j)]; }
  const Acc& acc_reg(int i, int j) const { return acc_[idx(i, j)]; }

  Counters counters;
  std::int64_t first_output_cycle = -1, last_output_cycle = -1;

 private:
  enum Phase { kPreload, kCompute, kComplete, kDrain, kStream };

  std::size_t idx(int i, int j) const { return static_cast<std::size_t>(i) * C_ + j; }

  Op feed(const Op* stream, int lane, std::int64_t s, std::uint64_t& reads) const {
    if (s < 0 || s % L_ != 0 || s / L_ >= in_.t) return P::kBubble;
    ++reads;
    return stream[lane * in_.t + s / L_];
  }

  template <bool kChecked>
  bool step_os() {
    const int r = in_.r, c = in_.c;
    if (phase_ == kPreload) {  // partial sums shift down into the accumulators, one row a cycle
      for (int i = r - 1; i >= 1; --i) {
        std::memcpy(&acc_[idx(i, 0)], &acc_[idx(i - 1, 0)], static_cast<std::size_t>(c) * sizeof(Acc));
      }
      std::memcpy(&acc_[idx(0, 0)], in_.psum_in + static_cast<std::size_t>(r - 1 - cycle_) * c,
                  static_cast<std::size_t>(c) * sizeof(Acc));
      counters.psum_reads += static_cast<std::uint64_t>(c);
      counters.drain_writes += static_cast<std::uint64_t>(cycle_ + 1) * c;
      if (cycle_ == r - 1) phase_ = kCompute;
      return false;
    }
    const std::int64_t t = cycle_ - os_offset_;  // cycles since the stream started
    if (phase_ == kCompute) {
      for (int i = r - 1; i >= 0; --i) {  // operands move one PE right
        Op* row = &a_[idx(i, 0)];
        std::memmove(row + 1, row, static_cast<std::size_t>(c - 1) * sizeof(Op));
        row[0] = feed(in_.west, i, t - i, counters.west_reads);
      }
      for (int i = r - 1; i >= 1; --i) {  // and one PE down
        std::memcpy(&b_[idx(i, 0)], &b_[idx(i - 1, 0)], static_cast<std::size_t>(c) * sizeof(Op));
      }
      for (int j = 0; j < c; ++j) b_[j] = feed(in_.north, j, t - j, counters.north_reads);
      PeTally local;  // local tallies stay in registers (they could alias the accumulators)
      for (int i = 0; i < r; ++i) {
        const Op* arow = &a_[idx(i, 0)];
        const Op* brow = &b_[idx(i, 0)];
        Acc* accrow = &acc_[idx(i, 0)];
        for (int j = 0; j < c; ++j) {
          ProductPos pos{};
          if constexpr (kChecked) pos = ProductPos{in_.base_row + i, in_.base_col + j, in_.base_k + (t - i - j) / L_};
          accrow[j] = pe_.template mac<kChecked>(accrow[j], arow[j], brow[j], local, pos);
        }
      }
      add(local);
      counters.operand_writes += local.valid_operands;  // both registers of every PE
      const auto all = static_cast<std::uint64_t>(r) * c * static_cast<std::uint64_t>(in_.t);
      if (counters.tally.slots - slots_at_begin_ == all) {
        phase_ = L_ > 1 ? kComplete : kDrain;
        wait_ = L_ - 1;
      }
      return false;
    }
    if (phase_ == kComplete) {  // the last MACs finish in their pipelines
      if (--wait_ == 0) phase_ = kDrain;
      return false;
    }
    // kDrain: the bottom row leaves the array, the others shift down one row.
    const int src_row = r - 1 - drain_row_;
    for (int j = 0; j < c; ++j) in_.out[static_cast<std::size_t>(src_row) * c + j] = acc_[idx(r - 1, j)];
    counters.out_writes += static_cast<std::uint64_t>(c);
    note_output(cycle_);
    for (int i = r - 1; i >= 1; --i) {
      std::memcpy(&acc_[idx(i, 0)], &acc_[idx(i - 1, 0)], static_cast<std::size_t>(c) * sizeof(Acc));
    }
    std::fill(&acc_[idx(0, 0)], &acc_[idx(0, 0)] + c, Acc{});
    counters.drain_writes += static_cast<std::uint64_t>(r - 1 - drain_row_) * c;
    return ++drain_row_ == r;
  }

  template <bool kChecked>
  bool step_stationary() {
    const int r = in_.r, c = in_.c;
    const std::int64_t t = cycle_;
    if (phase_ == kPreload) {  // stationary operands shift down from the top, one row a cycle
      for (int i = r - 1; i >= 1; --i) {
        std::memcpy(&b_[idx(i, 0)], &b_[idx(i - 1, 0)], static_cast<std::size_t>(c) * sizeof(Op));
      }
      const Op* src = in_.stationary + static_cast<std::size_t>(r - 1 - t) * c;
      std::memcpy(&b_[idx(0, 0)], src, static_cast<std::size_t>(c) * sizeof(Op));
      counters.stationary_reads += static_cast<std::uint64_t>(c);
      counters.operand_writes += static_cast<std::uint64_t>(t + 1) * c;
      if (t == r - 1) phase_ = kStream;
      return false;
    }
    const std::int64_t tau = t - r;
    const std::size_t slot = static_cast<std::size_t>(t % L_);
    PeTally local;
    for (int i = r - 1; i >= 0; --i) {
      Op* row = &a_[idx(i, 0)];
      std::memmove(row + 1, row, static_cast<std::size_t>(c - 1) * sizeof(Op));
      const std::int64_t m_in = tau - static_cast<std::int64_t>(i) * L_;
      if (m_in >= 0 && m_in < in_.t) {
        row[0] = in_.west[static_cast<std::size_t>(i) * in_.t + m_in];
        ++counters.west_reads;
      } else {
        row[0] = P::kBubble;
      }
      const Op* srow = &b_[idx(i, 0)];
      for (int j = 0; j < c; ++j) {
        const std::int64_t m = m_in - j;  // the stream index this PE works on
        Acc pin;
        if (i == 0) {
          pin = Acc{};
          if (in_.psum_in != nullptr && m >= 0 && m < in_.t) {
            pin = in_.psum_in[static_cast<std::size_t>(m) * c + j];
            ++counters.psum_reads;
          }
        } else {
          pin = pipe_[idx(i - 1, j) * L_ + slot];
        }
        ProductPos pos{};
        if constexpr (kChecked) {
          pos = in_.dataflow == Dataflow::kWs ? ProductPos{in_.base_row + m, in_.base_col + j, in_.base_k + i}
                                              : ProductPos{in_.base_row + j, in_.base_col + m, in_.base_k + i};
        }
        pipe_[idx(i, j) * L_ + slot] = pe_.template mac<kChecked>(pin, row[j], srow[j], local, pos);
      }
    }
    add(local);
    // Stationary registers are not rewritten while streaming: count only the streamed operand
    // (a valid stream operand always meets a valid stationary one: slots).
    counters.operand_writes += local.slots;
    // Results complete L-1 cycles after the bottom row computed them.
    const std::size_t out_slot = static_cast<std::size_t>((t + 1) % L_);
    bool any = false;
    for (int j = 0; j < c; ++j) {
      const std::int64_t m = t - r - static_cast<std::int64_t>(r) * L_ + 1 - j;
      if (m < 0 || m >= in_.t) continue;
      in_.out[static_cast<std::size_t>(m) * c + j] = pipe_[idx(r - 1, j) * L_ + out_slot];
      ++counters.out_writes;
      ++emerged_;
      any = true;
    }
    if (any) note_output(t);
    return emerged_ == static_cast<std::uint64_t>(in_.t) * c;
  }

  void add(const PeTally& t) {
    counters.tally.slots += t.slots;
    counters.tally.zero += t.zero;
    counters.tally.saturations += t.saturations;
  }

  void note_output(std::int64_t t) {
    if (first_output_cycle < 0) first_output_cycle = t;
    last_output_cycle = t;
  }

  int R_, C_, L_;
  typename P::Pe pe_;
  std::vector<Op> a_;     // west-to-east operand registers (OS: A; WS/IS: the streamed operand)
  std::vector<Op> b_;     // OS: north-to-south operand registers; WS/IS: stationary registers
  std::vector<Acc> acc_;  // OS accumulators
  std::vector<Acc> pipe_; // WS/IS partial-sum registers, L per PE (the MAC pipeline)
  FoldInput in_;
  bool checked_ = false;
  std::int64_t cycle_ = 0;
  Phase phase_ = kCompute;
  std::uint64_t slots_at_begin_ = 0, emerged_ = 0;
  int drain_row_ = 0, wait_ = 0;
  std::int64_t os_offset_ = 0;  // OS: cycles of partial-sum preload before the stream
};

}  // namespace mfsim
