import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { ISecret } from 'kubernetes-models/v1/Secret';
import type { IService } from 'kubernetes-models/v1/Service';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { envSchema, secretVariables } from '../../src/config/env-schema.js';
import { loadConfig } from '../../src/config/load-config.js';
import { baseEnv, partnershipId } from '../support/broker.js';
import { manifestFiles, readManifestFile, readManifests, schemaProblems } from '../support/kubernetes-manifests.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const manifests = readManifests();

function only<T>(kind: string): T {
  const found = manifests.filter(({ object }) => object.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0]!.object as T;
}
const deployment = only<IDeployment>('Deployment');
const pod = deployment.spec!.template.spec!;
const podLabels = deployment.spec!.template.metadata!.labels!;
const broker = pod.containers[0]!;
const env = new Map((broker.env ?? []).map(({ name, value }) => [name, value ?? '']));
const secret = only<ISecret>('Secret');
const services = manifests.filter(({ object }) => object.kind === 'Service').map(({ object }) => object as IService);

/** A port given by name or number, as the container's port number. */
function containerPort(container: IContainer, port: string | number | undefined): number | undefined {
  if (typeof port === 'number') return container.ports?.some(({ containerPort }) => containerPort === port) ? port : undefined;
  return container.ports?.find(({ name }) => name === port)?.containerPort;
}
const portNamed = (name: string) => containerPort(broker, name);

const selects = (selector: { matchLabels?: Record<string, string> } | undefined) =>
  Object.keys(selector?.matchLabels ?? {}).length > 0 &&
  Object.entries(selector?.matchLabels ?? {}).every(([label, value]) => podLabels[label] === value);

/** The Secret's mounted directory: where the NAME_FILE variables must point. */
function secretMount(): string {
  const volume = pod.volumes?.find((candidate) => candidate.secret?.secretName === secret.metadata?.name);
  const mount = broker.volumeMounts?.find(({ name }) => name === volume?.name);
  expect(mount?.readOnly).toBe(true);
  return mount!.mountPath;
}

/** The configuration the broker would load in this pod, the Secret's files holding `values`. */
function podConfig(values: Record<string, string>, variables: Record<string, string> = {}) {
  const mount = secretMount();
  const files = { ...secret.stringData, ...values };
  return loadConfig(Object.fromEntries([...env, ...Object.entries(variables)]), {
    readFile: (path) => {
      const key = path.startsWith(`${mount}/`) ? path.slice(mount.length + 1) : undefined;
      const content = key === undefined ? undefined : files[key];
      if (content === undefined) throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
      return content;
    },
  });
}
// What an operator fills in for the default setup: a Starship session, an HS256 frontend secret, Redis.
const filledIn: Record<string, string> = {
  ...Object.fromEntries(
    ['BENJI_API_KEY', 'FRONTEND_JWT_SECRET', 'STARSHIP_USERNAME', 'STARSHIP_PASSWORD', 'INTERNAL_API_KEYS', 'TOKEN_ENCRYPTION_KEY'].map(
      (name) => [name, baseEnv[name]!],
    ),
  ),
  REDIS_URL: 'redis://redis:6379',
};
/** The filled-in pod's configuration; a problem fails the test that asked, naming the variable. */
function filledInConfig() {
  const loaded = podConfig(filledIn, { BENJI_PARTNERSHIP_ID: partnershipId });
  if (!loaded.ok) return expect.fail(`the filled-in pod's configuration does not load: ${loaded.problems.join('; ')}`);
  return loaded.config;
}

