// The requests of one connection that wait for their answer, oldest first (HTTP/1.x answers in
// order, pipelined or not). Entries are addressed by a sequence number that stays valid while
// older ones leave; done entries leave from the front.
#pragma once

#include <cstdint>
#include <vector>

namespace kw {

struct Exchange;

struct Candidate {
  Exchange* ex = nullptr;  // nullptr: placeholders (over the pending bound, or a head never copied)
  uint32_t count = 1;      // placeholders this entry stands for (consecutive, framed alike)
  uint8_t method = 0;      // enum kw_method: a HEAD or CONNECT frames its response differently
  uint8_t version = 0;     // 9: HTTP/0.9, answered by a bare body
  bool headComplete = false;
  bool garbage = false;
  bool detailed = false;   // partial details were read from a head that never completed
  bool answered = false;   // a final response head paired with it
  bool requestDone = false;
  bool awaitingBody = false;  // answered in full before its request body was read
  bool done = false;
  uint64_t answeredNs = 0;
};

class CandidateQueue {
 public:
  static constexpr uint64_t kNone = ~0ull;

  bool Empty() const { return head_ == tail_; }
  uint64_t Size() const { return tail_ - head_; }
  uint64_t Head() const { return head_; }
  uint64_t Tail() const { return tail_; }
  Candidate* At(uint64_t seq) {
    if (seq < head_ || seq >= tail_) return nullptr;
    return &ring_[seq & (ring_.size() - 1)];
  }
  uint64_t Push(const Candidate& c) {
    if (tail_ - head_ == ring_.size()) Grow();
    ring_[tail_ & (ring_.size() - 1)] = c;
    return tail_++;
  }
  // Drops done entries from the front.
  void PopDone() {
    while (head_ < tail_ && ring_[head_ & (ring_.size() - 1)].done) head_++;
  }
  // Takes back the newest entry (a placeholder merged into the one before it).
  void PopBack() {
    if (tail_ > head_) tail_--;
  }
  void Clear() { head_ = tail_ = 0; }
  // Memory back, for a pooled connection that once held a burst.
  void Shrink() {
    if (ring_.size() > 16) std::vector<Candidate>(4).swap(ring_);
    head_ = tail_ = 0;
  }

 private:
  void Grow() {
    std::vector<Candidate> next(ring_.empty() ? 4 : ring_.size() * 2);
    for (uint64_t s = head_; s < tail_; s++) next[s & (next.size() - 1)] = ring_[s & (ring_.size() - 1)];
    ring_.swap(next);
  }

  std::vector<Candidate> ring_;
  uint64_t head_ = 0;
  uint64_t tail_ = 0;
};

}  // namespace kw
