// Output-stationary R x C systolic array with mfsim's fold schedule (docs/cycle-semantics.md,
// sim/array_core.h): a fold of r x c PEs (r <= R, c <= C) and stream length T takes
// 2r + c + T*L - 2 cycles (plus r when it first preloads partial sums, cfg_psum).
//
// Protocol. `start` (one cycle, with cfg_*) clears the array; the fold's cycle 0 is the next
// cycle. Each cycle the array asks for at most one operand slice: feed_valid/feed_idx = k asks
// west_data[i] = A[m0 + i][k0 + k] (i < r) and north_data[j] = B[k0 + k][n0 + j] (j < c), read
// combinationally (an SRAM read port); the array skews lane i (j) by i (j) cycles itself.
// psum_valid/psum_idx = row asks psum_data[j] = C[m0 + row][n0 + j] (preload of partial
// sums). Results leave the bottom active row (r - 1), one row per cycle, rows r-1 .. 0:
// out_valid[j] and out_data[j]. `done` is high in the cycle the fold's last result leaves;
// `start` may be raised in that same cycle (back-to-back folds).
//
// The MAC latency L (cfg_l) paces the stream: an element every L cycles, as in the C++ model;
// the drain starts L - 1 cycles after the last product (at PE (r-1, c-1)).
module mfsim_array_os #(
  parameter R = 4, parameter C = 4, parameter PE = "int8", parameter OW = 8, parameter AW = 32,
  parameter FMA = 0
) (
  input  wire            clk,
  input  wire            start,
  input  wire [7:0]      cfg_r,
  input  wire [7:0]      cfg_c,
  input  wire [31:0]     cfg_t,
  input  wire [3:0]      cfg_l,
  input  wire            cfg_psum,
  input  wire            a_fmt,
  input  wire            b_fmt,
  output wire            feed_valid,
  output wire [31:0]     feed_idx,
  input  wire [R*OW-1:0] west_data,
  input  wire [C*OW-1:0] north_data,
  output wire            psum_valid,
  output wire [7:0]      psum_idx,
  input  wire [C*AW-1:0] psum_data,
  output wire [C-1:0]    out_valid,
  output wire [C*AW-1:0] out_data,
  output wire            done,
  output reg             sat_any
);
  localparam [2:0] IDLE = 3'd0, PRE = 3'd1, COMP = 3'd2, WAIT = 3'd3, DRAIN = 3'd4;
  reg [2:0]  phase;
  reg [7:0]  r, c, cnt8;
  reg [31:0] t, kfeed, last_pairs;
  reg [3:0]  l, ph, wait_left;
  reg        fa, fb;

  // Sequencer outputs.
  assign feed_valid = phase == COMP && ph == 4'd0 && kfeed < t;
  assign feed_idx = kfeed;
  assign psum_valid = phase == PRE;
  assign psum_idx = r - 8'd1 - cnt8;

  // Registers of the PEs: operands moving east (a) and south (b) with valid bits, accumulators.
  reg [OW-1:0] a_r [0:R*C-1];
  reg [OW-1:0] b_r [0:R*C-1];
  reg          av [0:R*C-1];
  reg          bv [0:R*C-1];
  reg [AW-1:0] acc [0:R*C-1];
  // Skew: lane i of the west edge is delayed by i cycles, lane j of the north edge by j.
  wire [R-1:0]    w_req;
  wire [C-1:0]    n_req;
  wire [R*OW-1:0] w_sk;
  wire [C*OW-1:0] n_sk;
  wire [R-1:0]    w_skv;
  wire [C-1:0]    n_skv;
  mfsim_skew #(.N(R), .W(OW), .MAXD(1)) west_skew (
    .clk(clk), .clr(start), .step(4'd1), .in_data(west_data), .in_valid(w_req), .out_data(w_sk), .out_valid(w_skv));
  mfsim_skew #(.N(C), .W(OW), .MAXD(1)) north_skew (
    .clk(clk), .clr(start), .step(4'd1), .in_data(north_data), .in_valid(n_req), .out_data(n_sk), .out_valid(n_skv));

  wire [OW-1:0] w_in [0:R-1];
  wire          w_inv [0:R-1];
  wire [OW-1:0] n_in [0:C-1];
  wire          n_inv [0:C-1];
  wire [OW-1:0] na [0:R*C-1];
  wire [OW-1:0] nb [0:R*C-1];
  wire          nav [0:R*C-1];
  wire          nbv [0:R*C-1];
  wire [AW-1:0] mac_out [0:R*C-1];
  wire          mac_sat [0:R*C-1];

  genvar gi, gj;
  generate
    for (gi = 0; gi < R; gi = gi + 1) begin : west  // lanes beyond the fold carry no valid data
      assign w_req[gi] = feed_valid && gi < r;
      assign w_in[gi] = w_sk[gi*OW +: OW];
      assign w_inv[gi] = w_skv[gi];
    end
    for (gj = 0; gj < C; gj = gj + 1) begin : north
      assign n_req[gj] = feed_valid && gj < c;
      assign n_in[gj] = n_sk[gj*OW +: OW];
      assign n_inv[gj] = n_skv[gj];
    end
    for (gi = 0; gi < R; gi = gi + 1) begin : row
      for (gj = 0; gj < C; gj = gj + 1) begin : col
        localparam integer K = gi * C + gj;
        if (gj == 0) begin : w
          assign na[K] = w_in[gi];
          assign nav[K] = w_inv[gi];
        end else begin : e
          assign na[K] = a_r[K - 1];
          assign nav[K] = av[K - 1];
        end
        if (gi == 0) begin : n
          assign nb[K] = n_in[gj];
          assign nbv[K] = n_inv[gj];
        end else begin : s
          assign nb[K] = b_r[K - C];
          assign nbv[K] = bv[K - C];
        end
        mfsim_mac #(.PE(PE), .OW(OW), .AW(AW), .FMA(FMA)) pe (
          .a(na[K]), .b(nb[K]), .a_fmt(fa), .b_fmt(fb), .acc(acc[K]), .acc_out(mac_out[K]), .sat(mac_sat[K]));
      end
    end
  endgenerate

  // The last PE of the fold, (r-1, c-1), tells when the last product is done.
  // (Clamped to the array: before the first fold r = c = 0 and the raw index is out of range;
  // last_pair and the outputs are used only in COMP and DRAIN, where r, c >= 1.)
  wire [15:0] last_raw = ({8'd0, r} - 16'd1) * C + {8'd0, c} - 16'd1;
  wire [15:0] last_k = last_raw < R*C ? last_raw : 16'd0;
  wire        last_pair = phase == COMP && nav[last_k] && nbv[last_k];

  generate
    for (gj = 0; gj < C; gj = gj + 1) begin : out
      wire [15:0] bottom_raw = ({8'd0, r} - 16'd1) * C + gj;
      wire [15:0] bottom = bottom_raw < R*C ? bottom_raw : 16'd0;
      assign out_valid[gj] = phase == DRAIN && gj < c;
      assign out_data[gj*AW +: AW] = acc[bottom];
    end
  endgenerate
  assign done = phase == DRAIN && cnt8 == r - 8'd1;

  integer k;
  always @(posedge clk) begin
    if (start) begin
      r <= cfg_r; c <= cfg_c; t <= cfg_t; l <= cfg_l; fa <= a_fmt; fb <= b_fmt;
      phase <= cfg_psum ? PRE : COMP;
      cnt8 <= 8'd0; kfeed <= 32'd0; ph <= 4'd0; last_pairs <= 32'd0; wait_left <= 4'd0;
      sat_any <= 1'b0;
      for (k = 0; k < R*C; k = k + 1) begin
        av[k] <= 1'b0; bv[k] <= 1'b0; acc[k] <= {AW{1'b0}};
      end
    end else begin
      case (phase)
        PRE: begin  // partial sums shift down into the accumulators, one row a cycle
          for (k = 0; k < R*C; k = k + 1)
            acc[k] <= k < C ? psum_data[(k % C)*AW +: AW] : acc[k - C];
          cnt8 <= cnt8 + 8'd1;
          if (cnt8 == r - 8'd1) begin phase <= COMP; cnt8 <= 8'd0; end
        end
        COMP, WAIT: begin
          for (k = 0; k < R*C; k = k + 1) begin
            a_r[k] <= na[k]; av[k] <= nav[k];
            b_r[k] <= nb[k]; bv[k] <= nbv[k];
            if (phase == COMP && nav[k] && nbv[k]) begin
              acc[k] <= mac_out[k];
              if (mac_sat[k]) sat_any <= 1'b1;
            end
          end
          if (phase == COMP) begin
            ph <= ph == l - 4'd1 ? 4'd0 : ph + 4'd1;
            if (feed_valid) kfeed <= kfeed + 32'd1;
            if (last_pair) begin
              last_pairs <= last_pairs + 32'd1;
              if (last_pairs == t - 32'd1) begin
                if (l > 4'd1) begin phase <= WAIT; wait_left <= l - 4'd1; end
                else phase <= DRAIN;
              end
            end
          end else begin
            wait_left <= wait_left - 4'd1;
            if (wait_left == 4'd1) phase <= DRAIN;
          end
        end
        DRAIN: begin  // the bottom row leaves; the others shift down; row 0 clears
          for (k = 0; k < R*C; k = k + 1) acc[k] <= k < C ? {AW{1'b0}} : acc[k - C];
          cnt8 <= cnt8 + 8'd1;
          if (done) phase <= IDLE;
        end
        default: ;
      endcase
    end
  end
endmodule
