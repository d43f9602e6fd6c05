// Network workloads and the SCALE-Sim topology import (traces/networks.h).
#include <catch2/catch.hpp>

#include "common/error.h"
#include "tests/test_util.h"
#include "traces/networks.h"
#include "traces/trace_reader.h"
#include "traces/trace_writer.h"

using namespace mfsim;
using mfsim::test::TempDir;

namespace {
double fwd_macs(const std::vector<LayerGemm>& layers) {
  double s = 0;
  for (const auto& l : layers) s += static_cast<double>(l.m * l.n * l.k * l.repeat);
  return s;
}
}  // namespace

TEST_CASE("forward MACs per 224x224 image match published figures", "[model]") {
  NetworkOptions o;  // batch 1
  // Published (torchvision / original papers): ResNet-18 1.82 G, ResNet-50 4.09 G (v1.5 ~4.1 G),
  // VGG-16 15.47 G, MobileNetV2 0.300 G multiply-adds.
  CHECK(fwd_macs(network_layers("resnet18", o)) == Approx(1.82e9).epsilon(0.01));
  CHECK(fwd_macs(network_layers("resnet50", o)) == Approx(4.09e9).epsilon(0.01));
  CHECK(fwd_macs(network_layers("vgg16", o)) == Approx(15.47e9).epsilon(0.01));
  CHECK(fwd_macs(network_layers("mobilenetv2", o)) == Approx(0.300e9).epsilon(0.01));
  // Batch scales M only.
  NetworkOptions b32 = o;
  b32.batch = 32;
  CHECK(fwd_macs(network_layers("resnet50", b32)) == 32 * fwd_macs(network_layers("resnet50", o)));
  CHECK(network_layers("resnet18", o).size() == 21);  // 17 3x3/7x7 convs + 3 downsamples + fc
  CHECK(network_layers("resnet50", o).size() == 54);  // 49 convs + 4 downsamples + fc
}

TEST_CASE("Transformer-base: linear-layer weights times tokens plus attention", "[model]") {
  NetworkOptions o;
  o.batch = 3;
  o.seq = 40;
  o.vocab = 37000;
  const double d = 512, ff = 2048, L = 40, tokens = 3 * 40;
  // Weights of the linear layers (excluding embeddings): encoder 4d^2 + 2 d ff per layer,
  // decoder 8d^2 + 2 d ff per layer, generator d * vocab (about 63 M with the embeddings,
  // close to the 65 M parameters reported for Transformer-base).
  const double weights = 6 * (4 * d * d + 2 * d * ff) + 6 * (8 * d * d + 2 * d * ff) + d * 37000;
  // Attention: scores and context, 2 * L * d MACs per token per attention block; 18 blocks.
  const double attention = 18 * 2 * L * d * tokens;
  CHECK(fwd_macs(network_layers("transformer-base", o)) == weights * tokens + attention);
  auto layers = network_layers("transformer-base", o);
  CHECK(layers.size() == 6 * 8 + 6 * 14 + 1);
  CHECK(layers[3].name == "encoder0.self_attn.scores");
  CHECK(layers[3].repeat == 3 * 8);
  CHECK(layers[3].m == 40);
  CHECK(layers[3].k == 64);
}

