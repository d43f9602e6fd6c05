// Strict reader of one JSON object of a user-supplied file (trace, config, energy table).
//
// Every getter names the full field path in its error ("trace.json: records[12].K: expected a
// positive integer, got -3"), and finish() rejects keys that no getter asked for, so unknown
// keys are errors. Models never read JSON themselves: parsers use this to build plain structs.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>

namespace mfsim {

class JsonFields {
 public:
  // `path` is the object's own path ("" for the document root, "records[3]" for a record).
  JsonFields(const nlohmann::json& object, std::string file, std::string path);

  std::int64_t required_int(const char* key, std::int64_t min, std::int64_t max,
                            const char* expectation = nullptr);
  std::optional<std::int64_t> optional_int(const char* key, std::int64_t min, std::int64_t max,
                                           const char* expectation = nullptr);
  double required_number(const char* key);
  std::optional<double> optional_number(const char* key);
  bool optional_bool(const char* key, bool fallback);
  std::string required_string(const char* key);
  std::optional<std::string> optional_string(const char* key);
  std::string required_choice(const char* key, std::initializer_list<const char*> choices);
  const nlohmann::json& required_object(const char* key);
  const nlohmann::json* optional_object(const char* key);
  const nlohmann::json& required_array(const char* key);
  const nlohmann::json* optional_array(const char* key);

  void finish() const;  // throws InputError on the first key no getter asked for

  std::string field_path(const std::string& key) const;        // "records[3].K"
  std::string where(const std::string& key) const;             // "file: records[3].K"
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;

  const std::string& file() const { return file_; }
  const std::string& path() const { return path_; }

 private:
  const nlohmann::json* find(const char* key);

  const nlohmann::json& object_;
  std::string file_;
  std::string path_;
  std::set<std::string> seen_;
};

// A short rendering of a JSON value for error messages (truncated to ~40 characters).
std::string json_excerpt(const nlohmann::json& value);

// Parses a JSON document; a syntax error becomes an InputError naming file, line and column.
nlohmann::json parse_json_document(const std::string& text, const std::string& file);

}  // namespace mfsim
