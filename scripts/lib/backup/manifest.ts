/**
 * `manifest.json` in every snapshot folder: what was taken from which cluster
 * (topology and versions, so a restore can refuse a cluster it does not fit),
 * and the sha256 of each file as written (encrypted files: of the ciphertext),
 * so a damaged or truncated copy is found before anything is restored.
 * The manifest holds no secret and is never encrypted.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { InputError } from "../errors.ts";
import { hostsWithRole, type Inventory } from "../inventory/schema.ts";
import { writeFileAtomic } from "../util/fs.ts";

export const manifestName = "manifest.json";
export const snapshotParts = ["consul", "nomad", "vault", "state"] as const;
export type SnapshotPart = (typeof snapshotParts)[number];
/** the plaintext file name of each part; with encryption `<name>.gpg` */
export const partFile: Record<SnapshotPart, string> = {
  consul: "consul.snap",
  nomad: "nomad.snap",
  vault: "vault.snap",
  state: "state.tar.gz",
};

const fileEntry = z.strictObject({
  part: z.enum(snapshotParts),
  name: z.string().regex(/^[a-z0-9][a-z0-9.-]*$/),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** the node it was taken through */
  host: z.string().optional(),
});

export const manifestSchema = z.strictObject({
  format: z.literal(1),
  cluster: z.string(),
  takenAt: z.string(),
  topology: z.strictObject({
    servers: z.number().int(),
    clients: z.number().int(),
    vault: z.number().int(),
    hosts: z.array(z.string()),
  }),
  versions: z.strictObject({ consul: z.string(), nomad: z.string(), vault: z.string() }),
  /** absent: plaintext files; else the fingerprints every file is encrypted to (any one decrypts) */
  encryptedTo: z.array(z.string()).optional(),
  files: z.array(fileEntry),
});
export type SnapshotManifest = z.infer<typeof manifestSchema>;
export type ManifestFile = z.infer<typeof fileEntry>;

export const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

export function topologyOf(inventory: Inventory): SnapshotManifest["topology"] {
  return {
    servers: hostsWithRole(inventory, "server").length,
    clients: hostsWithRole(inventory, "client").length,
    vault: hostsWithRole(inventory, "vault").length,
    hosts: inventory.hosts.map((h) => h.name),
  };
}

export async function writeManifest(dir: string, manifest: SnapshotManifest): Promise<void> {
  await writeFileAtomic(join(dir, manifestName), `${JSON.stringify(manifestSchema.parse(manifest), null, 2)}\n`, 0o600);
}

/** The folder's manifest, checked; an InputError (exit 2) when it is missing or malformed. */
export async function readManifest(dir: string): Promise<SnapshotManifest> {
  const file = join(dir, manifestName);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InputError(
      code === "ENOENT" ? `${dir} is not a snapshot folder: it has no ${manifestName}.` : `Cannot read ${file}: ${code}.`,
      {
        hint: "Give the folder 'npm run snapshot' printed (.hashistack/snapshots/<cluster>/<UTC time>/); folders from before the manifest existed must be restored by hand (docs/day-two.md).",
      },
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new InputError(`${file} is not JSON (damaged?).`, { hint: "Use another copy of the snapshot." });
  }
  const result = manifestSchema.safeParse(parsed);
  if (!result.success) {
    throw new InputError(`${file} is not a snapshot manifest this version understands.`, {
      details: result.error.issues.map((i) => `${i.path.join(".") || "(top)"}: ${i.message}`),
      hint: "Use another copy of the snapshot.",
    });
  }
  const manifest = result.data;
  const missing = snapshotParts.filter((p) => manifest.files.filter((f) => f.part === p).length !== 1);
  if (missing.length) {
    throw new InputError(`${file} does not list exactly one file for ${missing.join(", ")}.`, {
      hint: "Use another copy of the snapshot.",
    });
  }
  return manifest;
}

/**
 * Every listed file with its size and sha256 as the manifest says; all problems
 * at once. Returns the files' contents by part (as stored: encrypted or not).
 */
export async function verifySnapshotFiles(dir: string, manifest: SnapshotManifest): Promise<Map<SnapshotPart, Buffer>> {
  const problems: string[] = [];
  const contents = new Map<SnapshotPart, Buffer>();
  for (const entry of manifest.files) {
    let data: Buffer;
    try {
      data = await readFile(join(dir, entry.name));
    } catch (error) {
      problems.push(`${entry.name}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
      continue;
    }
    if (data.length !== entry.bytes) problems.push(`${entry.name}: ${data.length} bytes, the manifest says ${entry.bytes}`);
    else if (sha256(data) !== entry.sha256) problems.push(`${entry.name}: sha256 differs from the manifest (damaged?)`);
    else contents.set(entry.part, data);
  }
  if (problems.length) {
    throw new InputError(
      `Snapshot ${dir} is damaged: ${problems.length} file${problems.length === 1 ? "" : "s"} do not match its manifest.`,
      {
        details: problems,
        hint: "Nothing was changed. Use another copy of the snapshot.",
      },
    );
  }
  return contents;
}

/** Why this snapshot cannot go into that cluster (servers, Vault nodes, older versions); empty when it fits. */
export function topologyProblems(
  manifest: Pick<SnapshotManifest, "topology" | "versions">,
  target: { topology: SnapshotManifest["topology"]; versions: SnapshotManifest["versions"] },
): string[] {
  const problems: string[] = [];
  const { topology } = manifest;
  if (topology.servers !== target.topology.servers)
    problems.push(`the snapshot is of ${topology.servers} servers, the cluster has ${target.topology.servers}`);
  if (topology.vault !== target.topology.vault)
    problems.push(`the snapshot is of ${topology.vault} Vault nodes, the cluster has ${target.topology.vault}`);
  for (const product of ["consul", "nomad", "vault"] as const) {
    if (compareVersions(target.versions[product], manifest.versions[product]) < 0)
      problems.push(
        `${product} ${target.versions[product]} on the cluster is older than ${manifest.versions[product]} the snapshot was taken with (a raft snapshot only goes into the same or a newer version)`,
      );
  }
  return problems;
}

/** Numeric comparison of x.y.z (pre-release suffixes ignored). */
export function compareVersions(a: string, b: string): number {
  const parts = (v: string) =>
    v
      .split(/[-+]/)[0]!
      .split(".")
      .map((n) => Number.parseInt(n, 10) || 0);
  const [pa, pb] = [parts(a), parts(b)];
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}
