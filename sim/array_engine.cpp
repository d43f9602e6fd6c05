#include "sim/array_engine.h"

#include "sim/params.h"

namespace mfsim {

std::unique_ptr<ArrayEngine> make_int_engine(const SimConfig& cfg, NumFormat format) {
  IntMacPolicy::Pe pe;
  pe.spec = cfg.accumulator;
  return make_array_engine<IntMacPolicy>(cfg, pe, max_product_term(format));
}

std::unique_ptr<ArrayEngine> make_float_engine(const SimConfig& cfg, bool fma) {
  FloatMacPolicy::Pe pe;
  pe.fma = fma;
  return make_array_engine<FloatMacPolicy>(cfg, pe, 0);
}

}  // namespace mfsim
