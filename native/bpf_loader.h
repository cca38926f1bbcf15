// The BPF object: opened from the embedded skeleton, configured before load (.rodata tunables,
// map sizes, which programs this data path needs), loaded, and freed. The only file that
// includes the skeleton; the rest of the addon reaches the object through BpfObject.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

extern "C" {
#include "kong_watcher_events.h"
}

struct kong_uprobe_sidecar;
struct bpf_program;

namespace kw {

class LogSink;

struct LoadOptions {
  uint32_t ringBufferBytes = 16 << 20;
  uint32_t captureBytes = 512;
  uint64_t wakeupBytes = 256 << 10;
  bool libcDataPath = false;
  std::string execComm;  // at most KW_COMM_LEN - 1 bytes; empty = none
};

class BpfObject {
 public:
  // Returns an empty string and the loaded object, else what failed and what to do. A load that
  // signals keep interrupting (EAGAIN from the verifier) is retried with a backoff for about
  // 10 s, with every signal blocked on the loading thread.
  static std::string Load(const LoadOptions& options, LogSink* log, std::unique_ptr<BpfObject>* out);
  ~BpfObject();
  BpfObject(const BpfObject&) = delete;
  BpfObject& operator=(const BpfObject&) = delete;

  bpf_program* Program(const char* name) const;
  int RingFd() const;
  // Maps keyed by tgid << 32 | x: what the kernel keeps per process (connections, calls in flight).
  std::vector<int> PerProcessMapFds() const;
  // kw_pid_bits in the mmapped .bss: KW_PID_WORDS words, shared with the programs.
  uint64_t* PidBits() const;
  // kw_stats summed over CPUs.
  void ReadCounters(uint64_t (&out)[KW_STAT_MAX]) const;

 private:
  explicit BpfObject(kong_uprobe_sidecar* skel) : skel_(skel) {}
  kong_uprobe_sidecar* skel_;
};

}  // namespace kw
