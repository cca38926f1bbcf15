/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Every record that crosses from the BPF program into user space, defined once.
 *
 * Read by the native assembler (native/assembler/) on the drain thread, and mirrored field by
 * field in src/capture/records.ts, which the benchmark and the tests use to write recorded
 * streams; test/unit/records-layout.test.ts compiles this header and checks every size, offset
 * and constant against the TypeScript side.
 *
 * Rules: the first field of every record is the common header (whose first byte is the type);
 * no packed structs, explicit padding, 8-byte aligned sizes.
 */
#ifndef KONG_WATCHER_EVENTS_H
#define KONG_WATCHER_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Bytes of payload copied per read/write: a whole 16 KiB request head (large_client_header_buffers)
 * so that traceparent is found wherever it is. */
#define KW_MAX_CAPTURE 16384
/* Last bytes of a transfer, copied when the head capture does not reach them: a chunked body's
 * terminator. */
#define KW_TAIL_LEN 16
/* Words of the pid bitmap: one bit per pid up to PID_MAX_LIMIT (4M on 64-bit). */
#define KW_PID_WORDS 65536
/* Bytes of a process name (TASK_COMM_LEN). */
#define KW_COMM_LEN 16

/* src/capture/records.ts: EventType */
enum kw_event_type {
	KW_EVENT_CONN_OPEN = 1,  /* a socket Kong accepted or connected, or first seen */
	KW_EVENT_DATA = 2,       /* one read or write on a tracked socket */
	KW_EVENT_CONN_CLOSE = 3, /* close() of a tracked socket */
	KW_EVENT_LUA_PHASE = 5,  /* Lua phase handler: time spent in Kong's Lua */
	KW_EVENT_PROC = 6,       /* a monitored process forked, exec'd or exited; or nginx was exec'd */
};

/* src/capture/records.ts: Direction */
enum kw_direction {
	KW_DIR_UNKNOWN = 0, /* socket existed before the agent: decided from the bytes */
	KW_DIR_SERVER = 1,  /* accepted: Kong serves a client */
	KW_DIR_CLIENT = 2,  /* connected: Kong calls an upstream */
};

/* src/capture/records.ts: Op */
enum kw_op {
	KW_OP_READ = 1,
	KW_OP_WRITE = 2,
};

/* Which hook produced a DATA record. src/capture/records.ts: Source. 1, 4, 5 and 8 were read,
 * recvmsg, write and sendmsg, no longer hooked: nginx moves socket bytes with recv/send/readv/writev. */
enum kw_source {
	KW_SRC_READV = 2,
	KW_SRC_RECVFROM = 3,
	KW_SRC_WRITEV = 6,
	KW_SRC_SENDTO = 7,
	KW_SRC_SENDFILE = 9,
	KW_SRC_LIBC_READ = 10, /* libc uprobe capture mode */
	KW_SRC_LIBC_WRITE = 11,
	KW_SRC_SSL_READ = 12, /* OpenSSL uprobes: plaintext of a TLS connection */
	KW_SRC_SSL_WRITE = 13,
};

/* src/capture/records.ts: LuaPhase */
enum kw_lua_phase {
	KW_LUA_REWRITE = 1,
	KW_LUA_ACCESS = 2,
	KW_LUA_CONTENT = 3,
	KW_LUA_HEADER_FILTER = 4,
	KW_LUA_BODY_FILTER = 5,
	KW_LUA_LOG = 6,
	KW_LUA_BALANCER = 7,
	KW_LUA_PHASE_MAX = 8,
};

/* src/capture/records.ts: ProcEvent */
enum kw_proc_kind {
	KW_PROC_FORK = 1, /* a monitored process forked: the child is monitored from its first instruction */
	KW_PROC_EXEC = 2, /* a process exec'd a binary named like the watched one (nginx), or a monitored one exec'd */
	KW_PROC_EXIT = 3, /* a monitored process exited: its sockets are gone without close() */
};

