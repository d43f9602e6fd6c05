// The simulator's parameters: each declared once, by the component that uses it (name, type,
// default, unit, range, description, and the SimConfig field its value sets), from which
// --list-params, docs/params.md, config-file parsing, --set and build() are all derived.
// Owners: the array (sim/fold_model.cpp), the PE (sim/pe_type.cpp, and each PE type its own,
// sim/pe/*.cpp), the memories (sim/fold_model.cpp), the mapper (sim/mapper.cpp), the quantizer
// accounting (sim/pe_type.cpp) and the clock (sim/fold_model.cpp).
//
// A ParamSet starts from the defaults; values come from a JSON config (nested objects or dotted
// keys) and --set NAME=VALUE; every value is validated against its declaration and errors name
// the parameter and where it came from. build() turns it into the plain SimConfig the models use.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "models/accumulator.h"
#include "sim/pe_type.h"

namespace mfsim {

enum class Dataflow : std::uint8_t { kOs = 0, kWs = 1, kIs = 2 };
const char* to_string(Dataflow d);

enum class ParamType : std::uint8_t { kInt, kNumber, kChoice, kBool, kTiles };

// The buffer-level mapping of a GEMM (docs/mapping.md): tile sizes of M, N and K (0 = the whole
// dimension) and the order of the three tile loops, outermost first ("mnk": M tiles outermost,
// K tiles innermost).
struct TileMapping {
  std::int64_t mt = 0, nt = 0, kt = 0;
  char order[3] = {'m', 'n', 'k'};
  bool fmap = true;  // a convolution reads feature maps (conv.im2col = onchip); false: im2col matrices
  bool operator==(const TileMapping& o) const {
    return mt == o.mt && nt == o.nt && kt == o.kt && order[0] == o.order[0] && order[1] == o.order[1] &&
           order[2] == o.order[2] && fmap == o.fmap;
  }
};
std::string to_string(const TileMapping& m);  // "128x64x576:mnk" (0 printed as the letter)
// Parses "MtxNtxKt:ORDER" (each size a positive integer, or the letter of the dimension for
// the whole of it; ORDER a permutation of m, n, k). False on any error.
bool parse_tile_mapping(const std::string& text, TileMapping* out);

enum class MapPolicy : std::uint8_t { kSearch = 0, kFixed = 1 };
enum class MapObjective : std::uint8_t { kDram = 0, kCycles = 1, kEnergy = 2, kEdp = 3 };

// Per-action energies the mapper weighs candidate mappings with (map.objective = energy | edp),
// filled from the run's energy table by the command line (energy/energy_model.h); the cycle
// model itself holds no energy constant. The MAC arithmetic does not depend on the mapping.
struct MapCosts {
  bool set = false;
  double dram_byte = 0, sram_a_bit = 0, sram_b_bit = 0, sram_c_bit = 0, register_bit = 0;
};

struct SimConfig;

// Sets the parameter's SimConfig field from a validated (canonical) value.
using ParamApply = std::function<void(const std::string& value, SimConfig& c)>;

struct ParamSpec {
  const char* name;
  ParamType type;
  const char* default_value;
  const char* unit;       // "" when dimensionless
  double min, max;        // kInt, kNumber (inclusive)
  const char* choices;    // kChoice: "a|b|c"
  const char* description;
  ParamApply apply;       // typed at declaration: the field it sets
};

// Typed bindings for the common cases.
ParamApply set_int(int SimConfig::*field);
ParamApply set_number(double SimConfig::*field);
ParamApply set_bool(bool SimConfig::*field);
ParamApply set_kib(std::uint64_t SimConfig::*field);  // KiB value, field in bytes

// Each component's declarations (defined in the component's own file).
std::vector<ParamSpec> array_params();    // sim/fold_model.cpp: array geometry and overlap
std::vector<ParamSpec> memory_params();   // sim/fold_model.cpp: SRAM buffers and DRAM
std::vector<ParamSpec> pe_params();       // sim/pe_type.cpp: array.kind, PE timing and accumulators,
                                          //   the quantizer accounting, and every PE type's own
std::vector<ParamSpec> mapping_params();  // sim/mapper.cpp: map.* and conv.im2col
std::vector<ParamSpec> report_params();   // sim/fold_model.cpp: clock.mhz (cycles to seconds)
std::vector<ParamSpec> vector_params();   // sim/vector_unit.cpp: the vector unit (non-GEMM operations)

// Every parameter, in listing order (PE, array, memory, mapping, clock, vector unit).
const std::vector<ParamSpec>& param_specs();
const ParamSpec* find_param(const std::string& name);

// Plain configuration of one simulation (all validated).
struct SimConfig {
  const PeType* array = &pe_type("mfmac");  // the PE type (array.kind), from the registry
  // A second array (array.second) for the records whose operands `array` cannot hold exactly:
  // the same geometry, dataflow, memories and clock; null: none (such records run in timing mode
  // on `array`, priced as its products).
  const PeType* second = nullptr;
  int rows = 32, cols = 32;
  Dataflow dataflow = Dataflow::kOs;
  int mac_latency = 1;                 // cycles
  AccumulatorSpec accumulator;         // MF-MAC and INT8 PEs
  bool fp32_fma = false;
  bool zero_gating = true;             // products with a zero operand do no arithmetic (all arrays)
  bool overlap = true;                 // folds overlap: WS/IS shadow preload, OS drain under the next fold
  std::uint64_t sram_a_bytes = 0, sram_b_bytes = 0, sram_c_bytes = 0;
  double dram_bytes_per_cycle = 32.0;
  double clock_mhz = 1000.0;
  MapPolicy map_policy = MapPolicy::kSearch;   // the mapper picks a tiling per GEMM
  bool conv_im2col_onchip = true;              // conv records read feature maps (tiled mappings)
  MapObjective map_objective = MapObjective::kEdp;  // without map_costs: energy = DRAM bytes
  bool map_pinned = false;                     // map.tiles: one tiling for every GEMM
  TileMapping map_tiles;
  MapCosts map_costs;
  int vector_lanes = 32;        // the vector unit (sim/vector_unit.h)
  bool vector_overlap = false;
  bool vector_fused = false;    // vector.fusion=fused
  int vector_div_cycles = 7, vector_sqrt_cycles = 11, vector_exp_cycles = 15;  // lane cycles per operation
};

class ParamSet {
 public:
  ParamSet();  // all defaults
  // `origin` names the source in errors ("--set array.rows=0", "cfg.json").
  void set(const std::string& name, const std::string& value, const std::string& origin);
  void set_assignment(const std::string& assignment);  // "name=value" from --set; a name set twice this way is an error
  void load_config_file(const std::string& path);
  void load_config_text(const std::string& text, const std::string& origin);  // a config file's content
  SimConfig build() const;
  nlohmann::json to_json() const;  // every parameter with its value (typed)
  const std::string& get(const std::string& name) const { return values_.at(name); }
  // Where a parameter was set ("--set array.kind=int8", "cfg.json"); empty if it has its default.
  std::string origin(const std::string& name) const {
    auto it = origins_.find(name);
    return it == origins_.end() ? std::string() : it->second;
  }

 private:
  std::map<std::string, std::string> values_;
  std::map<std::string, std::string> origins_;   // name -> where it was set (any source)
  std::map<std::string, std::string> assigned_;  // name -> the --set assignment that set it
};

// Aligned text table of all parameters (for --list-params) and the Markdown of docs/params.md.
std::string params_table_text();
std::string params_markdown();

}  // namespace mfsim
