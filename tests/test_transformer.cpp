// The Transformer of the training core (training/transformer.h): gradients against finite
// differences, the traced step's GEMM list against the shape-only generator, the task, and
// the CLI end to end with bit-exact replay of a traced step.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <map>
#include <set>
#include <nlohmann/json.hpp>
#include <tuple>

#include "traces/gemm_recorder.h"
#include "traces/networks.h"
#include "tests/test_util.h"
#include "training/transformer.h"

using namespace mfsim;
using mfsim::test::run_mfsim;
using mfsim::test::TempDir;
using nlohmann::json;

namespace {

// Records what a step's GEMMs are (no operands).
class ShapeRecorder : public GemmRecorder {
 public:
  std::vector<TraceRecord> records;
  void add_pot4(const TraceRecord& r, const Pot4Code*, const Pot4Code*, const std::int64_t*) override { add(r); }
  void add_int8(const TraceRecord& r, const std::int8_t*, const std::int8_t*, const std::int64_t*) override { add(r); }
  void add_fp32(const TraceRecord& r, const float*, const float*, const float*) override { add(r); }
  void add_pot4_int8(const TraceRecord& r, const Pot4Code*, const std::int8_t*, const std::int64_t*) override { add(r); }

 private:
  void add(const TraceRecord& r) { records.push_back(r); }
};

using GemmKey = std::tuple<std::string, Phase, std::int64_t, std::int64_t, std::int64_t, LayerType>;
GemmKey key_of(const TraceRecord& r) {
  return {r.layer, r.phase, r.shape.m, r.shape.n, r.shape.k, r.layer_type};
}

// Runs of identical GEMMs folded into (GEMM, count), in order.
std::vector<std::pair<GemmKey, std::int64_t>> fold(const std::vector<TraceRecord>& rs) {
  std::vector<std::pair<GemmKey, std::int64_t>> out;
  for (const auto& r : rs) {
    if (!out.empty() && out.back().first == key_of(r)) {
      out.back().second += r.repeat;
    } else {
      out.emplace_back(key_of(r), r.repeat);
    }
  }
  return out;
}

const TransformerConfig kTiny = parse_transformer_spec("transformer:layers=2,d=8,heads=2,ff=12,seq=6,vocab=5");

}  // namespace

TEST_CASE("transformer: FP32 gradients of every parameter match finite differences", "[model]") {
  TransformerModel model(kTiny, 3);
  const SeqData d = make_reverse_task(kTiny, 2, 9, false);
  StepContext ctx;
  ctx.arith = NumFormat::kFp32;
  std::vector<float> dl;
  sequence_loss(model.forward(d.input.data(), 2, ctx, false), d.target.data(), 2, kTiny.seq, kTiny.vocab, &dl);
  model.backward(dl, ctx, false);
  auto params = model.params();
  CHECK(params.size() == 2 + 2 * 16 + 2 + 2);  // embeddings; per block 2 LayerNorms and 6 linear layers; final LayerNorm, head
  auto loss = [&]() {
    return sequence_loss(model.forward(d.input.data(), 2, ctx, false), d.target.data(), 2, kTiny.seq, kTiny.vocab,
                         nullptr);
  };
  int checked = 0;
  std::size_t tensor = 0;
  for (auto& [w, g] : params) {
    ++tensor;
    const std::vector<float> grad = *g;
    for (std::size_t i = 0; i < w->size(); i += std::max<std::size_t>(1, w->size() / 5)) {
      // A small step: the ReLUs make the loss piecewise smooth, and a larger step crosses kinks.
      const float orig = (*w)[i], eps = 1e-4f;
      (*w)[i] = orig + eps;
      const double up = loss();
      (*w)[i] = orig - eps;
      const double down = loss();
      (*w)[i] = orig;
      const double numeric = (up - down) / (2 * eps);
      INFO("parameter tensor " << tensor - 1 << " of " << w->size() << " element " << i);
      CHECK(grad[i] == Approx(numeric).margin(2e-3).epsilon(0.05));
      ++checked;
    }
  }
  CHECK(checked > 100);
}

