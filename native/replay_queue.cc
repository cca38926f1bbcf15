#include "replay_queue.h"

#include <chrono>
#include <cstring>

namespace kw {

namespace {

constexpr size_t kFrameHeader = 4;

uint32_t ReadSize(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;  // little-endian on every platform the addon builds for
}

}  // namespace

std::string ReplayQueue::CheckFraming(const uint8_t* data, size_t size) {
  size_t pos = 0;
  while (pos < size) {
    if (size - pos < kFrameHeader) return "records end inside a frame's size at byte " + std::to_string(pos);
    uint32_t record = ReadSize(data + pos);
    if (record > size - pos - kFrameHeader) {
      return "record at byte " + std::to_string(pos) + " claims " + std::to_string(record) + " bytes, " +
             std::to_string(size - pos - kFrameHeader) + " remain";
    }
    pos += kFrameHeader + record;
  }
  return "";
}

void ReplayQueue::Push(const uint8_t* data, size_t size) {
  if (size == 0) return;
  std::vector<uint8_t> copy(data, data + size);
  std::unique_lock<std::mutex> lock(mutex_);
  space_.wait(lock, [&] { return queuedBytes_ == 0 || queuedBytes_ + size <= kMaxQueuedBytes; });
  queuedBytes_ += size;
  queued_.push_back(std::move(copy));
  ready_.notify_one();
}

void ReplayQueue::Wait(int timeoutMs) {
  std::unique_lock<std::mutex> lock(mutex_);
  ready_.wait_for(lock, std::chrono::milliseconds(timeoutMs), [&] { return !queued_.empty() || woken_; });
  woken_ = false;
}

int ReplayQueue::Consume(Visit visit, void* ctx) {
  int count = 0;
  for (;;) {
    if (offset_ >= current_.size()) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!current_.empty()) {
        queuedBytes_ -= current_.size();
        space_.notify_all();
      }
      current_.clear();
      offset_ = 0;
      if (queued_.empty()) return count;
      current_ = std::move(queued_.front());
      queued_.pop_front();
    }
    uint32_t size = ReadSize(current_.data() + offset_);
    const uint8_t* record = current_.data() + offset_ + kFrameHeader;
    offset_ += kFrameHeader + size;
    if (size > 0 && reinterpret_cast<uintptr_t>(record) % 8 != 0) {
      aligned_.resize((size + 7) / 8);
      std::memcpy(aligned_.data(), record, size);
      record = reinterpret_cast<const uint8_t*>(aligned_.data());
    }
    count++;
    if (!visit(ctx, record, size)) return count;
  }
}

void ReplayQueue::Wake() {
  std::lock_guard<std::mutex> lock(mutex_);
  woken_ = true;
  ready_.notify_one();
}

}  // namespace kw
