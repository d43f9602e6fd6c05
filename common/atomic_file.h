// Atomic file output: data goes to a temporary file in the destination's directory and is
// renamed over the destination only on commit(), so a reader never sees a half-written file.
// An AtomicFile destroyed without commit() removes its temporary file.
//
// What an output path means, as users know it from cp, tar and compilers:
//  - a symbolic link is followed to its target (the link stays; the target is replaced);
//  - a character device or a FIFO (/dev/null, a named pipe) is written through, in place;
//  - a path that is the same file as an input of the run (same device and inode, whatever the
//    names) is refused with InputError before anything is written, as is a second output that
//    is the same file as an earlier one.
// Inputs are known to this module because every reader of the project registers what it opens
// (note_input); commands also register their input options before any work starts.
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
  std::string path_;       // as the user named it (messages)
  std::string target_;     // where the data goes: the path with symbolic links followed
  std::string tmp_path_;   // empty when writing through (devices, FIFOs)
  std::FILE* file_ = nullptr;
  std::uint64_t bytes_ = 0;
  bool committed_ = false;
};

// Registers `path` as an input of this run (if it exists): no output may be the same file. Throws
// InputError if an output of this run already is that file.
void note_input(const std::string& path);

// Throws InputError "PATH: is the same file as the input INPUT; refusing to overwrite an input"
// if `path` (symbolic links followed) is a registered input or an output already opened. For
// outputs written by other libraries (a VCD); AtomicFile checks itself.
void require_not_input(const std::string& path);

// Where data written to `path` goes: the path with symbolic links followed.
std::string output_target(const std::string& path);


// Writes a whole text file atomically.
void write_file_atomic(const std::string& path, std::string_view text);

// Reads a whole file; throws InputError naming the path if it cannot be read or is a directory.
std::string read_file(const std::string& path);

// Throws InputError "PATH: is a directory, expected a file" if `path` names a directory.
void require_not_directory(const std::string& path);

// For an output file written by another library (a VCD): throws InputError if `path` is a
// directory, an input of this run, or cannot be created and written (tried by opening it; a
// file this creates is removed again).
void require_writable_file(const std::string& path);

}  // namespace mfsim
