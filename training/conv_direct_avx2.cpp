// The direct convolution kernels compiled for AVX2 with FMA: training/conv_direct_kernels.h.
#define MFSIM_CONV_NS conv_avx2
#define MFSIM_CONV_AVX2
#define MFSIM_CONV_DEFINE_KERNELS
#include "training/conv_direct_kernels.h"
