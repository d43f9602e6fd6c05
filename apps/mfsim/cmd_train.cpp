// mfsim train --model {mlp,cnn,cnn-bn,resnet8,transformer[:...]} --quant {fp32,bf16,fp8,int8,int4,als-potq}
//             --epochs N --batch B --seed S [--lr X] [--train-limit N] [--no-wbc] [--no-prc]
//             [--attention-quant same|fp32] [--trace-out FILE [--trace-step K]] --report FILE.json
#include <fmt/format.h>

#include <cstdio>
#include <tuple>

#include "apps/mfsim/cli.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "training/policy.h"
#include "training/trainer.h"
#include "training/transformer.h"

namespace po = boost::program_options;

namespace mfsim::cli {

namespace {

// The Transformer on its generated task (no data files).
int train_transformer_cmd(const Args& args, const po::variables_map& vm, TrainOptions o) {
  TransformerOptions t;
  t.config = parse_transformer_spec(o.model);
  if (o.first_last != "potq") {
    throw InputError("train: --first-last: not available for the transformer (every layer runs in --quant; "
                     "--attention-quant fp32 keeps the attention GEMMs in FP32)");
  }
  if (vm["lr"].defaulted()) o.lr = 0.002;
  const std::string aq = vm["attention-quant"].as<std::string>();
  if (aq != "same" && aq != "fp32") {
    throw InputError(fmt::format("train: --attention-quant: unknown value \"{}\"; expected same|fp32", aq));
  }
  t.attention_fp32 = aq == "fp32";
  t.task = vm["task"].as<std::string>();
  if (t.task != "reverse" && t.task != "text") {
    throw InputError(fmt::format("train: --task: unknown value \"{}\"; expected reverse|text", t.task));
  }
  t.text_dir = vm["text-dir"].as<std::string>();
  if (t.task == "text") {
    if (o.model.find("vocab=") != std::string::npos && t.config.vocab != kTextVocab) {
      throw InputError(fmt::format("train: --task text: the vocabulary is the text's {} characters; drop vocab= from --model",
                                   kTextVocab));
    }
    t.config.vocab = kTextVocab;
  }
  t.train_examples = vm["train-examples"].as<int>();
  t.test_examples = vm["test-examples"].as<int>();
  if (t.train_examples < 1 || t.test_examples < 1) {
    throw InputError("train: --train-examples and --test-examples: expected positive integers");
  }
  const int steps = (t.train_examples + o.batch - 1) / o.batch;
  if (!o.trace_out.empty() && o.trace_step >= steps) {
    throw InputError(fmt::format("train: --trace-step: {} is past the {} steps of an epoch", o.trace_step, steps));
  }
  t.train = o;
  const std::string report_path = vm["report"].as<std::string>();
  AtomicFile report(report_path);
  nlohmann::ordered_json rep = train_transformer(t);
  std::string cmd = "mfsim train";
  for (const auto& a : args) cmd += " " + a;
  rep["command"] = cmd;
  report.write(rep.dump(2) + "\n");
  report.commit();
  if (vm.count("quiet") == 0) {
    std::printf("transformer %s%s: test token accuracy %.4f, %s %.4f after %d epochs (%.1f s per epoch)%s\n",
                arith_name(o.arith), t.attention_fp32 ? " (attention fp32)" : "", rep["test_token_accuracy"].get<double>(),
                t.task == "text" ? "bits per character" : "exact match",
                t.task == "text" ? rep["test_bits_per_char"].get<double>() : rep["test_exact_match"].get<double>(), o.epochs,
                rep["epoch_seconds"].empty() ? 0.0 : rep["epoch_seconds"].back().get<double>(),
                rep["diverged"].get<bool>() ? " -- training diverged (a loss not finite or above 100x the first step's)" : "");
  }
  return rep["diverged"].get<bool>() ? kExitFailure : kExitOk;
}

// Options that conflict or do not apply to the chosen model or arithmetic are errors: silently
// ignoring one would train something other than what the user asked for.
void check_applicable(const po::variables_map& vm) {
  auto given = [&](const char* name) { return vm.count(name) != 0 && !vm[name].defaulted(); };
  const std::string model = vm["model"].as<std::string>();
  if (given("model") && given("spec")) throw InputError("train: --spec and --model: give one (--spec is a custom network)");
  if (is_transformer_spec(model)) {
    for (const char* name : {"spec", "data", "train-limit", "test-limit"}) {
      if (given(name)) {
        throw InputError(fmt::format("train: --{}: does not apply to the transformer (its task is generated; "
                                     "--train-examples and --test-examples size it)", name));
      }
    }
    if (given("conv-path")) throw InputError("train: --conv-path: does not apply to the transformer (it has no convolutions)");
  } else {
    for (const char* name : {"attention-quant", "train-examples", "test-examples", "task", "text-dir"}) {
      if (given(name)) {
        throw InputError(fmt::format("train: --{}: applies only to the transformer, not {}", name,
                                     given("spec") ? "a --spec network" : model));
      }
    }
  }
  const std::string quant = vm["quant"].as<std::string>();
  const char* potq_only[] = {"no-wbc", "no-prc", "prc-operands", "prc-criterion", "error-scale", "policy", "int8-operands", "scales",
                             "apot-weights", "apot-errors"};
  if (quant != "als-potq") {
    for (const char* name : potq_only) {
      if (given(name)) throw InputError(fmt::format("train: --{}: applies only to --quant als-potq, not {}", name, quant));
    }
  }
  if (given("no-prc")) {
    for (const char* name : {"prc-operands", "prc-criterion"}) {
      if (given(name)) throw InputError(fmt::format("train: --{}: PRC is off (--no-prc); drop one of the two", name));
    }
  }
}

}  // namespace

int cmd_train(const Args& args) {
  po::options_description opts("options");
  opts.add_options()
      ("model", po::value<std::string>()->default_value("mlp"), "mlp (784-256-128-10), cnn (2 conv + 2 fc), cnn-bn (the cnn with batch normalisation), resnet8, or transformer[:layers=2,d=64,heads=4,ff=256,seq=32,vocab=17] (the reverse-and-remap task)")
      ("spec", po::value<std::string>(), "custom network, e.g. conv:16:5:1:2,relu,maxpool:2,flatten,fc:10")
      ("quant", po::value<std::string>()->default_value("als-potq"), "fp32|bf16|fp8|int8|int4|als-potq")
      ("epochs", po::value<int>()->default_value(5), "training epochs")
      ("batch", po::value<int>()->default_value(64), "mini-batch size")
      ("seed", po::value<std::uint64_t>()->default_value(1), "seed of initialisation, shuffling and rounding")
      ("lr", po::value<double>()->default_value(0.02, "0.02"), "learning rate (peak of the cosine schedule; transformer: Adam, default 0.002)")
      ("lr-schedule", po::value<std::string>()->default_value("cosine"), "cosine (decay to 0 over the run) or constant")
      ("momentum", po::value<double>()->default_value(0.9, "0.9"), "SGD momentum")
      ("weight-decay", po::value<double>()->default_value(0.0, "0"), "L2 weight decay")
      ("train-limit", po::value<std::size_t>()->default_value(0), "use only the first N training images (0: all)")
      ("test-limit", po::value<std::size_t>()->default_value(0), "use only the first N test images (0: all)")
      ("no-wbc", "ALS-POTQ without Weight Bias Correction (threshold sqrt(2))")
      ("no-prc", "ALS-POTQ without Parameterized Ratio Clipping (rho = 0)")
      ("policy", po::value<std::string>(), "ALS-POTQ: a whole precision policy by name (see --list-policies); the single options below override its parts")
      ("list-policies", "list the ALS-POTQ policies and exit")
      ("int8-operands", po::value<std::string>(), "ALS-POTQ: operands held in INT8 (power-of-two scale) instead of PoT4, comma-separated OPERAND[@CLASS]: OPERAND a, w or g; CLASS all (default), first, hidden, last, attention or edges; at most one INT8 operand per layer, so every product is a shift")
      ("apot-errors", "ALS-POTQ: the errors G as two-term powers of two (as --apot-weights, stochastic rounding, "
                      "unbiased); not traceable yet")
      ("apot-weights", "ALS-POTQ: the weights (and the attention's K and V) as two-term powers of two (0, 2^i or 2^i + 2^j, i, j in 0..6, a "
                       "power-of-two scale per tensor) instead of PoT4: no multiplier (two shifts and an add, or two "
                       "exponent adds); not traceable yet")
      ("scales", po::value<std::string>(), "ALS-POTQ: finer power-of-two scales, comma-separated OPERAND=GRAIN: OPERAND a, w or g; GRAIN tensor (default), outer (per row of A and G, per output channel of W, in each GEMM) or block16|block32|block64 (blocks along each GEMM's reduction dimension); traced with each group's scale exponent (docs/trace-format.md)")
      ("prc-operands", po::value<std::string>()->default_value("a,w"), "ALS-POTQ: the operands PRC applies to, none or a comma-separated subset of a (activations), w (weights), g (errors); the others keep rho = 0")
      ("prc-criterion", po::value<std::string>()->default_value("l1"), "ALS-POTQ PRC's choice of offset: l1 (least sum |x - Q(x)|), mse (least squared error) or range (the most clipping offset that clips at most 0.5%)")
      ("error-scale", po::value<std::string>()->default_value("ceil"), "ALS-POTQ errors' scale exponent: ceil(log2 max) or floor (clips the top octave)")
      ("first-last", po::value<std::string>()->default_value("potq"), "the first and the last linear layer: potq (in the --quant arithmetic, like every layer), int8 or fp32")
      ("attention-quant", po::value<std::string>()->default_value("same"), "transformer: the attention GEMMs (Q K^T, softmax(S) V) in the step's arithmetic (same) or in fp32")
      ("task", po::value<std::string>()->default_value("reverse"), "transformer: reverse (the generated reverse-and-remap task) or text (a character-level language model on --text-dir, in bits per character)")
      ("text-dir", po::value<std::string>()->default_value("/usr/share/games/fortunes"), "transformer --task text: the directory of fortune text files (Debian package fortunes)")
      ("train-examples", po::value<int>()->default_value(16000), "transformer: training sequences generated (--task text: at most this many training windows)")
      ("test-examples", po::value<int>()->default_value(1000), "transformer: held-out test sequences generated (--task text: at most this many test windows)")
      ("data", po::value<std::string>()->default_value(kDefaultDataDir), "directory with the IDX files")
      ("threads", po::value<int>()->default_value(1), "BLAS threads (1 is fastest for these small GEMMs on 2 cores)")
      ("conv-path", po::value<std::string>()->default_value("auto"), "the convolutions' kernels: auto (direct kernels where they give the BLAS path's bits: FP32 checked per shape, the integer arithmetics always; one thread), blas (im2col + sgemm + col2im) or direct (the direct kernels always; FP32 in their order)")
      ("trace-out", po::value<std::string>(), "write the trace of one training step (every GEMM, with operands)")
      ("trace-step", po::value<int>()->default_value(0), "which step of the first epoch to trace (0-based)")
      ("report", po::value<std::string>(), "JSON report to write (atomically)")
      ("quiet,q", "no progress on stderr, no summary on stdout");
  po::variables_map vm;
  if (!parse_or_help("train", "--model M --quant Q --epochs N --batch B --seed S --report FILE.json [options]", args,
                     opts, {}, vm)) {
    return kExitOk;
  }
  if (vm.count("list-policies") != 0) {
    for (const auto& p : policies()) {
      if (p.alias_of != nullptr) {
        std::printf("%-17s %s: %s\n", p.name, p.description, p.alias_of);
        continue;
      }
      std::printf("%-17s %s\n%-17s   --int8-operands %s --scales %s --prc-operands %s%s%s%s%s\n", p.name, p.description, "",
                  *p.int8_operands != 0 ? p.int8_operands : "none", *p.scales != 0 ? p.scales : "tensor", p.prc_operands,
                  p.apot_weights ? (p.apot_errors ? " --apot-weights --apot-errors" : " --apot-weights")
                                 : (p.apot_errors ? " --apot-errors" : ""),
                  p.wbc ? "" : " --no-wbc",
                  std::string(p.first_last) != "potq" ? " --first-last " : "",
                  std::string(p.first_last) != "potq" ? p.first_last : "");
    }
    return kExitOk;
  }
  if (vm.count("report") == 0) throw InputError("train: missing option --report; see 'mfsim train --help'");
  check_applicable(vm);
  TrainOptions o;
  o.model = vm["model"].as<std::string>();
  if (vm.count("spec") != 0) o.spec = vm["spec"].as<std::string>();
  if (!parse_arith(vm["quant"].as<std::string>(), &o.arith)) {
    throw InputError(fmt::format("train: --quant: unknown value \"{}\"; expected {}",
                                 vm["quant"].as<std::string>(), arith_choices()));
  }
  auto positive = [&](const char* name) {
    int v = vm[name].as<int>();
    if (v < 1) throw InputError(fmt::format("train: --{}: expected a positive integer, got {}", name, v));
    return v;
  };
  o.epochs = positive("epochs");
  o.batch = positive("batch");
  o.threads = positive("threads");
  if (!parse_conv_path(vm["conv-path"].as<std::string>(), &o.conv_path)) {
    throw InputError(fmt::format("train: --conv-path: unknown value \"{}\"; expected auto|blas|direct",
                                 vm["conv-path"].as<std::string>()));
  }
  o.seed = vm["seed"].as<std::uint64_t>();
  o.lr = vm["lr"].as<double>();
  if (!(o.lr > 0)) throw InputError(fmt::format("train: --lr: expected a positive number, got {}", o.lr));
  o.lr_schedule = vm["lr-schedule"].as<std::string>();
  if (o.lr_schedule != "constant" && o.lr_schedule != "cosine") {
    throw InputError(fmt::format("train: --lr-schedule: unknown value \"{}\"; expected constant|cosine", o.lr_schedule));
  }
  o.momentum = vm["momentum"].as<double>();
  o.weight_decay = vm["weight-decay"].as<double>();
  o.first_last = vm["first-last"].as<std::string>();
  if (o.first_last != "potq" && o.first_last != "int8" && o.first_last != "fp32") {
    throw InputError(fmt::format("train: --first-last: unknown value \"{}\"; expected potq|int8|fp32", o.first_last));
  }
  const std::string crit = vm["prc-criterion"].as<std::string>();
  if (crit != "l1" && crit != "mse" && crit != "range") {
    throw InputError(fmt::format("train: --prc-criterion: unknown value \"{}\"; expected l1|mse|range", crit));
  }
  o.prc_criterion = crit == "l1" ? PrcCriterion::kL1 : crit == "mse" ? PrcCriterion::kMse : PrcCriterion::kRange;
  const std::string es = vm["error-scale"].as<std::string>();
  if (es != "ceil" && es != "floor") {
    throw InputError(fmt::format("train: --error-scale: unknown value \"{}\"; expected ceil|floor", es));
  }
  o.error_scale_floor = es == "floor";
  o.wbc = vm.count("no-wbc") == 0;
  o.prc = vm.count("no-prc") == 0;
  parse_prc_operands(vm["prc-operands"].as<std::string>(), "train: --prc-operands", o.prc_roles);
  if (vm.count("int8-operands") != 0) {
    parse_int8_operands(vm["int8-operands"].as<std::string>(), "train: --int8-operands", o.int8_roles);
  }
  if (vm.count("scales") != 0) parse_scales(vm["scales"].as<std::string>(), "train: --scales", o.scale_grain);
  if (vm.count("policy") != 0) {
    std::vector<std::string> keep;
    for (const char* name : {"int8-operands", "prc-operands", "no-prc", "no-wbc", "first-last", "scales", "apot-weights", "apot-errors"}) {
      if (vm.count(name) != 0 && !vm[name].defaulted()) keep.push_back(name);
    }
    apply_policy(find_policy(vm["policy"].as<std::string>()), o, keep);
  }
  if (vm.count("apot-weights") != 0) o.apot_weights = true;
  if (vm.count("apot-errors") != 0) o.apot_errors = true;
  for (const auto& [on, slot, option, op, what] :
       {std::tuple{o.apot_weights, 1, "apot-weights", "w", "weights"}, std::tuple{o.apot_errors, 2, "apot-errors", "g", "errors"}}) {
    if (!on || o.arith != NumFormat::kPot4) continue;
    for (int c = 0; c < kLayerClasses; ++c) {
      if ((o.int8_roles[c] >> slot) & 1) {
        throw InputError(fmt::format("train: --{}: the {} are INT8 in some layers (--int8-operands {}...); choose one",
                                     option, what, op));
      }
    }
    if (o.scale_grain[slot] != kScaleTensor) {
      throw InputError(fmt::format("train: --{}: two-term {} have one scale per tensor; drop {}= from --scales", option, what,
                                   op));
    }
  }
  o.progress = vm.count("quiet") == 0;
  if (vm.count("trace-out") != 0) o.trace_out = vm["trace-out"].as<std::string>();
  o.trace_step = vm["trace-step"].as<int>();
  if (o.trace_step < 0) throw InputError("train: --trace-step: expected a step index >= 0");
  if (is_transformer_spec(o.model)) return train_transformer_cmd(args, vm, o);
  // Validate the network before loading any data (28x28x1 inputs).
  Network probe(o.spec.empty() ? network_spec(o.model) : o.spec, 28, 28, 1, 0);
  const std::string data = vm["data"].as<std::string>();
  Dataset train = load_idx_dataset(data, true, vm["train-limit"].as<std::size_t>());
  Dataset test = load_idx_dataset(data, false, vm["test-limit"].as<std::size_t>());
  const std::size_t steps = (train.size() + static_cast<std::size_t>(o.batch) - 1) / static_cast<std::size_t>(o.batch);
  if (!o.trace_out.empty() && static_cast<std::size_t>(o.trace_step) >= steps) {
    throw InputError(fmt::format("train: --trace-step: {} is past the {} steps of an epoch", o.trace_step, steps));
  }
  const std::string report_path = vm["report"].as<std::string>();
  AtomicFile report(report_path);
  nlohmann::ordered_json rep = train_network(o, train, test);
  std::string cmd = "mfsim train";
  for (const auto& a : args) cmd += " " + a;
  rep["command"] = cmd;
  rep["data"] = data;
  report.write(rep.dump(2) + "\n");
  report.commit();
  if (vm.count("quiet") == 0) {
    std::printf("%s %s: test accuracy %.4f after %d epochs (%.1f s per epoch)%s\n", rep["model"].get<std::string>().c_str(),
                arith_name(o.arith), rep["test_accuracy"].get<double>(), o.epochs,
                rep["epoch_seconds"].empty() ? 0.0 : rep["epoch_seconds"].back().get<double>(),
                rep["diverged"].get<bool>() ? " -- training diverged (a loss not finite or above 100x the first step's)" : "");
  }
  return rep["diverged"].get<bool>() ? kExitFailure : kExitOk;
}

}  // namespace mfsim::cli
