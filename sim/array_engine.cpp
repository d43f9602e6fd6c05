#include "sim/array_engine.h"

namespace mfsim {
template class EngineImpl<MfMacPolicy>;
template class EngineImpl<IntMacPolicy>;
template class EngineImpl<FloatMacPolicy>;
}  // namespace mfsim
