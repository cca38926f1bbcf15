// Per-process uprobes from kUprobes (probes.cc): Kong's Lua phase handlers, TLS plaintext (nginx's
// own TLS recv/send, else OpenSSL's read and write calls) and, for the "libc" data path, libc's
// socket calls. Uprobes attach per binary inode, so each is limited to one pid:
// another process running the same binary (kong health, resty) is never trapped. A process the
// kernel started following at fork has none until they are attached for it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "link_reaper.h"

struct bpf_link;

namespace kw {

class BpfObject;

struct UprobeRequest {
  int pid = 0;
  std::string binaryPath;  // the nginx binary, as this process sees it
  bool lua = false;
  bool libc = false;
  std::string libcPath;  // empty: found in /proc/<pid>/maps
  bool tls = false;
  // OpenSSL's calls even when the binary has nginx's ngx_ssl_recv and ngx_ssl_write.
  bool tlsOpenSsl = false;
  // For OpenSSL's calls: the libssl the process maps, or the binary when OpenSSL is linked in.
  // Empty: the libssl in /proc/<pid>/maps, else the binary.
  std::string sslPath;
};

struct UprobeResult {
  std::vector<std::string> attached;  // "symbol@file", "symbol (return)@file"
  std::vector<std::string> missing;   // "symbol: why"
  std::string error;                  // set when nothing could be attached
};

class Uprobes {
 public:
  Uprobes() = default;
  ~Uprobes();
  Uprobes(const Uprobes&) = delete;
  Uprobes& operator=(const Uprobes&) = delete;

  UprobeResult Attach(const BpfObject& object, const UprobeRequest& request);
  // Returns at once: the links are destroyed in the background (link_reaper.h).
  void Detach(int pid);
  // Returns when every link is gone.
  void DetachAll();

 private:
  void AttachTls(const BpfObject& object, const UprobeRequest& request, std::vector<bpf_link*>* links,
                 UprobeResult* result);

  std::map<int, std::vector<bpf_link*>> links_;
  LinkReaper reaper_;
};

}  // namespace kw
