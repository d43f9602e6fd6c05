// PoT4 format, packing and the deterministic quantizer (models/pot4.h), INT8 (models/int8.h).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "models/int8.h"
#include "models/mfmac.h"
#include "models/pot4.h"

using namespace mfsim;

TEST_CASE("pot4 codes decode to sign * 2^(E + m - 7), zero for m = 0", "[unit]") {
  for (int e : {-120, -9, 0, 3, 127}) {
    for (unsigned code = 0; code < 16; ++code) {
      auto c = static_cast<Pot4Code>(code);
      unsigned m = code & 7u;
      double want = m == 0 ? 0.0 : std::pow(2.0, e + static_cast<int>(m) - 7);
      if ((code & 8u) != 0) want = -want;
      CHECK(pot4_decode(c, e) == want);
      CHECK(pot4_decode_float(c, e) == static_cast<float>(want));
      CHECK(static_cast<double>(pot4_int(c)) * std::pow(2.0, e - 6) == want);
    }
  }
  CHECK(pot4_encode(false, 0) == 0);
  CHECK(pot4_encode(true, 0) == 0);  // canonical zero
  CHECK(pot4_encode(true, 7) == 0xF);
  CHECK(pot4_encode(false, 1) == 0x1);
}

TEST_CASE("pot4 pack/unpack round-trips even and odd counts, low nibble first", "[unit]") {
  for (std::size_t n : {0u, 1u, 2u, 7u, 16u, 33u}) {
    std::vector<Pot4Code> codes(n);
    for (std::size_t i = 0; i < n; ++i) codes[i] = static_cast<Pot4Code>((i * 7 + 3) % 16);
    std::vector<std::uint8_t> packed(pot4_packed_bytes(n), 0xAA);
    pot4_pack(codes.data(), n, packed.data());
    REQUIRE(packed.size() == (n + 1) / 2);
    if (n >= 2) CHECK(packed[0] == static_cast<std::uint8_t>(codes[0] | (codes[1] << 4)));
    if (n % 2 == 1) CHECK((packed.back() >> 4) == 0);
    std::vector<Pot4Code> back(n, 0xFF);
    pot4_unpack(packed.data(), n, back.data());
    CHECK(back == codes);
  }
}

TEST_CASE("pot4 quantizer: rounding threshold, clipping and underflow", "[unit]") {
  const int e = 0;  // levels 2^-6 .. 2^0
  const double t = std::sqrt(2.0);
  // Exact levels are kept.
  for (int m = 1; m <= 7; ++m) {
    CHECK(pot4_quantize(std::ldexp(1.0, m - 7), e, t) == pot4_encode(false, static_cast<unsigned>(m)));
    CHECK(pot4_quantize(-std::ldexp(1.0, m - 7), e, t) == pot4_encode(true, static_cast<unsigned>(m)));
  }
  // Between 2^-3 and 2^-2: up iff x / 2^-3 >= t.
  CHECK(pot4_mag(pot4_quantize(0.125 * 1.41, e, t)) == 4);
  CHECK(pot4_mag(pot4_quantize(0.125 * 1.4143, e, t)) == 5);
  CHECK(pot4_mag(pot4_quantize(0.125 * 1.49, e, 1.5)) == 4);
  CHECK(pot4_mag(pot4_quantize(0.125 * 1.5, e, 1.5)) == 5);
  // Above 2^E clips to 2^E; infinities too.
  CHECK(pot4_quantize(3.0, e, t) == pot4_encode(false, 7));
  CHECK(pot4_quantize(-1e30, e, t) == pot4_encode(true, 7));
  CHECK(pot4_quantize(-std::numeric_limits<double>::infinity(), e, t) == pot4_encode(true, 7));
  // Below the smallest level 2^-6: 2^-7 stands for zero.
  CHECK(pot4_quantize(std::ldexp(1.0, -7) * 1.5, e, t) == pot4_encode(false, 1));
  CHECK(pot4_quantize(std::ldexp(1.0, -7) * 1.3, e, t) == 0);
  CHECK(pot4_quantize(std::ldexp(1.0, -8), e, t) == 0);
  CHECK(pot4_quantize(0.0, e, t) == 0);
  CHECK(pot4_quantize(-0.0, e, t) == 0);
  CHECK(pot4_quantize(std::nan(""), e, t) == 0);
}

TEST_CASE("pot4 scale rules: the maximum maps to exactly 2^E", "[unit]") {
  const double t = std::sqrt(2.0);
  for (double mx : {1e-7, 0.003, 0.7, 1.0, 1.3, 1.42, 1.99, 2.0, 5.5, 1e6}) {
    int e = pot4_scale_exp_deterministic(mx, t);
    CHECK(pot4_quantize(mx, e, t) == pot4_encode(false, 7));
    CHECK(std::ldexp(t, e - 1) <= mx);  // not one level too high
    CHECK(mx < std::ldexp(t, e));       // not one level too low
    int ec = pot4_scale_exp_ceil(mx);
    CHECK(std::ldexp(1.0, ec) >= mx);
    CHECK(std::ldexp(1.0, ec - 1) < mx);
  }
  CHECK(pot4_scale_exp_deterministic(1.0, t) == 0);
  CHECK(pot4_scale_exp_deterministic(1.42, t) == 1);
  CHECK(pot4_scale_exp_deterministic(1.41, t) == 0);
  CHECK(pot4_scale_exp_ceil(1.0) == 0);
  CHECK(pot4_scale_exp_ceil(1.0000001) == 1);
  CHECK(pot4_scale_exp_ceil(0.0) == 0);
}

TEST_CASE("int8 saturates symmetrically to [-127, 127] and rounds ties to even", "[unit]") {
  CHECK(int8_saturate(127) == 127);
  CHECK(int8_saturate(128) == 127);
  CHECK(int8_saturate(100000) == 127);
  CHECK(int8_saturate(-127) == -127);
  CHECK(int8_saturate(-128) == -127);
  CHECK(int8_saturate(-100000) == -127);
  CHECK(int8_saturate(0) == 0);
  const float s = 0.5f;
  CHECK(int8_quantize_nearest(63.5f * s, s) == 64);  // tie -> even
  CHECK(int8_quantize_nearest(62.5f * s, s) == 62);
  CHECK(int8_quantize_nearest(-62.5f * s, s) == -62);
  CHECK(int8_quantize_nearest(126.6f * s, s) == 127);
  CHECK(int8_quantize_nearest(127.4f * s, s) == 127);
  CHECK(int8_quantize_nearest(1000.0f, s) == 127);
  CHECK(int8_quantize_nearest(-1000.0f, s) == -127);
  CHECK(int8_quantize_nearest(std::numeric_limits<float>::infinity(), s) == 127);
  CHECK(int8_quantize_nearest(std::nanf(""), s) == 0);
  float scale = int8_scale_for_max(2.54f);
  CHECK(int8_quantize_nearest(2.54f, scale) == 127);
  CHECK(int8_quantize_nearest(-2.54f, scale) == -127);
  CHECK(int8_scale_for_max(0.0f) == 1.0f);
}

TEST_CASE("pot4 values are exact in int8 and fp32", "[unit]") {
  for (unsigned code = 0; code < 16; ++code) {
    int v = pot4_int(static_cast<Pot4Code>(code));
    CHECK(v >= -64);
    CHECK(v <= 64);
    CHECK(static_cast<int>(static_cast<std::int8_t>(v)) == v);
    CHECK(static_cast<double>(static_cast<float>(v)) == static_cast<double>(v));
  }
}
