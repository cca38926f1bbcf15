// Turns a failed libbpf/kernel call into a message that says what to do about it.
#pragma once

#include <string>

namespace kw {

std::string KernelRelease();
// what: the step that failed ("load the BPF programs", "attach tracepoint syscalls/sys_exit_recvfrom").
// err: a positive errno.
std::string DescribeFailure(const std::string& what, int err);

}  // namespace kw
