/**
 * The Resource every span and metric carries: who is reporting (the agent, named after the
 * gateway it watches) and where it runs (host, Kubernetes pod via the downward API).
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import {
  ATTR_K8S_NAMESPACE_NAME,
  ATTR_K8S_NODE_NAME,
  ATTR_K8S_POD_NAME,
  ATTR_SERVICE_INSTANCE_ID,
  ATTR_SERVICE_NAME,
  ATTR_TELEMETRY_SDK_LANGUAGE,
  ATTR_TELEMETRY_SDK_NAME,
  ATTR_TELEMETRY_SDK_VERSION,
} from '@opentelemetry/semantic-conventions';
import { ATTR_HOST_NAME, ATTR_PROCESS_PID } from './semconv';

type Env = Record<string, string | undefined>;

export function buildResourceAttributes(
  env: Env,
  serviceName: string,
  extra: Record<string, string>,
): Record<string, string | number> {
  const attrs: Record<string, string | number> = {
    [ATTR_TELEMETRY_SDK_NAME]: 'kong-watcher',
    [ATTR_TELEMETRY_SDK_LANGUAGE]: 'nodejs',
    [ATTR_TELEMETRY_SDK_VERSION]: '0.1.0',
    [ATTR_HOST_NAME]: hostname(),
    [ATTR_PROCESS_PID]: process.pid,
  };
  // OTEL_RESOURCE_ATTRIBUTES may not override what the environment states more precisely.
  Object.assign(attrs, extra);
  const fromEnv: [string, string][] = [
    [ATTR_K8S_POD_NAME, 'K8S_POD_NAME'],
    [ATTR_K8S_NAMESPACE_NAME, 'K8S_NAMESPACE_NAME'],
    [ATTR_K8S_NODE_NAME, 'K8S_NODE_NAME'],
  ];
  for (const [attr, name] of fromEnv) {
    const v = env[name]?.trim();
    if (v) attrs[attr] = v;
  }
  // OTEL_SERVICE_NAME wins over service.name in OTEL_RESOURCE_ATTRIBUTES (specification).
  attrs[ATTR_SERVICE_NAME] = env.OTEL_SERVICE_NAME?.trim() ? serviceName : (extra[ATTR_SERVICE_NAME] ?? serviceName);
  // One instance per pod when the pod is known, so restarts of the agent keep the identity.
  attrs[ATTR_SERVICE_INSTANCE_ID] =
    extra[ATTR_SERVICE_INSTANCE_ID] ??
    (attrs[ATTR_K8S_POD_NAME]
      ? `${attrs[ATTR_K8S_NAMESPACE_NAME] ?? 'default'}/${attrs[ATTR_K8S_POD_NAME]}`
      : randomUUID());
  return attrs;
}

export function buildResource(env: Env, serviceName: string, extra: Record<string, string>): Resource {
  return resourceFromAttributes(buildResourceAttributes(env, serviceName, extra));
}