TEST_CASE("training records: backward GEMM shapes and the first layer", "[unit]") {
  std::vector<LayerGemm> layers = {conv_gemm("c1", 2, 3, 8, 3, 1, 1, 10, 10), LayerGemm{"fc", 2, 5, 800, 1, true, LayerType::kFc, {}}};
  layers[0].input_grad = false;
  auto recs = training_records(layers, {}, NumFormat::kPot4);
  REQUIRE(recs.size() == 5);  // 2 fwd, fc bwd_data, fc bwd_weight, c1 bwd_weight
  CHECK(recs[0].shape.m == 200);  // B*P*Q
  CHECK(recs[0].shape.n == 8);
  CHECK(recs[0].shape.k == 27);   // R*S*Cin
  CHECK(recs[2].layer == "fc");
  CHECK(recs[2].phase == Phase::kBwdData);
  CHECK((recs[2].shape.m == 2 && recs[2].shape.n == 800 && recs[2].shape.k == 5));
  CHECK(recs[3].phase == Phase::kBwdWeight);
  CHECK((recs[3].shape.m == 800 && recs[3].shape.n == 5 && recs[3].shape.k == 2));
  CHECK(recs[4].layer == "c1");
  CHECK(recs[4].phase == Phase::kBwdWeight);
  CHECK((recs[4].shape.m == 27 && recs[4].shape.n == 8 && recs[4].shape.k == 200));
  auto fwd_only = training_records(layers, PhaseSelection{true, false, false}, NumFormat::kPot4);
  CHECK(fwd_only.size() == 2);
}

TEST_CASE("SCALE-Sim topology import: conv and GEMM forms", "[unit]") {
  TempDir dir;
  std::string conv = dir.file("conv.csv");
  test::spit(conv,
             "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
             "Conv1, 230, 230, 7, 7, 3, 64, 2,\n"
             "\n"
             "Conv2, 58, 58, 3, 3, 64, 64, 1,\r\n"
             "DP_conv, 114, 114, 3, 3, 32, 1, 1,\n"
             "Rect, 20, 30, 3, 5, 4, 8, 2, 3,\n");
  auto layers = read_scalesim_topology(conv, false, 2);
  REQUIRE(layers.size() == 4);
  // SCALE-Sim: P = ceil((230 - 7 + 2) / 2) = 113.
  CHECK(layers[0].m == 113 * 113 * 2);
  CHECK(layers[0].n == 64);
  CHECK(layers[0].k == 7 * 7 * 3);
  CHECK_FALSE(layers[0].input_grad);
  CHECK(layers[1].m == 56 * 56 * 2);
  CHECK(layers[1].k == 576);
  CHECK(layers[2].repeat == 32);  // depthwise: one GEMM per channel
  CHECK(layers[2].k == 9);
  CHECK(layers[2].n == 1);
  // Separate strides 2 (rows) and 3 (columns): ceil((20-3+2)/2) = 10, ceil((30-5+3)/3) = 10.
  CHECK(layers[3].m == 10 * 10 * 2);
  CHECK(layers[3].k == 3 * 5 * 4);
  std::string gemm = dir.file("gemm.csv");
  test::spit(gemm, "Layer, M, N, K,\nfc1, 64, 1000, 2048,\nqkv, 128, 1536, 512,\n");
  auto g = read_scalesim_topology(gemm, true, 1);
  REQUIRE(g.size() == 2);
  CHECK((g[0].m == 64 && g[0].n == 1000 && g[0].k == 2048));
  CHECK((g[1].m == 128 && g[1].n == 1536 && g[1].k == 512));
}

