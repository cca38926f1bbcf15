#include "h2_framer.h"

namespace kw {

namespace {

bool IsBlockFrame(uint8_t type) { return type == kH2Headers || type == kH2PushPromise || type == kH2Continuation; }

bool HasPadding(const H2FrameHead& h) {
  return (h.type == kH2Data || h.type == kH2Headers || h.type == kH2PushPromise) && (h.flags & kH2Padded) != 0;
}

// Payload bytes between the pad length and the content: the priority fields of HEADERS, the
// promised stream id of PUSH_PROMISE.
uint32_t PrefixOf(const H2FrameHead& h) {
  if (h.type == kH2Headers && (h.flags & kH2PriorityFlag)) return 5;
  if (h.type == kH2PushPromise) return 4;
  return 0;
}

}  // namespace

void H2Framer::Init(Side side, bool preface, H2FramerOwner* owner) {
  side_ = side;
  owner_ = owner;
  state_ = preface ? State::Preface : State::Head;
  prefaceGot_ = 0;
  headGot_ = 0;
}

void H2Framer::Lose(uint64_t timeNs) {
  state_ = State::Stopped;
  owner_->OnFramingLost(side_, timeNs);
}

void H2Framer::Begin(uint64_t timeNs) {
  frame_ = ReadFrameHead(head_);
  if (!PlausibleFrameHead(frame_, 0xffffff)) {
    Lose(timeNs);  // not a frame header: the bytes are out of step, or not HTTP/2
    return;
  }
  dataBytes_ = 0;
  controlGot_ = 0;
  settingGot_ = 0;
  padLen_ = 0;
  owner_->OnFrameHead(side_, frame_, headNs_);
  if (state_ == State::Stopped) return;
  if (HasPadding(frame_)) {
    if (frame_.length == 0) {
      Lose(timeNs);  // no room for its pad length
      return;
    }
    left_ = 1;
    state_ = State::PadLength;
    return;
  }
  const uint32_t prefix = PrefixOf(frame_);
  if (prefix > frame_.length) {
    Lose(timeNs);
    return;
  }
  content_ = frame_.length - prefix;
  left_ = prefix;
  Enter(State::Prefix, timeNs);
}

void H2Framer::AfterPadLength() {
  // content_ is set by the caller: length - 1 - prefix - padding
  left_ = PrefixOf(frame_);
  state_ = State::Prefix;
}

// Moves on from a part that is over (left_ == 0), through parts that are empty.
void H2Framer::Enter(State next, uint64_t timeNs) {
  state_ = next;
  for (;;) {
    if (left_ > 0 || state_ == State::Stopped) return;
    switch (state_) {
      case State::Prefix:
        state_ = State::Content;
        left_ = content_;
        break;
      case State::Content:
        state_ = State::Padding;
        left_ = padLen_;
        break;
      case State::Padding:
        End(timeNs);
        return;
      default:
        return;
    }
  }
}

void H2Framer::End(uint64_t timeNs) {
  state_ = State::Head;
  headGot_ = 0;
  owner_->OnFrameEnd(side_, frame_, dataBytes_, control_, timeNs);
}

// The content part from p: how far it got.
uint64_t H2Framer::Content(const Transfer& x, uint64_t p) {
  const uint64_t avail = x.result - p;
  const uint32_t n = static_cast<uint32_t>(avail < left_ ? avail : left_);
  const uint8_t type = frame_.type;
  if (type == kH2Data || !(IsBlockFrame(type) || type == kH2Settings || type == kH2RstStream || type == kH2Goaway)) {
    // skipped by length, copied or not
    if (type == kH2Data) dataBytes_ += n;
    left_ -= n;
    return p + n;
  }
  if (IsBlockFrame(type)) {
    // whole runs of copied bytes: from data[], or from the tail when the end is there
    const uint8_t* b = nullptr;
    uint64_t run = 0;
    if (p < x.captured) {
      b = x.data + p;
      run = x.captured - p;
    } else if (x.tailLen > 0 && p >= x.result - x.tailLen) {
      b = x.tail + (p - (x.result - x.tailLen));
      run = x.result - p;
    }
    if (b == nullptr) {
      Lose(x.timeNs);
      return x.result;
    }
    const uint32_t k = static_cast<uint32_t>(run < n ? run : n);
    left_ -= k;
    owner_->OnBlockFragment(side_, b, k);
    return p + k;
  }
  // SETTINGS parameters, the first 8 bytes of RST_STREAM / GOAWAY: each byte is needed
  for (uint32_t i = 0; i < n; i++) {
    const int c = x.At(p + i);
    if (type == kH2Goaway && controlGot_ >= 8) break;  // its debug data: skipped
    if (c < 0) {
      Lose(x.timeNs);
      return x.result;
    }
    if (type == kH2Settings) {
      setting_[settingGot_++] = static_cast<uint8_t>(c);
      if (settingGot_ == 6) {
        settingGot_ = 0;
        owner_->OnSetting(side_, static_cast<uint16_t>(setting_[0] << 8 | setting_[1]), ReadU32(setting_ + 2));
        if (state_ == State::Stopped) return x.result;
      }
    } else if (controlGot_ < 8) {
      control_[controlGot_++] = static_cast<uint8_t>(c);
    }
  }
  left_ -= n;
  return p + n;
}

void H2Framer::Feed(const Transfer& x) {
  uint64_t p = 0;
  while (p < x.result) {
    switch (state_) {
      case State::Stopped:
        return;
      case State::Preface: {
        const int c = x.At(p);
        if (c < 0 || c != static_cast<uint8_t>(kH2Preface[prefaceGot_])) {
          Lose(x.timeNs);
          return;
        }
        p++;
        if (++prefaceGot_ == kH2PrefaceLen) state_ = State::Head;
        break;
      }
      case State::Head: {
        if (headGot_ == 0) {
          headNs_ = x.timeNs;
          if (p + kH2FrameHeadLen <= x.captured) {
            // the usual case: the whole header in copied bytes
            for (size_t i = 0; i < kH2FrameHeadLen; i++) head_[i] = x.data[p + i];
            headGot_ = kH2FrameHeadLen;
            p += kH2FrameHeadLen;
          }
        }
        while (headGot_ < kH2FrameHeadLen && p < x.result) {
          const int c = x.At(p);
          if (c < 0) {
            Lose(x.timeNs);
            return;
          }
          head_[headGot_++] = static_cast<uint8_t>(c);
          p++;
        }
        if (headGot_ < kH2FrameHeadLen) break;
        Begin(x.timeNs);
        break;
      }
      case State::PadLength: {
        const int c = x.At(p);
        p++;
        const uint32_t prefix = PrefixOf(frame_);
        if (c < 0) {
          if (frame_.type != kH2Data) {
            Lose(x.timeNs);
            return;
          }
          padLen_ = 0;  // not copied: the padding is counted as data
        } else {
          padLen_ = static_cast<uint32_t>(c);
        }
        if (1 + prefix + padLen_ > frame_.length) {
          Lose(x.timeNs);  // padding longer than the frame: a protocol error, and no telling where it ends
          return;
        }
        content_ = frame_.length - 1 - prefix - padLen_;
        left_ = 0;
        AfterPadLength();
        Enter(State::Prefix, x.timeNs);
        break;
      }
      case State::Prefix:
      case State::Padding: {
        const uint64_t avail = x.result - p;
        const uint32_t n = static_cast<uint32_t>(avail < left_ ? avail : left_);
        p += n;
        left_ -= n;
        Enter(state_, x.timeNs);
        break;
      }
      case State::Content:
        p = Content(x, p);
        if (state_ == State::Content) Enter(State::Content, x.timeNs);
        break;
    }
  }
}

}  // namespace kw
