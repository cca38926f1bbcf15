// What the addon attaches, declared as tables: the tracepoints (syscall and raw) and the uprobes
// of each set (Lua phases, libc data path, TLS plaintext). tracepoints.cc and uprobes.cc walk them; bpf_loader.cc asks which
// programs a data path needs loaded.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kw {

enum class TracepointKind {
  kSyscall,  // syscalls:<name> through tracefs (perf_event_open on its id)
  kRaw,      // raw tracepoint <name>: no tracefs needed
};

struct TracepointSpec {
  const char* program;
  TracepointKind kind;
  const char* name;
  bool dataPath;  // carries bytes: attached (and loaded) only with the "syscalls" data path
  const char* needs;  // the kernel feature it needs, for the error when it is missing
};

// Where a uprobe's symbol lives: the nginx binary or its Lua module, libc, the nginx binary (its
// TLS recv and send), or the libssl the process maps (the binary itself when OpenSSL is linked in).
enum class UprobeTarget { kLua, kLibc, kNginxTls, kSsl };

struct UprobeSpec {
  const char* set;  // "lua", "libc" or "tls": the UprobeSet key that asks for it
  const char* program;
  const char* symbol;
  bool retprobe;
  uint64_t cookie;
  UprobeTarget target;
};

extern const TracepointSpec kTracepoints[];
extern const size_t kTracepointCount;
extern const UprobeSpec kUprobes[];
extern const size_t kUprobeCount;

// Whether program is loaded for this data path: the syscall data programs only for "syscalls",
// the libc uprobe programs only for "libc"; everything else always.
bool ProgramNeeded(const char* program, bool libcDataPath);

}  // namespace kw
