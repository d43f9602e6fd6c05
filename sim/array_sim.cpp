#include "sim/array_sim.h"

#include <fmt/format.h>
#include <unistd.h>

#include <systemc>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <memory>

#include "common/atomic_file.h"
#include "common/error.h"
#include "sim/array_engine.h"
#include "sim/pe_type.h"

namespace mfsim {

namespace {

// The system: a controller process that walks GEMMs and folds and clocks the array, and a DRAM
// channel process that serves load and store requests in order at dram.bandwidth.
class SystolicSystem : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(SystolicSystem);

  SystolicSystem(sc_core::sc_module_name name, const SimConfig& cfg, const std::vector<GemmJob>& jobs,
                 const std::function<void(std::size_t, ValueGemmResult&)>& on_done,
                 const std::string& vcd_path)
      : sc_module(name), cfg_(cfg), jobs_(jobs), on_done_(on_done), engine_(cfg.array->make_engine(cfg)),
        bandwidth_(Bandwidth::from_double(cfg.dram_bytes_per_cycle)) {
    SC_THREAD(control);
    SC_THREAD(dram);
    if (!vcd_path.empty()) open_vcd(vcd_path);
  }

  ~SystolicSystem() override { close_vcd(); }

  void close_vcd() {
    if (vcd_ != nullptr) sc_core::sc_close_vcd_trace_file(vcd_);
    vcd_ = nullptr;
  }

  std::exception_ptr error;  // an exception escaping the controller, rethrown after sc_start

 private:
  // DRAM requests are identified by their issue number; the channel serves them in issue order
  // (by the cycle they are issued for, then by issue number: a store issued for the end of a
  // hidden drain waits for requests issued before that cycle) and records each completion
  // cycle. Nothing points into a container: the controller keeps ids, the channel keeps values.
  struct Request {
    std::uint64_t id = 0;
    std::uint64_t bytes = 0;
    std::uint64_t not_before = 0;  // the cycle the request is issued for
  };
  static constexpr std::uint64_t kNoRequest = ~std::uint64_t{0};

  std::uint64_t now() const {
    return static_cast<std::uint64_t>(sc_core::sc_time_stamp() / period_);
  }

  // Issues a transfer; returns its id (kNoRequest for 0 bytes, which completes at once). Bytes
  // are counted here, by the controller, for the GEMM that issues them.
  // `not_before`: the transfer is issued for this cycle (results still draining out of the array).
  std::uint64_t issue(std::uint64_t bytes, bool store, std::uint64_t not_before = 0) {
    if (bytes == 0) return kNoRequest;
    (store ? dram_write_bytes_ : dram_read_bytes_) += bytes;
    const std::uint64_t id = next_id_++;
    queue_.push_back(Request{id, bytes, std::max(not_before, now())});
    request_event_.notify();
    return id;
  }

  // Waits until request `id` has completed; returns its completion cycle (0 for none).
  std::uint64_t wait_done(std::uint64_t id) {
    if (id == kNoRequest) return 0;
    while (completion_.count(id) == 0) wait(served_event_);
    const std::uint64_t done = completion_[id];
    completion_.erase(id);
    wait_until(done);
    return done;
  }

  // Waits until every request issued so far has completed.
  void wait_all() {
    while (started_ < next_id_) wait(served_event_);
    wait_until(last_done_);
    completion_.clear();
  }

  void wait_until(std::uint64_t cycle) {
    const std::uint64_t t = now();
    if (cycle > t) wait(static_cast<double>(cycle - t) * period_);
  }

  // The channel: when free, starts the earliest-issued request whose cycle has come (work
  // conserving); a request's completion cycle is known when the channel starts it.
  void dram() {
    for (;;) {
      while (queue_.empty()) wait(request_event_);
      auto best = queue_.begin();
      for (auto it = queue_.begin(); it != queue_.end(); ++it) {
        if (it->not_before < best->not_before || (it->not_before == best->not_before && it->id < best->id)) best = it;
      }
      if (best->not_before > now()) {  // nothing issued yet: wait for its cycle or a new request
        wait(static_cast<double>(best->not_before - now()) * period_, request_event_);
        continue;
      }
      const Request r = *best;
      queue_.erase(best);
      const std::uint64_t cycles = transfer_cycles(r.bytes, bandwidth_);
      completion_[r.id] = now() + cycles;
      last_done_ = std::max(last_done_, now() + cycles);
      ++started_;
      served_event_.notify();
      dram_busy_ = true;
      wait(static_cast<double>(cycles) * period_);
      dram_busy_ = false;
    }
  }

  void control() {
    try {
      for (std::size_t g = 0; g < jobs_.size(); ++g) run_gemm(g);
    } catch (...) {
      error = std::current_exception();
    }
    // Without a clock the simulation ends when no process is left to run; with the VCD clock
    // it must be stopped (quietly: sc_stop's info message would go to stdout).
    if (clock_) {
      sc_core::sc_report_handler::set_actions("/OSCI/SystemC", sc_core::SC_INFO, sc_core::SC_DO_NOTHING);
      sc_core::sc_stop();
    }
  }

