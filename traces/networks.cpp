#include "traces/networks.h"

#include <fmt/format.h>

namespace mfsim {

std::vector<LayerSpec> resnet18_layers(int h, int w) {
  std::vector<LayerSpec> L;
  auto conv = [&](std::string name, int cin, int cout, int k, int stride, int pad, int hi, int wi) {
    LayerSpec s;
    s.name = std::move(name);
    s.cin = cin;
    s.cout = cout;
    s.kh = s.kw = k;
    s.stride = stride;
    s.pad = pad;
    s.h_in = hi;
    s.w_in = wi;
    L.push_back(s);
    return L.back();
  };
  LayerSpec c1 = conv("conv1", 3, 64, 7, 2, 3, h, w);
  int hh = (c1.h_out() + 2 - 3) / 2 + 1, ww = (c1.w_out() + 2 - 3) / 2 + 1;  // maxpool 3x3/2, pad 1
  int cin = 64;
  const int widths[4] = {64, 128, 256, 512};
  for (int stage = 0; stage < 4; ++stage) {
    for (int block = 0; block < 2; ++block) {
      int stride = (stage > 0 && block == 0) ? 2 : 1;
      int cout = widths[stage];
      std::string p = fmt::format("layer{}.{}", stage + 1, block);
      LayerSpec a = conv(p + ".conv1", cin, cout, 3, stride, 1, hh, ww);
      conv(p + ".conv2", cout, cout, 3, 1, 1, a.h_out(), a.w_out());
      if (stride != 1 || cin != cout) conv(p + ".downsample", cin, cout, 1, stride, 0, hh, ww);
      hh = a.h_out();
      ww = a.w_out();
      cin = cout;
    }
  }
  LayerSpec fc;
  fc.name = "fc";
  fc.conv = false;
  fc.cin = 512;
  fc.cout = 1000;
  L.push_back(fc);
  return L;
}

std::vector<TraceRecord> training_gemms(const std::vector<LayerSpec>& layers, int batch,
                                        NumFormat format) {
  struct G {
    std::int64_t m, n, k;
  };
  auto fwd = [&](const LayerSpec& l) {
    if (!l.conv) return G{batch, l.cout, l.cin};
    std::int64_t bpq = static_cast<std::int64_t>(batch) * l.h_out() * l.w_out();
    return G{bpq, l.cout, static_cast<std::int64_t>(l.kh) * l.kw * l.cin};
  };
  auto rec = [&](const LayerSpec& l, Phase p, G g) {
    TraceRecord r;
    r.layer = l.name;
    r.phase = p;
    r.shape = GemmShape{g.m, g.n, g.k};
    r.a.format = r.b.format = format;
    return r;
  };
  std::vector<TraceRecord> out;
  for (const auto& l : layers) out.push_back(rec(l, Phase::kFwd, fwd(l)));
  for (std::size_t i = layers.size(); i-- > 0;) {
    G f = fwd(layers[i]);
    if (i > 0) out.push_back(rec(layers[i], Phase::kBwdData, G{f.m, f.k, f.n}));
    out.push_back(rec(layers[i], Phase::kBwdWeight, G{f.k, f.n, f.m}));
  }
  return out;
}

}  // namespace mfsim
