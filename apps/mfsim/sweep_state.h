// The state a sweep resumes from (docs/sweeps.md, "Nothing is lost" and "Resuming").
//
// DIR/sweep.json holds the sweep's definition: what every point shares and no parameter says
// (mfsim version, trace content, mode, the energy table the points are simulated with). Each
// point's meta file holds its identity: the definition plus every parameter value after
// defaults and config. A point is reused only when its meta file says "ok", its identity equals
// the identity the current grid gives it, and its report is a complete JSON document. Anything
// else (missing, truncated, hostile, another identity) means the point runs again; nothing in
// these files can make the sweep crash or allocate without bound.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <string>

namespace mfsim::cli {

// A content fingerprint of `bytes`: "fnv1a64:<16 hex>,crc32:<8 hex>,bytes:<n>" (two independent
// hashes and the length, so that two different contents agree only by a ~2^-96 accident).
std::string content_hash(const std::string& bytes);

// True if (meta, report) describe a finished point of identity `identity` (the canonical dump,
// nlohmann::json::dump(), of the identity object); sets *wall_seconds from the meta file.
bool finished_point(const std::string& meta_text, const std::string& report_text, const std::string& identity,
                    double* wall_seconds);

// How a stored sweep definition (the text of DIR/sweep.json) differs from `current` (an object
// with the keys mfsim_version, trace {path, hash}, mode, energy_table {name, hash}): "" when it
// is the same sweep, else a phrase for "DIR holds a sweep ..." ("of another trace (PATH)").
std::string definition_difference(const std::string& stored_text, const nlohmann::json& current);

}  // namespace mfsim::cli
