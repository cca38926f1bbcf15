// HPACK (RFC 7541) header blocks -> header fields, with nghttp2's inflater: one per connection and
// direction, fed the block's fragments in order as the frames bring them (a block may span
// transfers), its dynamic table bounded by the peer's acknowledged SETTINGS_HEADER_TABLE_SIZE
// and by kMaxHpackTable.
//
// A table whose history is unknown (a connection older than the agent, a block the kernel did not
// copy, a table past the bound) cannot resolve references to it. Such a direction is decoded from
// what a block says by itself: its static-table references and its literals, with references to
// the dynamic table left out (the fields they stand for are not seen).
//
// nghttp2 allocates per literal and per table entry: it is given an allocator that reuses blocks,
// so that steady traffic does not reach malloc.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kw {

// Largest dynamic table followed; a peer may allow more, an encoder that uses more is not followed.
constexpr uint32_t kMaxHpackTable = 65536;
// Largest header block kept for a static-table decode (a table with unknown history).
constexpr size_t kMaxStaticBlock = 65536;
// Reusable blocks for nghttp2 by size class, bounded; larger ones go to malloc. At most `limit`
// bytes are handed out at once (every decoder of one assembler: tables, strings being decoded):
// past it an allocation fails, and the decoder that asked goes on from the static table.
class HpackMemory {
 public:
  HpackMemory();
  void SetLimit(size_t bytes) { limit_ = bytes; }
  ~HpackMemory();
  HpackMemory(const HpackMemory&) = delete;
  HpackMemory& operator=(const HpackMemory&) = delete;
  nghttp2_mem* Mem() { return &mem_; }

  void* Alloc(size_t n);
  void Free(void* p);
  void* Realloc(void* p, size_t n);

 private:
  static constexpr int kClasses = 8;  // 32 B .. 4 KiB
  nghttp2_mem mem_;
  std::vector<void*> free_[kClasses];
  size_t inUse_ = 0;  // bytes handed out
  size_t limit_ = 64u << 20;
};

// Receives the fields of a block, name and value valid during the call only.
class HpackSink {
 public:
  virtual ~HpackSink() = default;
  virtual void Field(const uint8_t* name, size_t nameLen, const uint8_t* value, size_t valueLen) = 0;
};

// What every decoder of one assembler shares (one thread).
struct HpackShared {
  HpackShared();
  ~HpackShared();
  HpackShared(const HpackShared&) = delete;
  HpackShared& operator=(const HpackShared&) = delete;

  HpackMemory memory;  // first: destroyed last
  // Decodes rewritten blocks that never touch the dynamic table, for every connection.
  nghttp2_hd_inflater* staticInflater = nullptr;
  std::vector<uint8_t> rewritten;
  uint64_t* lost = nullptr;  // AssemblerStats::hpackLost
};

class HpackDecoder {
 public:
  HpackDecoder() = default;
  ~HpackDecoder() { Release(); }
  HpackDecoder(const HpackDecoder&) = delete;
  HpackDecoder& operator=(const HpackDecoder&) = delete;

  // known: the table's whole history will be seen (the connection's first bytes were seen).
  void Init(HpackShared* shared, bool known);
  void Release();

  // The next bytes of the block being decoded; `last`: the block ends with them.
  void Feed(const uint8_t* p, size_t n, bool last, HpackSink* sink);
  // The block being decoded went through bytes that were not copied: its fields are not seen, and
  // the table's history is unknown from now on.
  void LoseBlock();
  // The decoding side's SETTINGS_HEADER_TABLE_SIZE, once the encoding side acknowledged it.
  void SetTableLimit(uint32_t size);
  bool Known() const { return inflater_ != nullptr; }

 private:
  void Unknown();
  void FeedStatic(const uint8_t* p, size_t n, bool last, HpackSink* sink);

  HpackShared* shared_ = nullptr;
  nghttp2_hd_inflater* inflater_ = nullptr;  // nullptr: the table's history is unknown
  bool inBlock_ = false;
  bool blockFailed_ = false;  // the rest of the block being decoded is skipped
  bool blockCut_ = false;     // static decode: the block was longer than kMaxStaticBlock
  uint32_t limit_ = 4096;     // the table size the encoder may use (acknowledged SETTINGS, bounded)
  std::vector<uint8_t> block_;  // static decode: the block so far
};

enum class HpackRole : uint8_t { Unknown, Request, Response };
// Whether a block (whole or its start) is a request's or a response's, from its first pseudo-header
// field that does not reference the dynamic table. Nothing is decoded, nothing allocated.
HpackRole PeekHeaderBlock(const uint8_t* b, size_t n);
// A block rewritten to reference the static table only: fields that reference the dynamic table are
// dropped, literals are kept and never indexed, size updates dropped. false when b is malformed
// (out holds the fields before the fault).
bool RewriteStatic(const uint8_t* b, size_t n, std::vector<uint8_t>* out);

}  // namespace kw
