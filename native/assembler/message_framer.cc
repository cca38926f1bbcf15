#include "message_framer.h"

#include <cstring>

#include "assembler.h"

namespace kw {

namespace {

constexpr uint32_t kMaxChunkLine = 4096;
const uint8_t kTerminator[] = {'\r', '\n', '0', '\r', '\n', '\r', '\n'};

int HexValue(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The transfer's last bytes are a blank line: a head that goes past the copied bytes ends there.
bool TailEndsHead(const Transfer& x) {
  const uint64_t n = x.tailLen;
  const uint8_t* t = x.tail;
  if (n >= 4 && t[n - 4] == '\r' && t[n - 3] == '\n' && t[n - 2] == '\r' && t[n - 1] == '\n') return true;
  return n >= 2 && t[n - 2] == '\n' && t[n - 1] == '\n';
}

// A head cut by what was kept is parsed up to its last complete line, or as a cut request line
// when not even that one is complete.
size_t CompleteLines(const uint8_t* b, size_t n) {
  size_t m = n;
  while (m > 0 && b[m - 1] != '\n') m--;
  return m > 0 ? m : n;
}

}  // namespace

void MessageFramer::Init(Side side, bool strictRequests, FramerShared* shared, FramerOwner* owner) {
  Release();
  side_ = side;
  strict_ = side == Side::Response || strictRequests;
  shared_ = shared;
  owner_ = owner;
  state_ = State::Idle;
  bodySize_ = 0;
  recentLen_ = 0;
  lastNs_ = 0;
}

void MessageFramer::Release() {
  ResetHead();
}

void MessageFramer::ResetHead() {
  if (shared_ != nullptr) shared_->headBytesInUse -= buf_.size();
  // Heads span transfers rarely: their memory is given back rather than kept per connection.
  std::vector<uint8_t>().swap(buf_);
  spanning_ = false;
  overflow_ = false;
  headBytes_ = 0;
  methodDone_ = strict_;
  methodPos_ = 0;
  lineDone_ = false;
  lineFrom_ = 0;
  blankFrom_ = 0;
  blank_ = 0;
}

void MessageFramer::Stop() {
  state_ = State::Stopped;
  ResetHead();
}

void MessageFramer::Abandon() {
  if (state_ == State::Stopped) return;
  ResetHead();
  state_ = State::Resync;
}

bool MessageFramer::StartsMessage(const Transfer& x) const {
  uint64_t p = 0;
  while (p < x.captured && (x.data[p] == '\r' || x.data[p] == '\n')) p++;
  if (p >= x.captured) return false;
  const uint8_t* b = x.data + p;
  size_t n = static_cast<size_t>(x.captured - p);
  return side_ == Side::Request ? StartsRequestLine(b, n) : StartsStatusLine(b, n);
}

void MessageFramer::Feed(const Transfer& x) {
  if (state_ == State::Stopped || x.result == 0) return;
  const uint64_t prevNs = lastNs_;
  lastNs_ = x.timeNs;
  if (state_ == State::Resync) {
    if (!StartsMessage(x)) {
      shared_->stats->skippedBytes += x.result;
      return;
    }
    state_ = State::Idle;
  } else if (state_ == State::ChunkedLost && StartsMessage(x)) {
    // The lost body ended with the previous transfer: this one starts the next message.
    Finish(prevNs);
    if (state_ == State::Stopped) return;
  }
  uint64_t p = 0;
  while (p < x.result) {
    switch (state_) {
      case State::Stopped:
        return;
      case State::Resync:
        shared_->stats->skippedBytes += x.result - p;
        p = x.result;
        break;
      case State::Idle: {
        // Empty lines between messages are allowed (RFC 9112 2.2); past the copied bytes the
        // tail may still show them (a CRLF some clients send after a body).
        int c = x.At(p);
        while (c == '\r' || c == '\n') c = x.At(++p);
        if (p >= x.result) break;
        if (p >= x.captured) {
          Fail(Broken::LostStart, nullptr, 0, x, p);
          p = x.result;
          break;
        }
        p = StartMessage(x, p);
        break;
      }
      case State::Head:
        p = ConsumeHead(x, p);
        break;
      case State::Length: {
        uint64_t n = x.result - p < remaining_ ? x.result - p : remaining_;
        p += n;
        remaining_ -= n;
        bodySize_ += n;
        if (remaining_ == 0) Finish(x.timeNs);
        break;
      }
      case State::Chunked:
        p = Chunked(x, p);
        break;
      case State::ChunkedLost:
      case State::Close:
        bodySize_ += x.result - p;
        p = x.result;
        break;
    }
  }
  Remember(x);
  if (state_ == State::ChunkedLost && EndsWithTerminator()) Finish(x.timeNs);
}

uint64_t MessageFramer::StartMessage(const Transfer& x, uint64_t p) {
  const uint8_t* b = x.data + p;
  const size_t n = static_cast<size_t>(x.captured - p);
  headStartNs_ = x.timeNs;
  ResetHead();
  if (side_ == Side::Response) {
    if (!StartsStatusLine(b, n)) {
      if (owner_->OnBareResponse(x.timeNs)) {
        if (state_ == State::Stopped) return x.result;
        bodySize_ = 0;
        state_ = State::Close;
        return p;
      }
      Fail(Broken::NotHttp, nullptr, 0, x, p);
      return x.result;
    }
  } else {
    if (strict_ && !StartsRequestLine(b, n)) {
      Fail(Broken::NotHttp, nullptr, 0, x, p);
      return x.result;
    }
    if (!owner_->OnRequestStart(b, n, x.timeNs) || state_ == State::Stopped) {
      state_ = State::Stopped;
      return x.result;
    }
  }
  state_ = State::Head;
  return p;
}

MessageFramer::Scan MessageFramer::ScanHead(const uint8_t* h, size_t len, size_t* end) {
  if (!methodDone_) {
    // A request line whose method is not text is garbage: nginx answers it without waiting.
    size_t i = methodPos_;
    if (i == 0 && len > 0 && (h[0] == ' ' || h[0] == '\t')) return Scan::Garbage;
    for (; i < len; i++) {
      uint8_t c = h[i];
      if (c == ' ' || c == '\r' || c == '\n') {
        methodDone_ = true;
        break;
      }
      if (c < 0x21 || c > 0x7e) return Scan::Garbage;
    }
    methodPos_ = i;
    if (!methodDone_) return Scan::More;
    lineFrom_ = i;
  }
  if (!lineDone_) {
    const uint8_t* lf = lineFrom_ < len ? static_cast<const uint8_t*>(std::memchr(h + lineFrom_, '\n', len - lineFrom_))
                                        : nullptr;
    if (lf == nullptr) {
      lineFrom_ = len;
      return Scan::More;
    }
    lineDone_ = true;
    size_t lineEnd = static_cast<size_t>(lf - h);
    if (side_ == Side::Request && IsHttp09Line(h, lineEnd)) {
      *end = lineEnd + 1;
      return Scan::Complete;
    }
    blankFrom_ = lineEnd;
  }
  size_t e = FindHeadEnd(h, blankFrom_, len);
  if (e > 0) {
    *end = e;
    return Scan::Complete;
  }
  if (len >= 2 && len - 2 > blankFrom_) blankFrom_ = len - 2;
  return Scan::More;
}

bool MessageFramer::ScanOverflow(const uint8_t* b, size_t n, size_t* end) {
  for (size_t i = 0; i < n; i++) {
    uint8_t c = b[i];
    if (c == '\n') {
      if (blank_ >= 1) {
        *end = i + 1;
        return true;
      }
      blank_ = 1;
    } else if (c == '\r') {
      blank_ = blank_ == 1 ? 2 : 0;
    } else {
      blank_ = 0;
    }
  }
  return false;
}

void MessageFramer::Keep(const uint8_t* b, size_t n, size_t* kept) {
  size_t room = kMaxKeptHead - buf_.size();
  uint64_t budget = shared_->headBytesLimit > shared_->headBytesInUse
                        ? shared_->headBytesLimit - shared_->headBytesInUse
                        : 0;
  size_t k = n < room ? n : room;
  if (k > budget) k = static_cast<size_t>(budget);
  buf_.insert(buf_.end(), b, b + k);
  shared_->headBytesInUse += k;
  *kept = k;
}

uint64_t MessageFramer::ConsumeHead(const Transfer& x, uint64_t p) {
  const uint8_t* b = x.data + p;
  const size_t n = x.captured > p ? static_cast<size_t>(x.captured - p) : 0;
  const bool gap = x.captured < x.result;  // bytes after the captured ones were not copied
  if (!spanning_) {
    // Nearly every head arrives whole in one transfer: parsing it finds its end as well.
    size_t end = 0;
    if (side_ == Side::Request) {
      end = ParseRequestHead(b, n, &shared_->request);
      if (shared_->request.garbage) {
        Fail(Broken::Garbage, b, n, x, p);
        return x.result;
      }
    } else {
      end = ParseResponseHead(b, n, &shared_->response);
    }
    if (end > 0) {
      Dispatch(b, end, end, false, x);
      return p + end;
    }
    // Not all here: the incremental scan follows it across transfers.
    Scan r = ScanHead(b, n, &end);
    if (r == Scan::Complete) {
      Deliver(b, end, end, false, x);
      return p + end;
    }
    if (r == Scan::Garbage) {
      Fail(Broken::Garbage, b, n, x, p);
      return x.result;
    }
    if (gap) return Gap(x, p, b, n, 0);
    spanning_ = true;
    size_t kept = 0;
    Keep(b, n, &kept);
    if (kept < n) {
      overflow_ = true;
      lineDone_ = true;
      blank_ = 0;
      size_t e = 0;
      // The budget ran out at once: the rest of this head is followed by size.
      if (ScanOverflow(b + kept, n - kept, &e)) {
        headBytes_ = kept + e;
        Deliver(buf_.data(), CompleteLines(buf_.data(), buf_.size()), headBytes_, true, x);
        return p + kept + e;
      }
    }
    headBytes_ = n;
    return x.result;
  }
  // The head began in an earlier transfer; this one starts at p == 0 and continues it.
  const uint64_t before = headBytes_;
  size_t kept = 0;
  if (!overflow_) {
    const size_t had = buf_.size();
    Keep(b, n, &kept);
    size_t end = 0;
    Scan r = ScanHead(buf_.data(), buf_.size(), &end);
    if (r == Scan::Complete) {
      const size_t here = end - had;
      headBytes_ = before + here;
      Deliver(buf_.data(), end, headBytes_, false, x);
      return p + here;
    }
    if (r == Scan::Garbage) {
      Fail(Broken::Garbage, buf_.data(), buf_.size(), x, p);
      return x.result;
    }
    if (kept < n) {
      overflow_ = true;
      const size_t len = buf_.size();
      if (!lineDone_) {
        lineDone_ = true;
        blank_ = 0;
      } else if (len >= 1 && buf_[len - 1] == '\n') {
        blank_ = 1;
      } else if (len >= 2 && buf_[len - 2] == '\n' && buf_[len - 1] == '\r') {
        blank_ = 2;
      } else {
        blank_ = 0;
      }
    }
  }
  if (overflow_) {
    size_t e = 0;
    if (ScanOverflow(b + kept, n - kept, &e)) {
      headBytes_ = before + kept + e;
      Deliver(buf_.data(), CompleteLines(buf_.data(), buf_.size()), headBytes_, true, x);
      return p + kept + e;
    }
  }
  headBytes_ = before + n;
  if (gap) return Gap(x, p, buf_.data(), buf_.size(), before);
  return x.result;
}

uint64_t MessageFramer::Gap(const Transfer& x, uint64_t p, const uint8_t* kept, size_t keptLen, uint64_t before) {
  if (x.EndKnown() && TailEndsHead(x)) {
    // What was copied still holds the start line and the first headers; the rest is skipped by size.
    const uint64_t headSize = before + (x.result - p);
    if (!spanning_) {
      Deliver(kept, CompleteLines(kept, keptLen), headSize, true, x);
    } else {
      Deliver(buf_.data(), CompleteLines(buf_.data(), buf_.size()), headSize, true, x);
    }
    return x.result;
  }
  Fail(Broken::LostHead, kept, keptLen, x, p);
  return x.result;
}

void MessageFramer::Deliver(const uint8_t* h, size_t len, uint64_t headSize, bool truncated, const Transfer& x) {
  if (side_ == Side::Request) {
    ParseRequestHead(h, len, &shared_->request);
  } else {
    ParseResponseHead(h, len, &shared_->response);
  }
  Dispatch(h, len, headSize, truncated, x);
}

// The head is parsed (into the shared scratch): hand it to the owner and frame its body. The
// parsed head points into h, which may be the kept copy: it is released once the owner has taken
// what it keeps.
void MessageFramer::Dispatch(const uint8_t* h, size_t len, uint64_t headSize, bool truncated, const Transfer& x) {
  Framing f{BodyKind::None, 0, false};
  if (side_ == Side::Request) {
    f = owner_->OnRequestHead(shared_->request, headSize, truncated, headStartNs_, x.timeNs);
  } else {
    const ResponseHead& head = shared_->response;
    if (!head.valid) {
      state_ = State::Resync;
      owner_->OnBreak(side_, Broken::BadHead, h, len, x.timeNs);
      ResetHead();
      return;
    }
    f = owner_->OnResponseHead(head, headSize, headStartNs_, x.timeNs);
  }
  ResetHead();
  if (state_ == State::Stopped) return;
  if (f.stop) {
    Stop();
    return;
  }
  BeginBody(f, x.timeNs);
}

void MessageFramer::BeginBody(const Framing& f, uint64_t timeNs) {
  bodySize_ = 0;
  switch (f.kind) {
    case BodyKind::None:
      Finish(timeNs);
      return;
    case BodyKind::Length:
      state_ = State::Length;
      remaining_ = f.length;
      return;
    case BodyKind::Chunked:
      state_ = State::Chunked;
      chunk_ = Chunk::Size;
      chunkSize_ = 0;
      chunkLine_ = 0;
      return;
    case BodyKind::Close:
      state_ = State::Close;
      return;
    case BodyKind::Unframeable:
      // Read as far as its head: nginx answers it and closes, so nothing after it is a request
      // unless a later transfer plainly starts one.
      state_ = State::Resync;
      owner_->OnEnd(side_, timeNs, 0);
      return;
  }
}

uint64_t MessageFramer::Chunked(const Transfer& x, uint64_t p) {
  while (p < x.result && state_ == State::Chunked) {
    if (chunk_ == Chunk::Data) {
      uint64_t n = x.result - p < chunkSize_ ? x.result - p : chunkSize_;
      p += n;
      bodySize_ += n;
      chunkSize_ -= n;
      if (chunkSize_ == 0) chunk_ = Chunk::DataEnd;
      continue;
    }
    int c = x.At(p);
    if (c < 0) {
      // Framing bytes that were not copied: from here on only the end of the stream can tell.
      state_ = State::ChunkedLost;
      recentLen_ = 0;
      return p;
    }
    p++;
    bodySize_++;
    if (++chunkLine_ > kMaxChunkLine) {
      Fail(Broken::BadChunk, nullptr, 0, x, p);
      return x.result;
    }
    switch (chunk_) {
      case Chunk::Size: {
        int digit = HexValue(c);
        if (digit >= 0) {
          if (chunkSize_ > 0x7fffffffffull) {
            Fail(Broken::BadChunk, nullptr, 0, x, p);
            return x.result;
          }
          chunkSize_ = chunkSize_ * 16 + static_cast<uint64_t>(digit);
          break;
        }
        if (chunkLine_ == 1) {
          Fail(Broken::BadChunk, nullptr, 0, x, p);
          return x.result;
        }
        if (c == '\n') {
          SizeLineDone();
        } else {
          chunk_ = Chunk::Ext;
        }
        break;
      }
      case Chunk::Ext:
        if (c == '\n') SizeLineDone();
        break;
      case Chunk::DataEnd:
        if (c == '\n') {
          chunk_ = Chunk::Size;
          chunkLine_ = 0;
          chunkSize_ = 0;
        } else if (c != '\r') {
          Fail(Broken::BadChunk, nullptr, 0, x, p);
          return x.result;
        }
        break;
      case Chunk::Trailer:
        if (c == '\n') {
          if (trailerEmpty_) {
            Finish(x.timeNs);
            return p;
          }
          trailerEmpty_ = true;
          chunkLine_ = 0;
        } else if (c != '\r') {
          trailerEmpty_ = false;
        }
        break;
      case Chunk::Data:
        break;
    }
  }
  return p;
}

void MessageFramer::SizeLineDone() {
  chunkLine_ = 0;
  if (chunkSize_ == 0) {
    chunk_ = Chunk::Trailer;
    trailerEmpty_ = true;
  } else {
    chunk_ = Chunk::Data;
  }
}

void MessageFramer::Finish(uint64_t timeNs) {
  state_ = State::Idle;
  const uint64_t size = bodySize_;
  bodySize_ = 0;
  owner_->OnEnd(side_, timeNs, size);
}

void MessageFramer::Fail(Broken why, const uint8_t* partial, size_t n, const Transfer& x, uint64_t p) {
  state_ = State::Resync;
  shared_->stats->skippedBytes += x.result - p;
  owner_->OnBreak(side_, why, partial, n, x.timeNs);
  // Released after the call: `partial` may be the kept head itself.
  ResetHead();
}

bool MessageFramer::Close() {
  if (state_ == State::Close || state_ == State::ChunkedLost) {
    Finish(lastNs_);
    return true;
  }
  return false;
}

void MessageFramer::EndLostBody() {
  if (state_ == State::ChunkedLost) Finish(lastNs_);
}

// Keeps the last 16 bytes the stream moved, from whichever part of the transfer holds them. Only
// a lost chunked body looks at them, and the transfer that loses the framing has unknown bytes,
// so bytes from before it never count: nothing to keep in other states.
void MessageFramer::Remember(const Transfer& x) {
  if (state_ != State::ChunkedLost) return;
  const uint64_t n = x.tailLen;
  if (n == 0) {
    recentLen_ = 0;
    return;
  }
  if (n >= 16) {
    std::memcpy(recent_, x.tail + (n - 16), 16);
    recentLen_ = 16;
    return;
  }
  // Bytes from before this transfer are adjacent only when the whole transfer is known.
  size_t keep = n == x.result ? (recentLen_ < 16 - n ? recentLen_ : 16 - n) : 0;
  std::memmove(recent_, recent_ + (recentLen_ - keep), keep);
  std::memcpy(recent_ + keep, x.tail, n);
  recentLen_ = static_cast<uint8_t>(keep + n);
}

bool MessageFramer::EndsWithTerminator() const {
  const size_t n = recentLen_;
  if (n < sizeof kTerminator) {
    // "0\r\n\r\n" alone: an empty last chunk that began in an unseen region.
    return n == 5 && std::memcmp(recent_, kTerminator + 2, 5) == 0;
  }
  return std::memcmp(recent_ + n - sizeof kTerminator, kTerminator, sizeof kTerminator) == 0;
}

}  // namespace kw
