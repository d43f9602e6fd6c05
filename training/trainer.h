// The training loop of the functional core: SGD with momentum, seeded and deterministic (the
// same seed and thread count give the same result bit for bit), evaluation on the test set
// every epoch, an optional trace of one training step with operands and expected outputs.
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "training/conv_direct.h"
#include "training/dataset.h"
#include "traces/trace.h"
#include "training/nn.h"

namespace mfsim {

// Training has diverged when a step's loss is not finite or exceeds kDivergedLossFactor times the
// first step's loss (cross-entropy starts near ln(classes); a loss 100x that is no longer training).
constexpr double kDivergedLossFactor = 100.0;
inline bool loss_diverged(double loss, double first_loss) {
  return !std::isfinite(loss) || (first_loss > 0 && loss > kDivergedLossFactor * first_loss);
}

// The largest tensor of a batch (batch x the largest per-example tensor), in elements (4 GiB of FP32).
constexpr std::uint64_t kMaxBatchActivationElements = std::uint64_t{1} << 30;

struct TrainOptions {
  std::string model = "mlp";   // name (mlp, cnn) or empty with `spec`
  std::string spec;            // network spec string (overrides the name's spec)
  NumFormat arith = NumFormat::kPot4;
  int epochs = 5;
  int batch = 64;
  std::uint64_t seed = 1;
  double lr = 0.02, momentum = 0.9, weight_decay = 0.0;
  std::string lr_schedule = "cosine";  // constant | cosine (half-cosine decay to 0 over all steps)
  bool wbc = true, prc = true;
  // --prc-operands: PRC for A, W, G (Role order). Default a,w: clipping the errors costs accuracy
  // (docs/results-accuracy.md); their stochastic rounding at the ALS scale is unbiased.
  bool prc_roles[3] = {true, true, false};
  std::string policy;                          // --policy NAME ("" when none was given)
  std::uint8_t int8_roles[4] = {0, 0, 0, 0};  // --int8-operands: INT8 operands by layer class (training/policy.h)
  int scale_grain[3] = {0, 0, 0};             // --scales: finer scales of A, W, G (StepContext::scale_grain)
  bool apot_weights = false;                  // --apot-weights: two-term power-of-two weights (apot_nearest)
  bool apot_errors = false;                   // --apot-errors: two-term power-of-two errors (apot_stochastic)
  std::string first_last = "potq";  // potq (every layer in `arith`) | int8 | fp32: the first and last linear layer
  int sqnr_every = 10;              // per-layer SQNR sampled every this many steps (0: off)
  int prc_candidates = 3, wbc_iterations = 8;
  PrcCriterion prc_criterion = PrcCriterion::kL1;  // --prc-criterion l1|mse|range
  bool error_scale_floor = false;                  // --error-scale floor (default ceil)
  std::string trace_out;       // write the trace of one step here (JSON + .bin)
  int trace_step = 0;          // 0-based step of the first epoch
  int threads = 1;             // BLAS threads (the GEMMs here are small: 1 is fastest on 2 cores)
  // --conv-path: the convolutions' GEMMs (training/conv_direct.h). Under auto the direct kernels
  // run where they give the BLAS path's bits (FP32: checked per shape; the integer arithmetics:
  // always), and only with one thread (they are single-threaded).
  ConvPath conv_path = ConvPath::kAuto;
  bool progress = true;        // progress line on stderr
};

// --prc-operands as written in reports: the operands PRC applies to ("a,w,g", "a,w", ...), or
// "none" (without PRC, or not ALS-POTQ).
std::string prc_operands_name(const TrainOptions& opt);

// The step context of a run's options: arithmetic, --first-last, the ALS-POTQ options, seed.
StepContext make_context(const TrainOptions& opt);

class TraceWriter;

// The traced step of a run (`--trace-out`, `--trace-step`), shared by the training loops: opens
// the trace writer on the chosen step of the first epoch, runs the step, and commits the trace
// after a finite step. A non-finite operand that the writer refuses means the run diverged.
class StepTracer {
 public:
  StepTracer(const TrainOptions& opt, StepContext& ctx);
  ~StepTracer();
  // Opens the writer when (epoch, step) is the traced one; `command` and `description` head the trace.
  bool begin(int epoch, std::size_t step, const std::string& command, const std::string& description);
  // Runs one step (a function returning its loss); NaN when the traced step met a non-finite operand.
  template <class Step>
  double run(Step&& step) {
    try {
      return step();
    } catch (const std::invalid_argument&) {
      if (!open()) throw;
      discard();
      return NAN;
    }
  }
  // After a finite step: writes the trace if this step was traced, with the operations outside
  // the GEMMs the step recorded (StepContext::ops, set while the traced step runs).
  void commit();
  // Appends an operation of the traced step that no layer runs (the loss, the optimizer).
  void add_op(const NonGemmOp& op) {
    if (writer_) ops_.push_back(op);
  }
  // The trace file written ("" when none).
  const std::string& written() const { return written_; }

 private:
  bool open() const;
  void discard();  // drops the unfinished trace
  const TrainOptions& opt_;
  StepContext& ctx_;
  std::unique_ptr<TraceWriter> writer_;
  std::string written_;
  std::vector<NonGemmOp> ops_;
};

// One epoch's SQNR samples (StepContext::sqnr): per layer, the mean dB of A, W and G.
nlohmann::ordered_json sqnr_json(const std::map<std::string, QuantNoise>& samples);

// The ALS-POTQ quantizers' statistics of a run (mean WBC threshold, PRC offsets chosen).
void add_quantizer_stats(nlohmann::ordered_json& rep, const TrainOptions& opt, const StepContext& ctx);

// Trains on `train`, evaluates on `test` after every epoch; returns the report (JSON).
nlohmann::ordered_json train_network(const TrainOptions& opt, const Dataset& train, const Dataset& test);

}  // namespace mfsim
