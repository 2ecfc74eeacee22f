/**
 * `npm run snapshot`: Consul's, Nomad's and Vault's raft snapshots and a copy of
 * the state dir (unseal keys, tokens, CA, inventory) in one dated folder next to
 * the state, every file 0600 and the folders 0700. Each snapshot is taken through
 * the first server (Vault node) that answers, so one dead node does not stop it.
 */
import { chmod, mkdir, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { $ } from "zx";
import { withConsul, withNomad, withVault } from "../cluster/access.ts";
import { errorMessage, OperationError } from "../errors.ts";
import { hostsWithRole, type InventoryHost } from "../inventory/schema.ts";
import type { ClusterRun } from "../stages/run-context.ts";
import { vaultRootToken } from "../stages/vault-unseal.ts";

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

export async function takeSnapshot(run: ClusterRun, dir = snapshotDir(run)): Promise<{ dir: string; files: SnapshotFile[] }> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const servers = hostsWithRole(run.inventory, "server");
  const files: SnapshotFile[] = [];
  const keep = async (name: string, taken: { host: string; data: Buffer }) => {
    await writeFile(join(dir, name), taken.data, { mode: 0o600 });
    files.push({ name, bytes: taken.data.length, host: taken.host });
  };
  const consulToken = await run.secrets.read("consul-bootstrap-token");
  await keep(
    "consul.snap",
    await firstAnswer("Consul", servers, (host) =>
      withConsul(run, host, async (c) => Buffer.from((await c.api.request<ArrayBuffer>("GET", "/v1/snapshot", raw)).data), {
        token: consulToken,
      }),
    ),
  );
  const nomadToken = await run.secrets.read("nomad-bootstrap-token");
  await keep(
    "nomad.snap",
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
    "vault.snap",
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
  const state = join(dir, "state.tar.gz");
  const name = basename(run.state.root);
  await $({ quiet: true })`tar -C ${dirname(run.state.root)} --exclude=${`${name}/nodes`} -czf ${state} ${name}`;
  await chmod(state, 0o600);
  files.push({ name: "state.tar.gz", bytes: (await stat(state)).size });
  return { dir, files };
}
