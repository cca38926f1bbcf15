#include "drain_thread.h"

#include <bpf/libbpf.h>

#include <chrono>

#include "batch_sink.h"
#include "errors.h"
#include "log_sink.h"

namespace kw {

DrainThread::DrainThread(int ringFd, int pollMs, BatchSink* sink, LogSink* log)
    : ringFd_(ringFd), pollMs_(pollMs), sink_(sink), log_(log) {}

DrainThread::~DrainThread() { Stop(); }

std::string DrainThread::Start() {
  rb_ = ring_buffer__new(ringFd_, OnRecord, this, nullptr);
  if (!rb_) return DescribeFailure("open the events ring buffer", errno);
  thread_ = std::thread(&DrainThread::Run, this);
  return "";
}

void DrainThread::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (rb_) {
    ring_buffer__free(rb_);
    rb_ = nullptr;
  }
}

int DrainThread::OnRecord(void* ctx, void* data, size_t size) {
  auto* self = static_cast<DrainThread*>(ctx);
  if (!self->sink_->Append(data, size)) {
    self->appendFailures_++;
    return 0;
  }
  if (self->sink_->Full()) self->sink_->Flush();
  return 0;
}

void DrainThread::DrainOnce() {
  int err = ring_buffer__consume(rb_);
  if (err < 0 && err != -EINTR && log_) log_->Log(LogLevel::kError, DescribeFailure("ring_buffer__consume", -err));
  sink_->Flush();
  if (appendFailures_ && log_) {
    log_->Log(LogLevel::kError, "out of memory: dropped " + std::to_string(appendFailures_) + " record(s)");
    appendFailures_ = 0;
  }
}

void DrainThread::Run() {
  while (!stop_.load()) {
    if (sink_->Backlogged()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(pollMs_));
      continue;
    }
    int err = ring_buffer__poll(rb_, pollMs_);
    if (err < 0 && err != -EINTR && log_) log_->Log(LogLevel::kError, DescribeFailure("ring_buffer__poll", -err));
    DrainOnce();
  }
  DrainOnce();
}

}  // namespace kw
