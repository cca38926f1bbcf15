// Destroying a uprobe link waits for the kernel's grace periods (about 60 ms per link on these
// VMs, so ~250 ms for a worker's TLS uprobes). Done inline, an exiting worker would hold up the
// JS thread, and with it the process events that follow a reload or a restart. The reaper does
// it on a thread of its own, several links at once, so the grace periods overlap.
#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

struct bpf_link;

namespace kw {

class LinkReaper {
 public:
  LinkReaper() = default;
  ~LinkReaper() { Finish(); }
  LinkReaper(const LinkReaper&) = delete;
  LinkReaper& operator=(const LinkReaper&) = delete;

  // Takes the links; they are destroyed soon, in the background.
  void Add(std::vector<bpf_link*> links);
  // Destroys everything queued and returns when it is gone (stop: no hook may run after it).
  void Finish();

 private:
  void Run();
  static void DestroyAll(std::vector<bpf_link*> links);

  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<bpf_link*> queue_;
  bool stopping_ = false;
  std::thread thread_;  // started with the first Add
};

}  // namespace kw
