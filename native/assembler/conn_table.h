// The followed connections by conn_id (open addressing: no allocation per connection once
// grown), in least-recently-used order for eviction and idle flushes, from a pool of reusable
// Connection objects.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "connection.h"

namespace kw {

class ConnTable {
 public:
  ConnTable() = default;
  ~ConnTable();
  ConnTable(const ConnTable&) = delete;
  ConnTable& operator=(const ConnTable&) = delete;

  Connection* Find(uint64_t connId) const;
  // A connection for connId (not present), the most recently used; Init is the caller's.
  Connection* Add(uint64_t connId);
  // Takes it out of the table and the LRU list; it stays valid until Free.
  void Remove(Connection* c);
  void Free(Connection* c);
  // Most recently used from now.
  void Touch(Connection* c);

  Connection* Oldest() const { return oldest_; }
  size_t Size() const { return size_; }

 private:
  struct Slot {
    uint64_t key;
    Connection* value;  // nullptr: empty
  };
  size_t Find(uint64_t connId, bool* found) const;
  void Grow();
  void Unlink(Connection* c);
  void Append(Connection* c);

  std::vector<Slot> slots_;
  size_t size_ = 0;
  Connection* oldest_ = nullptr;
  Connection* newest_ = nullptr;
  std::vector<Connection*> free_;
};

}  // namespace kw
