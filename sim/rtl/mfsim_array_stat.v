// Weight- or input-stationary R x C systolic array with mfsim's fold schedule
// (docs/cycle-semantics.md, sim/array_core.h). WS and IS are the same hardware: WS preloads
// B (K x N tile) and streams A's rows, IS preloads A^T and streams B's columns. A fold of
// r x c PEs and stream length T takes r + r*L + c + T - 2 cycles.
//
// Protocol. `start` (one cycle, with cfg_*) clears the array; the fold's cycle 0 is the next
// cycle. Preload, cycles 0 .. r-1: stat_valid/stat_row = r-1-cycle asks top_data[j] = the
// stationary tile's row stat_row (j < c); rows shift down from the top. Stream, cycle r + s
// (s < T): feed_valid/feed_idx = s asks west_data[i] = the stream element s of row i (i < r),
// and, with cfg_psum (a later K block), psum_data[j] = the partial sum s of column j; the
// array delays row i by i*L cycles and column j's partial sum by j cycles. Each PE adds its
// product to the partial sum from the PE above and passes it down after L cycles (cfg_l <=
// LMAX). Column j's result s leaves the bottom active row (r - 1) in cycle r + r*L + j + s - 1:
// out_valid[j], out_data[j]. `done` is high in the cycle the fold's last result leaves;
// `start` may be raised in that same cycle.
module mfsim_array_stat #(
  parameter R = 4, parameter C = 4, parameter PE = "int8", parameter OW = 8, parameter AW = 32,
  parameter FMA = 0, parameter LMAX = 4
) (
  input  wire            clk,
  input  wire            start,
  input  wire [7:0]      cfg_r,
  input  wire [7:0]      cfg_c,
  input  wire [31:0]     cfg_t,
  input  wire [3:0]      cfg_l,
  input  wire            cfg_psum,
  input  wire            west_fmt,
  input  wire            top_fmt,
  output wire            stat_valid,
  output wire [7:0]      stat_row,
  input  wire [C*OW-1:0] top_data,
  output wire            feed_valid,
  output wire [31:0]     feed_idx,
  input  wire [R*OW-1:0] west_data,
  input  wire [C*AW-1:0] psum_data,
  output wire [C-1:0]    out_valid,
  output wire [C*AW-1:0] out_data,
  output wire            done,
  output reg             sat_any
);
  localparam [1:0] IDLE = 2'd0, PRE = 2'd1, STREAM = 2'd2;
  reg [1:0]  phase;
  reg [7:0]  r, c, cnt8;
  reg [31:0] t, s, last_outs;
  reg [3:0]  l;
  reg        psum, fw, ft;

  assign stat_valid = phase == PRE;
  assign stat_row = r - 8'd1 - cnt8;
  assign feed_valid = phase == STREAM && s < t;
  assign feed_idx = s;

  reg [OW-1:0] a_r [0:R*C-1];   // streamed operand, moving east
  reg          av [0:R*C-1];
  reg [OW-1:0] s_r [0:R*C-1];   // stationary operand
  reg          sv [0:R*C-1];
  reg [AW-1:0] pipe [0:R*C*LMAX-1];  // the partial sum's L stages in each PE
  reg [R*C*LMAX-1:0] pv;
  // Skew: row i of the streamed operand is delayed by i * L cycles, column j's partial sum by j.
  wire [R-1:0]    w_req;
  wire [C-1:0]    p_req;
  wire [R*OW-1:0] w_sk;
  wire [C*AW-1:0] p_sk;
  wire [R-1:0]    w_skv;
  wire [C-1:0]    p_skv;
  mfsim_skew #(.N(R), .W(OW), .MAXD(LMAX)) west_skew (
    .clk(clk), .clr(start), .step(l), .in_data(west_data), .in_valid(w_req), .out_data(w_sk), .out_valid(w_skv));
  mfsim_skew #(.N(C), .W(AW), .MAXD(1)) psum_skew (
    .clk(clk), .clr(start), .step(4'd1), .in_data(psum_data), .in_valid(p_req), .out_data(p_sk), .out_valid(p_skv));

  wire [OW-1:0] w_in [0:R-1];
  wire          w_inv [0:R-1];
  wire [AW-1:0] p_in [0:C-1];
  wire          p_inv [0:C-1];
  wire [OW-1:0] na [0:R*C-1];
  wire          nav [0:R*C-1];
  wire [AW-1:0] pin [0:R*C-1];
  wire [AW-1:0] mac_out [0:R*C-1];
  wire          mac_sat [0:R*C-1];
  wire [AW-1:0] nxt [0:R*C-1];      // the value entering the PE's first pipeline stage
  wire [AW-1:0] pout [0:R*C-1];     // the partial sum leaving the PE (L stages later)

  genvar gi, gj;
  generate
    for (gi = 0; gi < R; gi = gi + 1) begin : west  // rows beyond the fold carry no valid data
      assign w_req[gi] = feed_valid && gi < r;
      assign w_in[gi] = w_sk[gi*OW +: OW];
      assign w_inv[gi] = w_skv[gi];
    end
    for (gj = 0; gj < C; gj = gj + 1) begin : psums
      assign p_req[gj] = feed_valid && psum;
      assign p_in[gj] = p_sk[gj*AW +: AW];
      assign p_inv[gj] = p_skv[gj];
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
        if (gi == 0) begin : top
          assign pin[K] = p_inv[gj] ? p_in[gj] : {AW{1'b0}};
        end else begin : below
          assign pin[K] = pout[K - C];
        end
        mfsim_mac #(.PE(PE), .OW(OW), .AW(AW), .FMA(FMA)) pe (
          .a(na[K]), .b(s_r[K]), .a_fmt(fw), .b_fmt(ft), .acc(pin[K]), .acc_out(mac_out[K]), .sat(mac_sat[K]));
        assign nxt[K] = nav[K] && sv[K] ? mac_out[K] : pin[K];
        assign pout[K] = pipe[K * LMAX + l - 1];
      end
    end
    // Column j's result: the value entering the last pipeline stage of PE (r-1, j).
    for (gj = 0; gj < C; gj = gj + 1) begin : out
      wire [15:0] bottom = ({8'd0, r} - 16'd1) * C + gj;
      wire [15:0] pk = bottom * LMAX + {12'd0, l} - 16'd2;
      assign out_valid[gj] = phase == STREAM && gj < c && (l == 4'd1 ? nav[bottom] : pv[pk]);
      assign out_data[gj*AW +: AW] = l == 4'd1 ? nxt[bottom] : pipe[pk];
    end
  endgenerate
  assign done = out_valid[c - 8'd1] && last_outs == t - 32'd1;

  integer k, q;
  always @(posedge clk) begin
    if (start) begin
      r <= cfg_r; c <= cfg_c; t <= cfg_t; l <= cfg_l; psum <= cfg_psum; fw <= west_fmt; ft <= top_fmt;
      phase <= PRE; cnt8 <= 8'd0; s <= 32'd0; last_outs <= 32'd0; sat_any <= 1'b0;
      for (k = 0; k < R*C; k = k + 1) begin av[k] <= 1'b0; sv[k] <= 1'b0; end
      pv <= {(R*C*LMAX){1'b0}};  // partial sums in flight are invalid; their values are never used
    end else begin
      case (phase)
        PRE: begin  // stationary operands shift down from the top, one row a cycle
          for (k = 0; k < R*C; k = k + 1) begin
            s_r[k] <= k < C ? top_data[(k % C)*OW +: OW] : s_r[k - C];
            sv[k] <= k < C ? (k % C) < c : sv[k - C];
          end
          cnt8 <= cnt8 + 8'd1;
          if (cnt8 == r - 8'd1) phase <= STREAM;
        end
        STREAM: begin
          for (k = 0; k < R*C; k = k + 1) begin
            a_r[k] <= na[k]; av[k] <= nav[k];
            pipe[k*LMAX] <= nxt[k]; pv[k*LMAX] <= nav[k] && sv[k];
            for (q = 1; q < LMAX; q = q + 1) begin
              pipe[k*LMAX + q] <= pipe[k*LMAX + q - 1];
              pv[k*LMAX + q] <= pv[k*LMAX + q - 1];
            end
            if (nav[k] && sv[k] && mac_sat[k]) sat_any <= 1'b1;
          end
          if (feed_valid) s <= s + 32'd1;
          if (out_valid[c - 8'd1]) last_outs <= last_outs + 32'd1;
          if (done) phase <= IDLE;
        end
        default: ;
      endcase
    end
  end
endmodule
