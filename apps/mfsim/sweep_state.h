// The state a sweep resumes from: a point is finished when its meta file says "ok" and its
// report is a complete JSON document. Anything else (missing, truncated, hostile) means the point
// runs again; nothing in these files can make the sweep crash or allocate without bound.
#pragma once

#include <string>

namespace mfsim::cli {

// True if (meta, report) describe a finished point; sets *wall_seconds from the meta file.
bool finished_point(const std::string& meta_text, const std::string& report_text, double* wall_seconds);

}  // namespace mfsim::cli
