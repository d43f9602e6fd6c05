// Benchmark of the value-mode SystemC array: PE-updates per second (R x C x cycles / seconds)
// for one array configuration on a synthetic GEMM. Usage:
//   bench_array [array=mfmac] [dataflow=os] [R=32] [C=32] [M=256] [N=256] [K=2048]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "sim/array_sim.h"

using namespace mfsim;

int main(int argc, char** argv) {
  std::string array = argc > 1 ? argv[1] : "mfmac";
  std::string df = argc > 2 ? argv[2] : "os";
  int R = argc > 3 ? std::atoi(argv[3]) : 32, C = argc > 4 ? std::atoi(argv[4]) : 32;
  std::int64_t M = argc > 5 ? std::atoll(argv[5]) : 256, N = argc > 6 ? std::atoll(argv[6]) : 256,
               K = argc > 7 ? std::atoll(argv[7]) : 2048;
  SimConfig cfg;
  cfg.array = &pe_type(array);
  cfg.dataflow = df == "ws" ? Dataflow::kWs : df == "is" ? Dataflow::kIs : Dataflow::kOs;
  cfg.rows = R;
  cfg.cols = C;
  cfg.dram_bytes_per_cycle = 1e9;  // compute-bound: measure the array, not the DRAM wait
  cfg.sram_a_bytes = cfg.sram_b_bytes = cfg.sram_c_bytes = std::uint64_t{1} << 30;
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> code(0, 15), i8(-127, 127);
  GemmOperands ops;
  for (std::int64_t i = 0; i < M * K; ++i) {
    ops.a_pot4.push_back(static_cast<Pot4Code>(code(rng)));
    ops.a_int.push_back(i8(rng));
    ops.a_f32.push_back(static_cast<float>(i8(rng)));
  }
  for (std::int64_t i = 0; i < K * N; ++i) {
    ops.b_pot4.push_back(static_cast<Pot4Code>(code(rng)));
    ops.b_int.push_back(i8(rng));
    ops.b_f32.push_back(static_cast<float>(i8(rng)));
  }
  std::vector<GemmJob> jobs{GemmJob{GemmShape{M, N, K}, ConvView{}, [&]() { return ops; }}};
  ValueGemmResult res;
  auto t0 = std::chrono::steady_clock::now();
  simulate_value(cfg, jobs, [&](std::size_t, ValueGemmResult& r) { res = std::move(r); });
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double updates = static_cast<double>(R) * C * static_cast<double>(res.array_steps);
  std::printf("array=%s dataflow=%s R=%d C=%d M=%lld N=%lld K=%lld cycles=%llu steps=%llu seconds=%.3f "
              "pe_updates_per_second=%.3g\n",
              array.c_str(), df.c_str(), R, C, static_cast<long long>(M), static_cast<long long>(N),
              static_cast<long long>(K), static_cast<unsigned long long>(res.timing.total),
              static_cast<unsigned long long>(res.array_steps), s, updates / s);
  return 0;
}
