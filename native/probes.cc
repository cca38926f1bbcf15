#include "probes.h"

#include <cstring>

extern "C" {
#include "kong_watcher_events.h"
}

namespace kw {

namespace {

constexpr const char* kSyscallTracepoints = "syscall tracepoints (CONFIG_FTRACE_SYSCALLS)";
constexpr const char* kSchedRawTracepoints = "raw tracepoints on sched events (kernel 4.17+)";

}  // namespace

// Process hooks first: a process forked while the rest attaches is already followed.
const TracepointSpec kTracepoints[] = {
    {"kw_proc_fork", TracepointKind::kRaw, "sched_process_fork", false, kSchedRawTracepoints},
    {"kw_proc_exit", TracepointKind::kRaw, "sched_process_exit", false, kSchedRawTracepoints},
    {"kw_proc_exec", TracepointKind::kRaw, "sched_process_exec", false, kSchedRawTracepoints},
    {"kw_accept4", TracepointKind::kSyscall, "sys_exit_accept4", false, kSyscallTracepoints},
    {"kw_accept", TracepointKind::kSyscall, "sys_exit_accept", false, kSyscallTracepoints},
    {"kw_connect", TracepointKind::kSyscall, "sys_exit_connect", false, kSyscallTracepoints},
    {"kw_close", TracepointKind::kSyscall, "sys_enter_close", false, kSyscallTracepoints},
    {"kw_recvfrom", TracepointKind::kSyscall, "sys_exit_recvfrom", true, kSyscallTracepoints},
    {"kw_readv", TracepointKind::kSyscall, "sys_exit_readv", true, kSyscallTracepoints},
    {"kw_sendto", TracepointKind::kSyscall, "sys_exit_sendto", true, kSyscallTracepoints},
    {"kw_writev", TracepointKind::kSyscall, "sys_exit_writev", true, kSyscallTracepoints},
    {"kw_sendfile", TracepointKind::kSyscall, "sys_exit_sendfile64", true, kSyscallTracepoints},
};
const size_t kTracepointCount = sizeof(kTracepoints) / sizeof(kTracepoints[0]);

const UprobeSpec kUprobes[] = {
    {"lua", "kw_lua_enter", "ngx_http_lua_rewrite_handler", false, KW_LUA_REWRITE, UprobeTarget::kLua},
    {"lua", "kw_lua_return", "ngx_http_lua_rewrite_handler", true, 0, UprobeTarget::kLua},
    {"lua", "kw_lua_enter", "ngx_http_lua_access_handler", false, KW_LUA_ACCESS, UprobeTarget::kLua},
    {"lua", "kw_lua_return", "ngx_http_lua_access_handler", true, 0, UprobeTarget::kLua},
    {"lua", "kw_lua_enter", "ngx_http_lua_content_handler", false, KW_LUA_CONTENT, UprobeTarget::kLua},
    {"lua", "kw_lua_return", "ngx_http_lua_content_handler", true, 0, UprobeTarget::kLua},
    {"lua", "kw_lua_enter", "ngx_http_lua_log_handler", false, KW_LUA_LOG, UprobeTarget::kLua},
    {"lua", "kw_lua_return", "ngx_http_lua_log_handler", true, 0, UprobeTarget::kLua},
    {"libc", "kw_libc_rd", "read", false, 0, UprobeTarget::kLibc},
    {"libc", "kw_libc_rd", "recv", false, 0, UprobeTarget::kLibc},
    {"libc", "kw_libc_rd", "recvfrom", false, 0, UprobeTarget::kLibc},
    {"libc", "kw_libc_rd_ret", "read", true, 0, UprobeTarget::kLibc},
    {"libc", "kw_libc_rd_ret", "recv", true, 0, UprobeTarget::kLibc},
    {"libc", "kw_libc_rd_ret", "recvfrom", true, 0, UprobeTarget::kLibc},
    {"libc", "kw_libc_rdv", "readv", false, 0, UprobeTarget::kLibc},
    {"libc", "kw_libc_rd_ret", "readv", true, 0, UprobeTarget::kLibc},
    {"libc", "kw_libc_wr", "write", false, 0, UprobeTarget::kLibc},
    {"libc", "kw_libc_wr", "send", false, 0, UprobeTarget::kLibc},
    {"libc", "kw_libc_wr", "sendto", false, 0, UprobeTarget::kLibc},
    {"libc", "kw_libc_wr_ret", "write", true, 0, UprobeTarget::kLibc},
    {"libc", "kw_libc_wr_ret", "send", true, 0, UprobeTarget::kLibc},
    {"libc", "kw_libc_wr_ret", "sendto", true, 0, UprobeTarget::kLibc},
    {"libc", "kw_libc_wrv", "writev", false, 0, UprobeTarget::kLibc},
    {"libc", "kw_libc_wr_ret", "writev", true, 0, UprobeTarget::kLibc},
    // TLS plaintext: nginx's own TLS recv and send, both or neither...
    {"tls", "kw_ngx_ssl_enter", "ngx_ssl_recv", false, 0, UprobeTarget::kNginxTls},
    {"tls", "kw_ngx_ssl_rd_ret", "ngx_ssl_recv", true, 0, UprobeTarget::kNginxTls},
    {"tls", "kw_ngx_ssl_enter", "ngx_ssl_write", false, 0, UprobeTarget::kNginxTls},
    {"tls", "kw_ngx_ssl_wr_ret", "ngx_ssl_write", true, 0, UprobeTarget::kNginxTls},
    // ...else OpenSSL's: SSL_set_fd first, so an SSL object is tied to its socket before it moves bytes.
    {"tls", "kw_ssl_set_fd", "SSL_set_fd", false, 0, UprobeTarget::kSsl},
    {"tls", "kw_ssl_rw", "SSL_read", false, 0, UprobeTarget::kSsl},
    {"tls", "kw_ssl_rd_ret", "SSL_read", true, 0, UprobeTarget::kSsl},
    {"tls", "kw_ssl_rw_ex", "SSL_read_ex", false, 0, UprobeTarget::kSsl},
    {"tls", "kw_ssl_rd_ret", "SSL_read_ex", true, 0, UprobeTarget::kSsl},
    {"tls", "kw_ssl_rw", "SSL_write", false, 0, UprobeTarget::kSsl},
    {"tls", "kw_ssl_wr_ret", "SSL_write", true, 0, UprobeTarget::kSsl},
    {"tls", "kw_ssl_rw_ex", "SSL_write_ex", false, 0, UprobeTarget::kSsl},
    {"tls", "kw_ssl_wr_ret", "SSL_write_ex", true, 0, UprobeTarget::kSsl},
};
const size_t kUprobeCount = sizeof(kUprobes) / sizeof(kUprobes[0]);

bool ProgramNeeded(const char* program, bool libcDataPath) {
  for (size_t i = 0; i < kTracepointCount; i++) {
    if (std::strcmp(kTracepoints[i].program, program) == 0) return !(kTracepoints[i].dataPath && libcDataPath);
  }
  for (size_t i = 0; i < kUprobeCount; i++) {
    if (std::strcmp(kUprobes[i].program, program) == 0 && std::strcmp(kUprobes[i].set, "libc") == 0) {
      return libcDataPath;
    }
  }
  return true;
}

}  // namespace kw
