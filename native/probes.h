// What the addon attaches, declared as tables: the syscall tracepoints of each data path and
// the uprobes of each optional set.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kw {

struct TracepointSpec {
  const char* program;
  const char* name;  // in the "syscalls" category
  bool dataPath;     // read/write hook: only in the "syscalls" data path
};

enum class UprobeTarget { kBinary, kLua, kLibc };

struct UprobeSpec {
  const char* set;  // "nginx", "lua" or "libc"
  const char* program;
  const char* symbol;
  bool retprobe;
  uint64_t cookie;
  UprobeTarget target;
};

extern const std::vector<TracepointSpec> kTracepoints;
extern const std::vector<UprobeSpec> kUprobes;

// Syscall tracepoint ids live in tracefs. When no tracefs is mounted (it is not on every host
// or in every container) it is mounted at /sys/kernel/tracing. Returns an empty string when
// tracefs is usable, else what to do; *mounted tells whether this call mounted it.
std::string EnsureTracefs(bool* mounted);

// Files mapped by pid whose path contains needle, as seen through /proc/<pid>/root.
std::vector<std::string> MappedFiles(int pid, const std::string& needle);

}  // namespace kw