TEST_CASE("transformer: the traced step's GEMMs are the shape-only generator's, in order", "[model]") {
  for (bool attention_fp32 : {false, true}) {
    TransformerModel model(kTiny, 1);
    const SeqData d = make_reverse_task(kTiny, 3, 2, false);
    ShapeRecorder rec;
    StepContext ctx;
    ctx.arith = NumFormat::kPot4;
    ctx.trace = &rec;
    std::vector<float> dl;
    sequence_loss(model.forward(d.input.data(), 3, ctx, attention_fp32), d.target.data(), 3, kTiny.seq, kTiny.vocab,
                  &dl);
    model.backward(dl, ctx, attention_fp32);
    const auto want = fold(training_records(transformer_layers(kTiny, 3), PhaseSelection{}, NumFormat::kPot4));
    CHECK(fold(rec.records) == want);
    // Attention GEMMs: one per sequence and head; in FP32 when asked, the rest in PoT4.
    std::size_t attention = 0;
    for (const auto& r : rec.records) {
      if (r.layer_type != LayerType::kMatmul) {
        CHECK(r.format() == NumFormat::kPot4);
        continue;
      }
      ++attention;
      CHECK(r.format() == (attention_fp32 ? NumFormat::kFp32 : NumFormat::kPot4));
    }
    CHECK(attention == 2u * 2 * 3 * 3 * 2);  // layers x GEMMs x phases x batch x heads
    CHECK(want.size() == 2 * 8 * 3 + 3);  // 8 GEMMs per block, 3 phases; the head's 3
  }
}

TEST_CASE("transformer: the reverse-and-translate task", "[unit]") {
  const TransformerConfig c = parse_transformer_spec("transformer:seq=8,vocab=6");
  const SeqData train = make_reverse_task(c, 50, 1, false), test = make_reverse_task(c, 20, 1, true, &train);
  const SeqData again = make_reverse_task(c, 50, 1, false);
  CHECK(again.input == train.input);  // deterministic
  for (int s = 0; s < train.n; ++s) {
    const int* x = &train.input[static_cast<std::size_t>(s) * 8];
    const int* y = &train.target[static_cast<std::size_t>(s) * 8];
    CHECK(x[4] == 5);  // the separator
    for (int i = 0; i < 4; ++i) {
      CHECK(y[i] == -1);               // no loss on the source
      CHECK(y[4 + i] >= 0);
      if (i < 3) CHECK(x[5 + i] == y[4 + i]);  // the translation so far is the input
    }
  }
  // The same source pair translates the same way (a table), and test sources are not in train.
  std::set<std::vector<int>> sources;
  for (int s = 0; s < train.n; ++s) sources.insert(std::vector<int>(&train.input[s * 8], &train.input[s * 8] + 4));
  for (int s = 0; s < test.n; ++s) {
    CHECK(sources.count(std::vector<int>(&test.input[s * 8], &test.input[s * 8] + 4)) == 0);
  }
  CHECK_THROWS_WITH(parse_transformer_spec("transformer:d=10,heads=4"),
                    "transformer:d=10,heads=4: d = 10 is not a multiple of heads = 4");
  CHECK_THROWS_WITH(parse_transformer_spec("transformer:depth=2"),
                    "transformer:depth=2: unknown field \"depth=2\"; expected layers|d|heads|ff|seq|vocab=N");
  CHECK_THROWS_WITH(parse_transformer_spec("transformer:seq=x"),
                    "transformer:seq=x: seq: expected an integer in [1, 65536], got \"x\"");
}

