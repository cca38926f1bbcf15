#include "session.h"

#include <unistd.h>

#include <cerrno>

#include "batch_sink.h"
#include "drain_thread.h"
#include "errors.h"
#include "log_sink.h"
#include "privileges.h"
#include "process_table.h"
#include "replay_queue.h"
#include "ring_source.h"
#include "tracepoints.h"

namespace kw {

namespace {

constexpr const char* kKernelBtf = "/sys/kernel/btf/vmlinux";

}  // namespace

Session::Session(const SessionOptions& options, LogSink* log, BatchSink* sink)
    : options_(options), log_(log), sink_(sink) {}

Session::~Session() { Stop(); }

std::string Session::Start() {
  std::string err;
  RecordSource* source = nullptr;
  DrainOptions drain;
  drain.pollMs = options_.pollMs;
  if (options_.replay) {
    replayQueue_.reset(new ReplayQueue());
    source = replayQueue_.get();
    drain.waitForJs = false;
    drain.recordClock = true;
  } else {
    err = StartKernel();
    source = ring_.get();
  }
  if (err.empty()) {
    std::unique_ptr<Assembler> assembler(new Assembler(options_.assembler, sink_));
    drain_.reset(new DrainThread(source, std::move(assembler), sink_, processes_.get(), log_, drain));
    err = drain_->Start();
  }
  if (!err.empty()) Release();
  return err;
}

std::string Session::StartKernel() {
  Privileges privileges = ReadPrivileges();
  std::string err = CheckBpfPrivileges(privileges);
  if (!err.empty()) return err;
  for (const std::string& warning : PrivilegeWarnings(privileges)) log_->Log(LogLevel::kWarn, warning);
  int btf = AccessEffective(kKernelBtf, R_OK);
  if (btf == ENOENT) {
    return std::string("kernel lacks BTF (") + kKernelBtf + " missing; needs CONFIG_DEBUG_INFO_BTF), kernel " +
           KernelRelease() + ": use a kernel built with BTF, or mount /sys/kernel/btf into the container";
  }
  if (btf != 0) return DescribeFailure(std::string("read ") + kKernelBtf + " as uid " + std::to_string(privileges.euid), btf);
  err = BpfObject::Load(options_.load, log_, &object_);
  if (!err.empty()) return err;
  tracepoints_.reset(new Tracepoints());
  err = tracepoints_->Attach(*object_, options_.load.libcDataPath, privileges, log_);
  if (!err.empty()) return err;
  RingSource* ring = nullptr;
  err = RingSource::Open(object_->RingFd(), &ring);
  if (!err.empty()) return err;
  ring_.reset(ring);
  processes_.reset(new ProcessTable(object_->PidBits(), object_->PerProcessMapFds()));
  uprobes_.reset(new Uprobes());
  return "";
}

void Session::AddProcess(uint32_t pid) {
  if (processes_) processes_->Add(pid);
}

void Session::RemoveProcess(uint32_t pid) {
  if (processes_) processes_->Remove(pid);
}

UprobeResult Session::AttachUprobes(const UprobeRequest& request) {
  if (!uprobes_ || !object_) {
    UprobeResult result;
    result.error = "capture is not running";
    return result;
  }
  return uprobes_->Attach(*object_, request);
}

void Session::DetachUprobes(int pid) {
  if (uprobes_) uprobes_->Detach(pid);
}

void Session::Inject(const uint8_t* data, size_t size) {
  if (replayQueue_) replayQueue_->Push(data, size);
}

CaptureTotals Session::Totals() const {
  if (stopped_) return final_;
  CaptureTotals t;
  if (object_) object_->ReadCounters(t.kernel);
  if (ring_) t.ringUsedBytes = ring_->UsedBytes();
  if (drain_) t.assembler = drain_->Stats();
  return t;
}

void Session::Stop() {
  if (stopped_) return;
  // No new records once the hooks are gone; then the last ones are drained and assembled.
  if (uprobes_) uprobes_->DetachAll();
  if (tracepoints_) tracepoints_->Detach();
  if (drain_) drain_->Stop();
  final_ = Totals();
  stopped_ = true;
  Release();
}

void Session::Release() {
  if (drain_) drain_->Stop();
  drain_.reset();
  uprobes_.reset();
  tracepoints_.reset();
  ring_.reset();
  replayQueue_.reset();
  processes_.reset();
  object_.reset();
}

}  // namespace kw
