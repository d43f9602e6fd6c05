// The PE of an array: one MAC step of the PE type PE on a pair of valid operands,
// acc_out = acc (+) a * b. OW: operand bits (mfmac 4, int8 8, int4 4, fp32 32, bf16 16,
// fp8 8, shift and shift2 9: a tag bit and 8 data bits); AW: accumulator bits (integer PEs: pe.acc_bits; float PEs: 32). a_fmt/b_fmt select
// E5M2 for FP8 operands (per GEMM operand); other PE types ignore them. sat: an integer add
// clamped.
module mfsim_mac #(parameter PE = "int8", parameter OW = 8, parameter AW = 32, parameter FMA = 0) (
  input  wire [OW-1:0] a,
  input  wire [OW-1:0] b,
  input  wire          a_fmt,
  input  wire          b_fmt,
  input  wire [AW-1:0] acc,
  output wire [AW-1:0] acc_out,
  output wire          sat
);
  generate
    if (PE == "mfmac") begin : mfmac
      mfsim_pe_mfmac #(.AW(AW)) pe (.a(a), .b(b), .acc(acc), .acc_out(acc_out), .sat(sat));
    end else if (PE == "shift") begin : shift
      mfsim_pe_shift #(.AW(AW)) pe (.a(a), .b(b), .acc(acc), .acc_out(acc_out), .sat(sat));
    end else if (PE == "shift2") begin : shift2
      mfsim_pe_shift2 #(.AW(AW)) pe (.a(a), .b(b), .acc(acc), .acc_out(acc_out), .sat(sat));
    end else if (PE == "int8") begin : int8
      mfsim_pe_int8 #(.AW(AW)) pe (.a(a), .b(b), .acc(acc), .acc_out(acc_out), .sat(sat));
    end else if (PE == "int4") begin : int4
      mfsim_pe_int4 #(.AW(AW)) pe (.a(a), .b(b), .acc(acc), .acc_out(acc_out), .sat(sat));
    end else if (PE == "fp32") begin : fp32
      mfsim_pe_fp32 #(.FMA(FMA)) pe (.a(a), .b(b), .acc(acc), .acc_out(acc_out));
      assign sat = 1'b0;
    end else if (PE == "bf16") begin : bf16
      mfsim_pe_bf16 pe (.a(a), .b(b), .acc(acc), .acc_out(acc_out));
      assign sat = 1'b0;
    end else if (PE == "fp8") begin : fp8
      mfsim_pe_fp8 pe (.a(a), .b(b), .a_e5m2(a_fmt), .b_e5m2(b_fmt), .acc(acc), .acc_out(acc_out));
      assign sat = 1'b0;
    end else begin : unknown
      initial $error("mfsim_mac: unknown PE type %s", PE);
    end
  endgenerate
endmodule
