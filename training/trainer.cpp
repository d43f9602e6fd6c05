#include "training/trainer.h"

#include "traces/network_ops.h"

#include "training/policy.h"

#include <fmt/format.h>
#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <stdexcept>

#include "common/error.h"
#include "training/exact_gemm.h"
#include "models/rng.h"
#include "traces/trace_writer.h"

namespace mfsim {

using ojson = nlohmann::ordered_json;

namespace {

Tensor batch_tensor(const Dataset& d, const std::vector<std::size_t>& order, std::size_t start, std::size_t count,
                    std::vector<int>* labels) {
  Tensor t;
  t.n = static_cast<int>(count);
  t.h = d.rows;
  t.w = d.cols;
  t.c = 1;
  const std::size_t px = static_cast<std::size_t>(d.rows) * d.cols;
  t.v.resize(count * px);
  labels->resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    std::size_t ex = order[start + i];
    std::copy_n(&d.images[ex * px], px, &t.v[i * px]);
    (*labels)[i] = d.labels[ex];
  }
  return t;
}

double evaluate(Network& net, const Dataset& d, StepContext ctx, int batch, double* loss) {
  std::vector<std::size_t> order(d.size());
  std::iota(order.begin(), order.end(), 0);
  std::size_t right = 0;
  double total_loss = 0;
  ctx.trace = nullptr;  // an evaluation is never traced
  ctx.ops = nullptr;
  for (std::size_t s = 0; s < d.size(); s += static_cast<std::size_t>(batch)) {
    std::size_t count = std::min<std::size_t>(static_cast<std::size_t>(batch), d.size() - s);
    std::vector<int> labels;
    Tensor x = batch_tensor(d, order, s, count, &labels);
    Tensor logits = net.forward(std::move(x), ctx, false);
    int correct = 0;
    total_loss += softmax_cross_entropy(logits, labels, nullptr, &correct) * static_cast<double>(count);
    right += static_cast<std::size_t>(correct);
  }
  if (loss != nullptr) *loss = total_loss / static_cast<double>(d.size());
  return static_cast<double>(right) / static_cast<double>(d.size());
}

}  // namespace

std::string prc_operands_name(const TrainOptions& opt) {
  std::string s;
  const char* names[3] = {"a", "w", "g"};
  for (int r = 0; r < 3; ++r) {
    if (opt.prc_roles[r]) s += (s.empty() ? "" : ",") + std::string(names[r]);
  }
  return opt.arith == NumFormat::kPot4 && opt.prc && !s.empty() ? s : "none";
}

// One epoch's SQNR samples: per layer, the mean dB of A, W and G.
ojson sqnr_json(const std::map<std::string, QuantNoise>& s) {
  ojson j = ojson::object();
  for (const auto& [layer, q] : s) {
    ojson l = ojson::object();
    const char* names[3] = {"A", "W", "G"};
    for (int r = 0; r < 3; ++r) {
      if (q.count[r] > 0) l[names[r]] = q.db_sum[r] / q.count[r];
    }
    j[layer] = l;
  }
  return j;
}

StepContext make_context(const TrainOptions& opt) {
  StepContext ctx;
  ctx.arith = opt.arith;
  if (opt.first_last != "potq") {
    ctx.edge_override = true;
    ctx.edge_arith = opt.first_last == "int8" ? NumFormat::kInt8 : NumFormat::kFp32;
  }
  ctx.wbc = opt.wbc;
  ctx.potq.prc = opt.prc;
  for (int r = 0; r < 3; ++r) ctx.prc_roles[r] = opt.prc_roles[r];
  if (opt.arith == NumFormat::kPot4) {
    for (int c = 0; c < kLayerClasses; ++c) ctx.int8_roles[c] = opt.int8_roles[c];
    for (int r = 0; r < 3; ++r) ctx.scale_grain[r] = opt.scale_grain[r];
    ctx.apot_weights = opt.apot_weights;
    ctx.apot_errors = opt.apot_errors;
  }
  ctx.potq.prc_candidates = opt.prc_candidates;
  ctx.potq.wbc_iterations = opt.wbc_iterations;
  ctx.potq.prc_criterion = opt.prc_criterion;
  ctx.potq.error_scale_floor = opt.error_scale_floor;
  ctx.seed = opt.seed;
  return ctx;
}

