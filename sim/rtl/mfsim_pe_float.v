// Float PEs of mfsim (sim/pe/fp32.cpp, bf16.cpp, fp8.cpp): binary32 accumulation with
// round-to-nearest-even, gradual underflow (subnormals), overflow to infinity, as the C++
// FloatMacPolicy computes on x86-64 (SSE, -ffp-contract=off):
//   FP32, FMA = 0: acc_out = fl(acc + fl(a * b))     (pe.fp32_fma = false, the default)
//   FP32, FMA = 1: acc_out = fl(a * b + acc)         (one rounding)
//   BF16: fl(a * b) of two bfloat16 operands (exact unless it leaves binary32's range), then
//         fl(acc + product)
//   FP8:  operands are E4M3 or E5M2 codes (a_fmt/b_fmt = 1: E5M2, set per GEMM operand); the
//         product is exact in binary32; fl(acc + product)
// Everything is one exact-sum-then-round unit (mfsim_fp_fma): a multiply is fma(a, b, -0), an
// add fma(x, 1.0, y). NaN results: an invalid operation (inf - inf, 0 * inf) gives x86's
// default NaN 0xFFC00000; a NaN accumulator propagates quieted. (Finite operands can reach
// infinities and NaNs only through the accumulator; NaN operand payloads are not modelled.)

// Decodes a float of EW exponent and MW mantissa bits (IEEE layout, all-ones exponent =
// infinity/NaN) into sign, integer significand and the exponent of its LSB (value = sig * 2^e).
module mfsim_fp_decode #(parameter EW = 8, parameter MW = 23) (
  input  wire [EW+MW:0]    x,
  output wire              s,
  output wire [23:0]       sig,
  output wire signed [11:0] e,
  output wire              zero,
  output wire              inf,
  output wire              nan
);
  localparam integer BIAS = (1 << (EW - 1)) - 1;
  wire [EW-1:0] ef = x[EW+MW-1:MW];
  wire [MW-1:0] f = x[MW-1:0];
  assign s = x[EW+MW];
  assign sig = {{(23 - MW){1'b0}}, ef != 0, f};
  assign e = (ef == 0 ? 12'sd1 : $signed({{(12 - EW){1'b0}}, ef})) - BIAS - MW;
  assign zero = ef == 0 && f == 0;
  assign inf = &ef && f == 0;
  assign nan = &ef && f != 0;
endmodule