TEST_CASE("SCALE-Sim topology import: every convolution row keeps its geometry", "[unit]") {
  // SCALE-Sim rounds the output size up (P = ceil((H - R + s) / s)) and starts its windows at the
  // first row; the last window's rows past the far edge are zero padding (pad_end).
  TempDir dir;
  std::string topo = dir.file("r.csv");
  test::spit(topo,
             "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
             "Conv1, 224, 224, 7, 7, 3, 64, 2,\n"     // ceil(219 / 2) = 110: rows 218..224, 224 is padding
             "Conv3_s, 56, 56, 1, 1, 64, 128, 2,\n"   // ceil(57 / 2) = 29: the last window lies in padding
             "Conv2, 56, 56, 3, 3, 64, 64, 1,\n"      // 54, exact
             "Odd, 20, 31, 3, 4, 4, 8, 3,\n"          // ceil(20 / 3) = 7 (pad_end 1), (31 - 4 + 3) / 3 = 10 (0)
             "DP_c, 16, 16, 3, 3, 8, 1, 2,\n"         // depthwise, ceil(15 / 2) = 8
             "Rect, 20, 30, 3, 5, 4, 8, 2, 3,\n");    // two strides: a plain GEMM
  const auto layers = read_scalesim_topology(topo, false, 2);
  REQUIRE(layers.size() == 6);
  struct Want {
    std::int64_t p, q, pad_end_h, pad_end_w;
  };
  const Want want[] = {{110, 110, 1, 1}, {29, 29, 1, 1}, {54, 54, 0, 0}, {7, 10, 1, 0}, {8, 8, 1, 1}};
  for (std::size_t i = 0; i < 5; ++i) {
    const LayerGemm& l = layers[i];
    INFO(l.name);
    REQUIRE(l.type == LayerType::kConv);
    CHECK(l.conv.pad == 0);
    CHECK(l.conv.pad_end_h == want[i].pad_end_h);
    CHECK(l.conv.pad_end_w == want[i].pad_end_w);
    CHECK(l.conv.out_h() == want[i].p);
    CHECK(l.conv.out_w() == want[i].q);
    CHECK(l.m == 2 * want[i].p * want[i].q);
    CHECK(l.k == l.conv.kernel_h * l.conv.kernel_w * l.conv.in_c);
  }
  CHECK(layers[1].conv.stride == 2);
  CHECK(layers[4].conv.in_c == 1);
  CHECK(layers[4].repeat == 8);
  CHECK(layers[5].type == LayerType::kFc);
  // The far-edge padding is written and read back; more than stride - 1 of it is an error.
  const std::string path = dir.file("t.json");
  {
    TraceWriter w(path, "test", "");
    for (const auto& r : training_records(layers, PhaseSelection{}, NumFormat::kInt8)) w.add_shape(r);
    w.commit();
  }
  {
    TraceReader reader(path);
    const TraceRecord& r0 = reader.trace().records[0];
    REQUIRE(r0.layer_type == LayerType::kConv);
    CHECK(r0.conv.pad_end_h == 1);
    CHECK(r0.conv.pad_end_w == 1);
    CHECK(r0.conv.out_h() == 110);
  }
  std::string text = test::slurp(path);
  const auto at = text.find("\"pad_end_h\":1");
  REQUIRE(at != std::string::npos);
  text.replace(at, 13, "\"pad_end_h\":2");
  test::spit(path, text);
  try {
    TraceReader bad(path);
    FAIL("expected an error");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()) == path + ": records[0].conv: pad_end_h and pad_end_w must be below the stride (2), "
                                          "got 2 and 1");
  }
}

TEST_CASE("SCALE-Sim topology import: bad rows name file and line", "[unit]") {
  TempDir dir;
  std::string p = dir.file("t.csv");
  auto error = [&](const std::string& text, bool gemm) {
    test::spit(p, text);
    try {
      read_scalesim_topology(p, gemm, 1);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const std::string head = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n";
  CHECK(error(head + "c1, 56, 56, 3, 3, 64, 64,\n", false) ==
        p + ": line 2: expected 8 or 9 fields (Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter "
            "Width, Channels, Num Filter, Strides), got 7");
  CHECK(error(head + "c1, 56, 56, 3, 3, 64, 64, 1,\nc2, 56, x56, 3, 3, 64, 64, 1,\n", false) ==
        p + ": line 3: IFMAP Width: expected a positive integer, got \"x56\"");
  CHECK(error(head + "c1, 56, 56, 3, 3, 0, 64, 1,\n", false) ==
        p + ": line 2: Channels: expected a positive integer, got \"0\"");
  CHECK(error(head + "c1, 2, 56, 3, 3, 4, 64, 1,\n", false) ==
        p + ": line 2: filter 3x3 is larger than the IFMAP 2x56");
  CHECK(error(head, false) == p + ": no layers (a header line, then one row per layer)");
  CHECK(error("Layer, M, N, K,\nfc, 1, 2,\n", true) == p + ": line 2: expected 4 fields (Layer name, M, N, K), got 3");
  CHECK(error("Layer, M, N, K,\n, 1, 2, 3,\n", true) == p + ": line 2: empty layer name");
  try {
    read_scalesim_topology(dir.file("absent.csv"), false, 1);
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()) == dir.file("absent.csv") + ": cannot open file");
  }
}

