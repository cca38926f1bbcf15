// One capture's parts, started and stopped in order: the loaded BPF object, its tracepoints and
// uprobes, the followed processes, the ring buffer (or replay's queue) and the drain thread with
// its assembler. No JS here: capture.cc turns calls and results into JS, and owns the sinks.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "assembler/assembler.h"
#include "bpf_loader.h"
#include "uprobes.h"

namespace kw {

class BatchSink;
class DrainThread;
class LogSink;
class ProcessTable;
class ReplayQueue;
class RingSource;
class Tracepoints;

struct SessionOptions {
  LoadOptions load;
  AssemblerOptions assembler;
  int pollMs = 10;
  bool replay = false;
};

struct CaptureTotals {
  uint64_t kernel[KW_STAT_MAX] = {};
  uint64_t ringUsedBytes = 0;
  AssemblerStats assembler;
};

class Session {
 public:
  Session(const SessionOptions& options, LogSink* log, BatchSink* sink);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Empty on success, else what failed and what to do; nothing is left running on failure.
  std::string Start();
  bool replay() const { return options_.replay; }
  void AddProcess(uint32_t pid);
  void RemoveProcess(uint32_t pid);
  UprobeResult AttachUprobes(const UprobeRequest& request);
  void DetachUprobes(int pid);
  // Replay only; data was checked with ReplayQueue::CheckFraming. Blocks while the queue is full.
  void Inject(const uint8_t* data, size_t size);
  CaptureTotals Totals() const;
  // Detaches, makes the drain thread's last pass (FlushAll, last batch), joins it, keeps the
  // final totals and frees the kernel objects. Idempotent.
  void Stop();

 private:
  std::string StartKernel();
  void Release();

  SessionOptions options_;
  LogSink* log_;
  BatchSink* sink_;
  std::unique_ptr<BpfObject> object_;
  std::unique_ptr<Tracepoints> tracepoints_;
  std::unique_ptr<Uprobes> uprobes_;
  std::unique_ptr<ProcessTable> processes_;
  std::unique_ptr<RingSource> ring_;
  std::unique_ptr<ReplayQueue> replayQueue_;
  std::unique_ptr<DrainThread> drain_;
  bool stopped_ = false;
  CaptureTotals final_;
};

}  // namespace kw
