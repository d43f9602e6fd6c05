// A whole PE for synthesis (scripts/synth.sh): the output-stationary PE of mfsim_array_os.v
// on its own, with its registers. Operand registers a_r (moving east) and b_r (moving south)
// with valid bits, the MAC datapath of the PE type (mfsim_mac.v) and the AW-bit accumulator
// register. `clr` zeroes the accumulator; a product is taken only when both operands are valid.
// Not used by the co-simulation tier (the arrays hold the same registers themselves).
module mfsim_pe_reg #(parameter PE = "int8", parameter OW = 8, parameter AW = 32, parameter FMA = 0) (
  input  wire          clk,
  input  wire          clr,
  input  wire [OW-1:0] a_in,
  input  wire          a_vin,
  input  wire [OW-1:0] b_in,
  input  wire          b_vin,
  input  wire          a_fmt,
  input  wire          b_fmt,
  output reg  [OW-1:0] a_r,
  output reg           av,
  output reg  [OW-1:0] b_r,
  output reg           bv,
  output reg  [AW-1:0] acc,
  output reg           sat
);
  wire [AW-1:0] acc_next;
  wire          s;
  mfsim_mac #(.PE(PE), .OW(OW), .AW(AW), .FMA(FMA)) mac (
    .a(a_in), .b(b_in), .a_fmt(a_fmt), .b_fmt(b_fmt), .acc(acc), .acc_out(acc_next), .sat(s));
  always @(posedge clk) begin
    a_r <= a_in; av <= a_vin; b_r <= b_in; bv <= b_vin;
    if (clr) begin
      acc <= {AW{1'b0}};
      sat <= 1'b0;
    end else if (a_vin && b_vin) begin
      acc <= acc_next;
      sat <= sat | s;
    end
  end
endmodule
