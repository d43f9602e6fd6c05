// The direct convolution kernels compiled for AVX-512 (AVX-512F with FMA): training/conv_direct_kernels.h.
#define MFSIM_CONV_NS conv_avx512
#define MFSIM_CONV_AVX512
#define MFSIM_CONV_DEFINE_KERNELS
#include "training/conv_direct_kernels.h"
