#include "connection.h"

#include <cstring>

#include "exchange_fill.h"
#include "h2_frame.h"

namespace kw {

namespace {

constexpr int64_t kEINTR = 4;
constexpr int64_t kEAGAIN = 11;
constexpr int64_t kECONNRESET = 104;
// Request bytes held while a preface is unanswered (nginx answers at once, after the first read).
constexpr size_t kMaxHeldTransfers = 8;
constexpr size_t kMaxHeldBytes = 65536;

const char kH2RequestLine[] = "PRI * HTTP/2.0\r\n";

// First bytes that may not be HTTP/1.x at all: a TLS handshake (Kong's TLS listener seen
// encrypted) or HTTP/2's preface. Only nginx's answer tells: an HTTP/1 listener answers them
// with a 400 it logs, a TLS or h2 listener with bytes that are not a status line.
bool MaybeNotHttp1(const uint8_t* b, size_t n) {
  if (n >= 1 && b[0] == 0x16 && (n < 2 || b[1] == 0x03) && (n < 3 || b[2] <= 0x04)) return true;
  if (n < 3) return false;
  size_t m = n < sizeof kH2RequestLine - 1 ? n : sizeof kH2RequestLine - 1;
  return std::memcmp(b, kH2RequestLine, m) == 0;
}

bool IsJsWhite(uint8_t c) { return c == ' ' || (c >= 0x09 && c <= 0x0d) || c == 0xa0; }

// /^[A-Z][A-Z_-]{0,19} \S+ HTTP\/1\.[01]\r?\n/ over the first bytes (as the TypeScript agent).
bool LooksLikeRequestLine(const uint8_t* b, size_t n) {
  size_t i = 0;
  if (n == 0 || b[0] < 'A' || b[0] > 'Z') return false;
  for (i = 1; i < n && b[i] != ' '; i++) {
    uint8_t c = b[i];
    if (!((c >= 'A' && c <= 'Z') || c == '_' || c == '-') || i > 19) return false;
  }
  if (i >= n) return false;
  size_t t = ++i;
  while (i < n && !IsJsWhite(b[i])) i++;
  if (i == t || i + 10 > n || std::memcmp(b + i, " HTTP/1.", 8) != 0) return false;
  i += 8;
  if (b[i] != '0' && b[i] != '1') return false;
  i++;
  if (b[i] == '\r') i++;
  return i < n && b[i] == '\n';
}

}  // namespace

void Connection::Init(Context* ctx, uint64_t id, uint32_t p, uint64_t nowNs) {
  ctx_ = ctx;
  connId = id;
  pid = p;
  lastNs = nowNs;
  dir_ = KW_DIR_UNKNOWN;
  ignored_ = tls_ = closing_ = suspect_ = everRequest_ = hasEndpoint_ = false;
  family_ = 0;
  localPort_ = peerPort_ = 0;
  std::memset(localAddr_, 0, sizeof localAddr_);
  std::memset(peerAddr_, 0, sizeof peerAddr_);
  request_.Init(Side::Request, false, &ctx->framing, this);
  response_.Init(Side::Response, false, &ctx->framing, this);
  queue_.Clear();
  reqSeq_ = respSeq_ = CandidateQueue::kNone;
  detailed_ = 0;
  requestCount_ = 0;
  failure_ = 0;
  failureNs_ = 0;
  h2_.reset();
  h2Tentative_ = false;
  h2Checked_ = false;
  attempted_ = false;
  openBeforeNs = recordBeforeNs = 0;
  std::vector<HeldTransfer>().swap(held_);
}

void Connection::Release() {
  if (h2_ != nullptr) {
    h2_->Discard();
    h2_.reset();
  }
  std::vector<HeldTransfer>().swap(held_);
  for (uint64_t seq = queue_.Head(); seq < queue_.Tail(); seq++) {
    Candidate* c = queue_.At(seq);
    if (c->ex != nullptr) {
      ClearActive(c->ex);
      ctx_->stats.inFlight--;
      ctx_->emitter.Discard(c->ex);
      c->ex = nullptr;
    }
  }
  queue_.Shrink();
  request_.Release();
  response_.Release();
}

void Connection::Open(const OpenRecord& rec) {
  const kw_conn_open_event& ev = rec.ev;
  hasEndpoint_ = true;
  family_ = ev.family;
  localPort_ = ev.local_port;
  peerPort_ = ev.peer_port;
  std::memcpy(localAddr_, ev.local_addr, 16);
  std::memcpy(peerAddr_, ev.peer_addr, 16);
  if (ev.direction == KW_DIR_SERVER || ev.direction == KW_DIR_CLIENT) SetDirection(ev.direction);
  if (dir_ == KW_DIR_SERVER && ctx_->ignoredPort[localPort_]) Ignore();
}

void Connection::SetDirection(uint8_t direction) {
  dir_ = direction;
  // Kong's own outbound sockets (database, DNS, Redis) must show a request line to be followed.
  request_.Init(Side::Request, direction == KW_DIR_CLIENT, &ctx_->framing, this);
  response_.Init(Side::Response, false, &ctx_->framing, this);
}

// A socket older than the agent: a request line read means Kong serves it, written means Kong
// calls out; the middle of a message says nothing, so the next record is waited for.
bool Connection::GuessDirection(const DataRecord& rec) {
  const Transfer& x = rec.transfer;
  size_t n = static_cast<size_t>(x.captured < 2048 ? x.captured : 2048);
  bool isRequest;
  if (LooksLikeRequestLine(x.data, n)) {
    isRequest = true;
  } else if (n >= 7 && std::memcmp(x.data, "HTTP/1.", 7) == 0) {
    isRequest = false;
  } else {
    return false;
  }
  SetDirection(isRequest == (rec.op == KW_OP_READ) ? KW_DIR_SERVER : KW_DIR_CLIENT);
  return true;
}

// The same for HTTP/2: the preface is the client's, and a header block with :method was written by
// the client, one with :status by the server.
bool Connection::GuessH2Direction(const DataRecord& rec) {
  const Transfer& x = rec.transfer;
  const size_t n = static_cast<size_t>(x.captured < kH2PrefaceLen ? x.captured : kH2PrefaceLen);
  if (StartsWithPreface(x.data, n)) {
    SetDirection(rec.op == KW_OP_READ ? KW_DIR_SERVER : KW_DIR_CLIENT);
    return true;
  }
  const H2Sniff sniff = SniffFrames(x);
  if (!sniff.frames || sniff.request == sniff.response) return false;
  const bool clientWrote = sniff.request;
  SetDirection((rec.op == KW_OP_WRITE) == clientWrote ? KW_DIR_CLIENT : KW_DIR_SERVER);
  return true;
}

// The connection's first bytes: the client preface (every HTTP/2 connection, TLS or h2c), or frames
// already under way (a connection whose start the agent did not see: no HPACK history).
void Connection::MaybeStartH2(const Transfer& x, bool requestSide) {
  // Decided by the first request bytes, or by response bytes that are frames before them.
  if (requestSide) h2Checked_ = true;
  const size_t n = static_cast<size_t>(x.captured < kH2PrefaceLen ? x.captured : kH2PrefaceLen);
  if (requestSide && StartsWithPreface(x.data, n)) {
    StartH2(true);
    // nginx decides on a SERVER connection: an HTTP/1-only listener answers the preface with 400.
    if (dir_ == KW_DIR_SERVER) {
      h2Tentative_ = true;
    } else {
      ConfirmH2();
    }
    return;
  }
  if (!SniffFrames(x).frames) return;
  h2Checked_ = true;
  // A server may write its SETTINGS before it reads the client's preface: that is the connection's
  // start too. Any other frame first: the start was missed.
  const H2FrameHead first = ReadFrameHead(x.data);
  StartH2(!requestSide && first.type == kH2Settings && (first.flags & kH2Ack) == 0);
  ConfirmH2();
}

void Connection::StartH2(bool preface) {
  h2_.reset(new H2Session());
  h2_->Start(ctx_, this, dir_ == KW_DIR_SERVER, preface);
}

// HTTP/2 it is: the HTTP/1 framing never sees these bytes.
void Connection::ConfirmH2() {
  for (uint64_t seq = queue_.Head(); seq < queue_.Tail(); seq++) Drop(seq, false);
  suspect_ = false;
  h2Tentative_ = false;
  std::vector<HeldTransfer>().swap(held_);
  request_.Stop();
  response_.Stop();
  ctx_->stats.http2Connections++;
}

void Connection::HoldForHttp1(const Transfer& x) {
  size_t bytes = 0;
  for (const HeldTransfer& h : held_) bytes += h.bytes.size();
  if (held_.size() >= kMaxHeldTransfers || bytes + x.captured > kMaxHeldBytes) return;
  held_.emplace_back();
  HeldTransfer& h = held_.back();
  h.timeNs = x.timeNs;
  h.result = x.result;
  h.bytes.assign(x.data, x.data + x.captured);
  h.tailLen = static_cast<uint8_t>(x.tailLen);
  if (x.tailLen > 0) std::memcpy(h.tail, x.tail, x.tailLen);
}

// nginx answered the preface as HTTP/1 (a 400): the streams read meanwhile were never served, and
// the bytes go through the HTTP/1 framing as if they had just been read.
void Connection::AbandonH2() {
  h2_->Discard();
  h2_.reset();
  h2Tentative_ = false;
  std::vector<HeldTransfer> held;
  held.swap(held_);
  for (const HeldTransfer& h : held) {
    Transfer x;
    x.data = h.bytes.data();
    x.captured = h.bytes.size();
    x.result = h.result;
    x.tail = h.tail;
    x.tailLen = h.tailLen;
    x.timeNs = h.timeNs;
    request_.Feed(x);
  }
}

void Connection::Ignore() {
  if (ignored_) return;
  ignored_ = true;
  ctx_->stats.ignored++;
  request_.Stop();
  response_.Stop();
}

void Connection::NotHttp(uint64_t nowNs) {
  ctx_->stats.notHttp++;
  for (uint64_t seq = queue_.Head(); seq < queue_.Tail(); seq++) Complete(seq, nowNs, KW_ERR_PROTOCOL_ERROR);
  ignored_ = true;
  request_.Stop();
  response_.Stop();
}

// The suspect first bytes were not HTTP/1 (TLS, HTTP/2): none of it was a request.
void Connection::NotHttp1() {
  ctx_->stats.notHttp++;
  for (uint64_t seq = queue_.Head(); seq < queue_.Tail(); seq++) Drop(seq, false);
  suspect_ = false;
  ignored_ = true;
  request_.Stop();
  response_.Stop();
}

void Connection::Fail(uint8_t error, uint64_t nowNs) {
  if (failure_ != 0) return;
  failure_ = error;
  failureNs_ = nowNs;
}

void Connection::Data(const DataRecord& rec) {
  if (ignored_) return;
  if (rec.flags & KW_DATA_TLS) tls_ = true;
  if (dir_ == KW_DIR_UNKNOWN) {
    if (rec.direction == KW_DIR_SERVER || rec.direction == KW_DIR_CLIENT) {
      SetDirection(rec.direction);
    } else {
      if (rec.result <= 0 || !(GuessDirection(rec) || GuessH2Direction(rec))) return;
    }
    if (dir_ == KW_DIR_SERVER && hasEndpoint_ && ctx_->ignoredPort[localPort_]) {
      Ignore();
      return;
    }
  }
  const bool requestSide = (rec.op == KW_OP_READ) == (dir_ == KW_DIR_SERVER);
  if (rec.result > 0) {
    const Transfer& bytes = rec.transfer;
    if (!h2Checked_ && h2_ == nullptr) MaybeStartH2(bytes, requestSide);
    if (h2_ != nullptr) {
      if (!h2Tentative_) {
        h2_->Feed(bytes, requestSide);
        return;
      }
      if (requestSide) {
        h2_->Feed(bytes, true);
        HoldForHttp1(bytes);
        return;
      }
      if (bytes.captured >= 7 && std::memcmp(bytes.data, "HTTP/1.", 7) == 0) {
        AbandonH2();
      } else {
        ConfirmH2();
        h2_->Feed(bytes, false);
        return;
      }
    }
    if (suspect_ && !requestSide) {
      const Transfer& x = rec.transfer;
      if (x.captured < 7 || std::memcmp(x.data, "HTTP/1.", 7) != 0) {
        NotHttp1();
        return;
      }
      suspect_ = false;
    }
    (requestSide ? request_ : response_).Feed(rec.transfer);
    return;
  }
  if (rec.result == 0) {
    if (rec.op != KW_OP_READ) return;
    // The peer closed its side. A response delimited by the close ends normally here.
    if (!requestSide && response_.Close()) return;
    if (HasPending()) Fail(requestSide ? KW_ERR_CLIENT_CLOSED : KW_ERR_UPSTREAM_CLOSED, rec.timeNs);
    return;
  }
  const int64_t err = -rec.result;
  if (err == kEAGAIN || err == kEINTR || !HasPending()) return;
  if (err == kECONNRESET) {
    Fail(KW_ERR_CONNECTION_RESET, rec.timeNs);
  } else {
    Fail(rec.op == KW_OP_WRITE ? KW_ERR_WRITE_ERROR : KW_ERR_READ_ERROR, rec.timeNs);
  }
}

void Connection::Lua(uint8_t phase, uint64_t ns) {
  // nginx serves a connection's requests in order: a phase belongs to the oldest open one. HTTP/2
  // streams run at once, and nothing says which one a phase was for.
  if (dir_ != KW_DIR_SERVER || phase >= KW_LUA_PHASE_MAX || h2_ != nullptr) return;
  for (uint64_t seq = queue_.Head(); seq < queue_.Tail(); seq++) {
    Candidate* c = queue_.At(seq);
    if (c->done) continue;
    if (c->ex != nullptr) c->ex->f.lua_ns[phase] += ns;
    return;
  }
}

Exchange* Connection::NewExchange(uint8_t type, uint64_t startNs) {
  Exchange* ex = ctx_->pool.Get();
  kw_exchange& f = ex->f;
  f.type = type;
  f.id = ctx_->nextExchangeId++;
  f.pid = pid;
  f.conn_id = connId;
  f.conn_request = requestCount_;
  f.start_ns = startNs;
  f.request_end_ns = startNs;
  if (tls_) f.flags |= KW_EX_TLS;
  if (hasEndpoint_) {
    f.family = family_;
    f.local_port = localPort_;
    f.peer_port = peerPort_;
    std::memcpy(f.local_addr, localAddr_, 16);
    std::memcpy(f.peer_addr, peerAddr_, 16);
  }
  ctx_->stats.inFlight++;
  SetActive(ex);
  return ex;
}

void Connection::SetActive(Exchange* ex) {
  if (ex->f.type != KW_FRAME_SERVER) return;
  ClearActive(ex);
  ex->activeSlot = ex->f.method * 2 + (tls_ ? 1 : 0);
  ctx_->stats.activeServer[ex->f.method][tls_ ? 1 : 0]++;
}

void Connection::ClearActive(Exchange* ex) {
  if (ex->activeSlot < 0) return;
  ctx_->stats.activeServer[ex->activeSlot / 2][ex->activeSlot % 2]--;
  ex->activeSlot = -1;
}

uint64_t Connection::NewCandidate(uint64_t startNs, bool placeholder) {
  Candidate c;
  if (!placeholder && detailed_ < ctx_->options.maxPendingPerConnection) {
    c.ex = NewExchange(dir_ == KW_DIR_SERVER ? KW_FRAME_SERVER : KW_FRAME_CLIENT, startNs);
    detailed_++;
  }
  return queue_.Push(c);
}

// Consecutive placeholders framed alike are one entry: a flood of pipelined requests past the
// bound costs a counter, not memory, and pairing still moves one request per response.
void Connection::MergePlaceholder(uint64_t seq) {
  Candidate* c = queue_.At(seq);
  if (c == nullptr || seq != queue_.Tail() - 1 || seq == queue_.Head()) return;
  Candidate* prev = queue_.At(seq - 1);
  const uint64_t maxEntries = 4ull * ctx_->options.maxPendingPerConnection + 64;
  const bool alike = prev->method == c->method && prev->version == c->version;
  if (prev->ex != nullptr || prev->done || prev->answered || !prev->headComplete) return;
  if (!alike && queue_.Size() <= maxEntries) return;
  prev->count++;
  queue_.PopBack();
  reqSeq_ = seq - 1;
}

Candidate* Connection::Live(uint64_t seq) {
  if (seq == CandidateQueue::kNone) return nullptr;
  Candidate* c = queue_.At(seq);
  return c != nullptr && !c->done ? c : nullptr;
}

Candidate* Connection::OldestUnanswered(uint64_t* seq) {
  for (uint64_t s = queue_.Head(); s < queue_.Tail(); s++) {
    Candidate* c = queue_.At(s);
    if (!c->done && !c->answered) {
      *seq = s;
      return c;
    }
  }
  return nullptr;
}

// The request's fields and its trace identity; a CLIENT exchange is matched to the inbound
// request it serves here, since its ids follow from that one's.
void Connection::FillRequest(Exchange* ex, const RequestHead& head, uint64_t headSize, bool truncated,
                             bool listed) {
  TakeRequestHead(ex, head, headSize, truncated);
  IncomingContext in;
  ReadIncomingContext(head.headers, &in);
  ex->hasIds = true;
  if (ex->f.type == KW_FRAME_SERVER) {
    ServerIds(in, ctx_->ids, &ex->ids);
    if (in.traceState.present) ex->traceState = ex->Put(in.traceState.p, in.traceState.n, KW_MAX_TRACE_STATE);
    TakeRequestTail(ex, head);
    if (ex->activeSlot != ex->f.method * 2 + (tls_ ? 1 : 0)) SetActive(ex);
    if (listed) ctx_->matcher.Register(ex);
    return;
  }
  Exchange* server = ctx_->matcher.Match(*ex, in, head.headers.Get(kHdrRequestId), head.headers.Get(kHdrKongRequestId));
  if (server != nullptr) {
    ctx_->matcher.Link(ex, server, in, ctx_->ids);
    StartQueued(server, ex->f.start_ns);
  } else {
    ctx_->stats.unmatchedAttempts++;
    ClientIds(nullptr, in, ctx_->ids, &ex->ids);
    if (in.hasTrace && in.traceState.present) {
      ex->traceState = ex->Put(in.traceState.p, in.traceState.n, KW_MAX_TRACE_STATE);
    }
  }
  TakeRequestTail(ex, head);
}

// An HTTP/2 stream read together with earlier ones is started by nginx once it is done with the
// one before it (Lua moves nginx's cached clock meanwhile), and that one's last syscall is the
// worker's record just before this attempt's first one (its connect(), or its first write): the
// stream starts there, as nginx times it. The first stream of a read starts at the read.
void Connection::StartQueued(Exchange* server, uint64_t attemptStartNs) {
  const uint64_t before = !attempted_ && openBeforeNs != 0 ? openBeforeNs : recordBeforeNs;
  attempted_ = true;
  kw_exchange& f = server->f;
  if (!server->queued || f.attempts != 1 || before <= f.start_ns || before > attemptStartNs) return;
  f.start_ns = before;
  if (f.request_end_ns < before) f.request_end_ns = before;
}

// What can be read of a head that never completed (nginx answered it with 414/400, or the
// client left): the method and target so far, and any complete header lines.
void Connection::FillPartial(Candidate* c, const uint8_t* b, size_t n) {
  c->detailed = true;
  if (c->ex == nullptr || c->garbage || b == nullptr || n == 0) return;
  RequestHead& head = ctx_->framing.request;
  ParseRequestHead(b, n, &head);
  if (head.garbage) {
    c->garbage = true;
    return;
  }
  c->method = head.method;
  FillRequest(c->ex, head, n, true, false);
}

void Connection::EnsureDetails(Candidate* c, uint64_t seq) {
  if (c->ex == nullptr || c->headComplete || c->garbage || c->detailed) return;
  if (seq != reqSeq_ || !request_.InHead()) return;
  size_t n = 0;
  const uint8_t* b = request_.KeptHead(&n);
  FillPartial(c, b, n);
}

bool Connection::OnRequestStart(const uint8_t* b, size_t n, uint64_t timeNs) {
  if (dir_ != KW_DIR_SERVER) return true;  // Kong's requests become candidates once their head is written
  if (requestCount_ == 0 && queue_.Empty() && MaybeNotHttp1(b, n)) suspect_ = true;
  everRequest_ = true;
  if (closing_) {
    // A response said the connection ends after it: these bytes are never served.
    ctx_->stats.droppedRequests++;
    reqSeq_ = CandidateQueue::kNone;
    return true;
  }
  requestCount_++;
  reqSeq_ = NewCandidate(timeNs, false);
  return true;
}

Framing Connection::OnRequestHead(const RequestHead& head, uint64_t headSize, bool truncated, uint64_t firstNs,
                                uint64_t) {
  Framing f{head.body, head.length, false};
  if (head.body == BodyKind::Unframeable) ctx_->stats.protocolErrors++;
  if (dir_ == KW_DIR_SERVER) {
    Candidate* c = Live(reqSeq_);
    if (c == nullptr) return f;
    c->headComplete = true;
    c->method = head.method;
    c->version = head.version;
    if (c->ex != nullptr) {
      FillRequest(c->ex, head, headSize, truncated, true);
    } else {
      MergePlaceholder(reqSeq_);
    }
    return f;
  }
  // Kong never pipelines upstream: a response still being read (its end lost) ended before this.
  response_.EndLostBody();
  everRequest_ = true;
  requestCount_++;
  reqSeq_ = NewCandidate(firstNs, false);
  Candidate* c = queue_.At(reqSeq_);
  c->headComplete = true;
  c->method = head.method;
  c->version = head.version;
  if (c->ex != nullptr) FillRequest(c->ex, head, headSize, truncated, false);
  return f;
}

bool Connection::Answer(uint64_t seq, Candidate* c) {
  if (c->ex != nullptr) {
    c->answered = true;
    respSeq_ = seq;
    return true;
  }
  // A placeholder is counted, never reported: its answer moves pairing on by one.
  ctx_->stats.droppedRequests++;
  if (--c->count == 0) {
    c->done = true;
    queue_.PopDone();
  }
  respSeq_ = CandidateQueue::kNone;
  return false;
}

Framing Connection::OnResponseHead(const ResponseHead& head, uint64_t headSize, uint64_t firstNs, uint64_t nowNs) {
  Framing framing{head.body, head.length, false};
  const bool upgraded = head.status == 101;
  // Interim responses (100 Continue, 103 Early Hints) precede the real one.
  if (head.status < 200 && !upgraded) return framing;
  uint64_t seq = 0;
  Candidate* c = OldestUnanswered(&seq);
  if (c == nullptr) {
    ctx_->stats.orphanResponses++;
    if (upgraded) {
      Upgrade(nowNs);
      framing.stop = true;
    }
    return framing;
  }
  if (dir_ == KW_DIR_SERVER && !c->headComplete && !c->requestDone) {
    // nginx answered before the head ended (414, 400 for a header too large, 408): the rest of
    // those bytes is not a request.
    EnsureDetails(c, seq);
    c->requestDone = true;
    if (c->ex != nullptr) c->ex->f.request_end_ns = request_.LastNs();
    if (reqSeq_ == seq) {
      request_.Abandon();
      reqSeq_ = CandidateQueue::kNone;
    }
  }
  const uint8_t method = c->method;
  const bool detailed = Answer(seq, c);
  Exchange* ex = detailed ? c->ex : nullptr;
  if (ex != nullptr) TakeResponseHead(ex, head, headSize, firstNs);
  if (upgraded) {
    if (ex != nullptr && head.workerEvents) {
      // Kong's inter-worker event channel lives as long as the worker: not a request at all.
      Drop(seq, false);
    } else if (ex != nullptr) {
      ex->f.flags |= KW_EX_UPGRADED;
      Complete(seq, firstNs, KW_ERR_NONE);
    }
    Upgrade(nowNs);
    framing.stop = true;
    return framing;
  }
  if (dir_ == KW_DIR_SERVER && head.closes) {
    closing_ = true;
    DropAfter(seq);
  }
  if (method == KW_METHOD_HEAD) framing.kind = BodyKind::None;
  if (method == KW_METHOD_CONNECT && head.status < 300) {
    if (ex != nullptr) {
      ex->f.flags |= KW_EX_UPGRADED;
      Complete(seq, firstNs, KW_ERR_NONE);
    }
    Upgrade(nowNs);
    framing.stop = true;
  }
  return framing;
}

bool Connection::OnBareResponse(uint64_t nowNs) {
  uint64_t seq = 0;
  Candidate* c = OldestUnanswered(&seq);
  if (c == nullptr || c->version != 9) return false;
  // HTTP/0.9: nginx answers with the body alone, then closes.
  if (Answer(seq, c)) {
    kw_exchange& f = c->ex->f;
    f.status = 200;
    f.flags |= KW_EX_RESPONSE;
    f.response_start_ns = nowNs;
  }
  closing_ = true;
  DropAfter(seq);
  return true;
}

void Connection::OnEnd(Side side, uint64_t endNs, uint64_t bodySize) {
  if (side == Side::Request) {
    const uint64_t seq = reqSeq_;
    reqSeq_ = CandidateQueue::kNone;
    Candidate* c = Live(seq);
    if (c == nullptr) return;
    c->requestDone = true;
    if (c->ex != nullptr) {
      c->ex->f.request_end_ns = endNs;
      c->ex->f.request_body_size = bodySize;
    }
    if (c->awaitingBody) Complete(seq, endNs, KW_ERR_NONE);
    return;
  }
  const uint64_t seq = respSeq_;
  respSeq_ = CandidateQueue::kNone;
  Candidate* c = Live(seq);
  if (c == nullptr) return;
  if (c->ex != nullptr) c->ex->f.response_body_size = bodySize;
  // The server is done with a request once it has both answered it and read all of it (nginx
  // reads and discards the rest of a body it did not need, then logs).
  if (dir_ == KW_DIR_SERVER && !c->requestDone) {
    c->awaitingBody = true;
    c->answeredNs = endNs;
    return;
  }
  Complete(seq, endNs, KW_ERR_NONE);
}

void Connection::OnBreak(Side side, Broken why, const uint8_t* partial, size_t n, uint64_t nowNs) {
  AssemblerStats& stats = ctx_->stats;
  if (side == Side::Request) {
    switch (why) {
      case Broken::Garbage:
      case Broken::LostHead:
      case Broken::BadChunk: {
        if (why == Broken::LostHead) {
          stats.lostHeads++;
        } else {
          stats.protocolErrors++;
        }
        const uint64_t seq = reqSeq_;
        reqSeq_ = CandidateQueue::kNone;
        Candidate* c = Live(seq);
        if (c == nullptr) return;
        if (why == Broken::Garbage) {
          c->garbage = true;
          if (c->ex != nullptr) c->ex->f.request_head_size = static_cast<uint32_t>(n);
        } else if (why == Broken::LostHead && !c->headComplete) {
          FillPartial(c, partial, n);
        }
        c->requestDone = true;
        if (c->ex != nullptr) c->ex->f.request_end_ns = nowNs;
        if (c->awaitingBody) Complete(seq, nowNs, KW_ERR_NONE);
        return;
      }
      case Broken::LostStart:
        stats.lostHeads++;
        if (dir_ != KW_DIR_SERVER) return;
        if (closing_) {
          stats.droppedRequests++;
          return;
        }
        // nginx will answer a request whose bytes were not copied: it keeps pairing in step.
        requestCount_++;
        {
          uint64_t seq = NewCandidate(nowNs, true);
          Candidate* c = queue_.At(seq);
          c->headComplete = true;
          c->requestDone = true;
        }
        return;
      case Broken::NotHttp:
        if (dir_ == KW_DIR_CLIENT && !everRequest_) {
          NotHttp(nowNs);
          return;
        }
        stats.protocolErrors++;
        return;
      case Broken::BadHead:
        stats.protocolErrors++;
        return;
    }
    return;
  }
  switch (why) {
    case Broken::NotHttp:
    case Broken::BadHead: {
      if (dir_ == KW_DIR_CLIENT && !everRequest_) {
        NotHttp(nowNs);
        return;
      }
      stats.protocolErrors++;
      uint64_t seq = 0;
      Candidate* c = OldestUnanswered(&seq);
      if (c != nullptr) Complete(seq, nowNs, KW_ERR_PROTOCOL_ERROR);
      return;
    }
    case Broken::LostStart:
    case Broken::LostHead: {
      stats.lostHeads++;
      // The lost head answered the oldest unanswered request: report that one as cut short.
      uint64_t seq = 0;
      Candidate* c = OldestUnanswered(&seq);
      if (c != nullptr) Complete(seq, nowNs, KW_ERR_INCOMPLETE_RESPONSE);
      return;
    }
    case Broken::BadChunk: {
      stats.protocolErrors++;
      const uint64_t seq = respSeq_;
      respSeq_ = CandidateQueue::kNone;
      if (Live(seq) != nullptr) Complete(seq, nowNs, KW_ERR_PROTOCOL_ERROR);
      return;
    }
    case Broken::Garbage:
      stats.protocolErrors++;
      return;
  }
}

void Connection::Complete(uint64_t seq, uint64_t endNs, uint8_t error) {
  Candidate* c = Live(seq);
  if (c == nullptr) return;
  if (c->ex == nullptr) {
    ctx_->stats.droppedRequests += c->count;
    c->done = true;
    queue_.PopDone();
    return;
  }
  EnsureDetails(c, seq);
  Exchange* ex = c->ex;
  Finalize(ex, endNs, error);
  const kw_exchange& f = ex->f;
  // HTTP/1.1 answers pipelined requests in order: the next one is served from here on (nginx
  // times it the same way), though its bytes may have been read together with this one.
  bool first = true;
  for (uint64_t s = queue_.Head(); s < seq; s++) {
    if (!queue_.At(s)->done) {
      first = false;
      break;
    }
  }
  if (first) {
    for (uint64_t s = seq + 1; s < queue_.Tail(); s++) {
      Candidate* next = queue_.At(s);
      if (next->done) continue;
      if (next->ex != nullptr && next->ex->f.start_ns < f.end_ns) {
        next->ex->f.start_ns = f.end_ns;
        if (next->ex->f.request_end_ns < f.end_ns) next->ex->f.request_end_ns = f.end_ns;
      }
      break;
    }
  }
  c->ex = nullptr;
  c->done = true;
  detailed_--;
  if (respSeq_ == seq) respSeq_ = CandidateQueue::kNone;
  queue_.PopDone();
  Emit(ex);
}

void Connection::Finalize(Exchange* ex, uint64_t endNs, uint8_t error) {
  kw_exchange& f = ex->f;
  if (!ex->hasIds) {
    // A request never parsed (garbage, a cut head) still gets a trace of its own.
    IncomingContext none;
    if (f.type == KW_FRAME_SERVER) {
      ServerIds(none, ctx_->ids, &ex->ids);
    } else {
      ClientIds(nullptr, none, ctx_->ids, &ex->ids);
    }
    ex->hasIds = true;
  }
  f.end_ns = endNs > f.start_ns ? endNs : f.start_ns;
  f.error = error;
  // nginx's convention, which Kong's logs and plugins share: the client left before the answer.
  if (error == KW_ERR_CLIENT_CLOSED && f.status == 0 && dir_ == KW_DIR_SERVER) f.status = 499;
  if (tls_) f.flags |= KW_EX_TLS;
}

void Connection::Emit(Exchange* ex) {
  ctx_->stats.inFlight--;
  ClearActive(ex);
  ctx_->emitter.Done(ex);
}

void Connection::DiscardExchange(Exchange* ex) {
  ctx_->stats.inFlight--;
  ClearActive(ex);
  ctx_->emitter.Discard(ex);
}

void Connection::Drop(uint64_t seq, bool counted) {
  Candidate* c = Live(seq);
  if (c == nullptr) return;
  if (counted) ctx_->stats.droppedRequests += c->ex != nullptr ? 1 : c->count;
  if (c->ex != nullptr) {
    Exchange* ex = c->ex;
    c->ex = nullptr;
    detailed_--;
    DiscardExchange(ex);
  }
  c->done = true;
  if (reqSeq_ == seq) reqSeq_ = CandidateQueue::kNone;
  if (respSeq_ == seq) respSeq_ = CandidateQueue::kNone;
  queue_.PopDone();
}

void Connection::DropAfter(uint64_t seq) {
  for (uint64_t s = seq + 1; s < queue_.Tail(); s++) Drop(s);
}

// After a protocol switch the bytes are not HTTP any more: stop looking at them.
void Connection::Upgrade(uint64_t nowNs) {
  for (uint64_t seq = queue_.Head(); seq < queue_.Tail(); seq++) {
    Candidate* c = Live(seq);
    if (c == nullptr) continue;
    if (c->awaitingBody) {
      Complete(seq, c->answeredNs, KW_ERR_NONE);
    } else if (c->answered) {
      Complete(seq, nowNs, KW_ERR_INCOMPLETE_RESPONSE);
    } else {
      Drop(seq);
    }
  }
  Ignore();
}

// What unfinished exchanges end with, and when: the first failure seen, else the cause.
void Connection::EndError(EndCause cause, uint8_t peerState, uint64_t nowNs, uint8_t* error, uint64_t* endNs) const {
  const bool server = dir_ == KW_DIR_SERVER;
  uint8_t reason = KW_ERR_INCOMPLETE_RESPONSE;
  switch (cause) {
    case EndCause::Closed:
      if (peerState & KW_PEER_RESET) {
        reason = KW_ERR_CONNECTION_RESET;
      } else if (peerState & KW_PEER_CLOSED) {
        reason = server ? KW_ERR_CLIENT_CLOSED : KW_ERR_UPSTREAM_CLOSED;
      }
      break;
    case EndCause::Reopened:
      reason = KW_ERR_INCOMPLETE_RESPONSE;
      break;
    case EndCause::Evicted:
      reason = KW_ERR_EVICTED;
      break;
    case EndCause::Timeout:
      reason = KW_ERR_TIMEOUT;
      break;
    case EndCause::AgentStopped:
      reason = KW_ERR_AGENT_STOPPED;
      break;
    case EndCause::ProcessExited:
      reason = KW_ERR_PROCESS_EXITED;
      break;
  }
  *error = failure_ != 0 ? failure_ : reason;
  *endNs = failure_ != 0 ? failureNs_ : nowNs;
}

void Connection::End(EndCause cause, uint64_t nowNs, uint8_t peerState) {
  // A preface nginx never answered: as HTTP/1 below (no telling it was a request at all).
  if (h2_ != nullptr && h2Tentative_) AbandonH2();
  // Never answered: no telling it was a request at all.
  if (suspect_) NotHttp1();
  uint8_t error = 0;
  uint64_t endNs = 0;
  EndError(cause, peerState, nowNs, &error, &endNs);
  if (h2_ != nullptr) {
    h2_->End(error, endNs);
    return;
  }
  // Bodies delimited by the close, or lost, end normally at their last byte.
  response_.Close();
  request_.Close();
  if (queue_.Empty()) return;
  const bool server = dir_ == KW_DIR_SERVER;
  const uint64_t tail = queue_.Tail();
  if (server && cause == EndCause::Closed) {
    const bool peerGone = failure_ == KW_ERR_CLIENT_CLOSED || failure_ == KW_ERR_CONNECTION_RESET ||
                          (peerState & (KW_PEER_CLOSED | KW_PEER_RESET)) != 0;
    bool firstUnanswered = true;
    for (uint64_t seq = queue_.Head(); seq < tail; seq++) {
      Candidate* c = Live(seq);
      if (c == nullptr) continue;
      if (c->awaitingBody) {
        // Answered in full: the unread rest of its body changes nothing for the client.
        Complete(seq, c->answeredNs, KW_ERR_NONE);
      } else if (c->answered) {
        Complete(seq, endNs, error);
      } else if (firstUnanswered) {
        firstUnanswered = false;
        if (!c->headComplete) {
          // Slowloris, or a client gone mid-head: what nginx logs (400, or 408 for its timeout).
          EnsureDetails(c, seq);
          if (c->ex != nullptr) c->ex->f.status = peerGone ? 400 : 408;
          Complete(seq, endNs, KW_ERR_INCOMPLETE_REQUEST);
        } else {
          Complete(seq, endNs, error);
        }
      } else {
        Drop(seq);  // nginx never started it
      }
    }
    return;
  }
  for (uint64_t seq = queue_.Head(); seq < tail; seq++) {
    Candidate* c = Live(seq);
    if (c == nullptr) continue;
    if (c->awaitingBody) {
      Complete(seq, c->answeredNs, KW_ERR_NONE);
    } else {
      Complete(seq, endNs, error);
    }
  }
}

}  // namespace kw
