/**
 * `npm run snapshot`: Consul's, Nomad's and Vault's raft snapshots and a copy of
 * the state dir (unseal keys, tokens, CA, inventory) in one dated folder next to
 * the state, every file 0600 and the folders 0700. Each snapshot is taken through
 * the first server (Vault node) that answers, so one dead node does not stop it.
 * `manifest.json` lists each file's size and sha256 and the cluster's topology
 * (see manifest.ts); with OpenPGP keys in the config every file is encrypted to
 * them (encryption.ts). `npm run restore` reads such a folder back (restore.ts).
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { withConsul, withNomad, withVault } from "../cluster/access.ts";
import { errorMessage, OperationError } from "../errors.ts";
import { hostsWithRole, type InventoryHost } from "../inventory/schema.ts";
import type { ClusterRun } from "../stages/run-context.ts";
import { vaultRootToken } from "../stages/vault-unseal.ts";
import { type PgpPublicKey, pgpEncrypt } from "../util/pgp.ts";
import { snapshotRecipients } from "./encryption.ts";
import {
  type ManifestFile,
  partFile,
  sha256,
  type SnapshotManifest,
  type SnapshotPart,
  topologyOf,
  writeManifest,
} from "./manifest.ts";

export interface SnapshotFile {
  name: string;
  bytes: number;
  /** the node it was taken through */
  host?: string;
}

/** `.hashistack/snapshots/<cluster>/<UTC stamp>/` beside the cluster's state dir. */
export function snapshotDir(run: Pick<ClusterRun, "state" | "config">, now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  return join(dirname(run.state.root), "snapshots", run.config.name, stamp);
}

const snapshotTimeoutMs = 300_000;

async function firstAnswer(
  what: string,
  hosts: InventoryHost[],
  take: (host: InventoryHost) => Promise<Buffer>,
): Promise<{ host: string; data: Buffer }> {
  const failures: string[] = [];
  for (const host of hosts) {
    try {
      const data = await take(host);
      // a Vault standby answers the snapshot request with a redirect and no body: ask the next node
      if (data.length === 0) throw new Error("answered without a snapshot (a standby?)");
      return { host: host.name, data };
    } catch (error) {
      failures.push(`${host.name}: ${errorMessage(error)}`);
    }
  }
  throw new OperationError(`No node gave a ${what} snapshot.`, {
    details: failures,
    hint: "npm run status names what is down; a snapshot needs a leader (quorum).",
  });
}

const raw = { responseType: "arraybuffer" as const, timeout: snapshotTimeoutMs };

/** The state dir as a gzipped tar in memory, without the local provider's node filesystems (nodes/). */
async function stateArchive(root: string): Promise<Buffer> {
  const name = basename(root);
  return new Promise((resolve, reject) => {
    const child = spawn("tar", ["-C", dirname(root), `--exclude=${name}/nodes`, `--exclude=${name}/restore`, "-czf", "-", name], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    let err = "";
    child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0
        ? resolve(Buffer.concat(out))
        : reject(new OperationError(`tar of the state ${root} failed (exit ${code}).`, { details: err.trim().split("\n") })),
    );
  });
}

export interface TakenSnapshot {
  dir: string;
  files: SnapshotFile[];
  /** the fingerprints the files are encrypted to; absent: plaintext */
  encryptedTo?: string[];
}

/**
 * Take the snapshot into `dir`. With OpenPGP keys in the config every file is
 * encrypted in memory before it is written (`<name>.gpg`), so no plaintext copy
 * ever lands on disk. The manifest (sizes and sha256) is written last: a folder
 * without one is incomplete, and a failed snapshot removes its folder.
 */
export async function takeSnapshot(run: ClusterRun, dir = snapshotDir(run)): Promise<TakenSnapshot> {
  const recipients = await snapshotRecipients(run.config, (line) => run.reporter.info(line));
  if (existsSync(dir)) throw new OperationError(`The snapshot folder ${dir} exists already.`, { hint: "Try again in a second." });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  try {
    return await takeInto(run, dir, recipients);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Writes a snapshot folder's files (each 0600; encrypted in memory first when
 * there are recipients) and, last, their manifest.
 */
export class SnapshotWriter {
  readonly files: SnapshotFile[] = [];
  private readonly entries: ManifestFile[] = [];

  constructor(
    readonly dir: string,
    readonly recipients: PgpPublicKey[],
  ) {}

  async keep(part: SnapshotPart, taken: { host?: string; data: Buffer }): Promise<void> {
    const data = this.recipients.length ? await pgpEncrypt(taken.data, this.recipients) : taken.data;
    const name = this.recipients.length ? `${partFile[part]}.gpg` : partFile[part];
    const file = join(this.dir, name);
    await writeFile(file, data, { mode: 0o600 });
    await chmod(file, 0o600);
    const host = taken.host ? { host: taken.host } : {};
    this.files.push({ name, bytes: data.length, ...host });
    this.entries.push({ part, name, bytes: data.length, sha256: sha256(data), ...host });
  }

  get encryptedTo(): string[] | undefined {
    return this.recipients.length ? this.recipients.map((k) => k.fingerprint) : undefined;
  }

  async finish(meta: Omit<SnapshotManifest, "format" | "files" | "encryptedTo">): Promise<TakenSnapshot> {
    const encryptedTo = this.encryptedTo;
    await writeManifest(this.dir, { format: 1, ...meta, ...(encryptedTo ? { encryptedTo } : {}), files: this.entries });
    return { dir: this.dir, files: this.files, ...(encryptedTo ? { encryptedTo } : {}) };
  }
}

async function takeInto(run: ClusterRun, dir: string, recipients: PgpPublicKey[]): Promise<TakenSnapshot> {
  await chmod(dir, 0o700);
  const servers = hostsWithRole(run.inventory, "server");
  const writer = new SnapshotWriter(dir, recipients);
  const keep = (part: SnapshotPart, taken: { host?: string; data: Buffer }) => writer.keep(part, taken);
  const consulToken = await run.secrets.read("consul-bootstrap-token");
  await keep(
    "consul",
    await firstAnswer("Consul", servers, (host) =>
      withConsul(run, host, async (c) => Buffer.from((await c.api.request<ArrayBuffer>("GET", "/v1/snapshot", raw)).data), {
        token: consulToken,
      }),
    ),
  );
  const nomadToken = await run.secrets.read("nomad-bootstrap-token");
  await keep(
    "nomad",
    await firstAnswer("Nomad", servers, (host) =>
      withNomad(
        run,
        host,
        async (n) => Buffer.from((await n.api.request<ArrayBuffer>("GET", "/v1/operator/snapshot", raw)).data),
        { token: nomadToken },
      ),
    ),
  );
  const rootToken = await vaultRootToken(run.secrets);
  await keep(
    "vault",
    await firstAnswer("Vault", hostsWithRole(run.inventory, "vault"), (host) =>
      withVault(
        run,
        host,
        async (v) => Buffer.from((await v.api.request<ArrayBuffer>("GET", "/v1/sys/storage/raft/snapshot", raw)).data),
        { token: rootToken },
      ),
    ),
  );
  // the state last: it holds what opens the snapshots (unseal keys, root token, CA); not the
  // local provider's node filesystems (nodes/), which the raft snapshots above stand for
  await keep("state", { data: await stateArchive(run.state.root) });
  const { consul, nomad, vault } = run.config.versions;
  return writer.finish({
    cluster: run.config.name,
    takenAt: new Date().toISOString(),
    topology: topologyOf(run.inventory),
    versions: { consul, nomad, vault },
  });
}
