/**
 * deploy/ without a cluster: every Kubernetes object validates against the API's own schemas
 * (kubernetes-models ships them, compiled, for each kind), every kustomization points at files
 * that exist, and the pieces refer to each other correctly (selectors, ports, volumes, config).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments, parse } from 'yaml';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IEnvVar } from 'kubernetes-models/v1/EnvVar';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import type { IService } from 'kubernetes-models/v1/Service';

const ROOT = path.resolve(__dirname, '../..');
const DEPLOY = path.join(ROOT, 'deploy');

/** Any workload or Service here: the fields the checks read, typed by the API's own models. */
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: unknown;
}
/** Deployment and DaemonSet share the fields read here (selector, template). */
type WorkloadSpec = NonNullable<IDeployment['spec']>;
type ServiceSpec = NonNullable<IService['spec']>;
interface Kustomization {
  kind: string;
  resources?: string[];
  configMapGenerator?: { name: string; files?: string[] }[];
  patches?: { path?: string }[];
}
interface CollectorConfig {
  exporters?: { prometheus?: { endpoint?: string; resource_to_telemetry_conversion?: { enabled?: boolean } } };
  extensions?: { health_check?: { endpoint?: string } };
}
interface PodTemplate {
  file: string;
  name: string;
  spec: IPodSpec;
  labels: Record<string, string>;
}
interface Loaded {
  file: string;
  object: K8sObject;
}

function yamlFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return yamlFiles(p);
    return /\.ya?ml$/.test(e.name) ? [p] : [];
  });
}

function readYamlDocs(file: string): unknown[] {
  const docs = parseAllDocuments(fs.readFileSync(file, 'utf8'));
  for (const d of docs) assert.deepEqual(d.errors, [], `${file}: YAML errors`);
  return docs.map((d) => d.toJS()).filter((d) => d != null);
}

const isKustomization = (f: string) => path.basename(f) === 'kustomization.yaml';
const COLLECTOR_CONFIG = path.join(DEPLOY, 'otel-collector-config.yaml');
const PATCHES = new Set<string>();

function kustomizations(): { file: string; k: Kustomization }[] {
  return yamlFiles(DEPLOY)
    .filter(isKustomization)
    .map((file) => ({ file, k: parse(fs.readFileSync(file, 'utf8')) }));
}
for (const { file, k } of kustomizations()) {
  for (const p of k.patches ?? []) if (p.path) PATCHES.add(path.resolve(path.dirname(file), p.path));
}

function objects(): Loaded[] {
  return yamlFiles(DEPLOY)
    .filter((f) => !isKustomization(f) && f !== COLLECTOR_CONFIG && !PATCHES.has(f))
    .flatMap((file) => readYamlDocs(file).map((object) => ({ file, object: object as K8sObject })));
}

/** "apps/v1" + Deployment -> kubernetes-models/apps/v1/Deployment; the core group is "v1". */
function modelFor(apiVersion: string, kind: string): new (data: unknown) => { validate(): void } {
  const mod = require(`kubernetes-models/${apiVersion}/${kind}`);
  const Model = mod[kind];
  assert.equal(typeof Model, 'function', `no schema for ${apiVersion} ${kind}`);
  return Model;
}

function podSpecs(all: Loaded[]): PodTemplate[] {
  return all
    .filter(({ object }) => ['Deployment', 'DaemonSet', 'StatefulSet'].includes(object.kind))
    .map(({ file, object }) => ({
      file,
      name: `${object.kind}/${object.metadata.name}`,
      spec: defined(workloadSpec(object).template.spec, `${object.kind}/${object.metadata.name} pod spec`),
      labels: workloadSpec(object).template.metadata?.labels ?? {},
    }));
}

function workloadSpec(object: K8sObject): WorkloadSpec {
  return defined(object.spec, `${object.kind}/${object.metadata.name} spec`) as WorkloadSpec;
}

function defined<T>(value: T | undefined | null, what: string): T {
  assert.ok(value !== undefined && value !== null, `${what} is missing`);
  return value;
}

function envOf(c: IContainer): Map<string, IEnvVar> {
  return new Map((c.env ?? []).map((e) => [e.name, e]));
}

