/**
 * What the platform stage last deployed, so a re-run with nothing changed skips
 * parsing and planning every job. The record (0600 in the state dir) holds a
 * digest of everything the stage sends — job files, the variables passed to
 * each job, the Nomad variables' items, the Nomad version — and the modify
 * index of each job and variable right after that deployment. A re-run skips
 * only when its digest is the same and two list calls show every job and
 * variable still at its recorded index (nobody re-registered, stopped or purged
 * a job, or edited a variable since); anything else takes the full path.
 */
import { createHash } from "node:crypto";
import type { NomadClient } from "../clients/nomad.ts";
import { readFileIfExists, writeFileAtomic } from "../util/fs.ts";

export interface DeployedRecord {
  digest: string;
  /** job ID → JobModifyIndex */
  jobs: Record<string, number>;
  /** variable path → ModifyIndex */
  variables: Record<string, number>;
}

export interface PlatformInputs {
  nomadVersion: string;
  namespace: string;
  /** per job: its file's content and the variables passed to it */
  jobs: { name: string; source: string; variables: Record<string, string> }[];
  /** Nomad variables: path → items */
  variables: Record<string, Record<string, string>>;
  /** anything else the stage writes (e.g. an ACL policy's rules) */
  extra?: Record<string, string>;
}

/** bump when the way the stage registers jobs changes, so older records never match */
const recordFormat = 1;

/** JSON with object keys sorted at every level: the same inputs give the same digest. */
function stable(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stable).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stable(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

export function platformDigest(inputs: PlatformInputs): string {
  const jobs = [...inputs.jobs].sort((a, b) => (a.name < b.name ? -1 : 1));
  return createHash("sha256")
    .update(stable({ format: recordFormat, ...inputs, jobs }))
    .digest("hex");
}

export async function readDeployedRecord(file: string): Promise<DeployedRecord | undefined> {
  const text = await readFileIfExists(file);
  if (!text) return undefined;
  try {
    const parsed = JSON.parse(text) as DeployedRecord;
    const indexes = (o: unknown) =>
      o !== null && typeof o === "object" && Object.values(o).every((n) => Number.isInteger(n) && (n as number) > 0);
    if (typeof parsed.digest === "string" && indexes(parsed.jobs) && indexes(parsed.variables)) return parsed;
  } catch {
    // a damaged record only costs the full path
  }
  return undefined;
}

export function writeDeployedRecord(file: string, record: DeployedRecord): Promise<void> {
  return writeFileAtomic(file, `${JSON.stringify(record, null, 2)}\n`, 0o600);
}

type IndexReader = Pick<NomadClient, "jobs" | "variableIndexes">;

/** The modify indexes of these jobs and variables now (absent ones are left out). */
export async function currentIndexes(
  nomad: IndexReader,
  namespace: string,
  jobIds: string[],
  paths: string[],
): Promise<Pick<DeployedRecord, "jobs" | "variables">> {
  const [jobs, variables] = await Promise.all([nomad.jobs(namespace), nomad.variableIndexes(namespace)]);
  const jobIndex = new Map(jobs.filter((j) => !j.Stop).map((j) => [j.ID, j.JobModifyIndex]));
  const varIndex = new Map(variables.map((v) => [v.Path, v.ModifyIndex]));
  const pick = (keys: string[], from: Map<string, number | undefined>) =>
    Object.fromEntries(keys.flatMap((k) => (from.get(k) ? [[k, from.get(k) as number]] : [])));
  return { jobs: pick(jobIds, jobIndex), variables: pick(paths, varIndex) };
}

/**
 * Whether this run sends exactly what the record says was deployed (same digest,
 * so the same job files: `jobCount` jobs, and these variable paths), and every
 * recorded job (not stopped) and variable is still at its recorded index.
 */
export async function unchangedSinceRecord(
  nomad: IndexReader,
  namespace: string,
  record: DeployedRecord | undefined,
  digest: string,
  expected: { jobCount: number; paths: string[] },
): Promise<boolean> {
  if (!record || record.digest !== digest) return false;
  const jobIds = Object.keys(record.jobs);
  const { paths } = expected;
  if (jobIds.length !== expected.jobCount || !sameIndexes(record.variables, paths, record.variables)) return false;
  const now = await currentIndexes(nomad, namespace, jobIds, paths);
  return sameIndexes(record.jobs, jobIds, now.jobs) && sameIndexes(record.variables, paths, now.variables);
}

/** `a` has exactly `keys`, each at the index `b` has for it. */
function sameIndexes(a: Record<string, number>, keys: string[], b: Record<string, number>): boolean {
  return keys.length === Object.keys(a).length && keys.every((k) => a[k] !== undefined && a[k] === b[k]);
}
