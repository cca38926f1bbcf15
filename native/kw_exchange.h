/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the native assembler hands to JavaScript, defined once: finished HTTP exchanges (and the
 * kernel's process events), one batch per Buffer. A batch is consecutive frames; every frame is
 * a fixed-size struct followed by its strings, and its frame_size (a multiple of 8) steps to the
 * next one. Numbers sit at fixed offsets; strings are {offset, length} relative to the frame's
 * first byte, with offset 0 meaning "absent" (no string starts inside the struct).
 *
 * Mirrored field by field in src/capture/exchange-layout.ts; test/unit/records-layout.test.ts
 * compiles this header and checks every size, offset and constant against it.
 *
 * Rules: the first byte of every frame is its type; no packed structs, explicit padding,
 * 8-byte aligned sizes.
 */
#ifndef KW_EXCHANGE_H
#define KW_EXCHANGE_H

#include <stdint.h>

#include "kong_watcher_events.h"

/* src/capture/exchange-layout.ts: FrameType */
enum kw_frame_type {
	KW_FRAME_SERVER = 1, /* Kong served a request: one SERVER exchange */
	KW_FRAME_CLIENT = 2, /* Kong called an upstream: one CLIENT exchange per attempt */
	KW_FRAME_PROC = 3,   /* a kernel process event, for discovery (struct kw_proc_frame) */
};

/* The methods the semantic conventions name; any other is KW_METHOD_OTHER with method_text set.
 * src/capture/exchange-layout.ts: Method */
enum kw_method {
	KW_METHOD_OTHER = 0,
	KW_METHOD_GET = 1,
	KW_METHOD_HEAD = 2,
	KW_METHOD_POST = 3,
	KW_METHOD_PUT = 4,
	KW_METHOD_DELETE = 5,
	KW_METHOD_CONNECT = 6,
	KW_METHOD_OPTIONS = 7,
	KW_METHOD_TRACE = 8,
	KW_METHOD_PATCH = 9,
	KW_METHOD_MAX = 10,
};

/* Why an exchange did not end normally. src/capture/exchange-layout.ts: ErrorCode */
enum kw_error {
	KW_ERR_NONE = 0,
	KW_ERR_CLIENT_CLOSED = 1,       /* the client left before the answer ended (nginx logs 499 before the head) */
	KW_ERR_UPSTREAM_CLOSED = 2,     /* the upstream closed before its answer ended */
	KW_ERR_CONNECTION_RESET = 3,    /* the peer reset the connection */
	KW_ERR_READ_ERROR = 4,          /* a read failed with another errno */
	KW_ERR_WRITE_ERROR = 5,         /* a write failed */
	KW_ERR_INCOMPLETE_RESPONSE = 6, /* Kong closed the connection before the answer ended */
	KW_ERR_INCOMPLETE_REQUEST = 7,  /* the connection ended inside a request head (nginx logs 400, or 408) */
	KW_ERR_PROTOCOL_ERROR = 8,      /* the response was not HTTP */
	KW_ERR_TIMEOUT = 9,             /* the connection was silent for the pending timeout */
	KW_ERR_EVICTED = 10,            /* the connection was evicted to bound memory */
	KW_ERR_PROCESS_EXITED = 11,     /* the worker died with the exchange in flight (nginx never logs it) */
	KW_ERR_AGENT_STOPPED = 12,      /* the agent stopped with the exchange in flight */
	KW_ERR_MAX = 13,
};

/* kw_exchange.flags */
#define KW_EX_RESPONSE 0x0001         /* a final response head was seen: status is valid */
#define KW_EX_TLS 0x0002              /* the connection is TLS (url.scheme https) */
#define KW_EX_CALLER_CONTEXT 0x0004   /* trace_id and parent_span_id came from the caller (traceparent, b3) */
#define KW_EX_SAMPLED 0x0008          /* W3C sampled flag: the caller's decision, set when the caller gave none */
#define KW_EX_PARENT_SPAN 0x0010      /* parent_span_id is set */
#define KW_EX_SERVER_KONG 0x0020      /* the response's Server header starts with "kong/" */
#define KW_EX_VIA 0x0040              /* the response carries Via (Kong proxied it) */
#define KW_EX_UPGRADED 0x0080         /* 101 Switching Protocols: the connection left HTTP after it */
#define KW_EX_TRUNCATED 0x0100        /* the request head was bigger than what is kept: later headers unseen */
#define KW_EX_CALLER_SAMPLED_SET 0x0200 /* the caller stated a sampling decision (KW_EX_SAMPLED is it) */

/* Longest kept strings, in bytes (longer ones are cut, and KW_EX_TRUNCATED set for the target). */
#define KW_MAX_METHOD_TEXT 64
#define KW_MAX_TARGET 8192
#define KW_MAX_HOST 256
#define KW_MAX_USER_AGENT 512
#define KW_MAX_TRACE_STATE 512
#define KW_MAX_CONTENT_TYPE 128

/* Bytes of a frame's string at frame + offset; offset 0 = absent. Latin-1 bytes as on the wire. */
struct kw_str {
	uint32_t offset;
	uint32_t length;
};

struct kw_exchange {
	uint8_t type;         /* KW_FRAME_SERVER or KW_FRAME_CLIENT; must be first */
	uint8_t method;       /* enum kw_method */
	uint8_t error;        /* enum kw_error */
	uint8_t http_version; /* 9 (0.9), 10, 11, 20 */
	uint16_t status;      /* final response status; 0 when none was seen */
	uint16_t flags;       /* KW_EX_* */
	uint32_t frame_size;  /* this struct and its strings, a multiple of 8 */
	uint32_t pid;         /* the worker that served it */
	uint32_t conn_request; /* 1-based position on its connection (keep-alive, pipelining) */
	uint16_t attempts;     /* SERVER: upstream attempts linked to it */
	uint16_t attempt;      /* CLIENT: 0-based position among its SERVER's attempts */
	uint64_t id;           /* unique for the agent's life */
	uint64_t parent_id;    /* CLIENT: the id of the SERVER exchange it serves; 0 when unmatched */
	uint64_t conn_id;
	/* CLOCK_MONOTONIC ns (bpf_ktime_get_ns); 0 = not seen */
	uint64_t start_ns;          /* first request byte read (SERVER) or written (CLIENT) */
	uint64_t request_end_ns;    /* last request byte */
	uint64_t response_start_ns; /* first response byte */
	uint64_t end_ns;            /* last response byte, or when the exchange was abandoned */
	uint64_t upstream_start_ns; /* SERVER: first byte of its first attempt */
	uint64_t upstream_end_ns;   /* SERVER: last byte of its last attempt */
	uint64_t request_body_size;
	uint64_t response_body_size;
	uint32_t request_head_size;
	uint32_t response_head_size;
	uint64_t lua_ns[KW_LUA_PHASE_MAX]; /* SERVER: ns in each Lua phase (enum kw_lua_phase) before the answer ended */
	int32_t kong_proxy_latency_ms;     /* X-Kong-Proxy-Latency; -1 when absent */
	int32_t kong_upstream_latency_ms;  /* X-Kong-Upstream-Latency; -1 when absent */
	int32_t kong_response_latency_ms;  /* X-Kong-Response-Latency; -1 when absent */
	int16_t grpc_status;               /* grpc-status of the response or its trailers; -1 when absent */
	uint8_t family;                    /* AF_INET (2) or AF_INET6 (10); 0 when the socket is unknown */
	uint8_t _pad0;
	uint16_t local_port;
	uint16_t peer_port;
	uint32_t stream_id; /* HTTP/2 stream; 0 for HTTP/1 */
	uint8_t local_addr[16]; /* network order; IPv4 in the first 4 bytes */
	uint8_t peer_addr[16];
	uint8_t trace_id[16];
	uint8_t span_id[8];         /* this exchange's span */
	uint8_t parent_span_id[8];  /* the caller's span (SERVER) or the SERVER exchange's span (CLIENT) */
	struct kw_str method_text;  /* the method as sent, when it is KW_METHOD_OTHER */
	struct kw_str path;         /* request-target up to '?' (origin form; absolute form keeps only its path) */
	struct kw_str query;        /* after '?', without it; absent when there is no '?' */
	struct kw_str host;         /* Host (HTTP/1) or :authority (HTTP/2) */
	struct kw_str user_agent;
	struct kw_str trace_state;  /* W3C tracestate that came with the caller's context */
	struct kw_str content_type; /* the request's Content-Type */
};

struct kw_proc_frame {
	uint8_t type;  /* KW_FRAME_PROC; must be first */
	uint8_t event; /* enum kw_proc_kind */
	uint8_t _pad[2];
	uint32_t frame_size;
	uint32_t pid;
	uint32_t ppid;
	uint64_t time_ns;
	char comm[KW_COMM_LEN];
};

#endif /* KW_EXCHANGE_H */
