#include "drain_thread.h"

#include <time.h>

#include <algorithm>

#include <cerrno>
#include <cstring>

#include "batch_sink.h"
#include "errors.h"
#include "log_sink.h"
#include "process_table.h"
#include "record_source.h"
#include "signals.h"

extern "C" {
#include "kong_watcher_events.h"
}

namespace kw {

namespace {

constexpr uint64_t kIdleFlushPeriodNs = 1000000000ULL;
// A pass that found fewer records than this (a few requests) waits longer before the next one:
// each wake-up and each batch handed to JS has a fixed cost, which at low rates is most of the
// agent's. The kernel still wakes the thread at once for process events and a filling ring.
constexpr int kBusyPassRecords = 256;
constexpr int kQuietPollMs = 50;

uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);  // the clock of bpf_ktime_get_ns()
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

DrainThread::DrainThread(RecordSource* source, std::unique_ptr<Assembler> assembler, BatchSink* sink,
                         ProcessTable* processes, LogSink* log, const DrainOptions& options)
    : source_(source),
      assembler_(std::move(assembler)),
      sink_(sink),
      processes_(processes),
      log_(log),
      options_(options) {}

DrainThread::~DrainThread() { Stop(); }

std::string DrainThread::Start() {
  lastIdleFlushNs_ = Now();
  int err;
  {
    // The thread inherits this mask: process-directed signals never land on it.
    SignalBlocker blocked;
    err = pthread_create(&thread_, nullptr, Main, this);
  }
  if (err) return DescribeFailure("start the drain thread", err);
  running_ = true;
  return "";
}

void DrainThread::Stop() {
  if (!running_) return;
  stop_ = true;
  source_->Wake();
  pthread_join(thread_, nullptr);
  running_ = false;
}

AssemblerStats DrainThread::Stats() const {
  std::lock_guard<std::mutex> lock(statsMutex_);
  return stats_;
}

void* DrainThread::Main(void* self) {
  static_cast<DrainThread*>(self)->Run();
  return nullptr;
}

uint64_t DrainThread::Now() const { return options_.recordClock ? newestRecordNs_ : MonotonicNs(); }

void DrainThread::Run() {
  while (!stop_.load()) {
    if (options_.waitForJs && sink_->Backlogged()) {
      source_->Wait(options_.pollMs);
      continue;
    }
    source_->Wait(lastPassRecords_ >= kBusyPassRecords ? options_.pollMs
                                                       : std::max(options_.pollMs, kQuietPollMs));
    if (stop_.load()) break;
    Pass(false);
  }
  Pass(true);
}

bool DrainThread::OnRecord(void* ctx, const void* record, size_t size) {
  auto* self = static_cast<DrainThread*>(ctx);
  if (size >= sizeof(kw_event_header)) {
    kw_event_header hdr;
    std::memcpy(&hdr, record, sizeof(hdr));
    if (hdr.timestamp_ns > self->newestRecordNs_) self->newestRecordNs_ = hdr.timestamp_ns;
    if (hdr.type == KW_EVENT_PROC && size >= sizeof(kw_proc_event) && self->processes_) {
      kw_proc_event ev;
      std::memcpy(&ev, record, sizeof(ev));
      // Both leave sockets behind that no close() will report: exit closes them all, exec the
      // close-on-exec ones.
      if (ev.event == KW_PROC_EXIT || (ev.event == KW_PROC_EXEC && self->processes_->Monitored(ev.hdr.pid))) {
        self->processes_->QueuePurge(ev.hdr.pid);
      }
    }
  }
  self->assembler_->Record(record, size);
  return self->finalPass_ || !self->options_.waitForJs || !self->sink_->Backlogged();
}

void DrainThread::Pass(bool final) {
  finalPass_ = final;
  int n = source_->Consume(OnRecord, this);
  if (n < 0 && log_) log_->Log(LogLevel::kError, DescribeFailure("consume the ring buffer", -n));
  lastPassRecords_ = n > 0 ? n : 0;
  if (processes_) processes_->RunPurges();
  uint64_t now = Now();
  if (final) {
    assembler_->FlushAll(now);
  } else if (now - lastIdleFlushNs_ >= kIdleFlushPeriodNs || now < lastIdleFlushNs_) {
    assembler_->FlushIdle(now);
    lastIdleFlushNs_ = now;
  }
  sink_->Flush();
  std::lock_guard<std::mutex> lock(statsMutex_);
  stats_ = assembler_->Stats();
}

}  // namespace kw