  void run_gemm(std::size_t g) {
    const GemmJob& job = jobs_[g];
    ValueGemmResult res;
    engine_->begin_gemm(job.shape, job.load(), job.conv);
    FoldPlan plan(cfg_, job.shape, job.conv);
    dram_read_bytes_ = dram_write_bytes_ = 0;
    const std::uint64_t gemm_start = now();
    LoopIndex idx{};
    Fold cur = plan.fold_at(idx);
    std::uint64_t load = issue(cur.load_bytes(), false), load2 = kNoRequest;
    std::uint64_t prev_end = gemm_start;
    gemm_index_ = static_cast<int>(g);
    std::int64_t fold_number = 0;
    std::uint64_t pending = kNoRequest;  // the next tile's prefetched operands
    std::uint64_t prev_start = gemm_start, tail = 0;
    try {
      for (bool more = true; more; ++fold_number) {
        // When the fold can start (the closed form's rule, sim/fold_model.cpp fold_start).
        stall_ = true;
        const std::uint64_t loaded = std::max(wait_done(load), wait_done(load2));
        if (cfg_.overlap && !cur.gemm_first) {
          if (cfg_.dataflow != Dataflow::kOs) {  // the shadow preload of the stationary tile
            wait_until(std::max(prev_end, std::max(prev_start, loaded) + static_cast<std::uint64_t>(cur.r)));
          } else if (cur.after_own_block) {  // this block's drain must be done
            wait_until(prev_end + tail);
          }
        }
        stall_ = false;
        const std::uint64_t start = now();
        res.timing.stall += start - prev_end;
        res.timing.stall_by_cause[static_cast<std::size_t>(stall_cause(cur))] += start - prev_end;
        // A prefetch unit's first fold (a tile's; with a streamed B every fold) prefetches the
        // next unit's operands; a fold's spilled partial sums come back after the previous
        // fold's store (docs/cycle-semantics.md).
        if (cur.unit_first) {
          LoopIndex unit_idx;
          pending = plan.next_unit(idx, &unit_idx) ? issue(plan.fold_at(unit_idx).load_operand_bytes(), false)
                                                   : kNoRequest;
        }
        const bool has_next = plan.advance(idx);
        more = has_next;
        Fold next = has_next ? plan.fold_at(idx) : Fold{};
        engine_->begin_fold(cur);
        fold_index_ = static_cast<int>(fold_number);
        // With overlap, the phases that run under a neighbouring fold (WS/IS shadow preload, OS
        // drain) are stepped without advancing the clock.
        const bool shadow_preload = cfg_.overlap && cfg_.dataflow != Dataflow::kOs && !cur.gemm_first;
        const bool hidden_drain = cfg_.overlap && cfg_.dataflow == Dataflow::kOs;
        bool done = false;
        while (!done) {
          const bool hidden = (shadow_preload && engine_->in_preload()) || (hidden_drain && engine_->in_drain());
          done = engine_->step();
          ++res.array_steps;
          if (vcd_ != nullptr) engine_->probe(probe_);
          if (!hidden) wait(period_);
        }
        const std::uint64_t end = now();
        if (res.fold_cycles.size() < 4096) res.fold_cycles.push_back(static_cast<std::int64_t>(end - start));
        res.timing.compute += end - start;
        engine_->end_fold(cur);
        add_sram_transfer_events(cur, res.events);  // SRAM fills and spills follow the transfers
        tail = static_cast<std::uint64_t>(fold_hidden_tail(cfg_, cur));
        issue(cur.store_c_bytes, true, end + tail);
        // The next fold waits for its prefetched operands and its spilled partial sums.
        load = has_next ? issue(next.load_c_bytes, false, end + tail) : kNoRequest;
        load2 = has_next && next.unit_first ? pending : kNoRequest;
        prev_start = start;
        prev_end = end;
        cur = next;
      }
    } catch (const AccumulatorOverflow& e) {
      res.overflow = e.what();
    }
    // The last fold's drain (not hidden), then the last store.
    wait_until(prev_end + tail);
    res.timing.compute += tail;
    stall_ = true;
    wait_all();
    stall_ = false;
    res.timing.folds = plan.count();
    res.timing.total = now() - gemm_start;
    res.timing.stall += now() - (prev_end + tail);
    res.timing.stall_by_cause[kStallDrain] += now() - (prev_end + tail);
    engine_->end_gemm(res);
    res.events.dram_read_bytes = dram_read_bytes_;
    res.events.dram_write_bytes = dram_write_bytes_;
    res.events.pe_cycles_busy = res.events.mac_slots;
    res.events.pe_cycles_idle = static_cast<std::uint64_t>(cfg_.rows) * static_cast<std::uint64_t>(cfg_.cols) *
                                    res.timing.total - res.events.mac_slots;
    on_done_(g, res);
  }