TEST_CASE("quantized elements: feature maps, first-layer errors, no weights in attention matmuls", "[model]") {
  NetworkOptions o;
  o.batch = 2;
  Trace t;
  t.records = training_records(network_layers("resnet18", o), PhaseSelection{}, NumFormat::kPot4);
  std::vector<QuantizedElements> q = quantized_elements(t);
  bool saw_conv1_fwd = false, saw_conv1_bwd_weight = false, saw_layer1_bwd_data = false;
  std::uint64_t errors = 0, error_layers = 0;
  for (std::size_t i = 0; i < t.records.size(); ++i) {
    const TraceRecord& r = t.records[i];
    errors += q[i].errors;
    error_layers += q[i].errors > 0 ? 1 : 0;
    if (r.layer == "conv1" && r.phase == Phase::kFwd) {
      saw_conv1_fwd = true;
      CHECK(r.layer_type == LayerType::kConv);
      CHECK(q[i].activations == 2u * 224 * 224 * 3);  // the input tensor, not im2col (M*K)
      CHECK(q[i].activations < static_cast<std::uint64_t>(r.shape.m * r.shape.k));
      CHECK(q[i].weights == 147u * 64);
    }
    if (r.layer == "conv1" && r.phase == Phase::kBwdWeight) {  // no bwd_data: G charged here
      saw_conv1_bwd_weight = true;
      CHECK(q[i].errors == static_cast<std::uint64_t>(r.shape.k * r.shape.n));
      CHECK(q[i].errors == 2u * 112 * 112 * 64);
    }
    if (r.layer == "layer1.0.conv1" && r.phase == Phase::kBwdData) {
      saw_layer1_bwd_data = true;
      CHECK(q[i].errors == 0);  // charged once, to the layer's bwd_weight record
    }
  }
  CHECK(saw_conv1_fwd);
  CHECK(saw_conv1_bwd_weight);
  CHECK(saw_layer1_bwd_data);
  CHECK(error_layers == 21);  // every layer's G once: 20 convolutions and fc

  // Without bwd_weight records, G is charged to bwd_data (and a first layer has none).
  Trace d;
  d.records = training_records(network_layers("resnet18", o), PhaseSelection{true, true, false}, NumFormat::kPot4);
  std::uint64_t d_errors = 0;
  for (const auto& x : quantized_elements(d)) d_errors += x.errors;
  CHECK(d_errors < errors);

  // Attention's score and context GEMMs quantize two activations and no weights.
  NetworkOptions tf;
  tf.batch = 1;
  tf.seq = 16;
  Trace a;
  a.records = training_records(network_layers("transformer-base", tf), PhaseSelection{}, NumFormat::kPot4);
  std::vector<QuantizedElements> qa = quantized_elements(a);
  bool saw_scores = false;
  for (std::size_t i = 0; i < a.records.size(); ++i) {
    const TraceRecord& r = a.records[i];
    if (r.layer == "encoder0.self_attn.scores" && r.phase == Phase::kFwd) {
      saw_scores = true;
      CHECK(r.layer_type == LayerType::kMatmul);
      CHECK(qa[i].weights == 0);
      CHECK(qa[i].activations == static_cast<std::uint64_t>((r.shape.m * r.shape.k + r.shape.k * r.shape.n) * r.repeat));
    }
    if (r.layer == "encoder0.self_attn.q_proj" && r.phase == Phase::kFwd) CHECK(qa[i].weights == 512u * 512);
  }
  CHECK(saw_scores);
}