TEST_CASE("train: a tiny Transformer trains, and its traced step replays bit for bit on the arrays", "[smoke]") {
  TempDir dir;
  const std::string spec = "transformer:layers=1,d=16,heads=2,ff=32,seq=8,vocab=7";
  for (const char* quant : {"als-potq", "int8", "fp32"}) {
    const std::string trace = dir.file(fmt::format("{}.json", quant)), rep = dir.file(fmt::format("{}-r.json", quant));
    auto r = run_mfsim(fmt::format("train -q --model {} --quant {} --epochs 2 --batch 4 --train-examples 64 "
                                   "--test-examples 16 --trace-out {} --trace-step 3 --report {}",
                                   spec, quant, trace, rep));
    INFO(quant << ": " << r.err);
    REQUIRE(r.exit_code == 0);
    json j = json::parse(test::slurp(rep));
    CHECK(j["model"] == "transformer");
    CHECK(j["test_exact_match_per_epoch"].size() == 2);
    CHECK(j["train_loss_per_epoch"][1].get<double>() < j["train_loss_per_epoch"][0].get<double>());
    // SQNR of every quantized tensor, per layer and attention matmul (none in FP32).
    if (std::string(quant) == "fp32") {
      CHECK_FALSE(j.contains("sqnr_db_per_epoch"));
    } else {
      REQUIRE(j["sqnr_db_per_epoch"].size() == 2);
      const json& last = j["sqnr_db_per_epoch"][1];
      for (const char* layer : {"block0.q_proj", "block0.ffn2", "lm_head", "block0.scores", "block0.context"}) {
        INFO(layer);
        REQUIRE(last.contains(layer));
        for (const char* t : {"A", "W", "G"}) CHECK(last[layer][t].get<double>() > 5.0);
      }
    }
    // 1 block: 6 projection/FFN GEMMs and the head (7 layers x 3 phases) plus 2 attention GEMMs
    // x 3 phases x 4 sequences x 2 heads.
    auto ins = run_mfsim("inspect --json --recompute " + trace);
    REQUIRE(ins.exit_code == 0);
    CHECK(json::parse(ins.out)["records"] == 7 * 3 + 2 * 3 * 4 * 2);
    const char* array = std::string(quant) == "fp32" ? "fp32" : std::string(quant) == "int8" ? "int8" : "mfmac";
    for (const char* df : {"os", "ws", "is"}) {
      auto sim = run_mfsim(fmt::format("simulate -q --trace {} --array {} --rows 4 --cols 4 --dataflow {} --mode value "
                                       "--report {}",
                                       trace, array, df, dir.file("sim.json")));
      INFO(array << " " << df << ": " << sim.err);
      REQUIRE(sim.exit_code == 0);
      json v = json::parse(test::slurp(dir.file("sim.json")));
      CHECK(v["verification"]["gemms_checked"] == 7 * 3 + 2 * 3 * 4 * 2);
      CHECK(v["verification"]["mismatches"] == 0);
    }
  }
  // The attention GEMMs in FP32: they replay on the FP32 array; the MF-MAC array times them.
  const std::string trace = dir.file("afp32.json");
  auto r = run_mfsim(fmt::format("train -q --model {} --quant als-potq --attention-quant fp32 --epochs 1 --batch 4 "
                                 "--train-examples 32 --test-examples 8 --trace-out {} --report {}",
                                 spec, trace, dir.file("afp32-r.json")));
  REQUIRE(r.exit_code == 0);
  auto sim = run_mfsim(fmt::format("simulate -q --trace {} --array mfmac --rows 4 --cols 4 --report {}", trace,
                                   dir.file("sim.json")));
  REQUIRE(sim.exit_code == 0);
  json v = json::parse(test::slurp(dir.file("sim.json")));
  CHECK(v["verification"]["gemms_checked"] == 7 * 3);
  auto bad = run_mfsim(fmt::format("train -q --model transformer:depth=2 --report {}", dir.file("x.json")));
  CHECK(bad.exit_code == 2);
  CHECK(bad.err == "mfsim: error: transformer:depth=2: unknown field \"depth=2\"; expected layers|d|heads|ff|seq|vocab=N\n");
  bad = run_mfsim(fmt::format("train -q --model transformer --attention-quant int8 --report {}", dir.file("x.json")));
  CHECK(bad.err == "mfsim: error: train: --attention-quant: unknown value \"int8\"; expected same|fp32\n");
}

