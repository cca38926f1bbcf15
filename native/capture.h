// The JS Capture object: owns the BPF skeleton, its links, the drain thread and the sinks.
#pragma once

#include <napi.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kong_watcher_events.h"

struct kong_uprobe_sidecar;
struct bpf_link;

namespace kw {

class BatchSink;
class DrainThread;
class LogSink;

struct CaptureOptions {
  uint64_t ringBufferBytes = 16 << 20;
  uint64_t captureBytes = 512;
  uint64_t wakeupBytes = 256 << 10;
  uint64_t pollIntervalMs = 10;
  bool libcDataPath = false;
};

class Capture : public Napi::ObjectWrap<Capture> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Capture(const Napi::CallbackInfo& info);
  ~Capture() override;

 private:
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value AddProcess(const Napi::CallbackInfo& info);
  Napi::Value RemoveProcess(const Napi::CallbackInfo& info);
  Napi::Value AttachUprobes(const Napi::CallbackInfo& info);
  Napi::Value DetachUprobes(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);

  // Each returns an empty string on success, else a message for a JS Error.
  std::string Open();
  std::string OpenOnce(int* loadErrno);
  std::string AttachTracepoints();
  std::string MapRingPositions();
  bool Running(Napi::Env env);
  // Counters read from the kernel and the drain; kept after stop() so the last figures can be logged.
  struct Totals {
    uint64_t stat[KW_STAT_MAX] = {};
    uint64_t batches = 0, ringUsed = 0;
  };
  Totals ReadTotals();
  void PurgeProcess(uint32_t pid);
  void DetachPid(int pid);
  void Shutdown();

  CaptureOptions options_;
  Napi::FunctionReference onBatch_;
  Napi::FunctionReference onLog_;
  kong_uprobe_sidecar* skel_ = nullptr;
  std::vector<bpf_link*> tracepointLinks_;
  std::map<int, std::vector<bpf_link*>> uprobeLinks_;
  std::unique_ptr<LogSink> log_;
  std::unique_ptr<BatchSink> sink_;
  std::unique_ptr<DrainThread> drain_;
  void* ringPages_ = nullptr;
  size_t ringPagesLen_ = 0;
  bool started_ = false;
  bool stopped_ = false;
  Totals final_;
};

}  // namespace kw
