#include "ring_source.h"

#include <bpf/libbpf.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

#include "errors.h"

namespace kw {

namespace {

// Returned by OnSample to stop ring_buffer__consume after the current record.
constexpr int kStop = -ECANCELED;

}  // namespace

std::string RingSource::Open(int ringFd, RingSource** out) {
  auto* self = new RingSource();
  std::string err;
  self->rb_ = ring_buffer__new(ringFd, OnSample, self, nullptr);
  if (!self->rb_) err = DescribeFailure("open the events ring buffer", errno);
  if (err.empty()) {
    self->epollFd_ = epoll_create1(EPOLL_CLOEXEC);
    self->wakeFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (self->epollFd_ < 0 || self->wakeFd_ < 0) err = DescribeFailure("create the drain thread's epoll set", errno);
  }
  if (err.empty()) {
    epoll_event ring = {};
    ring.events = EPOLLIN | EPOLLET;
    ring.data.u32 = 0;
    epoll_event wake = {};
    wake.events = EPOLLIN;
    wake.data.u32 = 1;
    if (epoll_ctl(self->epollFd_, EPOLL_CTL_ADD, ringFd, &ring) != 0 ||
        epoll_ctl(self->epollFd_, EPOLL_CTL_ADD, self->wakeFd_, &wake) != 0) {
      err = DescribeFailure("watch the events ring buffer", errno);
    }
  }
  if (err.empty()) {
    size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void* mem = mmap(nullptr, 2 * page, PROT_READ, MAP_SHARED, ringFd, 0);
    if (mem == MAP_FAILED) {
      err = DescribeFailure("map the ring buffer positions", errno);
    } else {
      self->positions_ = mem;
      self->positionsLen_ = 2 * page;
    }
  }
  if (!err.empty()) {
    delete self;
    return err;
  }
  *out = self;
  return "";
}

RingSource::~RingSource() {
  if (positions_) munmap(positions_, positionsLen_);
  if (wakeFd_ >= 0) close(wakeFd_);
  if (epollFd_ >= 0) close(epollFd_);
  if (rb_) ring_buffer__free(rb_);
}

void RingSource::Wait(int timeoutMs) {
  epoll_event events[2];
  int n = epoll_wait(epollFd_, events, 2, timeoutMs);
  for (int i = 0; i < n; i++) {
    if (events[i].data.u32 == 1) {
      uint64_t drained;
      while (read(wakeFd_, &drained, sizeof(drained)) > 0) {
      }
    }
  }
}

int RingSource::Consume(Visit visit, void* ctx) {
  visit_ = visit;
  visitCtx_ = ctx;
  int n = ring_buffer__consume(rb_);
  visit_ = nullptr;
  visitCtx_ = nullptr;
  return n == kStop ? 0 : n;
}

void RingSource::Wake() {
  uint64_t one = 1;
  ssize_t ignored = write(wakeFd_, &one, sizeof(one));
  (void)ignored;
}

int RingSource::OnSample(void* ctx, void* data, size_t size) {
  auto* self = static_cast<RingSource*>(ctx);
  return self->visit_(self->visitCtx_, data, size) ? 0 : kStop;
}

uint64_t RingSource::UsedBytes() const {
  size_t page = positionsLen_ / 2;
  const auto* consumer = static_cast<const uint64_t*>(positions_);
  const auto* producer = reinterpret_cast<const uint64_t*>(static_cast<const uint8_t*>(positions_) + page);
  uint64_t c = __atomic_load_n(consumer, __ATOMIC_ACQUIRE);
  uint64_t p = __atomic_load_n(producer, __ATOMIC_ACQUIRE);
  return p >= c ? p - c : 0;
}

}  // namespace kw
