/**
 * Incubating semantic-convention names, copied here so a rename upstream cannot silently change
 * what we emit (stable names come from @opentelemetry/semantic-conventions itself).
 */

export const ATTR_HTTP_REQUEST_BODY_SIZE = 'http.request.body.size';
export const ATTR_HTTP_RESPONSE_BODY_SIZE = 'http.response.body.size';
export const ATTR_HOST_NAME = 'host.name';
export const ATTR_PROCESS_PID = 'process.pid';
export const ATTR_CPU_MODE = 'cpu.mode';

export const METRIC_HTTP_SERVER_ACTIVE_REQUESTS = 'http.server.active_requests';
export const METRIC_HTTP_SERVER_REQUEST_BODY_SIZE = 'http.server.request.body.size';
export const METRIC_HTTP_SERVER_RESPONSE_BODY_SIZE = 'http.server.response.body.size';
export const METRIC_PROCESS_CPU_TIME = 'process.cpu.time';
export const METRIC_PROCESS_MEMORY_USAGE = 'process.memory.usage';

/** Our own attributes: Kong's view of a request, next to the HTTP conventions. */
export const ATTR_KONG_RESPONSE_SOURCE = 'kong.response.source';
export const ATTR_KONG_ROUTE_NAME = 'kong.route.name';
export const ATTR_KONG_SERVICE_NAME = 'kong.service.name';
export const ATTR_KONG_PROXY_LATENCY_MS = 'kong.proxy_latency_ms';
export const ATTR_KONG_UPSTREAM_LATENCY_MS = 'kong.upstream_latency_ms';
export const ATTR_KONG_RESPONSE_LATENCY_MS = 'kong.response_latency_ms';
export const ATTR_KONG_BEFORE_UPSTREAM_NS = 'kong.latency.before_upstream_ns';
export const ATTR_KONG_UPSTREAM_NS = 'kong.latency.upstream_ns';
export const ATTR_KONG_AFTER_UPSTREAM_NS = 'kong.latency.after_upstream_ns';
export const ATTR_KONG_ATTEMPTS = 'kong.upstream.attempts';
export const ATTR_K8S_POD_NAME = 'k8s.pod.name';
export const ATTR_K8S_NAMESPACE_NAME = 'k8s.namespace.name';
export const ATTR_K8S_POD_UID = 'k8s.pod.uid';
/** sum of the kong.lua.<phase>_ns span attributes: time in Kong's Lua (Lua uprobes on) */
export const ATTR_KONG_LUA_TOTAL_NS = 'kong.lua.total_ns';

/** RPC conventions, for gRPC over HTTP/2 */
export const ATTR_RPC_SYSTEM = 'rpc.system';
export const ATTR_RPC_SERVICE = 'rpc.service';
export const ATTR_RPC_METHOD = 'rpc.method';
export const ATTR_RPC_GRPC_STATUS_CODE = 'rpc.grpc.status_code';
export const RPC_SYSTEM_VALUE_GRPC = 'grpc';