function probePort(probe: IProbe): string | number | undefined {
  return probe.httpGet?.port ?? probe.tcpSocket?.port;
}

const agentContainers = () =>
  podSpecs(objects()).flatMap((p) =>
    p.spec.containers.filter((c) => c.name === 'kong-ebpf-monitor').map((c) => ({ ...p, c })),
  );

test('deploy/ holds the sidecar, DaemonSet, collector and service account objects', () => {
  const kinds = objects().map(({ object }) => `${object.kind}/${object.metadata.name}`);
  for (const want of [
    'Deployment/kong',
    'DaemonSet/kong-watcher',
    'Deployment/otel-collector',
    'Service/otel-collector',
    'ServiceAccount/kong-watcher',
  ]) {
    assert.ok(kinds.includes(want), `${want} missing from deploy/ (found ${kinds.join(', ')})`);
  }
});

test('every object validates against the Kubernetes schema of its kind', () => {
  const all = objects();
  assert.ok(all.length >= 5, `expected at least 5 objects, found ${all.length}`);
  for (const { file, object } of all) {
    assert.ok(object.apiVersion && object.kind, `${file}: an object without apiVersion/kind`);
    const Model = modelFor(object.apiVersion, object.kind);
    assert.doesNotThrow(
      () => new Model(object).validate(),
      `${path.relative(ROOT, file)}: ${object.kind}/${object.metadata?.name} is not valid`,
    );
  }
});

test('the schema check can fail: a bad manifest is rejected', () => {
  const { object } = objects().find(({ object }) => object.kind === 'Deployment')!;
  const broken = structuredClone(object);
  const container = defined(workloadSpec(broken).template.spec, 'pod spec').containers[0];
  Object.assign(container, { ports: [{ containerPort: 'eighty' }] });
  const Model = modelFor(broken.apiVersion, broken.kind);
  assert.throws(() => new Model(broken).validate(), 'a string containerPort must be rejected');
});

test('every kustomization refers to files and folders that exist', () => {
  const ks = kustomizations();
  assert.ok(ks.length >= 2, 'deploy/kustomization.yaml and deploy/daemonset/kustomization.yaml');
  for (const { file, k } of ks) {
    const dir = path.dirname(file);
    const rel = path.relative(ROOT, file);
    assert.equal(k.kind, 'Kustomization', `${rel}: kind`);
    assert.ok(Array.isArray(k.resources) && k.resources.length > 0, `${rel}: no resources`);
    for (const r of k.resources) {
      const p = path.resolve(dir, r);
      assert.ok(fs.existsSync(p), `${rel}: resource ${r} does not exist`);
      if (fs.statSync(p).isDirectory()) {
        assert.ok(
          fs.existsSync(path.join(p, 'kustomization.yaml')),
          `${rel}: ${r} is a folder without a kustomization`,
        );
      } else {
        assert.ok(!path.relative(dir, p).startsWith('..'), `${rel}: file ${r} lies outside the kustomization root`);
      }
    }
    for (const g of k.configMapGenerator ?? []) {
      for (const f of g.files ?? []) {
        const source = String(f).split('=').pop()!;
        const p = path.resolve(dir, source);
        assert.ok(fs.existsSync(p), `${rel}: configMapGenerator ${g.name} file ${source} does not exist`);
        assert.ok(!path.relative(dir, p).startsWith('..'), `${rel}: ${source} lies outside the kustomization root`);
      }
    }
    for (const p of k.patches ?? []) {
      if (p.path) assert.ok(fs.existsSync(path.resolve(dir, p.path)), `${rel}: patch ${p.path} does not exist`);
    }
  }
});