// r = round_binary32(x * y + z), one rounding (ties to even). x: (XEW, XMW), y: (YEW, YMW)
// floats of at most 24-bit significands; z: binary32.
module mfsim_fp_fma #(parameter XEW = 8, parameter XMW = 23, parameter YEW = 8, parameter YMW = 23) (
  input  wire [XEW+XMW:0] x,
  input  wire [YEW+YMW:0] y,
  input  wire [31:0]      z,
  output reg  [31:0]      r
);
  wire xs, ys, zs, xz, yz, zz, xi, yi, zi, xn, yn, zn;
  wire [23:0] xm, ym, zm;
  wire signed [11:0] xe, ye, ze;
  mfsim_fp_decode #(.EW(XEW), .MW(XMW)) dx (.x(x), .s(xs), .sig(xm), .e(xe), .zero(xz), .inf(xi), .nan(xn));
  mfsim_fp_decode #(.EW(YEW), .MW(YMW)) dy (.x(y), .s(ys), .sig(ym), .e(ye), .zero(yz), .inf(yi), .nan(yn));
  mfsim_fp_decode #(.EW(8), .MW(23)) dz (.x(z), .s(zs), .sig(zm), .e(ze), .zero(zz), .inf(zi), .nan(zn));

  wire sp = xs ^ ys;
  wire [47:0] prod = xm * ym;              // exact
  wire signed [11:0] ep = xe + ye;         // exponent of prod's LSB

  // Normalise both terms to 48-bit significands with the MSB at bit 47; t = exponent of the MSB.
  reg [47:0] pn, zn48, hi_term, lo_term;
  reg signed [11:0] tp, tz, tb, d, e0, lsbpos, lsbcap;
  reg [5:0] lzp, lzz;
  reg [99:0] bf, sf;
  reg [100:0] sum;
  reg [127:0] s128, kept_full, mask;
  reg sb, ss, pbig, rb, st, sign;
  reg [6:0] msb;
  reg [24:0] kept;
  reg signed [35:0] bits;
  integer i;
  always @* begin
    mask = 128'd0;
    lzp = 6'd0;
    for (i = 0; i < 48; i = i + 1) if (prod[i]) lzp = 6'd47 - i[5:0];
    lzz = 6'd0;
    for (i = 24; i < 48; i = i + 1) if (zm[i - 24]) lzz = 6'd47 - i[5:0];
    pn = prod << lzp;
    zn48 = {zm, 24'd0} << lzz;
    tp = ep + 12'sd47 - $signed({6'd0, lzp});
    tz = ze + 12'sd23 - $signed({6'd0, lzz});
    pbig = zm == 0 || (prod != 0 && (tp > tz || (tp == tz && pn >= zn48)));
    hi_term = pbig ? pn : zn48;
    lo_term = pbig ? (zm == 0 ? 48'd0 : zn48) : (prod == 0 ? 48'd0 : pn);
    sb = pbig ? sp : zs;
    ss = pbig ? zs : sp;
    tb = pbig ? tp : tz;
    d = pbig ? tp - tz : tz - tp;
    // Align in a 100-bit field (hi_term at bits 99..52). A lo_term term more than 50 bits below hi_term's
    // MSB lies below hi_term's LSB: it is replaced by a 1 at bit 0, which lies in the same open
    // interval between hi_term's neighbours and so rounds identically.
    bf = {hi_term, 52'd0};
    if (lo_term == 0) sf = 100'd0;
    else if (d > 12'sd50) sf = 100'd1;
    else sf = {lo_term, 52'd0} >> d;
    sum = sb == ss ? {1'b0, bf} + {1'b0, sf} : {1'b0, bf} - {1'b0, sf};
    e0 = tb - 12'sd99;
    sign = sb;
    msb = 7'd0;
    for (i = 0; i < 101; i = i + 1) if (sum[i]) msb = i[6:0];
    // Keep 24 bits, or fewer where the result is subnormal (LSB at 2^-149).
    lsbpos = $signed({5'd0, msb}) - 12'sd23;
    if (lsbpos < -12'sd149 - e0) lsbpos = -12'sd149 - e0;
    // Shifts beyond the 128-bit field leave nothing: kept = 0, round and sticky bits 0.
    lsbcap = lsbpos > 12'sd127 ? 12'sd127 : lsbpos;
    s128 = {27'd0, sum};
    if (lsbcap <= 0) begin
      kept_full = s128 << (-lsbcap);
      rb = 1'b0;
      st = 1'b0;
    end else begin
      kept_full = s128 >> lsbcap;
      rb = s128[lsbcap - 1];
      mask = (128'd1 << (lsbcap - 1)) - 128'd1;
      st = (s128 & mask) != 0;
    end
    kept = kept_full[24:0] + {24'd0, rb && (st || kept_full[0])};
    bits = ($signed({{24{lsbpos[11]}}, lsbpos}) + $signed({{24{e0[11]}}, e0}) + 36'sd149) * 36'sd8388608
           + $signed({11'd0, kept});
    if (zn) r = z | 32'h0040_0000;
    else if (xn || yn) r = 32'hFFC0_0000;
    else if (xi || yi) begin
      if (xz || yz || (zi && zs != sp)) r = 32'hFFC0_0000;
      else r = {sp, 31'h7F80_0000};
    end else if (zi) r = z;
    else if (prod == 0 && zm == 0) r = {sp & zs, 31'd0};
    else if (sum == 0) r = 32'd0;
    else if (bits >= 36'sh7F80_0000) r = {sign, 31'h7F80_0000};
    else r = {sign, bits[30:0]};
  end
endmodule

// FP32 PE: multiply then add (FMA = 0) or fused (FMA = 1).
module mfsim_pe_fp32 #(parameter FMA = 0) (
  input  wire [31:0] a,
  input  wire [31:0] b,
  input  wire [31:0] acc,
  output wire [31:0] acc_out
);
  generate
    if (FMA != 0) begin : fused
      mfsim_fp_fma fma (.x(a), .y(b), .z(acc), .r(acc_out));
    end else begin : mul_add
      wire [31:0] p;
      mfsim_fp_fma mul (.x(a), .y(b), .z(32'h8000_0000), .r(p));
      mfsim_fp_fma add (.x(p), .y(32'h3F80_0000), .z(acc), .r(acc_out));
    end
  endgenerate
endmodule

// BF16 PE: bfloat16 multiply (rounded to binary32 only outside its range), FP32 accumulate.
module mfsim_pe_bf16 (
  input  wire [15:0] a,
  input  wire [15:0] b,
  input  wire [31:0] acc,
  output wire [31:0] acc_out
);
  wire [31:0] p;
  mfsim_fp_fma #(.XEW(8), .XMW(7), .YEW(8), .YMW(7)) mul (.x(a), .y(b), .z(32'h8000_0000), .r(p));
  mfsim_fp_fma add (.x(p), .y(32'h3F80_0000), .z(acc), .r(acc_out));
endmodule

// An FP8 code (E4M3, or E5M2 when e5m2 = 1) as the E5M3 value it equals exactly (E4M3's NaN
// S.1111.111 becomes an E5M3 NaN; E5M2's infinities and NaNs stay what they are).
module mfsim_fp8_to_e5m3 (
  input  wire [7:0] code,
  input  wire       e5m2,
  output reg  [8:0] x
);
  reg [3:0] e4;
  reg [2:0] m3;
  reg [4:0] e;
  reg [3:0] sh;
  integer i;
  always @* begin
    e4 = code[6:3];
    m3 = code[2:0];
    e = 5'd0;
    sh = 4'd0;
    if (e5m2) begin
      x = {code, 1'b0};
    end else begin
      e4 = code[6:3];
      m3 = code[2:0];
      if (e4 == 4'hF && m3 == 3'h7) x = {code[7], 5'h1F, 3'h4};
      else if (e4 != 0) x = {code[7], {1'b0, e4} + 5'd8, m3};
      else if (m3 == 0) x = {code[7], 8'd0};
      else begin
        // Subnormal E4M3 m * 2^-9 is a normal E5M3 number: shift the mantissa up.
        sh = 4'd0;
        for (i = 0; i < 3; i = i + 1) if (m3[i]) sh = 4'd3 - i[3:0];  // leading zeros + 1
        e = 5'd9 - {1'b0, sh};   // 2^-6 * (m3 / 8) = 1.f * 2^(-6 - sh): biased 15 - 6 - sh
        x = {code[7], e, (m3 << sh)};
      end
    end
  end
endmodule

// FP8 PE: hybrid E4M3 / E5M2 operands, exact product, FP32 accumulate.
module mfsim_pe_fp8 (
  input  wire [7:0]  a,
  input  wire [7:0]  b,
  input  wire        a_e5m2,
  input  wire        b_e5m2,
  input  wire [31:0] acc,
  output wire [31:0] acc_out
);
  wire [8:0] xa, xb;
  wire [31:0] p;
  mfsim_fp8_to_e5m3 ca (.code(a), .e5m2(a_e5m2), .x(xa));
  mfsim_fp8_to_e5m3 cb (.code(b), .e5m2(b_e5m2), .x(xb));
  mfsim_fp_fma #(.XEW(5), .XMW(3), .YEW(5), .YMW(3)) mul (.x(xa), .y(xb), .z(32'h8000_0000), .r(p));
  mfsim_fp_fma add (.x(p), .y(32'h3F80_0000), .z(acc), .r(acc_out));
endmodule
