#include "h2_session.h"

#include <cstring>

#include "connection.h"
#include "context.h"
#include "exchange.h"
#include "exchange_fill.h"

namespace kw {

namespace {

// Un-acknowledged SETTINGS frames remembered per side (peers send one or two).
constexpr size_t kMaxPendingSettings = 8;
constexpr size_t kMaxMethodText = KW_MAX_METHOD_TEXT;
constexpr size_t kMaxTarget = KW_MAX_TARGET;
// A saved block larger than this is given back once the block is over.
constexpr size_t kMaxRetainedSaved = 1024;
const uint8_t kNoBytes[1] = {0};

template <size_t N>
bool Is(const uint8_t* name, size_t n, const char (&lit)[N]) {
  return n == N - 1 && std::memcmp(name, lit, N - 1) == 0;
}

uint16_t ParseStatus(const uint8_t* v, size_t n) {
  if (n != 3) return 0;
  uint16_t x = 0;
  for (size_t i = 0; i < 3; i++) {
    if (v[i] < '0' || v[i] > '9') return 0;
    x = static_cast<uint16_t>(x * 10 + (v[i] - '0'));
  }
  return x >= 100 ? x : 0;
}

void PutU16(std::vector<uint8_t>* out, uint16_t v) {
  out->push_back(static_cast<uint8_t>(v));
  out->push_back(static_cast<uint8_t>(v >> 8));
}

}  // namespace

void H2Session::Start(Context* ctx, Connection* conn, bool server, bool preface) {
  ctx_ = ctx;
  conn_ = conn;
  server_ = server;
  lost_ = false;
  framer_[0].Init(Side::Request, preface, this);
  framer_[1].Init(Side::Response, false, this);
  decoder_[0].Init(&ctx->hpack, preface);
  decoder_[1].Init(&ctx->hpack, preface);
  // Without the first bytes, the tables' history is unknown: one count per connection.
  if (!preface) ctx->stats.hpackLost++;
  for (Block& b : block_) b.active = false;
  streams_.clear();
  lastRequestStream_ = 0;
  goawayLastId_ = 0x7fffffffu;
  for (int i = 0; i < 2; i++) {
    settingHasTable_[i] = false;
    pending_[i].clear();
  }
  opened_ = 0;
  lastOpenNs_ = 0;
}

void H2Session::Feed(const Transfer& x, bool requestSide) {
  if (lost_) return;
  const Side side = requestSide ? Side::Request : Side::Response;
  Block& b = block_[Index(side)];
  if (b.active) ClaimScratch(b, false);
  framer_[Index(side)].Feed(x);
  // A block that goes on in a later transfer keeps its fields while other blocks use the scratch.
  if (!lost_ && b.active) SaveScratch(b);
}

H2Session::Stream* H2Session::Find(uint32_t id) {
  for (Stream& s : streams_) {
    if (s.id == id) return &s;
  }
  return nullptr;
}

H2Session::Stream* H2Session::Open(uint32_t id, uint64_t startNs) {
  if (streams_.size() >= ctx_->options.maxPendingPerConnection || id > goawayLastId_) {
    // Over the bound, or refused by a GOAWAY already sent: counted, never reported.
    ctx_->stats.droppedRequests++;
    return nullptr;
  }
  Stream s;
  s.id = id;
  s.ex = conn_->NewExchange(server_ ? KW_FRAME_SERVER : KW_FRAME_CLIENT, startNs);
  s.ex->f.conn_request = ++opened_;  // the connection's streams in order (a preface is no request)
  s.ex->f.stream_id = id;
  s.ex->f.http_version = 20;
  // nginx runs the streams of one read one after the other
  s.ex->queued = server_ && opened_ > 1 && startNs == lastOpenNs_;
  lastOpenNs_ = startNs;
  streams_.push_back(s);
  return &streams_.back();
}

void H2Session::Close(Stream* s) {
  *s = streams_.back();
  streams_.pop_back();
}

void H2Session::Complete(Stream* s, uint64_t endNs, uint8_t error) {
  Exchange* ex = s->ex;
  Close(s);
  conn_->Report(ex, endNs, error);
}

void H2Session::Drop(Stream* s, bool counted) {
  Exchange* ex = s->ex;
  Close(s);
  if (counted) ctx_->stats.droppedRequests++;
  conn_->DiscardExchange(ex);
}

void H2Session::OnFrameHead(Side side, const H2FrameHead& h, uint64_t firstNs) {
  Block& b = block_[Index(side)];
  if (b.active) {
    // A header block is frames in a row: only its CONTINUATIONs may come before it ends.
    if (h.type != kH2Continuation || h.streamId != b.streamId) {
      ProtocolError(firstNs);
      return;
    }
    b.wireSize += kH2FrameHeadLen + h.length;
    return;
  }
  if (h.type == kH2Continuation) {
    ProtocolError(firstNs);
    return;
  }
  if (h.type == kH2Headers || h.type == kH2PushPromise) BeginBlock(side, h, firstNs);
}

void H2Session::BeginBlock(Side side, const H2FrameHead& h, uint64_t firstNs) {
  Block& b = block_[Index(side)];
  b.active = true;
  b.role = Role::Ignore;
  b.endStream = h.type == kH2Headers && (h.flags & kH2EndStream) != 0;
  b.streamId = h.streamId;
  b.firstNs = firstNs;
  b.wireSize = kH2FrameHeadLen + h.length;
  b.status = 0;
  b.method = KW_METHOD_OTHER;
  b.hasMethod = b.authority = b.hasPath = b.targetCut = false;
  b.pathLen = 0;
  b.methodTextLen = 0;
  if (h.type == kH2Headers) {
    Stream* s = Find(h.streamId);
    if (side == Side::Request) {
      if (s != nullptr) {
        b.role = s->headDone ? Role::RequestTrailers : Role::Ignore;
      } else if (h.streamId > lastRequestStream_ && (h.streamId & 1) == 1) {
        // Client streams open in increasing order: a higher odd id is a new request.
        lastRequestStream_ = h.streamId;
        if (Open(h.streamId, firstNs) != nullptr) b.role = Role::RequestHead;
      }
    } else if (s != nullptr && s->headDone) {
      b.role = s->answered ? Role::ResponseTrailers : Role::ResponseHead;
    }
  }
  ClaimScratch(b, true);
}

void H2Session::OnBlockFragment(Side side, const uint8_t* p, size_t n) {
  const int i = Index(side);
  Block& b = block_[i];
  if (!b.active || n == 0) return;
  // A table with unknown history needs nothing from blocks whose fields are not kept.
  if (b.role == Role::Ignore && !decoder_[i].Known()) return;
  current_ = side;
  decoder_[i].Feed(p, n, false, this);
}

void H2Session::Field(const uint8_t* name, size_t nameLen, const uint8_t* value, size_t valueLen) {
  Block& b = block_[Index(current_)];
  H2Scratch& sc = ctx_->h2;
  HeaderId id = kHdrCount;
  bool isLength = false;
  switch (b.role) {
    case Role::Ignore:
    case Role::RequestTrailers:
      return;
    case Role::RequestHead: {
      if (nameLen > 0 && name[0] == ':') {
        if (Is(name, nameLen, ":method") && !b.hasMethod) {
          b.hasMethod = true;
          b.method = MethodOf(value, valueLen);
          if (b.method == KW_METHOD_OTHER && valueLen > 0) {
            b.methodTextLen = static_cast<uint8_t>(valueLen < kMaxMethodText ? valueLen : kMaxMethodText);
            std::memcpy(sc.methodText, value, b.methodTextLen);
          }
        } else if (Is(name, nameLen, ":path") && !b.hasPath) {
          b.hasPath = true;
          b.targetCut = valueLen > kMaxTarget;
          b.pathLen = static_cast<uint16_t>(b.targetCut ? kMaxTarget : valueLen);
          std::memcpy(sc.path, value, b.pathLen);
        } else if (Is(name, nameLen, ":authority") && !b.authority) {
          // :authority stands for Host (RFC 9113 8.3.1); a Host field after it is ignored
          b.authority = true;
          sc.request.headers.present &= ~(1u << kHdrHost);
          sc.request.headers.AddCopy(kHdrHost, value, valueLen);
        }
        return;
      }
      if (!FindHeaderName(name, nameLen, true, &id, &isLength) || isLength) return;
      if (id == kHdrHost && b.authority) return;
      sc.request.headers.AddCopy(id, value, valueLen);
      return;
    }
    case Role::ResponseHead:
    case Role::ResponseTrailers:
      if (Is(name, nameLen, ":status")) {
        if (b.status == 0) b.status = ParseStatus(value, valueLen);
        return;
      }
      if (!FindHeaderName(name, nameLen, false, &id, &isLength) || isLength) return;
      sc.response.headers.AddCopy(id, value, valueLen);
      return;
  }
}

void H2Session::EndBlock(Side side, uint64_t nowNs) {
  const int i = Index(side);
  Block& b = block_[i];
  if (b.role != Role::Ignore || decoder_[i].Known()) {
    current_ = side;
    decoder_[i].Feed(kNoBytes, 0, true, this);
  }
  b.active = false;
  if (b.saved.capacity() > kMaxRetainedSaved) std::vector<uint8_t>().swap(b.saved);
  Stream* s = Find(b.streamId);
  if (s == nullptr) return;
  switch (b.role) {
    case Role::Ignore:
      return;
    case Role::RequestHead:
      FinishRequestHead(s, b, nowNs);
      return;
    case Role::RequestTrailers:
      if (b.endStream) {
        s->requestEnded = true;
        s->ex->f.request_end_ns = nowNs;
      }
      return;
    case Role::ResponseHead:
      FinishResponseHead(s, b, nowNs);
      return;
    case Role::ResponseTrailers: {
      ResponseHead& r = ctx_->h2.response;
      ReadResponseHeaders(r.headers, &r);
      if (r.grpcStatus >= 0) s->ex->f.grpc_status = r.grpcStatus;
      if (b.endStream) Complete(s, nowNs, KW_ERR_NONE);
      return;
    }
  }
}

void H2Session::FinishRequestHead(Stream* s, Block& b, uint64_t nowNs) {
  H2Scratch& sc = ctx_->h2;
  RequestHead& head = sc.request;
  head.method = b.hasMethod ? b.method : static_cast<uint8_t>(KW_METHOD_OTHER);
  head.methodText = b.methodTextLen > 0 ? View{sc.methodText, b.methodTextLen, true} : View();
  head.garbage = false;
  head.version = 20;
  head.body = BodyKind::None;
  head.length = 0;
  head.path = View();
  head.query = View();
  head.targetCut = false;
  if (b.hasPath) SplitRequestTarget(View{sc.path, b.pathLen, true}, &head);
  head.targetCut = head.targetCut || b.targetCut;
  s->headDone = true;
  Exchange* ex = s->ex;
  conn_->FillRequest(ex, head, b.wireSize, false, server_);
  if (b.endStream) {
    s->requestEnded = true;
    ex->f.request_end_ns = nowNs;
  }
}

void H2Session::FinishResponseHead(Stream* s, Block& b, uint64_t nowNs) {
  // Interim responses (100 Continue, 103 Early Hints) come before the final one.
  if (b.status != 0 && b.status < 200) return;
  s->answered = true;
  Exchange* ex = s->ex;
  ResponseHead& r = ctx_->h2.response;
  ReadResponseHeaders(r.headers, &r);
  if (b.status != 0) {
    r.valid = true;
    r.status = b.status;
    r.version = 20;
    r.body = BodyKind::None;
    r.length = 0;
    r.closes = false;
    TakeResponseHead(ex, r, b.wireSize, b.firstNs);
  } else {
    // The status was a reference into a table whose history is unknown: the head is seen, not its status.
    ex->f.response_start_ns = b.firstNs;
    ex->f.response_head_size = static_cast<uint32_t>(b.wireSize < 0xffffffffu ? b.wireSize : 0xffffffffu);
    ex->f.grpc_status = r.grpcStatus;
  }
  if (b.endStream) Complete(s, nowNs, KW_ERR_NONE);
}

void H2Session::ClaimScratch(Block& b, bool fresh) {
  H2Scratch& sc = ctx_->h2;
  if (!fresh && sc.owner == &b) return;
  sc.request.headers.Clear();
  sc.response.headers.Clear();
  sc.owner = &b;
  if (fresh || b.saved.empty()) return;
  // [u32 present] then per present field [u16 len][u8 cut][bytes], then the path, the method text
  const uint8_t* p = b.saved.data();
  HeaderValues& h = b.role == Role::RequestHead ? sc.request.headers : sc.response.headers;
  uint32_t present = 0;
  std::memcpy(&present, p, 4);
  p += 4;
  for (int id = 0; id < kHdrCount; id++) {
    if ((present >> id & 1) == 0) continue;
    HeaderValues::Slot& slot = h.slot[id];
    const uint16_t len = static_cast<uint16_t>(p[0] | p[1] << 8);
    slot.cut = p[2] != 0;
    slot.owned = true;
    slot.len = len;
    slot.p = h.joined[id];
    std::memcpy(h.joined[id], p + 3, len);
    p += 3 + len;
  }
  h.present = present;
  std::memcpy(sc.path, p, b.pathLen);
  p += b.pathLen;
  std::memcpy(sc.methodText, p, b.methodTextLen);
}

void H2Session::SaveScratch(Block& b) {
  if (b.role == Role::Ignore || b.role == Role::RequestTrailers) return;  // nothing kept
  H2Scratch& sc = ctx_->h2;
  const HeaderValues& h = b.role == Role::RequestHead ? sc.request.headers : sc.response.headers;
  std::vector<uint8_t>& out = b.saved;
  out.clear();
  const uint8_t* present = reinterpret_cast<const uint8_t*>(&h.present);
  out.insert(out.end(), present, present + 4);
  for (int id = 0; id < kHdrCount; id++) {
    if (!h.Has(static_cast<HeaderId>(id))) continue;
    const HeaderValues::Slot& slot = h.slot[id];
    PutU16(&out, slot.len);
    out.push_back(slot.cut ? 1 : 0);
    out.insert(out.end(), slot.p, slot.p + slot.len);
  }
  out.insert(out.end(), sc.path, sc.path + b.pathLen);
  out.insert(out.end(), sc.methodText, sc.methodText + b.methodTextLen);
}

void H2Session::OnSetting(Side side, uint16_t id, uint32_t value) {
  if (id != kH2SettingsHeaderTableSize) return;
  settingHasTable_[Index(side)] = true;
  settingTable_[Index(side)] = value;
}

void H2Session::Settings(Side side, bool ack) {
  const int i = Index(side);
  if (!ack) {
    std::vector<PendingSettings>& q = pending_[i];
    if (q.size() >= kMaxPendingSettings) {
      // A peer that never acknowledges: the oldest takes effect now, as well as can be known.
      if (q.front().tableSize) decoder_[1 - i].SetTableLimit(q.front().value);
      q.erase(q.begin());
    }
    q.push_back(PendingSettings{settingHasTable_[i], settingTable_[i]});
    settingHasTable_[i] = false;
    return;
  }
  // This side acknowledges the other side's oldest SETTINGS: its own blocks follow them from here.
  std::vector<PendingSettings>& q = pending_[1 - i];
  if (q.empty()) return;
  const PendingSettings s = q.front();
  q.erase(q.begin());
  if (s.tableSize) decoder_[i].SetTableLimit(s.value);
}

void H2Session::Reset(Side side, uint32_t id, uint32_t code, uint64_t nowNs) {
  Stream* s = Find(id);
  if (s == nullptr) return;
  if (!s->headDone) {
    Drop(s, true);  // a request whose head never ended was never served
    return;
  }
  const bool byClient = side == Side::Request;
  if (!server_) {
    // Kong abandoned the attempt (its own client left), or the upstream refused or cut it.
    Complete(s, nowNs, byClient ? KW_ERR_INCOMPLETE_RESPONSE : KW_ERR_UPSTREAM_CLOSED);
    return;
  }
  if (byClient) {
    Complete(s, nowNs, KW_ERR_CLIENT_CLOSED);  // nginx logs 499 when it had not answered
    return;
  }
  if (code == kH2RefusedStream && !s->answered) {
    Drop(s, true);  // refused before processing: nginx never served it
    return;
  }
  Complete(s, nowNs, KW_ERR_INCOMPLETE_RESPONSE);
}

void H2Session::GoAway(Side side, uint32_t lastId, uint64_t nowNs) {
  // The side that receives requests says which it will process; a client's GOAWAY is about
  // pushed streams, which are not followed.
  if (side != Side::Response) return;
  if (lastId < goawayLastId_) goawayLastId_ = lastId;
  for (size_t i = 0; i < streams_.size();) {
    Stream* s = &streams_[i];
    if (s->id <= lastId) {
      i++;
      continue;
    }
    if (server_) {
      Drop(s, true);  // nginx will not serve it
    } else {
      Complete(s, nowNs, KW_ERR_UPSTREAM_CLOSED);  // the upstream will not answer this attempt
    }
  }
}

void H2Session::OnFrameEnd(Side side, const H2FrameHead& h, uint64_t dataBytes, const uint8_t* control,
                           uint64_t nowNs) {
  switch (h.type) {
    case kH2Headers:
    case kH2PushPromise:
    case kH2Continuation:
      if (h.flags & kH2EndHeaders) EndBlock(side, nowNs);
      return;
    case kH2Data: {
      Stream* s = Find(h.streamId);
      if (s == nullptr) return;
      kw_exchange& f = s->ex->f;
      if (side == Side::Request) {
        f.request_body_size += dataBytes;
        if (h.flags & kH2EndStream) {
          s->requestEnded = true;
          f.request_end_ns = nowNs;
        }
        return;
      }
      f.response_body_size += dataBytes;
      if (h.flags & kH2EndStream) Complete(s, nowNs, KW_ERR_NONE);
      return;
    }
    case kH2RstStream:
      Reset(side, h.streamId, ReadU32(control), nowNs);
      return;
    case kH2Settings:
      Settings(side, (h.flags & kH2Ack) != 0);
      return;
    case kH2Goaway:
      GoAway(side, ReadU32(control) & 0x7fffffffu, nowNs);
      return;
    default:
      return;
  }
}

void H2Session::OnFramingLost(Side, uint64_t nowNs) {
  // A frame header (or a header block, or SETTINGS) fell in bytes the kernel did not copy.
  ctx_->stats.lostHeads++;
  Lose(nowNs);
}

void H2Session::ProtocolError(uint64_t nowNs) {
  ctx_->stats.protocolErrors++;
  Lose(nowNs);
}

// Nothing after this point can be placed: streams in flight end with what is known of them.
void H2Session::Lose(uint64_t nowNs) {
  End(KW_ERR_INCOMPLETE_RESPONSE, nowNs);
  Discard();
  lost_ = true;
}

void H2Session::End(uint8_t error, uint64_t endNs) {
  while (!streams_.empty()) {
    Stream* s = &streams_.back();
    if (s->headDone) {
      Complete(s, endNs, error);
    } else {
      Drop(s, true);
    }
  }
}

void H2Session::Discard() {
  for (Stream& s : streams_) conn_->DiscardExchange(s.ex);
  streams_.clear();
  for (int i = 0; i < 2; i++) {
    framer_[i].Stop();
    decoder_[i].Release();
    block_[i].active = false;
    std::vector<uint8_t>().swap(block_[i].saved);
    if (ctx_->h2.owner == &block_[i]) ctx_->h2.owner = nullptr;
  }
}

}  // namespace kw
