#include "traces/networks.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"

namespace mfsim {

const std::vector<NetworkInfo>& known_networks() {
  static const std::vector<NetworkInfo> n = {
      {"resnet18", "ResNet-18 (ImageNet, torchvision layout): 20 convolutions + fc"},
      {"resnet50", "ResNet-50 v1.5 (ImageNet, torchvision layout; stride in the 3x3 conv)"},
      {"vgg16", "VGG-16 (ImageNet): 13 convolutions + 3 fully connected"},
      {"mobilenetv2", "MobileNetV2 1.0 (ImageNet): inverted residuals, depthwise as grouped GEMMs"},
      {"transformer-base", "Transformer-base (WMT En-De): d_model 512, 8 heads, FFN 2048, 6+6 layers"},
  };
  return n;
}

LayerGemm conv_gemm(std::string name, int batch, int cin, int cout, int k, int stride, int pad,
                    int h, int w, int groups) {
  int p = (h + 2 * pad - k) / stride + 1, q = (w + 2 * pad - k) / stride + 1;
  LayerGemm g;
  g.name = std::move(name);
  g.m = static_cast<std::int64_t>(batch) * p * q;
  g.n = cout / groups;
  g.k = static_cast<std::int64_t>(k) * k * (cin / groups);
  g.repeat = groups;
  g.type = LayerType::kConv;
  g.conv = ConvGeometry{batch, h, w, cin / groups, k, k, stride, pad};
  return g;
}

namespace {

int conv_out(int h, int k, int stride, int pad) { return (h + 2 * pad - k) / stride + 1; }

LayerGemm fc_gemm(std::string name, std::int64_t rows, int in, int out) {
  LayerGemm g;
  g.name = std::move(name);
  g.m = rows;
  g.n = out;
  g.k = in;
  return g;
}

std::vector<LayerGemm> resnet(const NetworkOptions& o, bool bottleneck, const int blocks[4]) {
  std::vector<LayerGemm> L;
  const int B = o.batch;
  L.push_back(conv_gemm("conv1", B, 3, 64, 7, 2, 3, o.image_h, o.image_w));
  L.back().input_grad = false;
  int h = conv_out(conv_out(o.image_h, 7, 2, 3), 3, 2, 1), w = conv_out(conv_out(o.image_w, 7, 2, 3), 3, 2, 1);
  int cin = 64;
  const int widths[4] = {64, 128, 256, 512};
  for (int s = 0; s < 4; ++s) {
    for (int b = 0; b < blocks[s]; ++b) {
      int stride = (s > 0 && b == 0) ? 2 : 1;
      int width = widths[s], cout = bottleneck ? 4 * width : width;
      std::string p = fmt::format("layer{}.{}", s + 1, b);
      int ho = conv_out(h, 3, stride, 1), wo = conv_out(w, 3, stride, 1);
      if (bottleneck) {
        L.push_back(conv_gemm(p + ".conv1", B, cin, width, 1, 1, 0, h, w));
        L.push_back(conv_gemm(p + ".conv2", B, width, width, 3, stride, 1, h, w));
        L.push_back(conv_gemm(p + ".conv3", B, width, cout, 1, 1, 0, ho, wo));
      } else {
        L.push_back(conv_gemm(p + ".conv1", B, cin, width, 3, stride, 1, h, w));
        L.push_back(conv_gemm(p + ".conv2", B, width, width, 3, 1, 1, ho, wo));
      }
      if (stride != 1 || cin != cout) L.push_back(conv_gemm(p + ".downsample", B, cin, cout, 1, stride, 0, h, w));
      h = ho;
      w = wo;
      cin = cout;
    }
  }
  L.push_back(fc_gemm("fc", B, cin, 1000));
  return L;
}

std::vector<LayerGemm> vgg16(const NetworkOptions& o) {
  std::vector<LayerGemm> L;
  const int cfg[] = {64, 64, -1, 128, 128, -1, 256, 256, 256, -1, 512, 512, 512, -1, 512, 512, 512, -1};
  int h = o.image_h, w = o.image_w, cin = 3, idx = 0;
  for (int c : cfg) {
    if (c < 0) {  // max-pool 2x2/2
      h /= 2;
      w /= 2;
      continue;
    }
    L.push_back(conv_gemm(fmt::format("conv{}", ++idx), o.batch, cin, c, 3, 1, 1, h, w));
    cin = c;
  }
  L.front().input_grad = false;
  L.push_back(fc_gemm("fc1", o.batch, 512 * h * w, 4096));
  L.push_back(fc_gemm("fc2", o.batch, 4096, 4096));
  L.push_back(fc_gemm("fc3", o.batch, 4096, 1000));
  return L;
}

std::vector<LayerGemm> mobilenetv2(const NetworkOptions& o) {
  std::vector<LayerGemm> L;
  const int B = o.batch;
  L.push_back(conv_gemm("conv_stem", B, 3, 32, 3, 2, 1, o.image_h, o.image_w));
  L.back().input_grad = false;
  int h = conv_out(o.image_h, 3, 2, 1), w = conv_out(o.image_w, 3, 2, 1), cin = 32, block = 0;
  // (expansion t, output channels c, repeats n, first stride s)
  const int settings[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                              {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  for (const auto& st : settings) {
    for (int i = 0; i < st[2]; ++i) {
      int stride = i == 0 ? st[3] : 1, hidden = cin * st[0];
      std::string p = fmt::format("block{}", block++);
      if (st[0] != 1) L.push_back(conv_gemm(p + ".expand", B, cin, hidden, 1, 1, 0, h, w));
      L.push_back(conv_gemm(p + ".depthwise", B, hidden, hidden, 3, stride, 1, h, w, hidden));
      h = conv_out(h, 3, stride, 1);
      w = conv_out(w, 3, stride, 1);
      L.push_back(conv_gemm(p + ".project", B, hidden, st[1], 1, 1, 0, h, w));
      cin = st[1];
    }
  }
  L.push_back(conv_gemm("conv_head", B, cin, 1280, 1, 1, 0, h, w));
  L.push_back(fc_gemm("classifier", B, 1280, 1000));
  return L;
}

std::vector<LayerGemm> transformer_base(const NetworkOptions& o) {
  const int d = 512, heads = 8, dh = d / heads, ff = 2048, layers = 6;
  const std::int64_t tokens = static_cast<std::int64_t>(o.batch) * o.seq;
  const std::int64_t bh = static_cast<std::int64_t>(o.batch) * heads;
  std::vector<LayerGemm> L;
  auto attention = [&](const std::string& p, bool cross) {
    L.push_back(fc_gemm(p + ".q_proj", tokens, d, d));
    L.push_back(fc_gemm(p + ".k_proj", tokens, d, d));  // on the encoder output for cross-attention
    L.push_back(fc_gemm(p + ".v_proj", tokens, d, d));
    LayerGemm s{p + ".scores", o.seq, o.seq, dh, bh, true, LayerType::kMatmul, {}};   // Q K^T per sentence, head
    LayerGemm c{p + ".context", o.seq, dh, o.seq, bh, true, LayerType::kMatmul, {}};  // softmax(S) V
    (void)cross;
    L.push_back(s);
    L.push_back(c);
    L.push_back(fc_gemm(p + ".out_proj", tokens, d, d));
  };
  for (int i = 0; i < layers; ++i) {
    std::string p = fmt::format("encoder{}", i);
    attention(p + ".self_attn", false);
    L.push_back(fc_gemm(p + ".ffn1", tokens, d, ff));
    L.push_back(fc_gemm(p + ".ffn2", tokens, ff, d));
  }
  for (int i = 0; i < layers; ++i) {
    std::string p = fmt::format("decoder{}", i);
    attention(p + ".self_attn", false);
    attention(p + ".cross_attn", true);
    L.push_back(fc_gemm(p + ".ffn1", tokens, d, ff));
    L.push_back(fc_gemm(p + ".ffn2", tokens, ff, d));
  }
  L.push_back(fc_gemm("generator", tokens, d, o.vocab));
  return L;
}

}  // namespace

bool is_transformer_spec(const std::string& spec) { return spec == "transformer" || spec.rfind("transformer:", 0) == 0; }

TransformerConfig parse_transformer_spec(const std::string& spec) {
  TransformerConfig c;
  if (!is_transformer_spec(spec)) throw InputError(fmt::format("\"{}\" is not a transformer spec", spec));
  const std::string body = spec.size() > 12 ? spec.substr(12) : "";
  std::stringstream ss(body);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto eq = item.find('=');
    const std::string key = item.substr(0, eq);
    int* field = key == "layers" ? &c.layers : key == "d" ? &c.d : key == "heads" ? &c.heads : key == "ff" ? &c.ff
                 : key == "seq" ? &c.seq : key == "vocab" ? &c.vocab : nullptr;
    if (field == nullptr || eq == std::string::npos) {
      throw InputError(fmt::format("{}: unknown field \"{}\"; expected layers|d|heads|ff|seq|vocab=N", spec, item));
    }
    const std::string v = item.substr(eq + 1);
    std::size_t used = 0;
    long x = 0;
    try {
      x = std::stol(v, &used);
    } catch (...) {
      used = 0;
    }
    if (used == 0 || used != v.size() || x < 1 || x > 65536) {
      throw InputError(fmt::format("{}: {}: expected an integer in [1, 65536], got \"{}\"", spec, key, v));
    }
    *field = static_cast<int>(x);
  }
  if (c.d % c.heads != 0) {
    throw InputError(fmt::format("{}: d = {} is not a multiple of heads = {}", spec, c.d, c.heads));
  }
  if (c.vocab < 3) throw InputError(fmt::format("{}: vocab: expected at least 3 tokens, got {}", spec, c.vocab));
  return c;
}

std::string to_spec(const TransformerConfig& c) {
  return fmt::format("transformer:layers={},d={},heads={},ff={},seq={},vocab={}", c.layers, c.d, c.heads, c.ff, c.seq,
                     c.vocab);
}

std::vector<LayerGemm> transformer_layers(const TransformerConfig& c, int batch) {
  const std::int64_t tokens = static_cast<std::int64_t>(batch) * c.seq;
  const std::int64_t bh = static_cast<std::int64_t>(batch) * c.heads;
  std::vector<LayerGemm> L;
  for (int i = 0; i < c.layers; ++i) {
    const std::string p = fmt::format("block{}", i);
    L.push_back(fc_gemm(p + ".q_proj", tokens, c.d, c.d));
    L.push_back(fc_gemm(p + ".k_proj", tokens, c.d, c.d));
    L.push_back(fc_gemm(p + ".v_proj", tokens, c.d, c.d));
    L.push_back(LayerGemm{p + ".scores", c.seq, c.seq, c.head_dim(), bh, true, LayerType::kMatmul, {}});
    L.push_back(LayerGemm{p + ".context", c.seq, c.head_dim(), c.seq, bh, true, LayerType::kMatmul, {}});
    L.push_back(fc_gemm(p + ".out_proj", tokens, c.d, c.d));
    L.push_back(fc_gemm(p + ".ffn1", tokens, c.d, c.ff));
    L.push_back(fc_gemm(p + ".ffn2", tokens, c.ff, c.d));
  }
  L.push_back(fc_gemm("lm_head", tokens, c.d, c.vocab));
  return L;
}

std::vector<LayerGemm> network_layers(const std::string& name, const NetworkOptions& opt) {
  if (is_transformer_spec(name)) return transformer_layers(parse_transformer_spec(name), opt.batch);
  static const int r18[4] = {2, 2, 2, 2}, r50[4] = {3, 4, 6, 3};
  if (name == "resnet18") return resnet(opt, false, r18);
  if (name == "resnet50") return resnet(opt, true, r50);
  if (name == "vgg16") return vgg16(opt);
  if (name == "mobilenetv2") return mobilenetv2(opt);
  if (name == "transformer-base") return transformer_base(opt);
  std::string names;
  for (const auto& n : known_networks()) names += names.empty() ? n.name : fmt::format("|{}", n.name);
  throw InputError(fmt::format("--network: unknown network \"{}\"; expected {}", name, names));
}

std::vector<TraceRecord> training_records(const std::vector<LayerGemm>& layers,
                                          const PhaseSelection& phases, NumFormat format) {
  auto rec = [&](const LayerGemm& l, Phase p, std::int64_t m, std::int64_t n, std::int64_t k) {
    TraceRecord r;
    r.layer = l.name;
    r.phase = p;
    r.shape = GemmShape{m, n, k};
    r.repeat = l.repeat;
    r.layer_type = l.type;
    r.conv = l.conv;
    r.a.format = r.b.format = format;
    if (format == NumFormat::kInt8 || format == NumFormat::kInt4) r.a.scale = r.b.scale = 1.0f;
    return r;
  };
  std::vector<TraceRecord> out;
  if (phases.fwd) {
    for (const auto& l : layers) out.push_back(rec(l, Phase::kFwd, l.m, l.n, l.k));
  }
  for (std::size_t i = layers.size(); i-- > 0;) {
    const LayerGemm& l = layers[i];
    if (phases.bwd_data && l.input_grad) out.push_back(rec(l, Phase::kBwdData, l.m, l.k, l.n));
    if (phases.bwd_weight) out.push_back(rec(l, Phase::kBwdWeight, l.k, l.n, l.m));
  }
  return out;
}

std::vector<LayerGemm> read_scalesim_topology(const std::string& path, bool gemm_form, int batch) {
  require_not_directory(path);
  note_input(path);
  std::ifstream file(path, std::ios::binary);
  if (!file) throw InputError(fmt::format("{}: cannot open file", path));
  std::ostringstream text;
  text << file.rdbuf();
  return parse_scalesim_topology(text.str(), path, gemm_form, batch);
}

std::vector<LayerGemm> parse_scalesim_topology(const std::string& content, const std::string& path, bool gemm_form,
                                               int batch) {
  std::istringstream in(content);
  std::vector<LayerGemm> layers;
  std::string line;
  int line_no = 0;
  bool header = true;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    if (header) {  // SCALE-Sim skips the first line
      header = false;
      continue;
    }
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) {
      auto b = cell.find_first_not_of(" \t"), e = cell.find_last_not_of(" \t");
      f.push_back(b == std::string::npos ? "" : cell.substr(b, e - b + 1));
    }
    if (!line.empty() && line.back() == ',') f.push_back("");
    if (!f.empty() && f.back().empty()) f.pop_back();  // SCALE-Sim's trailing comma
    const std::size_t want = gemm_form ? 4 : 8;
    if (f.size() < want || f.size() > want + (gemm_form ? 0 : 1)) {
      throw InputError(fmt::format("{}: line {}: expected {} fields ({}), got {}", path, line_no,
                                   gemm_form ? "4" : "8 or 9",
                                   gemm_form ? "Layer name, M, N, K"
                                             : "Layer name, IFMAP Height, IFMAP Width, Filter Height, "
                                               "Filter Width, Channels, Num Filter, Strides",
                                   f.size()));
    }
    if (f[0].empty()) throw InputError(fmt::format("{}: line {}: empty layer name", path, line_no));
    std::vector<std::int64_t> v;
    static const char* conv_names[] = {"", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width",
                                       "Channels", "Num Filter", "Strides", "Stride width"};
    static const char* gemm_names[] = {"", "M", "N", "K"};
    for (std::size_t i = 1; i < f.size(); ++i) {
      const char* col = gemm_form ? gemm_names[i] : conv_names[i];
      std::size_t used = 0;
      long long x = 0;
      try {
        x = std::stoll(f[i], &used);
      } catch (...) {
        used = 0;
      }
      if (used == 0 || used != f[i].size() || x < 1 || x > kTraceMaxDim) {
        throw InputError(fmt::format("{}: line {}: {}: expected a positive integer, got \"{}\"", path,
                                     line_no, col, f[i]));
      }
      v.push_back(x);
    }
    LayerGemm g;
    g.name = f[0];
    // Every GEMM dimension must fit the trace format (checked before any product can overflow).
    auto dim = [&](const char* what, std::initializer_list<std::int64_t> factors) {
      std::int64_t x = 1;
      for (std::int64_t y : factors) {
        if (__builtin_mul_overflow(x, y, &x) || x > kTraceMaxDim) {
          throw InputError(fmt::format("{}: line {}: the layer's {} passes 2^31 - 1", path, line_no, what));
        }
      }
      return x;
    };
    if (gemm_form) {
      g.m = dim("M x batch", {v[0], batch});
      g.n = v[1];
      g.k = v[2];
    } else {
      std::int64_t ih = v[0], iw = v[1], fh = v[2], fw = v[3], ch = v[4], nf = v[5], sh = v[6];
      std::int64_t sw = v.size() > 7 ? v[7] : sh;
      if (fh > ih || fw > iw) {
        throw InputError(fmt::format("{}: line {}: filter {}x{} is larger than the IFMAP {}x{}", path, line_no,
                                     fh, fw, ih, iw));
      }
      std::int64_t oh = (ih - fh + sh - 1) / sh + 1, ow = (iw - fw + sw - 1) / sw + 1;  // ceil((H - R + s) / s)
      g.m = dim("output positions (P x Q x batch)", {oh, ow, batch});
      const bool depthwise = g.name.find("DP") != std::string::npos;
      if (depthwise) {  // depthwise: one filter per channel
        g.n = nf;
        g.k = dim("K (filter height x width)", {fh, fw});
        g.repeat = ch;
      } else {
        g.n = nf;
        g.k = dim("K (filter height x width x channels)", {fh, fw, ch});
      }
      // The geometry: SCALE-Sim's IFMAP is already padded and its windows start at the first
      // row and column; where its rounded-up output size makes the last window run past the
      // far edge, that part is zero padding (pad_end, fewer than `stride` rows or columns).
      // ConvGeometry has one stride for both axes: a layer with another stride across the
      // width stays a plain GEMM.
      if (sw == sh) {
        g.type = LayerType::kConv;
        g.conv = ConvGeometry{batch, ih, iw, depthwise ? 1 : ch, fh, fw, sh, 0};
        g.conv.pad_end_h = (oh - 1) * sh + fh - ih;
        g.conv.pad_end_w = (ow - 1) * sw + fw - iw;
      }
    }
    layers.push_back(g);
  }
  if (layers.empty()) throw InputError(fmt::format("{}: no layers (a header line, then one row per layer)", path));
  layers.front().input_grad = false;
  return layers;
}

}  // namespace mfsim
