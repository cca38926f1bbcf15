// Where finished exchanges go: a CLIENT exchange whose SERVER is still in flight waits and is
// written right after it (JS applies the server's sampling decision to it), at most kMaxHeld per
// server; everything else is written at once. Exchanges go back to the pool once written.
#pragma once

#include "attempt_matcher.h"
#include "exchange.h"
#include "frame_writer.h"

namespace kw {

class Emitter {
 public:
  static constexpr size_t kMaxHeld = 32;

  Emitter(FrameWriter* writer, ExchangePool* pool, AttemptMatcher* matcher)
      : writer_(writer), pool_(pool), matcher_(matcher) {}
  // The exchange is finished: report it.
  void Done(Exchange* ex);
  // The exchange is not reported (nginx never served it); attempts waiting on it are written.
  void Discard(Exchange* ex);

 private:
  void Detach(Exchange* client);
  void ReleaseServer(Exchange* server);

  FrameWriter* writer_;
  ExchangePool* pool_;
  AttemptMatcher* matcher_;
};

}  // namespace kw
