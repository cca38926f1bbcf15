/**
 * The rows of the live view's table: one per (pod, route, service), the labels a metric series
 * carries, so that a row is exactly the sum of some exported series. The same key is made from a
 * series' attributes (the window) and from an enriched exchange (the retry counts).
 */
import type { Attributes } from '@opentelemetry/api';
import { ATTR_HTTP_ROUTE } from '@opentelemetry/semantic-conventions';
import type { EnrichedExchange } from '../../enrich/enriched';
import {
  ATTR_K8S_NAMESPACE_NAME,
  ATTR_K8S_POD_NAME,
  ATTR_KONG_ROUTE_NAME,
  ATTR_KONG_SERVICE_NAME,
} from '../../otel/semconv';

export interface RowIdentity {
  /** http.route: the route's path template */
  route?: string;
  /** kong.route.name */
  routeName?: string;
  /** kong.service.name */
  service?: string;
  /** k8s.pod.name, on a node-wide agent */
  pod?: string;
  namespace?: string;
  /** the series past the cardinality cap (otel.metric.overflow) */
  overflow?: boolean;
}

const SEP = '\u0000';

export function rowKey(r: RowIdentity): string {
  if (r.overflow) return 'overflow';
  return [r.namespace, r.pod, r.route, r.routeName, r.service].map((v) => v ?? '').join(SEP);
}

/** The row of a SERVER series, from the attributes http-metrics.ts gave it. */
export function rowOfAttributes(a: Attributes): RowIdentity {
  if (a['otel.metric.overflow'] === true) return { overflow: true };
  return {
    route: text(a[ATTR_HTTP_ROUTE]),
    routeName: text(a[ATTR_KONG_ROUTE_NAME]),
    service: text(a[ATTR_KONG_SERVICE_NAME]),
    pod: text(a[ATTR_K8S_POD_NAME]),
    namespace: text(a[ATTR_K8S_NAMESPACE_NAME]),
  };
}

/** The row of a SERVER exchange: the same fields the metric series took from it. */
export function rowOfExchange(e: EnrichedExchange): RowIdentity {
  return {
    route: e.route?.route,
    routeName: e.route?.routeName,
    service: e.route?.serviceName,
    pod: e.pod?.name,
    namespace: e.pod?.namespace,
  };
}

function text(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