namespace {

// The report's description of the run (the results are added as the run ends).
ojson report_header(const TrainOptions& opt, const std::string& spec, Network& net, const Dataset& train,
                    const Dataset& test) {
  ojson rep;
  rep["model"] = opt.spec.empty() ? opt.model : "custom";
  rep["spec"] = spec;
  rep["quant"] = arith_name(opt.arith);
  rep["epochs"] = opt.epochs;
  rep["batch"] = opt.batch;
  rep["seed"] = opt.seed;
  rep["lr"] = opt.lr;
  rep["lr_schedule"] = opt.lr_schedule;
  rep["momentum"] = opt.momentum;
  rep["weight_decay"] = opt.weight_decay;
  rep["wbc"] = opt.arith == NumFormat::kPot4 && opt.wbc;
  rep["prc"] = opt.arith == NumFormat::kPot4 && opt.prc;
  rep["prc_operands"] = prc_operands_name(opt);
  rep["first_last"] = opt.first_last;
  rep["policy"] = opt.policy.empty() ? "none" : opt.policy;  // none: the options alone
  rep["int8_operands"] = opt.arith == NumFormat::kPot4 ? int8_operands_spec(opt.int8_roles) : "";
  rep["multiplication_free"] = multiplication_free(opt);
  rep["scales"] = opt.arith == NumFormat::kPot4 ? scales_spec(opt.scale_grain) : "";
  rep["apot_weights"] = opt.arith == NumFormat::kPot4 && opt.apot_weights;
  rep["apot_errors"] = opt.arith == NumFormat::kPot4 && opt.apot_errors;
  rep["prc_criterion"] = opt.prc_criterion == PrcCriterion::kL1 ? "l1" : opt.prc_criterion == PrcCriterion::kMse ? "mse" : "range";
  rep["error_scale"] = opt.error_scale_floor ? "floor" : "ceil";
  rep["threads"] = opt.threads;
  rep["train_examples"] = train.size();
  rep["test_examples"] = test.size();
  rep["parameters"] = net.parameter_count();
  return rep;
}


double learning_rate(const TrainOptions& opt, std::uint64_t step, std::size_t steps_per_epoch) {
  if (opt.lr_schedule != "cosine") return opt.lr;
  const double total = static_cast<double>(steps_per_epoch) * opt.epochs;
  return 0.5 * opt.lr * (1.0 + std::cos(3.14159265358979323846 * static_cast<double>(step) / total));
}

// SGD with momentum and weight decay, in FP32 (not a linear layer: not quantized).
void sgd_update(std::vector<std::pair<std::vector<float>*, std::vector<float>*>>& params,
                std::vector<std::vector<float>>& velocity, const TrainOptions& opt, double lr) {
  const float mu = static_cast<float>(opt.momentum), lrf = static_cast<float>(lr),
              wd = static_cast<float>(opt.weight_decay);
  for (std::size_t p = 0; p < params.size(); ++p) {
    auto& w = *params[p].first;
    auto& g = *params[p].second;
    auto& v = velocity[p];
    for (std::size_t i = 0; i < w.size(); ++i) {
      v[i] = mu * v[i] + g[i] + wd * w[i];
      w[i] -= lrf * v[i];
    }
  }
}

// The run's results: accuracy and loss per epoch, quantizer statistics, and the
// multiplications outside the GEMMs.
void add_results(ojson& rep, const TrainOptions& opt, const StepContext& ctx, Network& net, bool diverged,
                 const std::vector<double>& acc_per_epoch, const std::vector<double>& loss_per_epoch,
                 const std::vector<double>& train_acc_per_epoch, const std::vector<double>& epoch_seconds,
                 std::uint64_t steps) {
  rep["diverged"] = diverged;
  rep["test_accuracy"] = acc_per_epoch.empty() ? 0.0 : acc_per_epoch.back();
  rep["test_accuracy_per_epoch"] = acc_per_epoch;
  rep["train_loss_per_epoch"] = loss_per_epoch;
  rep["train_accuracy_per_epoch"] = train_acc_per_epoch;
  rep["epoch_seconds"] = epoch_seconds;
  rep["steps"] = steps;
  add_quantizer_stats(rep, opt, ctx);
  // Multiplications outside the linear-layer GEMMs, per training step (docs/training-core.md).
  const std::size_t np = net.parameter_count();
  rep["fp32_multiplications_outside_gemms_per_step"] =
      ojson{{"optimizer", 2 * np + (opt.weight_decay > 0 ? np : 0)},
            {"loss_softmax", 2 * static_cast<std::size_t>(opt.batch) * 10}};
}

}  // namespace

void add_quantizer_stats(ojson& rep, const TrainOptions& opt, const StepContext& ctx) {
  if (opt.arith != NumFormat::kPot4) return;
  rep["wbc_mean_threshold"] = ctx.wbc_count > 0 ? ctx.wbc_threshold_sum / ctx.wbc_count : 0.0;
  ojson rho = ojson::object();
  for (int i = 0; i < 8; ++i) {
    if (ctx.rho_hist[i] > 0) rho[std::to_string(-i)] = ctx.rho_hist[i];
  }
  rep["prc_offsets_chosen"] = rho;
}

