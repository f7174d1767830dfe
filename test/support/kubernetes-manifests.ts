import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { parseAllDocuments } from 'yaml';

export const manifestsDir = fileURLToPath(new URL('../../deploy/kubernetes/', import.meta.url));

export interface Manifest {
  file: string;
  object: { apiVersion?: string; kind?: string; metadata?: { name?: string } } & Record<string, unknown>;
}

/**
 * Every document of every YAML file in deploy/kubernetes/, kustomization.yaml aside (kustomize's
 * own file, not an API object). Read as YAML 1.1, as Kubernetes reads it: `0440` is an octal file
 * mode there, not four hundred and forty.
 */
export function readManifests(): Manifest[] {
  return manifestFiles().flatMap((file) =>
    parseAllDocuments(readManifestFile(file), { version: '1.1' }).map((document) => {
      if (document.errors.length > 0) throw new Error(`${file}: ${document.errors.map((error) => error.message).join('; ')}`);
      return { file, object: document.toJS() as Manifest['object'] };
    }),
  );
}

export function manifestFiles(): string[] {
  return readdirSync(manifestsDir)
    .filter((file) => /\.ya?ml$/.test(file) && file !== 'kustomization.yaml')
    .sort();
}

export function readManifestFile(file: string): string {
  return readFileSync(`${manifestsDir}${file}`, 'utf8');
}

type Model = new (data: never) => { validate(): void };

/** The kinds deploy/kubernetes/ may hold, by `apiVersion/kind`, each with its generated schema. */
const models: Record<string, Model> = {
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
};

/**
 * What the Kubernetes OpenAPI schema (kubernetes-models' validators) finds wrong with a document:
 * an unknown kind, a schema violation, or a field the schema does not know. Kubernetes' schemas
 * leave objects open, so a misspelt field (`readinesProbe`) validates and the API server drops it
 * (or refuses it, with strict field validation). The validator looks only at fields it knows, so
 * each field is replaced in turn by a value no schema type accepts: a document still valid then
 * has a field nobody reads. Map entries (labels, the Secret's keys) are checked by their map's
 * value schema, so they count as known.
 */
export function schemaProblems({ object }: Manifest): string[] {
  const model = models[`${object.apiVersion}/${object.kind}`];
  if (model === undefined) return [`no schema for ${object.apiVersion} ${object.kind}`];
  const problem = (data: unknown): string | undefined => {
    try {
      new model(data as never).validate();
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  };
  const invalid = problem(object);
  if (invalid !== undefined) return [invalid];

  const unknown: string[] = [];
  const visit = (value: unknown, path: (string | number)[]): void => {
    if (Array.isArray(value)) return value.forEach((item, index) => visit(item, [...path, index]));
    if (value === null || typeof value !== 'object') return;
    for (const [key, child] of Object.entries(value)) {
      const poisoned = structuredClone(object) as Record<string | number, unknown>;
      const parent = path.reduce<Record<string | number, unknown>>(
        (node, step) => node[step] as Record<string | number, unknown>,
        poisoned,
      );
      parent[key] = Symbol('no schema type accepts this');
      if (problem(poisoned) === undefined) unknown.push(`unknown field ${[...path, key].join('.')}`);
      else visit(child, [...path, key]);
    }
  };
  visit(object, []);
  return unknown;
}