TEST_CASE("conv geometry: written, read back, checked against the GEMM", "[unit]") {
  TempDir dir;
  NetworkOptions o;
  o.batch = 2;
  o.image_h = o.image_w = 32;
  std::string path = dir.file("r.json");
  {
    TraceWriter w(path, "test", "");
    for (const auto& r : training_records(network_layers("resnet18", o), PhaseSelection{}, NumFormat::kPot4)) w.add_shape(r);
    w.commit();
  }
  TraceReader reader(path);
  const TraceRecord& r0 = reader.trace().records[0];
  CHECK(r0.layer_type == LayerType::kConv);
  CHECK(r0.conv.in_h == 32);
  CHECK(r0.conv.kernel_h == 7);
  CHECK(r0.conv.stride == 2);
  CHECK(r0.conv.pad == 3);
  // A geometry that does not give the record's GEMM is an error naming the record.
  std::string text = test::slurp(path);
  auto at = text.find("\"in_h\":32");
  REQUIRE(at != std::string::npos);
  text.replace(at, 9, "\"in_h\":30");
  test::spit(path, text);
  try {
    TraceReader bad(path);
    FAIL("expected an error");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()) == path + ": records[0].conv: the geometry gives a forward GEMM with M = batch*P*Q "
                                          "= 480 and K = kernel_h*kernel_w*in_c = 147, but the fwd record implies "
                                          "M = 512, K = 147");
  }
}

TEST_CASE("every network's and topology's trace reads back (geometry consistent with the GEMMs)", "[unit]") {
  TempDir dir;
  NetworkOptions o;
  o.batch = 2;
  o.image_h = o.image_w = 64;
  o.seq = 8;
  std::vector<std::vector<LayerGemm>> all;
  for (const auto& n : known_networks()) all.push_back(network_layers(n.name, o));
  const std::string topo = dir.file("t.csv");
  test::spit(topo, "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                   "a, 230, 230, 7, 7, 3, 64, 2,\nb, 58, 58, 3, 3, 64, 64, 1,\nDP_c, 16, 16, 3, 3, 8, 1, 2,\n");
  all.push_back(read_scalesim_topology(topo, false, 3));
  for (std::size_t i = 0; i < all.size(); ++i) {
    const std::string path = dir.file("n" + std::to_string(i) + ".json");
    {
      TraceWriter w(path, "test", "");
      for (const auto& r : training_records(all[i], PhaseSelection{}, NumFormat::kPot4)) w.add_shape(r);
      w.commit();
    }
    INFO("network " << i);
    CHECK_NOTHROW(TraceReader(path));
  }
}

TEST_CASE("quantized elements: a layer split into one record per sequence and head is charged as a whole", "[model]") {
  // The shape-only Transformer (repeat = batch x heads) and the same GEMMs as single records,
  // as the training core writes them, charge the same quantized elements.
  const TransformerConfig c = parse_transformer_spec("transformer:layers=1,d=8,heads=2,ff=8,seq=4,vocab=5");
  Trace folded;
  folded.records = training_records(transformer_layers(c, 3), PhaseSelection{}, NumFormat::kPot4);
  Trace split;
  for (const auto& r : folded.records) {
    for (std::int64_t i = 0; i < r.repeat; ++i) {
      TraceRecord one = r;
      one.repeat = 1;
      split.records.push_back(one);
    }
  }
  auto sum = [](const Trace& t) {
    QuantizedElements s;
    for (const auto& q : quantized_elements(t)) {
      s.activations += q.activations;
      s.weights += q.weights;
      s.errors += q.errors;
    }
    return s;
  };
  const QuantizedElements a = sum(folded), b = sum(split);
  CHECK(a.activations == b.activations);
  CHECK(a.weights == b.weights);
  CHECK(a.errors == b.errors);
  CHECK(b.errors > 0);
}
