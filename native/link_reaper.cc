#include "link_reaper.h"

#include <bpf/libbpf.h>

#include <algorithm>

#include "signals.h"

namespace kw {

namespace {
// Enough destroys in flight to share grace periods; a reload of many workers stays bounded.
constexpr size_t kParallel = 16;
}  // namespace

void LinkReaper::Add(std::vector<bpf_link*> links) {
  if (links.empty()) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (stopping_) {
    // Finish ran (the session is stopping): nothing will take them, so destroy them here.
    DestroyAll(std::move(links));
    return;
  }
  queue_.insert(queue_.end(), links.begin(), links.end());
  if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
  wake_.notify_one();
}

void LinkReaper::Finish() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  std::vector<bpf_link*> rest;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    rest.swap(queue_);
  }
  DestroyAll(std::move(rest));
}

void LinkReaper::Run() {
  SignalBlocker blocked;
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty() && stopping_) return;
    std::vector<bpf_link*> batch;
    batch.swap(queue_);
    lock.unlock();
    DestroyAll(std::move(batch));
    lock.lock();
  }
}

void LinkReaper::DestroyAll(std::vector<bpf_link*> links) {
  if (links.size() <= 1) {
    for (bpf_link* link : links) bpf_link__destroy(link);
    return;
  }
  const size_t n = std::min(kParallel, links.size());
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (size_t t = 0; t < n; t++) {
    threads.emplace_back([&links, t, n] {
      SignalBlocker blocked;
      for (size_t i = t; i < links.size(); i += n) bpf_link__destroy(links[i]);
    });
  }
  for (std::thread& thread : threads) thread.join();
}

}  // namespace kw