StepTracer::StepTracer(const TrainOptions& opt, StepContext& ctx) : opt_(opt), ctx_(ctx) {}
StepTracer::~StepTracer() { discard(); }

bool StepTracer::open() const { return writer_ != nullptr; }

void StepTracer::discard() {
  writer_.reset();
  ctx_.trace = nullptr;
  ctx_.ops = nullptr;
  ops_.clear();
}

bool StepTracer::begin(int epoch, std::size_t step, const std::string& command, const std::string& description) {
  discard();
  if (opt_.trace_out.empty() || epoch != 0 || step != static_cast<std::size_t>(opt_.trace_step)) return false;
  writer_ = std::make_unique<TraceWriter>(opt_.trace_out, command, description);
  ctx_.trace = writer_.get();
  ctx_.ops = &ops_;
  return true;
}

void StepTracer::commit() {
  if (!writer_) return;
  for (const NonGemmOp& op : ops_) writer_->add_op(op);
  writer_->commit();
  written_ = opt_.trace_out;
  discard();
}

ojson train_network(const TrainOptions& opt, const Dataset& train, const Dataset& test) {
  set_blas_threads(opt.threads);
  // The per-step buffers (im2col matrices, activations) are large: keep freed memory in the
  // heap instead of returning it to the kernel and faulting it in again every step.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // the largest value glibc accepts on 64-bit
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  const std::string spec = opt.spec.empty() ? network_spec(opt.model) : opt.spec;
  Network net(spec, train.rows, train.cols, 1, opt.seed);
  // The classifier must have one output per class of the data (a logit per label).
  int classes = 0;
  for (const Dataset* d : {&train, &test}) {
    for (int l : d->labels) classes = std::max(classes, l + 1);
  }
  if (net.outputs() != static_cast<std::uint64_t>(classes)) {
    throw InputError(fmt::format("network spec \"{}\": the last layer gives {} outputs per example, but the data has "
                                 "{} classes; end the network with fc:{}",
                                 spec, net.outputs(), classes, classes));
  }
  // batch >= 1 (validated) and <= 2^31, tensors <= 2^26 elements per example: no overflow.
  const std::uint64_t batch_elements = static_cast<std::uint64_t>(opt.batch) * net.max_activation_elements();
  if (batch_elements > kMaxBatchActivationElements) {
    throw InputError(fmt::format("network spec \"{}\": a batch of {} needs {} elements in its largest tensor, more "
                                 "than the {} the training core holds; use a smaller --batch",
                                 spec, opt.batch, batch_elements, kMaxBatchActivationElements));
  }
  auto params = net.params();
  std::vector<std::vector<float>> velocity;
  std::uint64_t parameter_elements = 0;  // what the optimizer updates (the traced step's update)
  for (auto& p : params) {
    velocity.emplace_back(p.first->size(), 0.0f);
    parameter_elements += p.first->size();
  }

  StepContext ctx = make_context(opt);
  // The convolutions' path (--conv-path): the direct kernels are single-threaded, so auto keeps the
  // BLAS when it runs more than one thread.
  ConvPathChooser conv_chooser(opt.threads > 1 && opt.conv_path == ConvPath::kAuto ? ConvPath::kBlas : opt.conv_path);
  ctx.conv = &conv_chooser;
  ojson rep = report_header(opt, spec, net, train, test);
  std::map<std::string, QuantNoise> sqnr;  // this epoch's samples
  ojson sqnr_per_epoch = ojson::array();
  if (opt.sqnr_every > 0 && (opt.arith != NumFormat::kFp32 || ctx.edge_override)) ctx.sqnr = &sqnr;

  const std::size_t steps_per_epoch = (train.size() + static_cast<std::size_t>(opt.batch) - 1) / opt.batch;
  const bool tty = ::isatty(2) != 0;
  std::vector<double> acc_per_epoch, loss_per_epoch, train_acc_per_epoch, epoch_seconds;
  bool diverged = false;
  double first_loss = 0;  // the first step's loss: divergence is measured against it
  StepTracer tracer(opt, ctx);
  std::uint64_t step = 0;
  SplitMix64 shuffle_rng(opt.seed ^ 0x5eedull);
  for (int epoch = 0; epoch < opt.epochs && !diverged; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::size_t> order(train.size());
    std::iota(order.begin(), order.end(), 0);
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[shuffle_rng.next() % i]);
    double loss_sum = 0;
    std::size_t right = 0, seen = 0;
    auto last_print = t0;
    for (std::size_t s = 0; s < steps_per_epoch; ++s, ++step) {
      const std::size_t start = s * static_cast<std::size_t>(opt.batch);
      const std::size_t count = std::min<std::size_t>(static_cast<std::size_t>(opt.batch), train.size() - start);
      std::vector<int> labels;
      Tensor x = batch_tensor(train, order, start, count, &labels);
      ctx.step = step;
      ctx.sqnr_sample = opt.sqnr_every > 0 && step % static_cast<std::uint64_t>(opt.sqnr_every) == 0;
      tracer.begin(epoch, s,
                   fmt::format("mfsim train --model {} --quant {} --seed {}", rep["model"].get<std::string>(),
                               arith_name(opt.arith), opt.seed),
                   fmt::format("training step {} of epoch 1: every GEMM of the forward and backward pass, batch {}", s, count));
      int correct = 0;
      const double loss = tracer.run([&] {
        Tensor logits = net.forward(std::move(x), ctx, true);
        Tensor dlogits;
        const double l = softmax_cross_entropy(logits, labels, &dlogits, &correct);
        const auto logit_elements = static_cast<std::uint64_t>(logits.v.size());
        tracer.add_op(softmax_loss_op("loss", OpPhase::kFwd, logit_elements, count));
        tracer.add_op(softmax_loss_op("loss", OpPhase::kBwd, logit_elements, count));
        if (std::isfinite(l)) net.backward(std::move(dlogits), ctx);
        return l;
      });
      if (step == 0) first_loss = loss;
      if (loss_diverged(loss, first_loss)) {
        diverged = true;
        break;
      }
      tracer.add_op(sgd_momentum_op(parameter_elements));
      tracer.commit();
      sgd_update(params, velocity, opt, learning_rate(opt, step, steps_per_epoch));
      loss_sum += loss * static_cast<double>(count);
      right += static_cast<std::size_t>(correct);
      seen += count;
      if (opt.progress) {
        auto now = std::chrono::steady_clock::now();
        if (tty && std::chrono::duration<double>(now - last_print).count() > 0.5) {
          std::fprintf(stderr, "\r[%s %s] epoch %d/%d  %zu/%zu  loss %.4f  ", rep["model"].get<std::string>().c_str(),
                       arith_name(opt.arith), epoch + 1, opt.epochs, seen, train.size(), loss_sum / static_cast<double>(seen));
          last_print = now;
        }
      }
    }
    if (diverged) break;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    epoch_seconds.push_back(secs);
    loss_per_epoch.push_back(loss_sum / static_cast<double>(seen));
    train_acc_per_epoch.push_back(static_cast<double>(right) / static_cast<double>(seen));
    double test_loss = 0;
    ctx.sqnr_sample = false;
    acc_per_epoch.push_back(evaluate(net, test, ctx, 256, &test_loss));
    if (ctx.sqnr != nullptr) sqnr_per_epoch.push_back(sqnr_json(sqnr));
    sqnr.clear();
    if (opt.progress) {
      std::fprintf(stderr, "%s[%s %s] epoch %d/%d  train loss %.4f  test accuracy %.4f  (%.1f s)\n", tty ? "\r" : "",
                   rep["model"].get<std::string>().c_str(), arith_name(opt.arith), epoch + 1, opt.epochs,
                   loss_per_epoch.back(), acc_per_epoch.back(), secs);
    }
  }
  add_results(rep, opt, ctx, net, diverged, acc_per_epoch, loss_per_epoch, train_acc_per_epoch, epoch_seconds, step);
  if (ctx.sqnr != nullptr) {
    rep["sqnr_db_per_epoch"] = sqnr_per_epoch;
    rep["sqnr_note"] = fmt::format("per linear layer, the mean over sampled steps (every {}) of 10 log10(sum x^2 / "
                                   "sum (x - Q(x))^2) for A (input activations), W (weights), G (output errors)",
                                   opt.sqnr_every);
  }
  if (!tracer.written().empty()) rep["trace"] = tracer.written();
  rep["blas"] = blas_info();
  // Which path the convolutions' GEMMs took: shapes (layer geometry and GEMM) on each.
  rep["conv_path"] = ojson{{"requested", to_string(opt.conv_path)},
                           {"direct_shapes", conv_chooser.direct_shapes()},
                           {"blas_shapes", conv_chooser.blas_shapes()},
                           {"direct_isa", conv_direct_isa()},
                           {"reduction_block", conv_chooser.block()}};
  return rep;
}

}  // namespace mfsim
