#include "hpack.h"

#include <cstdlib>
#include <cstring>

namespace kw {

namespace {

// Every block carries its size class ahead of it, 16 bytes to keep malloc's alignment.
struct BlockHead {
  uint32_t cls;  // size class, or kLarge
  uint32_t size;
  uint64_t pad;
};
constexpr uint32_t kLarge = 0xffffffffu;
constexpr size_t kSmallest = 32;
// Free blocks kept per class: at most 256 KiB each.
constexpr size_t kKeptBytesPerClass = 256 * 1024;

int ClassOf(size_t n) {
  size_t size = kSmallest;
  for (int c = 0; c < 8; c++, size <<= 1) {
    if (n <= size) return c;
  }
  return -1;
}

size_t ClassSize(int c) { return kSmallest << c; }

void* MemMalloc(size_t n, void* user) { return static_cast<HpackMemory*>(user)->Alloc(n); }
void MemFree(void* p, void* user) { static_cast<HpackMemory*>(user)->Free(p); }
void* MemCalloc(size_t count, size_t n, void* user) {
  if (n != 0 && count > SIZE_MAX / n) return nullptr;
  void* p = static_cast<HpackMemory*>(user)->Alloc(count * n);
  if (p != nullptr) std::memset(p, 0, count * n);
  return p;
}
void* MemRealloc(void* p, size_t n, void* user) { return static_cast<HpackMemory*>(user)->Realloc(p, n); }

// RFC 7541 5.1: an integer with an N-bit prefix at b[*at].
bool ReadInt(const uint8_t* b, size_t n, size_t* at, int prefixBits, uint32_t* out) {
  if (*at >= n) return false;
  const uint32_t mask = (1u << prefixBits) - 1;
  uint32_t v = b[(*at)++] & mask;
  if (v < mask) {
    *out = v;
    return true;
  }
  for (int shift = 0; shift <= 21; shift += 7) {
    if (*at >= n) return false;
    const uint8_t c = b[(*at)++];
    v += static_cast<uint32_t>(c & 0x7f) << shift;
    if ((c & 0x80) == 0) {
      *out = v;
      return true;
    }
  }
  return false;
}

void WriteInt(std::vector<uint8_t>* out, uint8_t first, int prefixBits, uint32_t v) {
  const uint32_t mask = (1u << prefixBits) - 1;
  if (v < mask) {
    out->push_back(static_cast<uint8_t>(first | v));
    return;
  }
  out->push_back(static_cast<uint8_t>(first | mask));
  v -= mask;
  while (v >= 0x80) {
    out->push_back(static_cast<uint8_t>(0x80 | (v & 0x7f)));
    v >>= 7;
  }
  out->push_back(static_cast<uint8_t>(v));
}

// A string literal (H bit, 7-bit prefix length, bytes) at b[*at]: [*from, *at) after the call.
bool SkipString(const uint8_t* b, size_t n, size_t* at, size_t* from) {
  *from = *at;
  uint32_t len = 0;
  if (!ReadInt(b, n, at, 7, &len) || len > n - *at) return false;
  *at += len;
  return true;
}

constexpr uint32_t kStaticEntries = 61;

HpackRole RoleOfIndex(uint32_t index) {
  if (index >= 1 && index <= 7) return HpackRole::Request;    // :authority, :method, :path, :scheme
  if (index >= 8 && index <= 14) return HpackRole::Response;  // :status
  return HpackRole::Unknown;
}

}  // namespace

HpackMemory::HpackMemory() {
  mem_.mem_user_data = this;
  mem_.malloc = MemMalloc;
  mem_.free = MemFree;
  mem_.calloc = MemCalloc;
  mem_.realloc = MemRealloc;
}

HpackMemory::~HpackMemory() {
  for (auto& list : free_) {
    for (void* p : list) std::free(p);
  }
}

void* HpackMemory::Alloc(size_t n) {
  const int c = ClassOf(n);
  const size_t bytes = c >= 0 ? ClassSize(c) : n;
  if (inUse_ > limit_ || bytes > limit_ - inUse_ || bytes > UINT32_MAX) return nullptr;
  BlockHead* h;
  if (c >= 0 && !free_[c].empty()) {
    h = static_cast<BlockHead*>(free_[c].back());
    free_[c].pop_back();
  } else {
    h = static_cast<BlockHead*>(std::malloc(sizeof(BlockHead) + bytes));
    if (h == nullptr) return nullptr;
  }
  h->cls = c >= 0 ? static_cast<uint32_t>(c) : kLarge;
  h->size = static_cast<uint32_t>(bytes);
  inUse_ += bytes;
  return h + 1;
}

void HpackMemory::Free(void* p) {
  if (p == nullptr) return;
  BlockHead* h = static_cast<BlockHead*>(p) - 1;
  inUse_ -= h->size;
  if (h->cls != kLarge && free_[h->cls].size() * ClassSize(static_cast<int>(h->cls)) < kKeptBytesPerClass) {
    free_[h->cls].push_back(h);
    return;
  }
  std::free(h);
}

void* HpackMemory::Realloc(void* p, size_t n) {
  if (p == nullptr) return Alloc(n);
  BlockHead* h = static_cast<BlockHead*>(p) - 1;
  if (h->cls != kLarge && n <= h->size) return p;
  void* next = Alloc(n);
  if (next == nullptr) return nullptr;
  std::memcpy(next, p, h->size < n ? h->size : n);
  Free(p);
  return next;
}

HpackShared::HpackShared() { nghttp2_hd_inflate_new2(&staticInflater, memory.Mem()); }

HpackShared::~HpackShared() {
  if (staticInflater != nullptr) nghttp2_hd_inflate_del(staticInflater);
}

void HpackDecoder::Init(HpackShared* shared, bool known) {
  Release();
  shared_ = shared;
  inBlock_ = blockFailed_ = blockCut_ = false;
  inflater_ = nullptr;
  limit_ = 4096;
  if (!known) return;  // the caller counts the connection
  if (nghttp2_hd_inflate_new2(&inflater_, shared->memory.Mem()) != 0) {
    inflater_ = nullptr;
    (*shared_->lost)++;
  }
}

void HpackDecoder::Release() {
  if (inflater_ != nullptr) nghttp2_hd_inflate_del(inflater_);
  inflater_ = nullptr;
  std::vector<uint8_t>().swap(block_);
}

void HpackDecoder::Unknown() {
  if (inflater_ == nullptr) return;
  nghttp2_hd_inflate_del(inflater_);
  inflater_ = nullptr;
  (*shared_->lost)++;
}

void HpackDecoder::SetTableLimit(uint32_t size) {
  if (inflater_ == nullptr) return;
  // Called between blocks; a table larger than the bound is followed up to the bound, and an
  // encoder that goes past it makes the table unknown (its size update fails to decode).
  limit_ = size < kMaxHpackTable ? size : kMaxHpackTable;
  if (nghttp2_hd_inflate_change_table_size(inflater_, limit_) != 0) Unknown();
}

void HpackDecoder::LoseBlock() {
  Unknown();
  inBlock_ = false;
  blockFailed_ = false;
  blockCut_ = false;
  block_.clear();
}

void HpackDecoder::Feed(const uint8_t* p, size_t n, bool last, HpackSink* sink) {
  if (!inBlock_ && inflater_ != nullptr) {
    // Size updates open a block: one past what is followed makes the table unknown before this
    // block, which is then read from the static table whole.
    size_t at = 0;
    uint32_t size = 0;
    while (at < n && (p[at] & 0xe0) == 0x20 && ReadInt(p, n, &at, 5, &size)) {
      if (size > limit_) {
        Unknown();
        break;
      }
    }
  }
  inBlock_ = true;
  if (inflater_ == nullptr || blockFailed_) {
    if (blockFailed_ && last) {
      blockFailed_ = false;
      inBlock_ = false;
      return;
    }
    if (blockFailed_) return;
    FeedStatic(p, n, last, sink);
    return;
  }
  for (;;) {
    nghttp2_nv nv;
    int flags = 0;
    const ssize_t used = nghttp2_hd_inflate_hd2(inflater_, &nv, &flags, p, n, last ? 1 : 0);
    if (used < 0) {
      // A block the table cannot follow (corrupt, or a table past the bound): the rest of it is
      // skipped, and later blocks are read from the static table only.
      Unknown();
      blockFailed_ = !last;
      if (last) inBlock_ = false;
      return;
    }
    p += used;
    n -= static_cast<size_t>(used);
    if (flags & NGHTTP2_HD_INFLATE_EMIT) sink->Field(nv.name, nv.namelen, nv.value, nv.valuelen);
    if (flags & NGHTTP2_HD_INFLATE_FINAL) {
      nghttp2_hd_inflate_end_headers(inflater_);
      inBlock_ = false;
      return;
    }
    if ((flags & NGHTTP2_HD_INFLATE_EMIT) == 0 && n == 0) return;
  }
}

void HpackDecoder::FeedStatic(const uint8_t* p, size_t n, bool last, HpackSink* sink) {
  const size_t room = kMaxStaticBlock - block_.size();
  if (n > room) {
    blockCut_ = true;
    n = room;
  }
  block_.insert(block_.end(), p, p + n);
  if (!last) return;
  inBlock_ = false;
  std::vector<uint8_t>& out = shared_->rewritten;
  out.clear();
  RewriteStatic(block_.data(), block_.size(), &out);
  block_.clear();
  blockCut_ = false;
  if (shared_->staticInflater == nullptr) nghttp2_hd_inflate_new2(&shared_->staticInflater, shared_->memory.Mem());
  nghttp2_hd_inflater* inf = shared_->staticInflater;
  if (inf == nullptr) return;  // out of HPACK memory: this block's fields are not seen
  const uint8_t* b = out.data();
  size_t left = out.size();
  for (;;) {
    nghttp2_nv nv;
    int flags = 0;
    const ssize_t used = nghttp2_hd_inflate_hd2(inf, &nv, &flags, b, left, 1);
    if (used < 0) {
      // A bad literal, or out of HPACK memory: the next block starts afresh.
      nghttp2_hd_inflate_del(inf);
      shared_->staticInflater = nullptr;
      return;
    }
    b += used;
    left -= static_cast<size_t>(used);
    if (flags & NGHTTP2_HD_INFLATE_EMIT) sink->Field(nv.name, nv.namelen, nv.value, nv.valuelen);
    if (flags & NGHTTP2_HD_INFLATE_FINAL) {
      nghttp2_hd_inflate_end_headers(inf);
      return;
    }
    if ((flags & NGHTTP2_HD_INFLATE_EMIT) == 0 && left == 0) return;
  }
}

bool RewriteStatic(const uint8_t* b, size_t n, std::vector<uint8_t>* out) {
  size_t at = 0;
  while (at < n) {
    const uint8_t c = b[at];
    uint32_t index = 0;
    if (c & 0x80) {
      if (!ReadInt(b, n, &at, 7, &index) || index == 0) return false;
      if (index <= kStaticEntries) WriteInt(out, 0x80, 7, index);
      continue;
    }
    if ((c & 0xe0) == 0x20) {  // dynamic table size update
      if (!ReadInt(b, n, &at, 5, &index)) return false;
      continue;
    }
    // literal: with incremental indexing (6-bit name index), or without / never indexed (4-bit)
    if (!ReadInt(b, n, &at, (c & 0x40) ? 6 : 4, &index)) return false;
    size_t nameFrom = 0;
    size_t nameTo = 0;
    if (index == 0) {
      if (!SkipString(b, n, &at, &nameFrom)) return false;
      nameTo = at;
    }
    size_t valueFrom = 0;
    if (!SkipString(b, n, &at, &valueFrom)) return false;
    if (index > kStaticEntries) continue;  // its name is in the dynamic table
    WriteInt(out, 0x00, 4, index);
    if (index == 0) out->insert(out->end(), b + nameFrom, b + nameTo);
    out->insert(out->end(), b + valueFrom, b + at);
  }
  return true;
}

HpackRole PeekHeaderBlock(const uint8_t* b, size_t n) {
  size_t at = 0;
  for (int field = 0; field < 8 && at < n; field++) {
    const uint8_t c = b[at];
    uint32_t index = 0;
    if (c & 0x80) {
      if (!ReadInt(b, n, &at, 7, &index)) return HpackRole::Unknown;
      const HpackRole role = RoleOfIndex(index);
      if (role != HpackRole::Unknown) return role;
      continue;
    }
    if ((c & 0xe0) == 0x20) {
      if (!ReadInt(b, n, &at, 5, &index)) return HpackRole::Unknown;
      field--;
      continue;
    }
    if (!ReadInt(b, n, &at, (c & 0x40) ? 6 : 4, &index)) return HpackRole::Unknown;
    size_t from = 0;
    if (index == 0) {
      if (!SkipString(b, n, &at, &from)) return HpackRole::Unknown;
      // a name sent as plain text (H bit clear): ":method" or ":status" tell
      const size_t len = at - from - 1;
      if ((b[from] & 0x80) == 0 && len == 7 && std::memcmp(b + from + 1, ":method", 7) == 0) return HpackRole::Request;
      if ((b[from] & 0x80) == 0 && len == 7 && std::memcmp(b + from + 1, ":status", 7) == 0) return HpackRole::Response;
    }
    if (!SkipString(b, n, &at, &from)) return HpackRole::Unknown;
    const HpackRole role = RoleOfIndex(index);
    if (role != HpackRole::Unknown) return role;
  }
  return HpackRole::Unknown;
}

}  // namespace kw
