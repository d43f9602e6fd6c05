#include "common/json_fields.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <set>
#include <vector>

#include "common/error.h"

namespace mfsim {

using nlohmann::json;

namespace {

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    case json::value_t::number_float: return "a number";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    default: return "an unsupported value";
  }
}

}  // namespace

std::string json_excerpt(const json& value) {
  std::string s = value.dump();
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

JsonFields::JsonFields(const json& object, std::string file, std::string path)
    : object_(object), file_(std::move(file)), path_(std::move(path)) {
  if (!object_.is_object()) {
    throw InputError(fmt::format("{}: {}: expected an object, got {}", file_,
                                 path_.empty() ? "document" : path_, type_name(object_)));
  }
}

std::string JsonFields::field_path(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

std::string JsonFields::where(const std::string& key) const {
  return fmt::format("{}: {}", file_, field_path(key));
}

void JsonFields::fail(const std::string& key, const std::string& message) const {
  throw InputError(fmt::format("{}: {}", where(key), message));
}

const json* JsonFields::find(const char* key) {
  seen_.insert(key);
  auto it = object_.find(key);
  return it == object_.end() ? nullptr : &*it;
}

std::optional<std::int64_t> JsonFields::optional_int(const char* key, std::int64_t min,
                                                     std::int64_t max, const char* expectation) {
  const json* v = find(key);
  if (v == nullptr) return std::nullopt;
  std::string expect = expectation != nullptr
                           ? std::string(expectation)
                           : fmt::format("an integer in [{}, {}]", min, max);
  if (v->is_number_unsigned()) {
    auto u = v->get<std::uint64_t>();
    bool below_min = min > 0 && u < static_cast<std::uint64_t>(min);
    if (u > static_cast<std::uint64_t>(max) || below_min) {
      fail(key, fmt::format("expected {}, got {}", expect, json_excerpt(*v)));
    }
    return static_cast<std::int64_t>(u);
  }
  if (!v->is_number_integer()) {
    fail(key, fmt::format("expected {}, got {}", expect, json_excerpt(*v)));
  }
  auto i = v->get<std::int64_t>();
  if (i < min || i > max) fail(key, fmt::format("expected {}, got {}", expect, json_excerpt(*v)));
  return i;
}

std::int64_t JsonFields::required_int(const char* key, std::int64_t min, std::int64_t max,
                                      const char* expectation) {
  auto v = optional_int(key, min, max, expectation);
  if (!v) fail(key, "missing required field");
  return *v;
}

std::optional<double> JsonFields::optional_number(const char* key) {
  const json* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number()) fail(key, fmt::format("expected a number, got {}", json_excerpt(*v)));
  return v->get<double>();
}

double JsonFields::required_number(const char* key) {
  auto v = optional_number(key);
  if (!v) fail(key, "missing required field");
  return *v;
}

bool JsonFields::optional_bool(const char* key, bool fallback) {
  const json* v = find(key);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) fail(key, fmt::format("expected true or false, got {}", json_excerpt(*v)));
  return v->get<bool>();
}

std::optional<std::string> JsonFields::optional_string(const char* key) {
  const json* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) fail(key, fmt::format("expected a string, got {}", json_excerpt(*v)));
  return v->get<std::string>();
}

std::string JsonFields::required_string(const char* key) {
  auto v = optional_string(key);
  if (!v) fail(key, "missing required field");
  return *v;
}

std::string JsonFields::required_choice(const char* key, std::initializer_list<const char*> choices) {
  std::string value = required_string(key);
  std::string list;
  for (const char* c : choices) {
    if (value == c) return value;
    list += list.empty() ? c : fmt::format("|{}", c);
  }
  fail(key, fmt::format("unknown value \"{}\"; expected {}", value, list));
}

const json* JsonFields::optional_object(const char* key) {
  const json* v = find(key);
  if (v != nullptr && !v->is_object()) {
    fail(key, fmt::format("expected an object, got {}", type_name(*v)));
  }
  return v;
}

const json& JsonFields::required_object(const char* key) {
  const json* v = optional_object(key);
  if (v == nullptr) fail(key, "missing required field");
  return *v;
}

