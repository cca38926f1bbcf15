#include "conn_table.h"

namespace kw {

namespace {

// Free connections kept for reuse; beyond this they are freed.
constexpr size_t kMaxFree = 1024;

size_t Hash(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return static_cast<size_t>(x);
}

}  // namespace

ConnTable::~ConnTable() {
  for (Slot& s : slots_) delete s.value;
  for (Connection* c : free_) delete c;
}

size_t ConnTable::Find(uint64_t connId, bool* found) const {
  const size_t mask = slots_.size() - 1;
  size_t i = Hash(connId) & mask;
  while (slots_[i].value != nullptr) {
    if (slots_[i].key == connId) {
      *found = true;
      return i;
    }
    i = (i + 1) & mask;
  }
  *found = false;
  return i;
}

Connection* ConnTable::Find(uint64_t connId) const {
  if (size_ == 0) return nullptr;
  bool found = false;
  size_t i = Find(connId, &found);
  return found ? slots_[i].value : nullptr;
}

void ConnTable::Grow() {
  std::vector<Slot> old;
  old.swap(slots_);
  slots_.assign(old.empty() ? 1024 : old.size() * 2, Slot{0, nullptr});
  for (const Slot& s : old) {
    if (s.value == nullptr) continue;
    bool found = false;
    size_t i = Find(s.key, &found);
    slots_[i] = s;
  }
}

Connection* ConnTable::Add(uint64_t connId) {
  // At most half full: probes stay short.
  if ((size_ + 1) * 2 > slots_.size()) Grow();
  bool found = false;
  size_t i = Find(connId, &found);
  Connection* c;
  if (free_.empty()) {
    c = new Connection();
  } else {
    c = free_.back();
    free_.pop_back();
  }
  c->connId = connId;
  slots_[i] = Slot{connId, c};
  size_++;
  Append(c);
  return c;
}

void ConnTable::Remove(Connection* c) {
  if (size_ == 0) return;
  bool found = false;
  size_t i = Find(c->connId, &found);
  if (!found || slots_[i].value != c) return;
  // Backward-shift deletion keeps every probe chain unbroken without tombstones.
  const size_t mask = slots_.size() - 1;
  size_t hole = i;
  size_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    if (slots_[j].value == nullptr) break;
    size_t home = Hash(slots_[j].key) & mask;
    // Move j into the hole unless its home lies cyclically in (hole, j].
    bool inside = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!inside) {
      slots_[hole] = slots_[j];
      hole = j;
    }
  }
  slots_[hole] = Slot{0, nullptr};
  size_--;
  Unlink(c);
}

void ConnTable::Free(Connection* c) {
  if (free_.size() >= kMaxFree) {
    delete c;
    return;
  }
  free_.push_back(c);
}

void ConnTable::Touch(Connection* c) {
  if (c == newest_) return;
  Unlink(c);
  Append(c);
}

void ConnTable::Unlink(Connection* c) {
  if (c->older != nullptr) {
    c->older->newer = c->newer;
  } else {
    oldest_ = c->newer;
  }
  if (c->newer != nullptr) {
    c->newer->older = c->older;
  } else {
    newest_ = c->older;
  }
  c->older = c->newer = nullptr;
}

void ConnTable::Append(Connection* c) {
  c->older = newest_;
  c->newer = nullptr;
  if (newest_ != nullptr) {
    newest_->newer = c;
  } else {
    oldest_ = c;
  }
  newest_ = c;
}

}  // namespace kw
