#include "privileges.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>

#include "errors.h"

namespace kw {

namespace {

std::string Hex(uint64_t v) {
  char buf[32];
  snprintf(buf, sizeof(buf), "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

Privileges ReadPrivileges() {
  Privileges p;
  p.euid = geteuid();
  __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &header, data) == 0) {
    p.effective = static_cast<uint64_t>(data[0].effective) | (static_cast<uint64_t>(data[1].effective) << 32);
  }
  std::ifstream lastCap("/proc/sys/kernel/cap_last_cap");
  int last = 0;
  if (lastCap >> last) p.kernelHasCapBpf = last >= kCapBpf;
  return p;
}

std::string CheckBpfPrivileges(const Privileges& p) {
  if (p.Has(kCapSysAdmin)) return "";
  if (!p.kernelHasCapBpf) {
    return "kernel " + KernelRelease() +
           " predates CAP_BPF and CAP_PERFMON (5.8): kong-watcher needs CAP_SYS_ADMIN there; run it privileged";
  }
  std::string missing;
  if (!p.Has(kCapBpf)) missing = "CAP_BPF (39)";
  if (!p.Has(kCapPerfmon)) missing += std::string(missing.empty() ? "" : " and ") + "CAP_PERFMON (38)";
  if (missing.empty()) return "";
  return "kong-watcher lacks " + missing + " in its effective capability set (CapEff " + Hex(p.effective) +
         ", uid " + std::to_string(p.euid) +
         "): add CAP_BPF and CAP_PERFMON (Kubernetes: securityContext.capabilities.add [\"BPF\", \"PERFMON\"]; "
         "a non-root user also needs them as ambient capabilities), or run it privileged";
}

std::vector<std::string> PrivilegeWarnings(const Privileges& p) {
  std::vector<std::string> out;
  if (!p.Has(kCapSysPtrace)) {
    out.push_back(
        "CAP_SYS_PTRACE is not in the effective capability set: /proc/<pid>/{exe,maps,root} of processes "
        "of other users cannot be read, so Kong workers running as another user (nginx's \"user\" directive) "
        "get no TLS, Lua or libc uprobes (their HTTPS requests are not reported); add CAP_SYS_PTRACE");
  }
  return out;
}

int AccessEffective(const std::string& path, int mode) {
  return faccessat(AT_FDCWD, path.c_str(), mode, AT_EACCESS) == 0 ? 0 : errno;
}

}  // namespace kw
