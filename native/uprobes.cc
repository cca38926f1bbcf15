#include "uprobes.h"

#include <bpf/libbpf.h>

#include <cerrno>
#include <fstream>
#include <set>

#include "bpf_loader.h"
#include "errors.h"
#include "probes.h"

namespace kw {

namespace {

// Files mapped by pid whose path contains needle, as seen through /proc/<pid>/root.
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

// Attaches one spec to the first of files that has its symbol. Adds the link to links and the
// outcome to result (attached, or missing with why); returns whether it attached.
bool AttachSpec(const BpfObject& object, const UprobeSpec& spec, int pid, const std::vector<std::string>& files,
                const std::string& noFiles, std::vector<bpf_link*>* links, UprobeResult* result) {
  const std::string label = std::string(spec.symbol) + (spec.retprobe ? " (return)" : "");
  bpf_program* prog = object.Program(spec.program);
  std::string why = files.empty() ? noFiles : "";
  for (const std::string& file : files) {
    if (!prog || bpf_program__fd(prog) < 0) {
      why = std::string("BPF program ") + spec.program + " was not loaded" +
            (spec.target == UprobeTarget::kLibc ? " (the libc uprobes load only with the libc data path)" : "");
      break;
    }
    LIBBPF_OPTS(bpf_uprobe_opts, opts);
    opts.func_name = spec.symbol;
    opts.retprobe = spec.retprobe;
    opts.bpf_cookie = spec.cookie;
    bpf_link* link = bpf_program__attach_uprobe_opts(prog, pid, file.c_str(), 0, &opts);
    if (link) {
      links->push_back(link);
      result->attached.push_back(label + "@" + file);
      return true;
    }
    int err = errno;
    if (!why.empty()) why += "; ";
    why += err == ENOENT ? std::string("symbol ") + spec.symbol + " not found in " + file
                         : DescribeFailure("attach uprobe " + std::string(spec.symbol) + " in " + file, err);
  }
  result->missing.push_back(label + ": " + why);
  if (result->error.empty()) result->error = why;
  return false;
}

}  // namespace

Uprobes::~Uprobes() { DetachAll(); }

UprobeResult Uprobes::Attach(const BpfObject& object, const UprobeRequest& req) {
  UprobeResult result;
  // The Lua handlers live in the binary (OpenResty, Kong) or in a dynamic module (Debian).
  std::vector<std::string> luaFiles = {req.binaryPath};
  if (req.lua) {
    for (const std::string& f : MappedFiles(req.pid, "ngx_http_lua_module")) luaFiles.push_back(f);
  }
  std::vector<std::string> libcFiles;
  if (!req.libcPath.empty()) {
    libcFiles.push_back(req.libcPath);
  } else if (req.libc) {
    libcFiles = MappedFiles(req.pid, "/libc.so");
    if (libcFiles.empty()) libcFiles = MappedFiles(req.pid, "/libc-");
  }
  std::vector<bpf_link*>& links = links_[req.pid];
  for (size_t i = 0; i < kUprobeCount; i++) {
    const UprobeSpec& spec = kUprobes[i];
    if (spec.target == UprobeTarget::kLua && req.lua) {
      AttachSpec(object, spec, req.pid, luaFiles, "", &links, &result);
    } else if (spec.target == UprobeTarget::kLibc && req.libc) {
      AttachSpec(object, spec, req.pid, libcFiles, "no libc mapped in pid " + std::to_string(req.pid), &links, &result);
    }
  }
  if (req.tls) AttachTls(object, req, &links, &result);
  if (!result.attached.empty() || result.missing.empty()) {
    result.error.clear();
  } else {
    result.error = "no uprobe attached for pid " + std::to_string(req.pid) + " (" + req.binaryPath + "): " + result.error;
  }
  if (links.empty()) links_.erase(req.pid);
  return result;
}

// nginx's own TLS recv and send when the binary has both (cheaper, and no SSL_set_fd to miss);
// else, or when asked, OpenSSL's calls in the libssl the process maps (or in the binary).
void Uprobes::AttachTls(const BpfObject& object, const UprobeRequest& req, std::vector<bpf_link*>* links,
                        UprobeResult* result) {
  const std::vector<std::string> binary = {req.binaryPath};
  if (!req.tlsOpenSsl) {
    std::vector<bpf_link*> nginx;
    UprobeResult tried;
    bool all = true;
    for (size_t i = 0; i < kUprobeCount; i++) {
      if (kUprobes[i].target == UprobeTarget::kNginxTls) {
        all = AttachSpec(object, kUprobes[i], req.pid, binary, "", &nginx, &tried) && all;
      }
    }
    if (all) {
      links->insert(links->end(), nginx.begin(), nginx.end());
      result->attached.insert(result->attached.end(), tried.attached.begin(), tried.attached.end());
      return;
    }
    // Half of nginx's pair would see only one direction: OpenSSL's calls instead.
    for (bpf_link* link : nginx) bpf_link__destroy(link);
    result->missing.insert(result->missing.end(), tried.missing.begin(), tried.missing.end());
  }
  std::vector<std::string> sslFiles;
  if (!req.sslPath.empty()) {
    sslFiles.push_back(req.sslPath);
  } else {
    sslFiles = MappedFiles(req.pid, "/libssl.so");
    if (sslFiles.empty()) sslFiles = binary;
  }
  for (size_t i = 0; i < kUprobeCount; i++) {
    if (kUprobes[i].target == UprobeTarget::kSsl) AttachSpec(object, kUprobes[i], req.pid, sslFiles, "", links, result);
  }
}

void Uprobes::Detach(int pid) {
  auto it = links_.find(pid);
  if (it == links_.end()) return;
  reaper_.Add(std::move(it->second));
  links_.erase(it);
}

void Uprobes::DetachAll() {
  while (!links_.empty()) Detach(links_.begin()->first);
  reaper_.Finish();
}

}  // namespace kw