  void open_vcd(const std::string& path) {
    std::string base = path;
    if (base.size() > 4 && base.compare(base.size() - 4, 4, ".vcd") == 0) base.resize(base.size() - 4);
    vcd_ = sc_core::sc_create_vcd_trace_file(base.c_str());
    vcd_->set_time_unit(100, sc_core::SC_PS);  // the clock's falling edge is at half a cycle
    clock_ = std::make_unique<sc_core::sc_clock>("clk", period_);
    sc_core::sc_trace(vcd_, *clock_, "clk");
    sc_core::sc_trace(vcd_, gemm_index_, "gemm");
    sc_core::sc_trace(vcd_, fold_index_, "fold");
    sc_core::sc_trace(vcd_, stall_, "stall");
    sc_core::sc_trace(vcd_, dram_busy_, "dram_busy");
    for (int i = 0; i < kVcdLanes && i < cfg_.rows; ++i) {
      sc_core::sc_trace(vcd_, probe_.west[i], "west_in_row" + std::to_string(i));
    }
    sc_core::sc_trace(vcd_, probe_.pe00, "pe_0_0_acc");
  }

  SimConfig cfg_;
  const std::vector<GemmJob>& jobs_;
  std::function<void(std::size_t, ValueGemmResult&)> on_done_;
  std::unique_ptr<ArrayEngine> engine_;
  sc_core::sc_time period_{1, sc_core::SC_NS};
  Bandwidth bandwidth_;
  std::deque<Request> queue_;
  std::map<std::uint64_t, std::uint64_t> completion_;  // id -> completion cycle, until waited for
  std::uint64_t next_id_ = 0, started_ = 0, last_done_ = 0;
  sc_core::sc_event request_event_, served_event_;
  std::uint64_t dram_read_bytes_ = 0, dram_write_bytes_ = 0;
  sc_core::sc_trace_file* vcd_ = nullptr;
  std::unique_ptr<sc_core::sc_clock> clock_;
  Probe probe_;
  int gemm_index_ = -1, fold_index_ = -1;
  bool stall_ = false, dram_busy_ = false;
};

// Whether a VCD file SystemC closed is complete: it ends with a time stamp line ("#<time>\n").
bool vcd_complete(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  char tail[64] = {};
  std::size_t n = 0;
  if (std::fseek(f, 0, SEEK_END) == 0) {
    const long size = std::ftell(f);
    const long from = size > static_cast<long>(sizeof tail) ? size - static_cast<long>(sizeof tail) : 0;
    if (std::fseek(f, from, SEEK_SET) == 0) n = std::fread(tail, 1, sizeof tail, f);
  }
  std::fclose(f);
  if (n < 2 || tail[n - 1] != '\n') return false;
  std::size_t start = n - 1;
  while (start > 0 && tail[start - 1] != '\n') --start;
  if (tail[start] != '#') return false;
  for (std::size_t i = start + 1; i + 1 < n; ++i) {
    if (tail[i] < '0' || tail[i] > '9') return false;
  }
  return start + 2 < n;
}

}  // namespace

void simulate_value(const SimConfig& cfg, const std::vector<GemmJob>& jobs,
                    const std::function<void(std::size_t, ValueGemmResult&)>& on_done,
                    const std::string& vcd_path) {
  if (jobs.empty()) return;
  // SystemC 2.3 cannot elaborate again after a simulation ran in the same kernel context. A
  // second call in one process gets a fresh context; the old one is leaked on purpose
  // (deleting it can touch objects of the finished simulation; it is a few tens of KB).
  static bool kernel_used = false;
  if (kernel_used) {
    sc_core::sc_curr_simcontext = new sc_core::sc_simcontext();
    sc_core::sc_default_global_context = sc_core::sc_curr_simcontext;
  }
  kernel_used = true;
  // SystemC's informational messages would go to stdout, which belongs to mfsim's output.
  sc_core::sc_report_handler::set_actions(sc_core::SC_INFO, sc_core::SC_DO_NOTHING);
  // The waveform goes to a temporary file beside its target (symbolic links followed) and is
  // renamed over it once complete: one cut short by a write error (a full disk, a file-size
  // limit) is removed, never left behind. SystemC reports no write error, so completeness is
  // read from the file: it must end with the final time stamp SystemC writes on closing.
  std::string vcd_target, vcd_tmp;
  if (!vcd_path.empty()) {
    vcd_target = output_target(vcd_path);
    vcd_tmp = fmt::format("{}.tmp.{}.vcd", vcd_target, static_cast<long>(::getpid()));
  }
  SystolicSystem top("mfsim", cfg, jobs, on_done, vcd_tmp);
  sc_core::sc_start();
  const std::exception_ptr error = top.error;
  top.close_vcd();
  if (!vcd_tmp.empty()) {
    if (error || !vcd_complete(vcd_tmp)) {
      std::remove(vcd_tmp.c_str());
      if (!error) throw std::runtime_error(fmt::format("{}: write failed: the waveform was cut short; removed", vcd_path));
    } else if (std::rename(vcd_tmp.c_str(), vcd_target.c_str()) != 0) {
      const std::string why = std::strerror(errno);
      std::remove(vcd_tmp.c_str());
      throw std::runtime_error(fmt::format("{}: cannot write file: {}", vcd_path, why));
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace mfsim
