// Integer PEs of mfsim (sim/pe/mfmac.cpp, int8.cpp, int4.cpp, shift.cpp, shift2.cpp): one combinational MAC step
// acc_out = acc + product, saturated to the AW-bit two's-complement range (the C++ accumulator,
// models/accumulator.h: `saturate` clamps; `error` stops the C++ run, the RTL raises `sat`).
// The array (mfsim_array_os.v, mfsim_array_stat.v) calls a PE only for a pair of valid operands.

// Saturating add of a signed PW-bit term to an AW-bit accumulator (PW <= AW).
module mfsim_sat_add #(parameter AW = 32, parameter PW = 16) (
  input  wire [AW-1:0] acc,
  input  wire [PW-1:0] term,
  output wire [AW-1:0] sum,
  output wire          sat
);
  wire [AW:0] wide = {acc[AW-1], acc} + {{(AW + 1 - PW){term[PW-1]}}, term};
  assign sat = wide[AW] != wide[AW-1];
  // Overflow goes the way of the term's sign: clamp to max (positive) or min (negative).
  assign sum = !sat ? wide[AW-1:0] : (term[PW-1] ? {1'b1, {(AW-1){1'b0}}} : {1'b0, {(AW-1){1'b1}}});
endmodule

// MF-MAC: PoT4 codes {sign, m[2:0]}; m = 0 is zero (gated: the accumulator is untouched).
// Product: sign XOR, 3-bit + 3-bit exponent add, decode to the one-hot term 2^(ma+mb-2).
module mfsim_pe_mfmac #(parameter AW = 32) (
  input  wire [3:0]    a,
  input  wire [3:0]    b,
  input  wire [AW-1:0] acc,
  output wire [AW-1:0] acc_out,
  output wire          sat
);
  wire        gated = a[2:0] == 3'd0 || b[2:0] == 3'd0;
  wire        neg = a[3] ^ b[3];
  wire [3:0]  p = {1'b0, a[2:0]} + {1'b0, b[2:0]};   // 2..14
  wire [13:0] onehot = 14'd1 << (p - 4'd2);           // 1 .. 4096
  wire [13:0] term = neg ? -onehot : onehot;
  wire [AW-1:0] sum;
  wire s;
  mfsim_sat_add #(.AW(AW), .PW(14)) add (.acc(acc), .term(term), .sum(sum), .sat(s));
  assign acc_out = gated ? acc : sum;
  assign sat = !gated && s;
endmodule

// Signed OW x OW multiply, integer accumulate (INT8: OW = 8, INT4: OW = 4).
module mfsim_pe_int #(parameter OW = 8, parameter AW = 32) (
  input  wire [OW-1:0] a,
  input  wire [OW-1:0] b,
  input  wire [AW-1:0] acc,
  output wire [AW-1:0] acc_out,
  output wire          sat
);
  wire signed [2*OW-1:0] prod = $signed(a) * $signed(b);
  mfsim_sat_add #(.AW(AW), .PW(2 * OW)) add (.acc(acc), .term(prod), .sum(acc_out), .sat(sat));
endmodule

module mfsim_pe_int8 #(parameter AW = 32) (
  input wire [7:0] a, input wire [7:0] b, input wire [AW-1:0] acc,
  output wire [AW-1:0] acc_out, output wire sat
);
  mfsim_pe_int #(.OW(8), .AW(AW)) pe (.a(a), .b(b), .acc(acc), .acc_out(acc_out), .sat(sat));
endmodule

module mfsim_pe_int4 #(parameter AW = 32) (
  input wire [3:0] a, input wire [3:0] b, input wire [AW-1:0] acc,
  output wire [AW-1:0] acc_out, output wire sat
);
  mfsim_pe_int #(.OW(4), .AW(AW)) pe (.a(a), .b(b), .acc(acc), .acc_out(acc_out), .sat(sat));
endmodule

// Shift-add (sim/pe/shift.cpp): INT8 x PoT4 without a multiplier. Each operand register is
// 9 bits, {tag, data}: tag 0, data an 8-bit integer (the shifter's input); tag 1, data[3:0] a
// PoT4 code {sign, m} (the shift amount m - 1 and the sign). Whichever operand carries the code,
// the product is sign XOR and |x| << (m - 1); m = 0 is zero. |x| <= 128, so terms fit 15 bits.
module mfsim_pe_shift #(parameter AW = 32) (
  input  wire [8:0]    a,
  input  wire [8:0]    b,
  input  wire [AW-1:0] acc,
  output wire [AW-1:0] acc_out,
  output wire          sat
);
  wire [7:0]  x = a[8] ? b[7:0] : a[7:0];  // the integer
  wire [3:0]  p = a[8] ? a[3:0] : b[3:0];  // the code
  wire [7:0]  mag = x[7] ? 8'd0 - x : x;   // |x|, 0..128 (unsigned)
  wire [14:0] shifted = {7'd0, mag} << (p[2:0] - 3'd1);
  wire        neg = x[7] ^ p[3];
  wire [15:0] term = p[2:0] == 3'd0 ? 16'd0 : neg ? 16'd0 - {1'b0, shifted} : {1'b0, shifted};
  mfsim_sat_add #(.AW(AW), .PW(16)) add (.acc(acc), .term(term), .sum(acc_out), .sat(sat));
endmodule

// Two-term shift-add (sim/pe/shift2.cpp): INT8, PoT4 and two-term (models/apot.h) operands, every
// product a sign XOR and one barrel shift and one addition per term, no multiplier. Registers
// are 9 bits, {tag, data}: tag 0, data an 8-bit integer (an INT8 value, or the integer image of
// a PoT4 or two-term value); tag 1, data[6:0] a code {sign, hi[2:0], lo[2:0]}: two PoT4
// magnitude codes (0: no term; m: the term 2^(m-1)), lo = 0 for a PoT4 code. The product is
// +-(|x| << (hi - 1) + |x| << (lo - 1)); |x| <= 128 and a code's magnitude <= 96, so the sum
// fits 14 bits and the signed term 16.
module mfsim_pe_shift2 #(parameter AW = 32) (
  input  wire [8:0]    a,
  input  wire [8:0]    b,
  input  wire [AW-1:0] acc,
  output wire [AW-1:0] acc_out,
  output wire          sat
);
  wire [7:0]  x = a[8] ? b[7:0] : a[7:0];  // the integer
  wire [6:0]  p = a[8] ? a[6:0] : b[6:0];  // the code
  wire [7:0]  mag = x[7] ? 8'd0 - x : x;   // |x|, 0..128 (unsigned)
  wire [14:0] t_hi = p[5:3] == 3'd0 ? 15'd0 : {7'd0, mag} << (p[5:3] - 3'd1);
  wire [14:0] t_lo = p[2:0] == 3'd0 ? 15'd0 : {7'd0, mag} << (p[2:0] - 3'd1);
  wire [15:0] sum = {1'b0, t_hi} + {1'b0, t_lo};
  wire        neg = x[7] ^ p[6];
  wire [15:0] term = neg ? 16'd0 - sum : sum;
  mfsim_sat_add #(.AW(AW), .PW(16)) add (.acc(acc), .term(term), .sum(acc_out), .sat(sat));
endmodule