TEST_CASE("train and trace: transformer options that cannot apply are one clear error", "[smoke]") {
  TempDir dir;
  auto r = run_mfsim(fmt::format("train -q --model transformer:seq=4,vocab=3 --train-examples 100 --report {}",
                                 dir.file("x.json")));
  CHECK(r.exit_code == 2);
  CHECK(r.err == "mfsim: error: transformer: the task has 4 distinct sources (2 symbols, 2 positions) and the "
                 "training set uses 4: too few left for 1000 test sequences; use a longer seq, a larger vocab or "
                 "fewer --train-examples\n");
  CHECK_FALSE(test::file_exists(dir.file("x.json")));
  r = run_mfsim(fmt::format("train -q --model transformer --first-last int8 --report {}", dir.file("x.json")));
  CHECK(r.err == "mfsim: error: train: --first-last: not available for the transformer (every layer runs in --quant; "
                 "--attention-quant fp32 keeps the attention GEMMs in FP32)\n");
  r = run_mfsim(fmt::format("trace --network transformer --seq 64 --batch 2 -o {}", dir.file("t.json")));
  CHECK(r.exit_code == 2);
  CHECK(r.err == "mfsim: error: trace: --seq: a transformer spec sets it (e.g. transformer:seq=N)\n");
  r = run_mfsim(fmt::format("trace --network transformer:seq=16 --tokens 96 -o {}", dir.file("t.json")));
  CHECK(r.exit_code == 0);
  CHECK(json::parse(test::slurp(dir.file("t.json")))["records"][0]["M"] == 96);  // 6 sequences of 16 tokens
  r = run_mfsim(fmt::format("train -q --model transformer:vocab=65 --task text --report {}", dir.file("r.json")));
  CHECK(r.exit_code == 2);
  CHECK(r.err == "mfsim: error: train: --task text: the vocabulary is the text's 97 characters; drop vocab= from --model\n");
  r = run_mfsim(fmt::format("train -q --model transformer --task poems --report {}", dir.file("r.json")));
  CHECK(r.err == "mfsim: error: train: --task: unknown value \"poems\"; expected reverse|text\n");
  r = run_mfsim(fmt::format("train -q --model transformer --task text --text-dir {} --report {}", dir.file("no"),
                            dir.file("r.json")));
  CHECK(r.exit_code == 2);
  CHECK(r.err == "mfsim: error: " + dir.file("no") +
                     ": text directory not found (install the Debian package fortunes: scripts/setup.sh)\n");
  r = run_mfsim(fmt::format("train -q --model mlp --task text --report {}", dir.file("r.json")));
  CHECK(r.err == "mfsim: error: train: --task: applies only to the transformer, not mlp\n");
  CHECK_FALSE(test::file_exists(dir.file("r.json")));
}

TEST_CASE("transformer: the character-level text task splits whole fortunes and predicts the next character", "[unit]") {
  TempDir dir;
  // Two files of fortunes (read in name order; files with a dot in their name are skipped).
  std::string a, b;
  std::vector<std::string> fortunes;  // in reading order
  for (int i = 0; i < 12; ++i) fortunes.push_back(fmt::format("fortune {} of a\nline two\n", i));
  for (int i = 0; i < 8; ++i) fortunes.push_back(fmt::format("b{}\t\xc3\xa9\n", i));
  for (int i = 0; i < 20; ++i) (i < 12 ? a : b) += fortunes[static_cast<std::size_t>(i)] + "%\n";
  test::spit(dir.file("a"), a);
  test::spit(dir.file("b"), b);
  test::spit(dir.file("a.dat"), "not text");
  const TextCorpus c = make_text_task(dir.path(), 8, 0, 0);
  CHECK(c.files == 2);
  CHECK(c.fortunes == 20);
  // Held out: the fortunes whose index is a multiple of 10 (0 and 10), each followed by a newline.
  const std::string f0 = fortunes[0], f10 = fortunes[10];
  CHECK(c.test_chars == f0.size() + 1 + f10.size() + 1);
  std::size_t train_chars = 0;
  for (int i = 0; i < 20; ++i) train_chars += i % 10 == 0 ? 0 : fortunes[static_cast<std::size_t>(i)].size() + 1;
  CHECK(c.train_chars == train_chars);
  // Windows: input positions 0..7, targets the next character everywhere.
  REQUIRE(c.test.n == static_cast<int>((c.test_chars - 1) / 8));
  std::vector<int> stream;
  for (unsigned char ch : f0 + "\n" + f10 + "\n") stream.push_back(text_token(ch));
  for (int i = 0; i < c.test.n * 8; ++i) {
    CHECK(c.test.input[static_cast<std::size_t>(i)] == stream[static_cast<std::size_t>(i)]);
    CHECK(c.test.target[static_cast<std::size_t>(i)] == stream[static_cast<std::size_t>(i) + 1]);
  }
  CHECK(text_token('\n') == 0);
  CHECK(text_token(' ') == 1);
  CHECK(text_token('~') == 95);
  CHECK(text_token('\t') == kTextVocab - 1);
  CHECK(text_token(0xc3) == kTextVocab - 1);
  // A cap keeps evenly spaced windows.
  const TextCorpus capped = make_text_task(dir.path(), 8, 3, 1);
  CHECK(capped.train.n == 3);
  CHECK(capped.test.n == 1);
  CHECK(capped.train.input.front() == c.train.input.front());
  CHECK_THROWS_WITH(make_text_task(dir.file("none"), 8, 0, 0),
                    dir.file("none") + ": text directory not found (install the Debian package fortunes: scripts/setup.sh)");
}
