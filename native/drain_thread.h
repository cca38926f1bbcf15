// The drain thread: records from a source (the ring buffer, or replay's injected buffers) ->
// the assembler -> frames into the batch sink, one batch per pass. A pass runs every poll period
// (earlier when the kernel forces a wake-up); about once a second it also lets the assembler
// finish exchanges stuck on silent connections. It drops a process's kernel entries once its
// PROC EXIT record arrives. On Stop() it makes a last pass, reports what is unfinished
// (FlushAll), hands the last batch over and is joined. It never runs JS and takes no signals.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "assembler/assembler.h"

namespace kw {

class BatchSink;
class LogSink;
class ProcessTable;
class RecordSource;

struct DrainOptions {
  int pollMs = 10;
  // Stop consuming while JS is behind (the ring buffer then holds the backlog, and the kernel
  // counts what it loses). Off in replay mode, where JS is the producer.
  bool waitForJs = true;
  // Replay: the assembler's clock is the newest record's timestamp, not the machine's.
  bool recordClock = false;
};

class DrainThread {
 public:
  // processes may be null (replay). The thread owns the assembler.
  DrainThread(RecordSource* source, std::unique_ptr<Assembler> assembler, BatchSink* sink, ProcessTable* processes,
              LogSink* log, const DrainOptions& options);
  ~DrainThread();
  DrainThread(const DrainThread&) = delete;
  DrainThread& operator=(const DrainThread&) = delete;

  // Returns an empty string on success, else what failed.
  std::string Start();
  // Last pass, join. Idempotent.
  void Stop();
  // The assembler's counters as of the last pass. Any thread.
  AssemblerStats Stats() const;

 private:
  static void* Main(void* self);
  static bool OnRecord(void* ctx, const void* record, size_t size);
  void Run();
  void Pass(bool final);
  uint64_t Now() const;

  RecordSource* source_;
  std::unique_ptr<Assembler> assembler_;
  BatchSink* sink_;
  ProcessTable* processes_;
  LogSink* log_;
  DrainOptions options_;
  pthread_t thread_{};
  bool running_ = false;
  std::atomic<bool> stop_{false};
  bool finalPass_ = false;
  uint64_t lastIdleFlushNs_ = 0;
  uint64_t newestRecordNs_ = 0;
  int lastPassRecords_ = 0;  // records the last pass consumed: sets the next wait
  mutable std::mutex statsMutex_;
  AssemblerStats stats_;
};

}  // namespace kw
