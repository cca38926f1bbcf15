#include "h2_frame.h"

#include <cstring>

#include "hpack.h"

namespace kw {

namespace {

// Flags each type defines; anything else set means the bytes are not a frame header.
uint8_t DefinedFlags(uint8_t type) {
  switch (type) {
    case kH2Data:
      return kH2EndStream | kH2Padded;
    case kH2Headers:
      return kH2EndStream | kH2EndHeaders | kH2Padded | kH2PriorityFlag;
    case kH2Settings:
    case kH2Ping:
      return kH2Ack;
    case kH2PushPromise:
      return kH2EndHeaders | kH2Padded;
    case kH2Continuation:
      return kH2EndHeaders;
    default:
      return 0;
  }
}

// Largest frame taken as plausible when sniffing: peers rarely raise SETTINGS_MAX_FRAME_SIZE past
// a megabyte, and random bytes often read as a huge length.
constexpr uint32_t kSniffMaxLength = 1u << 20;

}  // namespace

bool StartsWithPreface(const uint8_t* b, size_t n) {
  if (n < 4) return false;
  const size_t m = n < kH2PrefaceLen ? n : kH2PrefaceLen;
  return std::memcmp(b, kH2Preface, m) == 0;
}

bool PlausibleFrameHead(const H2FrameHead& h, uint32_t maxLength) {
  if (h.length > maxLength) return false;
  if (h.type > kH2Continuation) return true;
  if ((h.flags & ~DefinedFlags(h.type)) != 0) return false;
  switch (h.type) {
    case kH2Data:
    case kH2Headers:
    case kH2Continuation:
      return h.streamId != 0;
    case kH2Priority:
      return h.streamId != 0 && h.length == 5;
    case kH2RstStream:
      return h.streamId != 0 && h.length == 4;
    case kH2Settings:
      return h.streamId == 0 && h.length % 6 == 0 && ((h.flags & kH2Ack) == 0 || h.length == 0);
    case kH2PushPromise:
      return h.streamId != 0 && h.length >= 4;
    case kH2Ping:
      return h.streamId == 0 && h.length == 8;
    case kH2Goaway:
      return h.streamId == 0 && h.length >= 8;
    case kH2WindowUpdate:
      return h.length == 4;
  }
  return false;
}

H2Sniff SniffFrames(const Transfer& x) {
  H2Sniff out;
  uint64_t p = 0;
  int frames = 0;
  while (p < x.result) {
    if (p + kH2FrameHeadLen > x.captured) return out;  // a header not copied: no telling
    const H2FrameHead h = ReadFrameHead(x.data + p);
    if (h.type > kH2Continuation || !PlausibleFrameHead(h, kSniffMaxLength)) return out;
    frames++;
    const uint64_t payload = p + kH2FrameHeadLen;
    if (h.type == kH2Headers && payload + h.length <= x.captured) {
      uint64_t skip = 0;
      if (h.flags & kH2Padded) skip++;
      if (h.flags & kH2PriorityFlag) skip += 5;
      if (skip < h.length) {
        const HpackRole role = PeekHeaderBlock(x.data + payload + skip, h.length - skip);
        out.request = out.request || role == HpackRole::Request;
        out.response = out.response || role == HpackRole::Response;
      }
    }
    p = payload + h.length;
  }
  // Frames that end exactly where the transfer ends; a transfer whose middle was not copied must
  // at least have shown two whole frames.
  out.frames = p == x.result && (x.captured == x.result ? frames >= 1 : frames >= 2);
  return out;
}

}  // namespace kw