test("the collector's ConfigMap is generated from a copy of the repository's otel-collector.yaml", () => {
  const original = path.join(ROOT, 'otel-collector.yaml');
  assert.ok(fs.existsSync(original), 'otel-collector.yaml is missing at the repository root');
  assert.equal(
    fs.readFileSync(COLLECTOR_CONFIG, 'utf8'),
    fs.readFileSync(original, 'utf8'),
    'deploy/otel-collector-config.yaml differs from otel-collector.yaml: cp otel-collector.yaml deploy/otel-collector-config.yaml',
  );
  const config = parse(fs.readFileSync(COLLECTOR_CONFIG, 'utf8')) as CollectorConfig;
  assert.equal(
    config.exporters?.prometheus?.resource_to_telemetry_conversion?.enabled,
    true,
    'the dashboard filters by k8s_namespace_name/k8s_pod_name: resource attributes must become labels',
  );
  assert.match(String(config.exporters?.prometheus?.endpoint), /:8889$/, 'prometheus exporter on :8889');

  const k = defined(
    kustomizations().find(({ file }) => file === path.join(DEPLOY, 'kustomization.yaml')),
    'deploy/kustomization.yaml',
  ).k;
  const generator = defined(
    k.configMapGenerator?.find((g) => g.name === 'otel-collector-config'),
    'configMapGenerator otel-collector-config',
  );
  const data: Record<string, string> = {};
  for (const f of generator.files ?? []) {
    const [key, source] = f.includes('=') ? f.split('=') : [path.basename(f), f];
    data[key] = fs.readFileSync(path.join(DEPLOY, source), 'utf8');
  }
  const ConfigMap = modelFor('v1', 'ConfigMap');
  new ConfigMap({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: generator.name }, data }).validate();

  const collector = defined(
    podSpecs(objects()).find((p) => p.name === 'Deployment/otel-collector'),
    'Deployment/otel-collector',
  );
  const volume = defined(
    collector.spec.volumes?.find((v) => v.configMap?.name === generator.name),
    'a volume of the generated ConfigMap',
  );
  const container = collector.spec.containers[0];
  const mount = defined(
    container.volumeMounts?.find((m) => m.name === volume.name),
    'the mount of the ConfigMap volume',
  );
  const arg = container.args?.find((a) => a.startsWith('--config='));
  assert.equal(arg, `--config=${mount.mountPath}/${Object.keys(data)[0]}`, 'the collector reads the mounted file');

  const healthPort = /:(\d+)$/.exec(String(config.extensions?.health_check?.endpoint))?.[1];
  for (const probe of [container.livenessProbe, container.readinessProbe]) {
    const port = container.ports?.find((p) => p.name === probePort(defined(probe, 'collector probe')));
    assert.equal(String(port?.containerPort), healthPort, "the collector's probes hit its health_check extension");
  }
});

test('selectors match pod labels, Services reach named ports, mounts name declared volumes', () => {
  const all = objects();
  const pods = podSpecs(all);
  for (const { object } of all.filter(({ object }) => ['Deployment', 'DaemonSet'].includes(object.kind))) {
    const spec = workloadSpec(object);
    for (const [k, v] of Object.entries(spec.selector.matchLabels ?? {})) {
      assert.equal(spec.template.metadata?.labels?.[k], v, `${object.kind}/${object.metadata.name}: selector ${k}`);
    }
  }
  for (const { object } of all.filter(({ object }) => object.kind === 'Service')) {
    const spec = defined(object.spec, `Service/${object.metadata.name} spec`) as ServiceSpec;
    const selector = defined(spec.selector, `Service/${object.metadata.name} selector`);
    const selected = pods.filter((p) => Object.entries(selector).every(([k, v]) => p.labels[k] === v));
    assert.ok(selected.length > 0, `Service/${object.metadata.name} selects no pod`);
    const portNames = selected.flatMap((p) => p.spec.containers.flatMap((c) => (c.ports ?? []).map((x) => x.name)));
    for (const port of spec.ports ?? []) {
      assert.ok(
        portNames.includes(String(port.targetPort)),
        `Service/${object.metadata.name}: no container port ${port.targetPort}`,
      );
    }
  }
  for (const p of pods) {
    const volumes = new Set((p.spec.volumes ?? []).map((v) => v.name));
    for (const c of p.spec.containers) {
      for (const m of c.volumeMounts ?? []) {
        assert.ok(volumes.has(m.name), `${p.name}/${c.name}: volume ${m.name} undeclared`);
      }
      for (const probe of [c.livenessProbe, c.readinessProbe]) {
        const port = probe && probePort(probe);
        if (typeof port === 'string') {
          assert.ok(
            (c.ports ?? []).some((x) => x.name === port),
            `${p.name}/${c.name}: probe port ${port} undeclared`,
          );
        }
      }
    }
  }
});

