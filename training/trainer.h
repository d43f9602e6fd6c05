// The training loop of the functional core: SGD with momentum, seeded and deterministic (the
// same seed and thread count give the same result bit for bit), evaluation on the test set
// every epoch, an optional trace of one training step with operands and expected outputs.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "training/dataset.h"
#include "training/nn.h"

namespace mfsim {

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
  std::string first_last = "potq";  // potq (every layer in `arith`) | int8 | fp32: the first and last linear layer
  int sqnr_every = 10;              // per-layer SQNR sampled every this many steps (0: off)
  int prc_candidates = 3, wbc_iterations = 8;
  PrcCriterion prc_criterion = PrcCriterion::kL1;  // --prc-criterion l1|mse|range
  bool error_scale_floor = false;                  // --error-scale floor (default ceil)
  std::string trace_out;       // write the trace of one step here (JSON + .bin)
  int trace_step = 0;          // 0-based step of the first epoch
  int threads = 1;             // BLAS threads (the GEMMs here are small: 1 is fastest on 2 cores)
  bool progress = true;        // progress line on stderr
};

// The step context of a run's options: arithmetic, --first-last, the ALS-POTQ options, seed.
StepContext make_context(const TrainOptions& opt);

// Trains on `train`, evaluates on `test` after every epoch; returns the report (JSON).
nlohmann::ordered_json train_network(const TrainOptions& opt, const Dataset& train, const Dataset& test);

}  // namespace mfsim
