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
    const bool wanted = spec.target == UprobeTarget::kLua ? req.lua : req.libc;
    if (!wanted) continue;
    const std::vector<std::string>& files = spec.target == UprobeTarget::kLua ? luaFiles : libcFiles;
    const std::string label = std::string(spec.symbol) + (spec.retprobe ? " (return)" : "");
    bpf_program* prog = object.Program(spec.program);
    std::string why = files.empty() ? "no libc mapped in pid " + std::to_string(req.pid) : "";
    bool done = false;
    for (const std::string& file : files) {
      if (!prog || bpf_program__fd(prog) < 0) {
        why = std::string("BPF program ") + spec.program + " was not loaded (the libc uprobes load only with the libc data path)";
        break;
      }
      LIBBPF_OPTS(bpf_uprobe_opts, opts);
      opts.func_name = spec.symbol;
      opts.retprobe = spec.retprobe;
      opts.bpf_cookie = spec.cookie;
      bpf_link* link = bpf_program__attach_uprobe_opts(prog, req.pid, file.c_str(), 0, &opts);
      if (link) {
        links.push_back(link);
        result.attached.push_back(label + "@" + file);
        done = true;
        break;
      }
      int err = errno;
      if (!why.empty()) why += "; ";
      why += err == ENOENT ? std::string("symbol ") + spec.symbol + " not found in " + file
                           : DescribeFailure("attach uprobe " + std::string(spec.symbol) + " in " + file, err);
    }
    if (!done) {
      result.missing.push_back(label + ": " + why);
      if (result.error.empty()) result.error = why;
    }
  }
  if (!result.attached.empty() || result.missing.empty()) {
    result.error.clear();
  } else {
    result.error = "no uprobe attached for pid " + std::to_string(req.pid) + " (" + req.binaryPath + "): " + result.error;
  }
  if (links.empty()) links_.erase(req.pid);
  return result;
}

void Uprobes::Detach(int pid) {
  auto it = links_.find(pid);
  if (it == links_.end()) return;
  for (bpf_link* link : it->second) bpf_link__destroy(link);
  links_.erase(it);
}

void Uprobes::DetachAll() {
  while (!links_.empty()) Detach(links_.begin()->first);
}

}  // namespace kw
