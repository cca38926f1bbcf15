#include "tracepoints.h"

#include <bpf/libbpf.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "bpf_loader.h"
#include "errors.h"
#include "log_sink.h"
#include "privileges.h"
#include "probes.h"

namespace kw {

namespace {

constexpr const char* kTracefs = "/sys/kernel/tracing";
constexpr const char* kDebugfsTracing = "/sys/kernel/debug/tracing";

// Syscall tracepoint ids are read from tracefs, which libbpf looks for where it does below:
// under debugfs when that is reachable, else at /sys/kernel/tracing. Returns an empty string
// when the ids can be read, else what to do; *mounted tells whether tracefs was mounted here.
std::string EnsureTracefs(const Privileges& p, bool* mounted) {
  *mounted = false;
  const std::string root = AccessEffective(kDebugfsTracing, F_OK) == 0 ? kDebugfsTracing : kTracefs;
  const std::string probe = root + "/events/syscalls/sys_enter_close/id";
  int err = AccessEffective(probe, R_OK);
  if (err == 0) return "";
  const std::string uid = std::to_string(p.euid);
  if (err == EACCES) {
    return "tracefs is mounted at " + root + " but uid " + uid + " cannot read it (" + probe +
           ": permission denied; tracefs is mode 0700 root by default): run kong-watcher as uid 0, or add "
           "CAP_DAC_READ_SEARCH, or mount tracefs with a mode or gid that lets uid " + uid + " read it";
  }
  if (AccessEffective(root + "/events", F_OK) == 0) {
    return "tracefs at " + root + " has no syscalls/sys_enter_close event: kernel " + KernelRelease() +
           " lacks syscall tracepoints (CONFIG_FTRACE_SYSCALLS)";
  }
  if (!p.Has(kCapSysAdmin)) {
    return std::string("tracefs is not mounted at ") + kTracefs +
           " and mounting it needs CAP_SYS_ADMIN: run 'mount -t tracefs nodev /sys/kernel/tracing' on the host and "
           "mount /sys/kernel/tracing into the container";
  }
  if (mount("nodev", kTracefs, "tracefs", 0, nullptr) != 0) {
    return std::string("tracefs is not mounted at ") + kTracefs + " and mounting it failed (" + std::strerror(errno) +
           "): run 'mount -t tracefs nodev /sys/kernel/tracing' on the host and mount /sys/kernel/tracing into the "
           "container";
  }
  *mounted = true;
  if (AccessEffective(std::string(kTracefs) + "/events/syscalls/sys_enter_close/id", R_OK) != 0) {
    return "tracefs mounted at /sys/kernel/tracing has no syscall events: kernel " + KernelRelease() +
           " lacks syscall tracepoints (CONFIG_FTRACE_SYSCALLS)";
  }
  return "";
}

}  // namespace

Tracepoints::~Tracepoints() { Detach(); }

std::string Tracepoints::Attach(const BpfObject& object, bool libcDataPath, const Privileges& privileges,
                                LogSink* log) {
  bool tracefsChecked = false;
  for (size_t i = 0; i < kTracepointCount; i++) {
    const TracepointSpec& tp = kTracepoints[i];
    if (tp.dataPath && libcDataPath) continue;
    bpf_program* prog = object.Program(tp.program);
    if (!prog) {
      Detach();
      return std::string("BPF program ") + tp.program + " missing from the object: rebuild it with make -C bpf";
    }
    bpf_link* link = nullptr;
    std::string hook;
    if (tp.kind == TracepointKind::kRaw) {
      hook = std::string("raw tracepoint ") + tp.name;
      link = bpf_program__attach_raw_tracepoint(prog, tp.name);
    } else {
      if (!tracefsChecked) {
        bool mounted = false;
        std::string err = EnsureTracefs(privileges, &mounted);
        if (!err.empty()) {
          Detach();
          return err;
        }
        if (mounted && log) log->Log(LogLevel::kInfo, "mounted tracefs at /sys/kernel/tracing for the syscall tracepoints");
        tracefsChecked = true;
      }
      hook = std::string("tracepoint syscalls/") + tp.name;
      link = bpf_program__attach_tracepoint(prog, "syscalls", tp.name);
    }
    if (!link) {
      int err = errno;
      Detach();
      std::string message = DescribeFailure("attach " + hook + " (kernel " + KernelRelease() + ")", err);
      if (err == ENOENT) message += "; it needs " + std::string(tp.needs);
      return message;
    }
    links_.push_back(link);
  }
  return "";
}

void Tracepoints::Detach() {
  for (bpf_link* link : links_) bpf_link__destroy(link);
  links_.clear();
}

}  // namespace kw
