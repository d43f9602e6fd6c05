// Atomic file output: data goes to a temporary file in the destination's directory and is
// renamed over the destination only on commit(), so a reader never sees a half-written file.
// An AtomicFile destroyed without commit() removes its temporary file.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace mfsim {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);  // throws InputError if the directory is not writable
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  void write(const void* data, std::size_t bytes);
  void write(std::string_view text) { write(text.data(), text.size()); }
  std::uint64_t bytes_written() const { return bytes_; }
  const std::string& path() const { return path_; }
  void commit();  // flush, fsync, close, rename over the destination

 private:
  std::string path_;
  std::string tmp_path_;
  std::FILE* file_ = nullptr;
  std::uint64_t bytes_ = 0;
  bool committed_ = false;
};

// Writes a whole text file atomically.
void write_file_atomic(const std::string& path, std::string_view text);

// Reads a whole file; throws InputError naming the path if it cannot be read or is a directory.
std::string read_file(const std::string& path);

// Throws InputError "PATH: is a directory, expected a file" if `path` names a directory.
void require_not_directory(const std::string& path);

// For an output file written by another library (a VCD): throws InputError if `path` is a
// directory or its directory does not exist or is not writable. Creates nothing.
void require_writable_file(const std::string& path);

}  // namespace mfsim
