#include "models/pot4.h"

#include <cmath>

namespace mfsim {

double pot4_decode(Pot4Code c, int scale_exp) {
  if (pot4_is_zero(c)) return 0.0;
  double mag = std::ldexp(1.0, scale_exp + static_cast<int>(pot4_mag(c)) - 7);
  return pot4_negative(c) ? -mag : mag;
}

float pot4_decode_float(Pot4Code c, int scale_exp) {
  if (pot4_is_zero(c)) return 0.0f;
  float mag = std::ldexp(1.0f, scale_exp + static_cast<int>(pot4_mag(c)) - 7);
  return pot4_negative(c) ? -mag : mag;
}

void pot4_pack(const Pot4Code* codes, std::size_t count, std::uint8_t* packed) {
  std::size_t pairs = count / 2;
  for (std::size_t i = 0; i < pairs; ++i) {
    packed[i] = static_cast<std::uint8_t>((codes[2 * i] & 0xFu) | ((codes[2 * i + 1] & 0xFu) << 4));
  }
  if (count % 2 != 0) packed[pairs] = static_cast<std::uint8_t>(codes[count - 1] & 0xFu);
}

void pot4_unpack(const std::uint8_t* packed, std::size_t count, Pot4Code* codes) {
  std::size_t pairs = count / 2;
  for (std::size_t i = 0; i < pairs; ++i) {
    codes[2 * i] = packed[i] & 0xFu;
    codes[2 * i + 1] = static_cast<Pot4Code>(packed[i] >> 4);
  }
  if (count % 2 != 0) codes[count - 1] = packed[pairs] & 0xFu;
}

Pot4Code pot4_quantize(double x, int scale_exp, double threshold) {
  if (x == 0.0 || std::isnan(x)) return 0;
  bool negative = std::signbit(x);
  if (std::isinf(x)) return pot4_encode(negative, kPot4MaxMag);
  int e = 0;
  double f = std::frexp(std::fabs(x), &e);  // |x| = f * 2^e, f in [0.5, 1)
  int k = e - 1;                                   // |x| in [2^k, 2^(k+1))
  int level = (f >= std::ldexp(threshold, -1)) ? k + 1 : k;  // ratio 2f >= t  <=>  f >= t/2
  int mag = level - scale_exp + 7;
  if (mag > static_cast<int>(kPot4MaxMag)) mag = kPot4MaxMag;
  if (mag < 1) return 0;
  return pot4_encode(negative, static_cast<unsigned>(mag));
}

int pot4_scale_exp_deterministic(double max_abs, double threshold) {
  if (!(max_abs > 0.0)) return 0;
  int e = 0;
  double f = std::frexp(max_abs, &e);
  return (f >= std::ldexp(threshold, -1)) ? e : e - 1;
}

int pot4_scale_exp_ceil(double max_abs) {
  if (!(max_abs > 0.0)) return 0;
  int e = 0;
  double f = std::frexp(max_abs, &e);  // max = f 2^e, f in [0.5, 1)
  return f == 0.5 ? e - 1 : e;
}

}  // namespace mfsim