test('the agent runs with its variables, least privilege, health probes and resources', () => {
  const agents = agentContainers();
  assert.equal(agents.length, 2, 'one agent in the sidecar Deployment, one in the DaemonSet');
  for (const { name, spec, c } of agents) {
    const env = envOf(c);
    for (const v of [
      'LOG_LEVEL',
      'ENABLE_JSON_LOG',
      'KONG_PROCESS_NAME',
      'STATS_INTERVAL',
      'HOST_PROC',
      'KONG_WATCH_SCOPE',
    ]) {
      assert.ok(env.has(v), `${name}: env ${v}`);
    }
    assert.equal(env.get('HOST_PROC')?.value, '/host/proc', `${name}: HOST_PROC`);
    assert.equal(env.get('OTEL_EXPORTER_OTLP_ENDPOINT')?.value, 'http://otel-collector:4317', `${name}: OTLP endpoint`);
    assert.equal(env.get('K8S_NODE_NAME')?.valueFrom?.fieldRef?.fieldPath, 'spec.nodeName', `${name}: node name`);

    const sc = defined(c.securityContext, `${name}: securityContext`);
    assert.notEqual(sc.privileged, true, `${name}: not privileged`);
    assert.equal(sc.allowPrivilegeEscalation, false, `${name}: allowPrivilegeEscalation`);
    assert.equal(sc.readOnlyRootFilesystem, true, `${name}: readOnlyRootFilesystem`);
    assert.deepEqual(sc.capabilities?.drop, ['ALL'], `${name}: drop ALL`);
    assert.deepEqual(
      [...(sc.capabilities?.add ?? [])].sort(),
      ['BPF', 'PERFMON', 'SYS_PTRACE', 'SYS_RESOURCE'],
      `${name}: exactly the capabilities the agent needs`,
    );

    const mounts = new Map((c.volumeMounts ?? []).map((m) => [m.mountPath, m]));
    for (const p of ['/host/proc', '/sys/kernel/btf', '/sys/kernel/tracing']) {
      const mount = defined(mounts.get(p), `${name}: mount ${p}`);
      assert.equal(mount.readOnly, true, `${name}: ${p} mounted read-only`);
      const volume = spec.volumes?.find((v) => v.name === mount.name);
      assert.equal(volume?.hostPath?.path, p === '/host/proc' ? '/proc' : p, `${name}: ${p} from the host`);
    }
    const liveness = defined(c.livenessProbe?.httpGet, `${name}: liveness probe`);
    assert.equal(liveness.path, '/healthz', `${name}: liveness on /healthz`);
    assert.equal(c.readinessProbe?.httpGet?.path, '/readyz', `${name}: readiness on /readyz`);
    const health = c.ports?.find((x) => x.name === liveness.port);
    assert.equal(
      String(health?.containerPort),
      env.get('HEALTH_PORT')?.value ?? '8686',
      `${name}: probe port = HEALTH_PORT`,
    );
  }

  const sidecar = defined(
    agents.find((a) => a.name === 'Deployment/kong'),
    'the sidecar',
  );
  assert.equal(sidecar.spec.shareProcessNamespace, true, 'the sidecar shares the pod PID namespace');
  assert.ok(
    sidecar.spec.containers.some((c) => /^kong:3\.4/.test(c.image ?? '')),
    'Kong 3.4 beside the agent',
  );
  assert.deepEqual(
    sidecar.c.resources,
    { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '200m', memory: '256Mi' } },
    'the sidecar resources of the original design',
  );
  const env = envOf(sidecar.c);
  assert.equal(env.get('KONG_WATCH_SCOPE')?.value, 'netns', 'the sidecar watches its own pod');
  assert.equal(env.get('K8S_POD_NAME')?.valueFrom?.fieldRef?.fieldPath, 'metadata.name', 'pod from downward API');
  assert.equal(env.get('K8S_NAMESPACE_NAME')?.valueFrom?.fieldRef?.fieldPath, 'metadata.namespace', 'namespace');

  const daemon = defined(
    agents.find((a) => a.name === 'DaemonSet/kong-watcher'),
    'the DaemonSet agent',
  );
  assert.equal(daemon.spec.hostPID, true, 'the DaemonSet sees every process of the node');
  assert.equal(envOf(daemon.c).get('KONG_WATCH_SCOPE')?.value, 'host', 'the DaemonSet watches the node');
});