const json* JsonFields::optional_array(const char* key) {
  const json* v = find(key);
  if (v != nullptr && !v->is_array()) fail(key, fmt::format("expected an array, got {}", type_name(*v)));
  return v;
}

const json& JsonFields::required_array(const char* key) {
  const json* v = optional_array(key);
  if (v == nullptr) fail(key, "missing required field");
  return *v;
}

void JsonFields::finish() const {
  for (auto it = object_.begin(); it != object_.end(); ++it) {
    if (seen_.count(it.key()) == 0) fail(it.key(), "unknown key");
  }
}

json parse_json_document(const std::string& text, const std::string& file) {
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
    throw InputError(fmt::format("{}: empty file; expected a JSON document", file));
  }
  // Nesting is bounded before parsing (the parser recurses once per level): one linear scan.
  {
    constexpr int kMaxDepth = 128;
    int depth = 0;
    bool in_string = false, escaped = false;
    std::size_t line = 1, column = 0;
    for (char ch : text) {
      ++column;
      if (ch == '\n') {
        ++line;
        column = 0;
      }
      if (in_string) {
        if (escaped) {
          escaped = false;
        } else if (ch == '\\') {
          escaped = true;
        } else if (ch == '"') {
          in_string = false;
        }
        continue;
      }
      if (ch == '"') {
        in_string = true;
      } else if (ch == '[' || ch == '{') {
        if (++depth > kMaxDepth) {
          throw InputError(fmt::format("{}: not valid JSON: line {}, column {}: nested deeper than {} levels", file,
                                       line, column, kMaxDepth));
        }
      } else if (ch == ']' || ch == '}') {
        --depth;
      }
    }
  }
  // A key given twice in one object is an error naming its path: the parser alone would keep
  // the last value without a word.
  struct Frame {
    bool array;
    std::size_t index = 0;    // arrays: the next element's index
    std::string path;         // the container's own path ("" for the document)
    std::set<std::string> keys;  // objects: the keys seen so far
    std::string key;          // objects: the key whose value comes next
  };
  std::vector<Frame> stack;
  auto child_path = [&stack]() -> std::string {
    if (stack.empty()) return "";
    const Frame& f = stack.back();
    if (f.array) return fmt::format("{}[{}]", f.path, f.index);
    return f.path.empty() ? f.key : f.path + "." + f.key;
  };
  const json::parser_callback_t check = [&](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        stack.push_back(Frame{event == json::parse_event_t::array_start, 0, child_path(), {}, {}});
        break;
      case json::parse_event_t::key: {
        Frame& f = stack.back();
        f.key = parsed.get<std::string>();
        if (!f.keys.insert(f.key).second) {
          throw InputError(fmt::format("{}: {}: key given twice in one object", file, child_path()));
        }
        break;
      }
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        stack.pop_back();
        if (!stack.empty() && stack.back().array) ++stack.back().index;
        break;
      case json::parse_event_t::value:
        if (!stack.empty() && stack.back().array) ++stack.back().index;
        break;
    }
    return true;
  };
  try {
    return json::parse(text, check);
  } catch (const json::parse_error& e) {
    std::size_t line = 1, column = 1;
    std::size_t end = std::min<std::size_t>(e.byte > 0 ? e.byte - 1 : 0, text.size());
    for (std::size_t i = 0; i < end; ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    std::string what = e.what();
    auto pos = what.find(": syntax error ");
    std::string reason = pos == std::string::npos ? "syntax error" : what.substr(pos + 2);
    auto nl = reason.find(';');
    if (nl != std::string::npos) reason = reason.substr(0, nl);
    throw InputError(
        fmt::format("{}: not valid JSON: line {}, column {}: {}", file, line, column, reason));
  } catch (const json::exception& e) {  // e.g. a number out of range
    std::string what = e.what();
    auto pos = what.find("] ");
    throw InputError(fmt::format("{}: not valid JSON: {}", file, pos == std::string::npos ? what : what.substr(pos + 2)));
  }
}

}  // namespace mfsim
