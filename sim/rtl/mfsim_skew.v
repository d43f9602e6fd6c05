// The skew at an edge of a systolic array: N lanes of W bits, lane i delayed by i * step
// cycles (step <= MAXD; lane 0 passes through combinationally), each element with its valid
// bit. `clr` clears every valid bit in flight (and shifts nothing that cycle). Used for the
// west and north operands of mfsim_array_os (step 1) and for the streamed operand (step L)
// and the partial sums (step 1) of mfsim_array_stat.
module mfsim_skew #(parameter N = 4, parameter W = 8, parameter MAXD = 1) (
  input  wire           clk,
  input  wire           clr,
  input  wire [3:0]     step,
  input  wire [N*W-1:0] in_data,
  input  wire [N-1:0]   in_valid,
  output wire [N*W-1:0] out_data,
  output wire [N-1:0]   out_valid
);
  localparam integer D = (N > 1 ? N - 1 : 1) * MAXD;  // the deepest lane's registers
  reg [W-1:0] sk [0:N*D-1];
  reg         skv [0:N*D-1];

  genvar g;
  generate
    for (g = 0; g < N; g = g + 1) begin : lane
      if (g == 0) begin : direct
        assign out_data[W-1:0] = in_data[W-1:0];
        assign out_valid[0] = in_valid[0];
      end else begin : skewed
        wire [7:0] tap = g * step;
        assign out_data[g*W +: W] = sk[g * D + tap - 1];
        assign out_valid[g] = skv[g * D + tap - 1];
      end
    end
  endgenerate

  integer i, k;
  always @(posedge clk) begin
    if (clr) begin
      for (k = 0; k < N*D; k = k + 1) skv[k] <= 1'b0;
    end else begin
      for (i = 1; i < N; i = i + 1) begin
        sk[i*D] <= in_data[i*W +: W];
        skv[i*D] <= in_valid[i];
        for (k = 1; k < i*MAXD; k = k + 1) begin
          sk[i*D + k] <= sk[i*D + k - 1];
          skv[i*D + k] <= skv[i*D + k - 1];
        end
      end
    end
  end
endmodule