test('the DaemonSet overlay removes the sidecar it replaces', () => {
  const patch = parse(fs.readFileSync(path.join(DEPLOY, 'daemonset/remove-sidecar.yaml'), 'utf8')) as IDeployment;
  assert.equal(patch.metadata?.name, 'kong', 'patches the Kong Deployment');
  assert.deepEqual(
    patch.spec?.template.spec?.containers,
    [{ name: 'kong-ebpf-monitor', $patch: 'delete' }],
    'deletes the sidecar container',
  );
});

test('scrape annotations: the collector by default, each agent with the prometheus-scrape overlay', () => {
  const collector = defined(
    objects().find(({ object }) => object.kind === 'Deployment' && object.metadata.name === 'otel-collector'),
    'Deployment/otel-collector',
  ).object;
  const template = workloadSpec(collector).template;
  const annotations = template.metadata?.annotations ?? {};
  assert.equal(annotations['prometheus.io/scrape'], 'true', 'the collector is scraped');
  const config = parse(fs.readFileSync(COLLECTOR_CONFIG, 'utf8')) as CollectorConfig;
  const exporterPort = /:(\d+)$/.exec(String(config.exporters?.prometheus?.endpoint))?.[1];
  assert.equal(annotations['prometheus.io/port'], exporterPort, "on its prometheus exporter's port");
  assert.ok(
    template.spec?.containers[0].ports?.some((p) => String(p.containerPort) === exporterPort),
    'a declared container port',
  );

  const dir = path.join(DEPLOY, 'prometheus-scrape');
  const k = parse(fs.readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8')) as Kustomization;
  assert.deepEqual(k.resources, ['..'], 'an overlay of the sidecar layout');
  const patch = parse(fs.readFileSync(path.join(dir, k.patches![0].path!), 'utf8')) as IDeployment;
  assert.equal(patch.metadata?.name, 'kong', "patches Kong's Deployment");
  const pod = patch.spec!.template;
  const agent = defined(
    pod.spec?.containers.find((c) => c.name === 'kong-ebpf-monitor'),
    'the agent container',
  );
  const env = envOf(agent);
  assert.match(String(env.get('OTEL_METRICS_EXPORTER')?.value), /(^|,)prometheus(,|$)/, 'the prometheus exporter on');
  assert.equal(env.get('OTEL_EXPORTER_PROMETHEUS_HOST')?.value, '0.0.0.0', 'reachable from Prometheus');
  const port = env.get('OTEL_EXPORTER_PROMETHEUS_PORT')?.value;
  assert.equal(pod.metadata?.annotations?.['prometheus.io/port'], port, 'the annotation names its port');
  assert.equal(pod.metadata?.annotations?.['prometheus.io/scrape'], 'true');
  assert.equal(pod.metadata?.annotations?.['prometheus.io/path'], '/metrics');
  assert.ok(
    agent.ports?.some((p) => String(p.containerPort) === port && p.name === 'metrics'),
    'a named container port',
  );
  // Validated as a whole Deployment once merged into the sidecar's (lists merge by name).
  const base = defined(
    objects().find(({ object }) => object.kind === 'Deployment' && object.metadata.name === 'kong'),
    'Deployment/kong',
  ).object;
  const merged = structuredClone(base) as IDeployment;
  const tpl = merged.spec!.template;
  tpl.metadata = { ...tpl.metadata, annotations: { ...tpl.metadata?.annotations, ...pod.metadata?.annotations } };
  const c = tpl.spec!.containers.find((x) => x.name === 'kong-ebpf-monitor')!;
  c.env = [...(c.env ?? []).filter((e) => !env.has(e.name)), ...(agent.env ?? [])];
  c.ports = [...(c.ports ?? []), ...(agent.ports ?? [])];
  assert.doesNotThrow(() => new (modelFor('apps/v1', 'Deployment'))(merged).validate(), 'the merged Deployment');
});
