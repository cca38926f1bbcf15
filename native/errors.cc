#include "errors.h"

#include <sys/utsname.h>

#include <cerrno>
#include <cstring>

namespace kw {

std::string KernelRelease() {
  struct utsname u;
  if (uname(&u) != 0) return "unknown";
  return u.release;
}

std::string DescribeFailure(const std::string& what, int err) {
  std::string base = what + " failed: " + std::strerror(err) + " (errno " + std::to_string(err) + ")";
  switch (err) {
    case EPERM:
      return base + ". kong-watcher needs CAP_BPF + CAP_PERFMON (+CAP_SYS_RESOURCE), or run privileged";
    case EACCES:
      return base + ". The kernel " + KernelRelease() +
             " verifier rejected a program (onLog has the verifier log at debug level), or the caller lacks "
             "CAP_BPF + CAP_PERFMON";
    case ENOENT:
      return base + ". Not present in kernel " + KernelRelease() +
             " (syscall tracepoints need CONFIG_FTRACE_SYSCALLS; uprobes need the symbol in the binary)";
    case EINVAL:
    case E2BIG:
    case EOPNOTSUPP:
    case 524:  // the kernel's internal ENOTSUPP, which leaks out of bpf(2)
      return base + ". Kernel " + KernelRelease() +
             " lacks a needed BPF feature (ring buffer: 5.8, bpf_task_pt_regs: 5.15, attach cookies: 5.15)";
    default:
      return base;
  }
}

}  // namespace kw
