#include "probes.h"

#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

extern "C" {
#include "kong_watcher_events.h"
}

namespace kw {

const std::vector<TracepointSpec> kTracepoints = {
    {"kw_sys_exit_read", "sys_exit_read", true},
    {"kw_sys_exit_readv", "sys_exit_readv", true},
    {"kw_sys_exit_recvfrom", "sys_exit_recvfrom", true},
    {"kw_sys_exit_recvmsg", "sys_exit_recvmsg", true},
    {"kw_sys_exit_write", "sys_exit_write", true},
    {"kw_sys_exit_writev", "sys_exit_writev", true},
    {"kw_sys_exit_sendto", "sys_exit_sendto", true},
    {"kw_sys_exit_sendmsg", "sys_exit_sendmsg", true},
    {"kw_sys_exit_sendfile64", "sys_exit_sendfile64", true},
    {"kw_sys_exit_accept4", "sys_exit_accept4", false},
    {"kw_sys_exit_accept", "sys_exit_accept", false},
    {"kw_sys_exit_connect", "sys_exit_connect", false},
    {"kw_sys_enter_close", "sys_enter_close", false},
};

const std::vector<UprobeSpec> kUprobes = {
    {"nginx", "uprobe_kong_http_request", "ngx_http_process_request", false, 0, UprobeTarget::kBinary},
    {"nginx", "uprobe_kong_http_response", "ngx_http_free_request", false, 0, UprobeTarget::kBinary},
    {"lua", "uprobe_kong_lua_handler", "ngx_http_lua_rewrite_handler", false, KW_LUA_REWRITE, UprobeTarget::kLua},
    {"lua", "uretprobe_kong_lua_handler", "ngx_http_lua_rewrite_handler", true, 0, UprobeTarget::kLua},
    {"lua", "uprobe_kong_lua_handler", "ngx_http_lua_access_handler", false, KW_LUA_ACCESS, UprobeTarget::kLua},
    {"lua", "uretprobe_kong_lua_handler", "ngx_http_lua_access_handler", true, 0, UprobeTarget::kLua},
    {"lua", "uprobe_kong_lua_handler", "ngx_http_lua_content_handler", false, KW_LUA_CONTENT, UprobeTarget::kLua},
    {"lua", "uretprobe_kong_lua_handler", "ngx_http_lua_content_handler", true, 0, UprobeTarget::kLua},
    {"lua", "uprobe_kong_lua_handler", "ngx_http_lua_log_handler", false, KW_LUA_LOG, UprobeTarget::kLua},
    {"lua", "uretprobe_kong_lua_handler", "ngx_http_lua_log_handler", true, 0, UprobeTarget::kLua},
    {"libc", "uprobe_read", "read", false, 0, UprobeTarget::kLibc},
    {"libc", "uprobe_read", "recv", false, 0, UprobeTarget::kLibc},
    {"libc", "uprobe_read", "recvfrom", false, 0, UprobeTarget::kLibc},
    {"libc", "uretprobe_read", "read", true, 0, UprobeTarget::kLibc},
    {"libc", "uretprobe_read", "recv", true, 0, UprobeTarget::kLibc},
    {"libc", "uretprobe_read", "recvfrom", true, 0, UprobeTarget::kLibc},
    {"libc", "uprobe_readv", "readv", false, 0, UprobeTarget::kLibc},
    {"libc", "uretprobe_read", "readv", true, 0, UprobeTarget::kLibc},
    {"libc", "uprobe_write", "write", false, 0, UprobeTarget::kLibc},
    {"libc", "uprobe_write", "send", false, 0, UprobeTarget::kLibc},
    {"libc", "uprobe_write", "sendto", false, 0, UprobeTarget::kLibc},
    {"libc", "uretprobe_write", "write", true, 0, UprobeTarget::kLibc},
    {"libc", "uretprobe_write", "send", true, 0, UprobeTarget::kLibc},
    {"libc", "uretprobe_write", "sendto", true, 0, UprobeTarget::kLibc},
    {"libc", "uprobe_writev", "writev", false, 0, UprobeTarget::kLibc},
    {"libc", "uretprobe_write", "writev", true, 0, UprobeTarget::kLibc},
};

std::string EnsureTracefs(bool* mounted) {
  *mounted = false;
  if (access("/sys/kernel/tracing/events/syscalls", F_OK) == 0 ||
      access("/sys/kernel/debug/tracing/events/syscalls", F_OK) == 0) {
    return "";
  }
  if (access("/sys/kernel/tracing/events", F_OK) != 0) {
    if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, nullptr) != 0) {
      return std::string("tracefs is not mounted and mounting it failed (") + std::strerror(errno) +
             "): run 'mount -t tracefs nodev /sys/kernel/tracing' on the host, or mount /sys/kernel/tracing "
             "into the container";
    }
    *mounted = true;
  }
  if (access("/sys/kernel/tracing/events/syscalls", F_OK) != 0) {
    return "tracefs has no syscalls/ events: the kernel lacks CONFIG_FTRACE_SYSCALLS";
  }
  return "";
}

std::vector<std::string> MappedFiles(int pid, const std::string& needle) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(maps, line)) {
    size_t slash = line.find('/');
    if (slash == std::string::npos) continue;
    std::string path = line.substr(slash);
    if (path.find(needle) == std::string::npos || !seen.insert(path).second) continue;
    out.push_back("/proc/" + std::to_string(pid) + "/root" + path);
  }
  return out;
}

}  // namespace kw
