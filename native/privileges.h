// What this process may do, read once at start from its effective credentials: the capability
// set (capget) and file access as the effective uid with its capabilities. access(2) would test
// the real uid and, for a non-root one, ignore every capability: a non-root agent with ambient
// capabilities was told that a mounted tracefs was missing.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace kw {

// Capability numbers (linux/capability.h; CAP_BPF and CAP_PERFMON are missing from older headers).
constexpr int kCapSysPtrace = 19;
constexpr int kCapSysAdmin = 21;
constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;

struct Privileges {
  uint64_t effective = 0;   // CapEff
  bool kernelHasCapBpf = true;  // CAP_BPF and CAP_PERFMON exist (kernel 5.8+)
  uid_t euid = 0;
  bool Has(int cap) const { return cap >= 0 && cap < 64 && ((effective >> cap) & 1); }
};

Privileges ReadPrivileges();

// Empty when the effective set allows loading and attaching BPF programs, else what is missing
// and what to do.
std::string CheckBpfPrivileges(const Privileges& p);

// Missing capabilities that limit capture without stopping it, each with its consequence.
std::vector<std::string> PrivilegeWarnings(const Privileges& p);

// 0 when path is accessible with mode as the effective uid with its capabilities, else the errno.
int AccessEffective(const std::string& path, int mode);

}  // namespace kw