/* DATA flags */
#define KW_DATA_TRUNCATED 0x1    /* result > captured_len: the middle was not copied */
#define KW_DATA_TAIL_UNKNOWN 0x2 /* the tail does not hold the transfer's last bytes (iovec walk cut short) */
#define KW_DATA_TLS 0x4          /* plaintext of a TLS connection (SSL uprobes) */

struct kw_event_header {
	__u8 type; /* enum kw_event_type; must be first */
	__u8 _pad[3];
	__u32 pid;          /* tgid of the Kong process */
	__u64 timestamp_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
};

struct kw_conn_open_event {
	struct kw_event_header hdr;
	__u64 conn_id; /* unique for the agent's life: fds are reused, conn ids never */
	__u32 fd;
	__u8 direction; /* enum kw_direction */
	__u8 family;    /* AF_INET (2) or AF_INET6 (10) */
	__u16 local_port;
	__u16 peer_port;
	__u8 _pad[6];
	__u8 local_addr[16]; /* IPv4: first 4 bytes, network order */
	__u8 peer_addr[16];
};

struct kw_data_event {
	struct kw_event_header hdr;
	__u64 conn_id;
	__s64 result; /* syscall return: bytes moved, 0 = EOF, < 0 = -errno */
	__u32 fd;
	__u8 op;        /* enum kw_op */
	__u8 direction; /* enum kw_direction, as known to BPF */
	__u8 source;    /* enum kw_source */
	__u8 flags;     /* KW_DATA_* */
	__u16 captured_len; /* bytes in data[], from the first byte moved */
	__u16 tail_len;     /* bytes in tail[]: the last tail_len bytes moved (0 when data[] holds them) */
	__u8 _pad[4];
	__u8 tail[KW_TAIL_LEN];
	__u8 data[KW_MAX_CAPTURE]; /* only captured_len bytes are sent */
};

struct kw_conn_close_event {
	struct kw_event_header hdr;
	__u64 conn_id;
	__u32 fd;
	__u8 direction;
	__u8 peer_state; /* KW_PEER_* bits: how the socket stood when Kong closed it */
	__u8 _pad[2];
	__u64 bytes_read;
	__u64 bytes_written;
};

/* kw_conn_close_event.peer_state: a request without a response on a socket the client had
 * already shut (nginx logs 499) is told apart from one Kong dropped on its own. */
enum kw_peer_state {
	KW_PEER_CLOSED = 1, /* the peer sent FIN: nothing more will be read */
	KW_PEER_RESET = 2,  /* the socket holds an error (e.g. ECONNRESET) */
};

struct kw_lua_phase_event {
	struct kw_event_header hdr;
	__u64 conn_id;
	__u64 request_ptr;
	__u64 start_ns;
	__u64 end_ns;
	__u32 fd;
	__u8 phase; /* enum kw_lua_phase */
	__u8 _pad[3];
};

struct kw_proc_event {
	struct kw_event_header hdr; /* hdr.pid: the process the event is about */
	__u32 ppid;                 /* the parent (fork), or 0 */
	__u8 event;                 /* enum kw_proc_kind */
	__u8 _pad[3];
	char comm[KW_COMM_LEN];     /* the process name after the event */
};

/* Indexes into the kw_stats per-CPU array, summed by the addon. src/capture/records.ts: Stat */
enum kw_stat {
	KW_STAT_EVENTS = 0,        /* records written to the ring buffer */
	KW_STAT_LOST = 1,          /* records the ring buffer had no room for */
	KW_STAT_CONN_OPENED = 2,
	KW_STAT_CONN_CLOSED = 3,
	KW_STAT_CONN_MAP_FULL = 4, /* the connection map had no room for a connection */
	KW_STAT_FORKS_FOLLOWED = 5, /* children of monitored processes monitored by the kernel itself */
	KW_STAT_TLS_UNLINKED = 6,  /* SSL objects used with no SSL_set_fd seen (set before the uprobes): not reported */
	KW_STAT_MAX = 7,
};

#endif /* KONG_WATCHER_EVENTS_H */
