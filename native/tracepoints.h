// The tracepoints of kTracepoints (probes.cc), attached for the life of a capture: syscall
// tracepoints through tracefs, the sched raw tracepoints directly.
#pragma once

#include <string>
#include <vector>

struct bpf_link;

namespace kw {

class BpfObject;
class LogSink;
struct Privileges;

class Tracepoints {
 public:
  Tracepoints() = default;
  ~Tracepoints();
  Tracepoints(const Tracepoints&) = delete;
  Tracepoints& operator=(const Tracepoints&) = delete;

  // Attaches every tracepoint the data path needs; on failure nothing stays attached and the
  // message names the missing hook and what the kernel needs for it.
  std::string Attach(const BpfObject& object, bool libcDataPath, const Privileges& privileges, LogSink* log);
  void Detach();

 private:
  std::vector<bpf_link*> links_;
};

}  // namespace kw
