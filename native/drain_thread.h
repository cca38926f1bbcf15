// The thread that drains the BPF ring buffer. Records are sent without wake-ups, so every
// poll (bounded by pollMs) is followed by a consume; each pass ends with one batch to JS.
#pragma once

#include <atomic>
#include <string>
#include <thread>

struct ring_buffer;

namespace kw {

class BatchSink;
class LogSink;

class DrainThread {
 public:
  DrainThread(int ringFd, int pollMs, BatchSink* sink, LogSink* log);
  ~DrainThread();
  DrainThread(const DrainThread&) = delete;
  DrainThread& operator=(const DrainThread&) = delete;

  // Returns an empty string on success, else what failed.
  std::string Start();
  // Stops and joins; records still in the ring are delivered first. Idempotent.
  void Stop();

 private:
  static int OnRecord(void* ctx, void* data, size_t size);
  void Run();
  void DrainOnce();

  int ringFd_;
  int pollMs_;
  BatchSink* sink_;
  LogSink* log_;
  ring_buffer* rb_ = nullptr;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  uint64_t appendFailures_ = 0;
};

}  // namespace kw
