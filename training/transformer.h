// A decoder-only Transformer in the functional training core (docs/training-core.md): learned
// token and position embeddings, pre-norm blocks of causal multi-head self-attention and a ReLU
// feed-forward network, a final LayerNorm and a linear layer to the vocabulary, softmax
// cross-entropy over the target tokens.
//
// Every projection and feed-forward GEMM, forward, backward-data and backward-weight, runs in
// the step's arithmetic through the same quantizers and exact GEMMs as the CNNs
// (training/quant_gemm.h); so do the attention GEMMs Q K^T and softmax(S) V (one GEMM per
// sequence and head), unless attention_fp32 keeps them in FP32. Embeddings, LayerNorm, the
// softmaxes and the optimizer (Adam) stay FP32: they are not linear-layer GEMMs.
//
// The task (a generator, not a download): reverse-and-translate. A source of L = seq/2 tokens
// from {0 .. vocab-2} is followed by the separator (vocab-1) and its translation: the source in
// reverse order, each token translated in context, t_i = table[s_j][s_(j-1)] for the mirrored
// position j = L-1-i (s_(-1) = 0), with a fixed random table. The model reads source,
// separator and translation and predicts each translation token from what precedes it (loss
// and accuracy on those L positions only): it must attend to the mirrored source position and
// its neighbour and look the pair up.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "traces/networks.h"
#include "training/trainer.h"

namespace mfsim {

struct SeqData {
  int n = 0, seq = 0;
  std::vector<int> input;   // n x seq tokens
  std::vector<int> target;  // n x seq: the token to predict at each position, -1 where none
};

// `count` sequences of the reverse-and-translate task for `c` (seq even, >= 4). The table is
// fixed (the same task for every run); `seed` draws the sources; test sets (test = true) draw
// from another stream and leave out any sequence of the training set `exclude` (may be null).
SeqData make_reverse_task(const TransformerConfig& c, int count, std::uint64_t seed, bool test,
                          const SeqData* exclude = nullptr);

// The character-level language-model task on real English text: the plain-text fortune files of
// Debian's `fortunes` package (every file of `dir` without a dot in its name, in name order),
// split into fortunes at the lines "%"; every tenth fortune (index % 10 == 0) is held out for
// test, the rest train. Characters map to kTextVocab tokens: newline 0, printable ASCII
// 32..126 to 1..95, anything else 96. Each split's fortunes are joined by a newline and cut into
// non-overlapping windows of seq characters; the target at each position is the next character
// (every position has one). At most `max_windows` windows per split (0: all), evenly spaced.
constexpr int kTextVocab = 97;
struct TextCorpus {
  SeqData train, test;
  std::size_t files = 0, fortunes = 0, train_chars = 0, test_chars = 0;
};
TextCorpus make_text_task(const std::string& dir, int seq, int max_train_windows, int max_test_windows);
int text_token(unsigned char ch);

// The network (FP32 parameters; the GEMMs in ctx's arithmetic). Tokens: batch x seq.
class TransformerModel {
 public:
  TransformerModel(const TransformerConfig& c, std::uint64_t seed);
  ~TransformerModel();
  std::vector<float> forward(const int* tokens, int batch, StepContext& ctx, bool attention_fp32);  // logits
  void backward(const std::vector<float>& dlogits, StepContext& ctx, bool attention_fp32);
  std::vector<std::pair<std::vector<float>*, std::vector<float>*>> params();  // (value, gradient)

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Mean softmax cross-entropy over the positions with a target (>= 0), and its gradient.
double sequence_loss(const std::vector<float>& logits, const int* target, int batch, int seq, int vocab,
                     std::vector<float>* dlogits);

struct TransformerOptions {
  TrainOptions train;           // arith, epochs, batch, seed, lr (Adam's peak), trace, threads, ...
  TransformerConfig config;
  bool attention_fp32 = false;  // --attention-quant fp32: Q K^T and softmax(S) V stay in FP32
  int train_examples = 16000, test_examples = 1000;
  // "reverse" (the generated task) or "text" (the character-level language model on text_dir;
  // train_examples and test_examples cap its windows).
  std::string task = "reverse";
  std::string text_dir = "/usr/share/games/fortunes";
};

// Trains on the task; returns the report: test token accuracy and exact-match accuracy (every
// target token right; by teacher forcing, which equals greedy decoding's exact match) per
// epoch, losses, epoch times, the trace of one step if asked. The text task also reports bits
// per character (the test loss / ln 2) per epoch.
nlohmann::ordered_json train_transformer(const TransformerOptions& opt);

}  // namespace mfsim
