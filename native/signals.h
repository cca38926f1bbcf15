// Signals and the addon's own threads: the verifier gives up with EAGAIN when a signal is
// pending for the loading thread (a profiler's SIGPROF every few ms makes every load fail), and
// a drain thread that took the process's signals would see its poll interrupted for nothing.
#pragma once

#include <signal.h>

namespace kw {

// Blocks every signal on the calling thread for its lifetime; process-directed signals go to
// the process's other threads meanwhile, and thread-directed ones wait until it ends.
class SignalBlocker {
 public:
  SignalBlocker() {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &saved_);
  }
  ~SignalBlocker() { pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }
  SignalBlocker(const SignalBlocker&) = delete;
  SignalBlocker& operator=(const SignalBlocker&) = delete;

 private:
  sigset_t saved_;
};

}  // namespace kw