describe('deploy/kubernetes', () => {
  it('every document validates against the Kubernetes OpenAPI schemas, with no field they do not know', () => {
    expect(manifests.length).toBeGreaterThanOrEqual(7);
    for (const manifest of manifests) expect(schemaProblems(manifest), `${manifest.file}: ${manifest.object.kind}`).toEqual([]);
  });

  it('kustomization.yaml lists every manifest and names the Deployment’s image', () => {
    const kustomization = parse(readManifestFile('kustomization.yaml'), { version: '1.1' }) as {
      resources: string[];
      images: { name: string }[];
    };
    expect([...kustomization.resources].sort()).toEqual(manifestFiles());
    expect(kustomization.images.map(({ name }) => name)).toEqual([broker.image]);
  });

  it('the container’s ports are the doors’ defaults, and the broker loads them from this pod’s variables', () => {
    expect(portNamed('public')).toBe(envSchema.shape.PORT.parse(undefined));
    expect(portNamed('internal')).toBe(envSchema.shape.INTERNAL_PORT.parse(undefined));
    expect(broker.ports).toHaveLength(2);
    const config = filledInConfig();
    expect(config.http.publicPort).toBe(portNamed('public'));
    expect(config.http.internalPort).toBe(portNamed('internal'));
  });

  it('liveness runs the image’s health check of both doors’ /healthz; readiness is the public door’s /readyz', () => {
    // docker/healthcheck.mjs asks /healthz on PORT and INTERNAL_PORT (test/repo/healthcheck.test.ts
    // runs it against a real broker); in this pod those are the container's ports (above).
    expect(broker.livenessProbe?.exec?.command).toEqual(['node', '/app/docker/healthcheck.mjs']);
    const dockerfile = readFileSync(`${root}Dockerfile`, 'utf8');
    const image = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    expect(image).toMatch(/^WORKDIR \/app$/m);
    expect(image).toMatch(/^COPY docker\/healthcheck\.mjs \.\/docker\/healthcheck\.mjs$/m);
    expect(env.get('PORT')).toBe(String(portNamed('public')));
    expect(env.get('INTERNAL_PORT')).toBe(String(portNamed('internal')));
    // One readiness gates both Services; the internal door's /readyz turns 503 on a Starship cooldown
    // shared by every replica, which must not take the public door out (see deployment.yaml).
    expect(broker.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(containerPort(broker, broker.readinessProbe?.httpGet?.port)).toBe(portNamed('public'));
  });

  it('names only the broker’s variables, secrets only as NAME_FILE, each a file of the Secret', () => {
    const variables = new Set(Object.keys(envSchema.shape));
    const secrets = new Set<string>(secretVariables);
    expect(broker.envFrom).toBeUndefined();
    for (const name of env.keys()) {
      const secretName = name.replace(/_FILE$/, '');
      if (name.endsWith('_FILE')) expect(secrets.has(secretName), name).toBe(true);
      else expect(variables.has(name) && !secrets.has(name), name).toBe(true);
    }
    const keys = Object.keys(secret.stringData ?? {});
    expect(secret.data).toBeUndefined();
    expect([...keys].sort()).toEqual([...secretVariables].sort());
    for (const key of keys) expect(env.get(`${key}_FILE`), key).toBe(`${secretMount()}/${key}`);
  });

  it('the Secret template as committed cannot start a broker: it names what is missing', () => {
    const template = podConfig({});
    expect(template.ok).toBe(false);
    if (template.ok) return;
    for (const name of ['BENJI_API_KEY', 'BENJI_PARTNERSHIP_ID', 'INTERNAL_API_KEYS']) {
      expect(
        template.problems.some((problem) => problem.startsWith(`${name}: `)),
        name,
      ).toBe(true);
    }
    // Filled in, it does: the NAME_FILE variables reach the Secret's files.
    const config = filledInConfig();
    expect(config.benji.apiKey).toBe(filledIn.BENJI_API_KEY);
    expect(config.redis).toBeDefined();
  });

  it('runs as a non-root user on a read-only root file system, without a service-account token', () => {
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.enableServiceLinks).toBe(false);
    // The image's user `node` (Dockerfile: USER node) by its number, which the kubelet can check.
    expect(readFileSync(`${root}Dockerfile`, 'utf8')).toMatch(/^USER node$/m);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000 });
    expect(broker.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    // Nothing writable is mounted; the Secret's files are readable by their group, the pod's fsGroup.
    expect(broker.volumeMounts?.every(({ readOnly }) => readOnly === true)).toBe(true);
    expect(pod.volumes?.map((volume) => volume.secret?.defaultMode)).toEqual([0o440]);
  });

  it('the grace period outlasts the preStop pause, the shutdown deadline and closing', () => {
    const pauseS = broker.lifecycle?.preStop?.sleep?.seconds ?? 0;
    expect(pauseS).toBeGreaterThan(0);
    // The drain's deadline as this pod sets it (SHUTDOWN_TIMEOUT_MS, or its default), after which
    // the broker still closes Redis and the upstream pools and waits for its last log lines.
    const drainS = filledInConfig().http.shutdownTimeoutMs / 1000;
    const closingS = 3;
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(pauseS + drainS + closingS);
  });

  it('a public and an internal Service, each on its door’s port and nothing else', () => {
    const byName = new Map(services.map((service) => [service.metadata?.name, service]));
    expect([...byName.keys()].sort()).toEqual(['token-broker', 'token-broker-internal']);
    for (const [name, door] of [
      ['token-broker', 'public'],
      ['token-broker-internal', 'internal'],
    ] as const) {
      const spec = byName.get(name)!.spec!;
      expect(selects({ matchLabels: spec.selector }), name).toBe(true);
      expect(spec.type ?? 'ClusterIP', name).toBe('ClusterIP');
      expect(
        spec.ports?.map((port) => [port.port, containerPort(broker, port.targetPort)]),
        name,
      ).toEqual([[portNamed(door), portNamed(door)]]);
    }
  });

  it('the NetworkPolicy opens the public port and lets only labelled pods of the namespace reach the internal one', () => {
    const { spec } = only<INetworkPolicy>('NetworkPolicy');
    expect(selects(spec!.podSelector)).toBe(true);
    expect(spec!.policyTypes).toContain('Ingress');
    const rules = spec!.ingress ?? [];
    // A rule without ports would open every port, the internal one included.
    expect(rules.every((rule) => (rule.ports ?? []).length > 0)).toBe(true);
    const opens = (door: string) => rules.filter((rule) => rule.ports!.some(({ port }) => containerPort(broker, port) === portNamed(door)));
    expect(opens('public').some((rule) => rule.from === undefined)).toBe(true);
    const internal = opens('internal');
    expect(internal.length).toBeGreaterThan(0);
    for (const rule of internal) {
      expect(rule.from?.length).toBeGreaterThan(0);
      for (const peer of rule.from ?? []) {
        // A podSelector alone: pods of this namespace only, and only those with the label.
        expect(peer.namespaceSelector).toBeUndefined();
        expect(peer.ipBlock).toBeUndefined();
        expect(Object.keys(peer.podSelector?.matchLabels ?? {}).length).toBeGreaterThan(0);
        expect(peer.podSelector?.matchExpressions).toBeUndefined();
      }
    }
  });

  it('runs two replicas, the autoscaler keeps at least two, and the budget lets one go at a time', () => {
    const hpa = only<IHorizontalPodAutoscaler>('HorizontalPodAutoscaler').spec!;
    expect(hpa.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata?.name });
    expect(hpa.minReplicas).toBe(2);
    expect(deployment.spec?.replicas).toBe(2);
    expect(hpa.minReplicas).toBe(deployment.spec?.replicas);
    // CPU utilization is measured against the request.
    expect(broker.resources?.requests?.cpu).toBeDefined();
    expect(broker.resources?.limits?.memory).toBeDefined();
    const pdb = only<IPodDisruptionBudget>('PodDisruptionBudget').spec!;
    expect(selects(pdb.selector)).toBe(true);
    expect(pdb.maxUnavailable).toBe(1);
  });
});
