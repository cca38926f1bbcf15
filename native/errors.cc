#include "errors.h"

#include <sys/utsname.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace kw {

namespace {

std::string PerfEventParanoid() {
  std::ifstream in("/proc/sys/kernel/perf_event_paranoid");
  std::string value;
  if (!(in >> value)) return "unknown";
  return value;
}

}  // namespace

std::string KernelRelease() {
  struct utsname u;
  if (uname(&u) != 0) return "unknown";
  return u.release;
}

std::string DescribeFailure(const std::string& what, int err) {
  std::string base = what + " failed: " + std::strerror(err) + " (errno " + std::to_string(err) + ")";
  switch (err) {
    case EPERM:
      return base +
             ". kong-watcher needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN); if it has them, a seccomp or "
             "AppArmor profile is refusing bpf() or perf_event_open(), or kernel.perf_event_paranoid (" +
             PerfEventParanoid() + ") is above 2, which needs CAP_SYS_ADMIN: run it privileged";
    case EACCES:
      return base + ". The kernel " + KernelRelease() +
             " verifier rejected a program (LOG_LEVEL=debug shows libbpf's verifier log), or a file it needs is "
             "not readable by this user";
    case ENOENT:
      return base + ". Not present in kernel " + KernelRelease() +
             " (syscall tracepoints need CONFIG_FTRACE_SYSCALLS; uprobes need the symbol in the binary)";
    case EAGAIN:
      return base + ". Signals kept interrupting the verifier; find what signals this process so often";
    case EINVAL:
    case E2BIG:
    case EOPNOTSUPP:
    case 524:  // the kernel's internal ENOTSUPP, which leaks out of bpf(2)
      return base + ". Kernel " + KernelRelease() +
             " lacks a needed BPF feature (ring buffer: 5.8, bpf_task_pt_regs and attach cookies: 5.15)";
    default:
      return base;
  }
}

}  // namespace kw
