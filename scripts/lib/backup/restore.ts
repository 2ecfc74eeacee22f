/**
 * `npm run restore -- <snapshot folder>`: a snapshot of `npm run snapshot` into a
 * cluster of the same topology that was bootstrapped empty (the same config
 * after a teardown, or another cluster). Afterwards its jobs, KV secrets, ACL
 * tokens and PKI (root CA) are the snapshot's, and the stages have re-issued
 * every certificate from the restored CA.
 *
 * The order, and why:
 * 1. Checks that change nothing: the manifest's sha256 of every file, the
 *    topology (servers, Vault nodes) and versions, decryption (PGP) of every
 *    file, the snapshot's state holding unseal keys that this keyring can open
 *    and the management tokens, and that the cluster holds no jobs or secrets
 *    of its own (else exit 2, unless --force). The snapshot's state is
 *    unpacked and the state to go in is prepared under <state>/restore/ (0700).
 * 2. Consul, then Nomad, while the cluster's own CA, certificates and tokens
 *    still open their APIs (each restore replaces the ACL tokens: from there on
 *    the snapshot's token is the one that works). Old Nomad client nodes of the
 *    snapshot are purged, so their allocations are placed on this cluster's
 *    clients.
 * 3. Vault last, with `sys/storage/raft/snapshot-force` (its keyring is the
 *    snapshot's, so it needs the snapshot's unseal keys), then at once the state
 *    swap (restored-state.ts says which files come from the snapshot): from here
 *    on the cluster's data and the state match again. The target's secrets/ and
 *    tls/ stay in restore/previous/ until the end.
 * 4. Unseal with the snapshot's keys, the agents' certificates removed (the
 *    renewal agent only re-issues a missing or expiring one), then every
 *    bootstrap stage: Vault gets certificates of the restored PKI, the agents
 *    theirs, their tokens (the snapshot's) are configured, verify checks health.
 * A failure in 2–3 names what was restored; a restore is idempotent, so running
 * it again with --force finishes it.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { basename, resolve } from "node:path";
import { tryLock } from "../binaries/lock.ts";
import { ApiError, type HttpApi } from "../clients/http.ts";
import type { VaultClient } from "../clients/vault.ts";
import { withConsul, withNomad, withVault } from "../cluster/access.ts";
import { errorMessage, InputError, OperationError, isUserError } from "../errors.ts";
import { hostsWithRole, type Inventory, type InventoryHost } from "../inventory/schema.ts";
import type { ProviderContext } from "../providers/types.ts";
import { sh } from "../remote/command.ts";
import { bundleFile } from "../render/plan.ts";
import { nodeLayout } from "../render/layout.ts";
import { platformNamespace } from "../security/tenancy.ts";
import { runStages, type StageRecords } from "../stages/pipeline.ts";
import { type ClusterRun, openClusterRun } from "../stages/run-context.ts";
import { initSecret, readInitRecord, unsealKeys, unsealWith, vaultRootToken } from "../stages/vault-unseal.ts";
import { statePaths } from "../state/paths.ts";
import { SecretStore } from "../state/secrets.ts";
import { retryWhile } from "../util/retry.ts";
import { decryptSnapshotFile } from "./encryption.ts";
import {
  readManifest,
  type SnapshotManifest,
  type SnapshotPart,
  topologyOf,
  topologyProblems,
  verifySnapshotFiles,
} from "./manifest.ts";
import {
  abandonRestoreWork,
  commitRestoredState,
  completeInterruptedCommit,
  prepareRestoredState,
  prepareWorkDir,
  removeRestoreWork,
  restorePaths,
  type SecretChoice,
} from "./restored-state.ts";

export interface RestoreOptions {
  /** restore over jobs and secrets the cluster has of its own */
  force?: boolean;
  /** GnuPG home for encrypted snapshots and PGP-wrapped shares (default: HASHISTACK_GNUPGHOME) */
  homedir?: string;
  /** asked before anything changes; false stops with nothing changed */
  confirm?: (question: string) => Promise<boolean>;
}

export interface RestoreOutcome {
  dir: string;
  cluster: string;
  takenAt: string;
  /** what was done, in order */
  steps: string[];
  secrets: SecretChoice;
  stages: StageRecords;
}

/** What the snapshot's state must give for a restore: checked before anything changes. */
interface SnapshotSecrets {
  store: SecretStore;
  consulToken: string;
  nomadToken: string;
  rootToken: string;
  unsealKeys: string[];
}

const transfer = { timeout: 300_000, maxBodyLength: Number.POSITIVE_INFINITY, maxContentLength: Number.POSITIVE_INFINITY };
const octets = { "Content-Type": "application/octet-stream" };
const layout = nodeLayout();
/** the KV v2 mount the workload-identity stage creates (nothing outside the stages imports a stage) */
const kvMount = "secret";

/** A snapshot folder read, checked against its manifest and decrypted (in memory). */
export interface OpenedSnapshot {
  dir: string;
  manifest: SnapshotManifest;
  /** each part's plaintext */
  parts: Map<SnapshotPart, Buffer>;
}

/** Read a snapshot folder: manifest, every file's sha256, then decryption; exit 2 for a damaged folder. */
export async function openSnapshot(folder: string, homedir?: string): Promise<OpenedSnapshot> {
  const dir = resolve(folder);
  const manifest = await readManifest(dir);
  const stored = await verifySnapshotFiles(dir, manifest);
  return { dir, manifest, parts: await decryptAll(manifest, stored, homedir) };
}

export async function restoreSnapshot(
  context: ProviderContext,
  inventory: Inventory,
  opened: OpenedSnapshot,
  options: RestoreOptions = {},
): Promise<RestoreOutcome | undefined> {
  const { dir, manifest, parts: plain } = opened;
  const { consul, nomad, vault } = context.config.versions;
  const problems = topologyProblems(manifest, { topology: topologyOf(inventory), versions: { consul, nomad, vault } });
  if (problems.length) {
    throw new InputError(`Snapshot ${dir} does not fit cluster '${context.config.name}'.`, {
      details: problems,
      hint: "Nothing was changed. Restore into a cluster of the snapshot's topology (topology.servers, topology.vaultNodes) and versions.",
    });
  }
  const release = await tryLock(context.state.lock, `A bootstrap of cluster '${context.config.name}'`);
  let released = false;
  const unlock = async () => {
    if (!released) await release();
    released = true;
  };
  try {
    if (await completeInterruptedCommit(context.state))
      context.reporter.warn("finished the state swap of an interrupted restore (its backup is in restore/previous/)");
    const snapshot = await unpackState(context, manifest, plain.get("state") as Buffer, options.homedir);
    const steps: string[] = [];
    const run = await openClusterRun(context, inventory);
    let committed = false;
    let secrets: SecretChoice;
    try {
      const target = await targetTokens(run, options.homedir);
      if (!options.force) await refuseOwnData(run, target, snapshot);
      if (options.confirm) {
        const question = `Replace the Consul, Nomad and Vault data of cluster '${context.config.name}' with the snapshot of '${manifest.cluster}' taken ${manifest.takenAt}?`;
        if (!(await options.confirm(question))) {
          await abandonRestoreWork(context.state);
          return undefined;
        }
      }
      secrets = await prepareRestoredState(
        context.state,
        snapshot.store.paths.root,
        inventory.hosts.map((h) => h.name),
      );
      try {
        steps.push(await restoreConsul(run, plain.get("consul") as Buffer, [target.consul, snapshot.consulToken]));
        steps.push(await restoreNomad(run, plain.get("nomad") as Buffer, [target.nomad, snapshot.nomadToken]));
        steps.push(await restoreVault(run, plain.get("vault") as Buffer, [target.root, snapshot.rootToken]));
      } catch (error) {
        throw new OperationError(
          `Restore stopped${steps.length ? ` after ${steps.length} of 3 products` : " before any data was replaced"}: ${errorMessage(error)}`,
          {
            cause: error,
            details: [...steps.map((s) => `done: ${s}`), ...(isUserError(error) ? error.details : [])],
            hint: steps.length
              ? `The state is still the cluster's own. Run the same restore again with --force to finish it.`
              : isUserError(error)
                ? error.hint
                : undefined,
          },
        );
      }
      await commitRestoredState(context.state);
      committed = true;
      steps.push("state: the snapshot's secrets and CA");
    } catch (error) {
      if (!committed) await abandonRestoreWork(context.state);
      throw error;
    } finally {
      run.close();
    }
    let stages: StageRecords;
    try {
      // the run's secret store and render secrets were read before the swap: a new run reads the restored ones
      const after = await openClusterRun(context, inventory);
      try {
        steps.push(await unsealRestoredVault(after, snapshot));
        steps.push(await removeAgentCertificates(after));
      } finally {
        after.close();
      }
      await unlock();
      stages = await runStages(context, inventory);
    } catch (error) {
      throw new OperationError(`The data is restored, but bringing the cluster up with it failed: ${errorMessage(error)}`, {
        cause: error,
        details: isUserError(error) ? error.details : [],
        hint: `The state holds the snapshot's secrets (the cluster's previous ones are in ${restorePaths(context.state).previous}). Fix the cause, then run 'npm run bootstrap' (or this restore again with --force).`,
      });
    }
    await removeRestoreWork(context.state);
    return { dir, cluster: manifest.cluster, takenAt: manifest.takenAt, steps, secrets, stages };
  } finally {
    await unlock();
  }
}

async function decryptAll(
  manifest: SnapshotManifest,
  stored: Map<SnapshotPart, Buffer>,
  homedir: string | undefined,
): Promise<Map<SnapshotPart, Buffer>> {
  if (!manifest.encryptedTo) return stored;
  const plain = new Map<SnapshotPart, Buffer>();
  for (const entry of manifest.files) {
    plain.set(entry.part, await decryptSnapshotFile(entry.name, stored.get(entry.part) as Buffer, manifest.encryptedTo, homedir));
  }
  return plain;
}

/** tar -x from memory into restore/snapshot/ (0700 under the state dir). */
async function untar(archive: Buffer, into: string): Promise<void> {
  await new Promise<void>((done, fail) => {
    const child = spawn("tar", ["-xzf", "-", "-C", into, "--no-same-owner"], { stdio: ["pipe", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
    child.on("error", fail);
    child.on("close", (code) =>
      code === 0
        ? done()
        : fail(
            new InputError(`The snapshot's state.tar.gz does not unpack (tar exit ${code}).`, {
              details: err.trim().split("\n"),
            }),
          ),
    );
    child.stdin.on("error", () => undefined);
    child.stdin.end(archive);
  });
}

async function unpackState(
  context: ProviderContext,
  manifest: SnapshotManifest,
  archive: Buffer,
  homedir: string | undefined,
): Promise<SnapshotSecrets> {
  const paths = restorePaths(context.state);
  await prepareWorkDir(context.state);
  try {
    await untar(archive, paths.snapshot);
    const state = statePaths(manifest.cluster, paths.snapshot);
    if (!existsSync(state.secrets)) {
      throw new InputError(`The snapshot's state.tar.gz holds no ${basename(state.root)}/secrets/.`, {
        hint: "Nothing was changed. Use another snapshot.",
      });
    }
    const store = new SecretStore(state);
    const missing = (name: string) =>
      new InputError(`The snapshot's state has no ${name}.`, { hint: "Nothing was changed. Use another snapshot." });
    const record = await readInitRecord(store);
    if (!record) throw missing(initSecret);
    const consulToken = await store.read("consul-bootstrap-token");
    if (!consulToken) throw missing("consul-bootstrap-token");
    const nomadToken = await store.read("nomad-bootstrap-token");
    if (!nomadToken) throw missing("nomad-bootstrap-token");
    // PGP-wrapped shares and root token: decrypted now, so a keyring that cannot is found before anything changes
    const keys = await unsealKeys(record, {
      secretsFile: store.fileFor(initSecret),
      what: "The snapshot's Vault (after the restore)",
      homedir,
    });
    const rootToken = await vaultRootToken(store, homedir);
    return { store, consulToken, nomadToken, rootToken, unsealKeys: keys };
  } catch (error) {
    await abandonRestoreWork(context.state);
    throw error;
  }
}

interface TargetTokens {
  consul?: string;
  nomad?: string;
  root?: string;
}

async function targetTokens(run: ClusterRun, homedir: string | undefined): Promise<TargetTokens> {
  return {
    consul: await run.secrets.read("consul-bootstrap-token"),
    nomad: await run.secrets.read("nomad-bootstrap-token"),
    root: await vaultRootToken(run.secrets, homedir).catch(() => undefined),
  };
}

type TokenProbe = (token: string) => Promise<void>;

/** A server that is electing a leader or reloading its state after a restore answers 5xx (or not at all) for a moment. */
const transient = (e: unknown) => e instanceof ApiError && (e.status === undefined || e.status >= 500);
const settled = <T>(operation: () => Promise<T>) => retryWhile(operation, transient, { timeoutMs: 90_000, initialDelayMs: 500 });

/**
 * The first token the API accepts: the cluster's own before the product is
 * restored, the snapshot's after (a restore run again after a failure).
 */
async function workingToken(what: string, candidates: (string | undefined)[], probe: TokenProbe): Promise<string> {
  const failures: string[] = [];
  for (const [index, token] of candidates.entries()) {
    if (!token) continue;
    try {
      await probe(token);
      return token;
    } catch (error) {
      if (!(error instanceof ApiError && (error.status === 403 || error.status === 401))) throw error;
      failures.push(`${index === 0 ? "the cluster's" : "the snapshot's"} token: ${error.status}`);
    }
  }
  throw new OperationError(`Neither the cluster's nor the snapshot's ${what} management token is accepted.`, {
    details: failures,
    hint: "The state does not belong to this cluster: check --config/--cluster.",
  });
}

const consulProbe =
  (c: { api: HttpApi }): TokenProbe =>
  async (token) => {
    await c.api.request("GET", "/v1/acl/token/self", { headers: { "X-Consul-Token": token } });
  };
const nomadProbe =
  (n: { api: HttpApi }): TokenProbe =>
  async (token) => {
    await n.api.request("GET", "/v1/acl/token/self", { headers: { "X-Nomad-Token": token } });
  };
const vaultProbe =
  (v: VaultClient): TokenProbe =>
  async (token) => {
    await v.api.request("GET", "/v1/auth/token/lookup-self", { headers: { "X-Vault-Token": token } });
  };

/** Jobs and secrets the cluster has of its own (the platform namespace is the bootstrap's): refused without --force. */
async function refuseOwnData(run: ClusterRun, target: TargetTokens, snapshot: SnapshotSecrets): Promise<void> {
  const found: string[] = [];
  const server = hostsWithRole(run.inventory, "server")[0] as InventoryHost;
  await withNomad(run, server, async (n) => {
    const token = await workingToken("Nomad", [target.nomad, snapshot.nomadToken], nomadProbe(n));
    const headers = { "X-Nomad-Token": token };
    const jobs = (
      await n.api.request<{ ID: string; Namespace: string }[]>("GET", "/v1/jobs", { params: { namespace: "*" }, headers })
    ).data;
    for (const job of jobs.filter((j) => j.Namespace !== platformNamespace)) found.push(`Nomad job ${job.Namespace}/${job.ID}`);
    const vars = (
      await n.api.request<{ Path: string; Namespace: string }[]>("GET", "/v1/vars", { params: { namespace: "*" }, headers })
    ).data;
    for (const v of vars.filter((x) => x.Namespace !== platformNamespace)) found.push(`Nomad variable ${v.Namespace}/${v.Path}`);
  });
  await withConsul(run, server, async (c) => {
    const token = await workingToken("Consul", [target.consul, snapshot.consulToken], consulProbe(c));
    try {
      const keys = (
        await c.api.request<string[]>("GET", "/v1/kv/", { params: { keys: true }, headers: { "X-Consul-Token": token } })
      ).data;
      for (const key of keys) found.push(`Consul KV ${key}`);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error;
    }
  });
  await withVault(run, hostsWithRole(run.inventory, "vault")[0] as InventoryHost, async (v) => {
    const token = await workingToken("Vault", [target.root, snapshot.rootToken], vaultProbe(v));
    try {
      const listed = (
        await v.api.request<{ data?: { keys?: string[] } }>("GET", `/v1/${kvMount}/metadata/`, {
          params: { list: true },
          headers: { "X-Vault-Token": token },
        })
      ).data;
      for (const key of listed.data?.keys ?? []) found.push(`Vault KV ${kvMount}/${key}`);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error;
    }
  });
  if (found.length) {
    throw new InputError(
      `Cluster '${run.config.name}' has data of its own that the restore would replace (${found.length} item${found.length === 1 ? "" : "s"}).`,
      {
        details: found.slice(0, 20).concat(found.length > 20 ? [`… and ${found.length - 20} more`] : []),
        hint: "Nothing was changed. Restore into a cluster bootstrapped empty, snapshot this one first, or give --force to replace its data.",
      },
    );
  }
}

/** Upload through the first server that takes it. */
async function eachUntilOne<T>(what: string, hosts: InventoryHost[], attempt: (host: InventoryHost) => Promise<T>): Promise<T> {
  const failures: string[] = [];
  for (const host of hosts) {
    try {
      return await attempt(host);
    } catch (error) {
      failures.push(`${host.name}: ${errorMessage(error)}`);
    }
  }
  throw new OperationError(`No node took the ${what} snapshot.`, {
    details: failures,
    hint: "npm run status names what is down; a restore needs a leader (quorum).",
  });
}

/**
 * The snapshot into the Consul agent `c` answers for. The snapshot's catalog
 * holds this cluster's node names with the old agents' node IDs, and Consul keeps
 * a name for the ID it has while that node looks healthy: this cluster's agents
 * could never register again (https://github.com/hashicorp/consul/pull/18060).
 * Those entries go; the leader and the agents register them again with their own
 * IDs. Old nodes of other names are reaped by the leader as usual. Returns how
 * many entries were removed.
 */
export async function restoreConsulVia(c: { api: HttpApi }, data: Buffer, tokens: (string | undefined)[]): Promise<number> {
  type CatalogNode = { Node: string; ID: string };
  const before = await workingToken("Consul", tokens, consulProbe(c));
  const nodes = async (token: string) =>
    (await c.api.request<CatalogNode[]>("GET", "/v1/catalog/nodes", { headers: { "X-Consul-Token": token } })).data;
  const current = new Map((await nodes(before)).map((n) => [n.Node, n.ID]));
  await c.api.request("PUT", "/v1/snapshot", { ...transfer, data, headers: { ...octets, "X-Consul-Token": before } });
  const token = await settled(() => workingToken("Consul", tokens, consulProbe(c)));
  const conflicting = (await settled(() => nodes(token))).filter((n) => current.has(n.Node) && current.get(n.Node) !== n.ID);
  for (const node of conflicting)
    await settled(() =>
      c.api.request("PUT", "/v1/catalog/deregister", { data: { Node: node.Node }, headers: { "X-Consul-Token": token } }),
    );
  return conflicting.length;
}

async function restoreConsul(run: ClusterRun, data: Buffer, tokens: (string | undefined)[]): Promise<string> {
  const servers = hostsWithRole(run.inventory, "server");
  return eachUntilOne("Consul", servers, (host) =>
    withConsul(run, host, async (c) => {
      const removed = await restoreConsulVia(c, data, tokens);
      return `Consul snapshot restored (through ${host.name}${removed ? `, ${removed} old node entries of the same names removed` : ""})`;
    }),
  );
}

async function restoreNomad(run: ClusterRun, data: Buffer, tokens: (string | undefined)[]): Promise<string> {
  const servers = hostsWithRole(run.inventory, "server");
  return eachUntilOne("Nomad", servers, (host) =>
    withNomad(run, host, async (n) => {
      const before = await workingToken("Nomad", tokens, nomadProbe(n));
      const current = new Set(
        (await n.api.request<{ ID: string }[]>("GET", "/v1/nodes", { headers: { "X-Nomad-Token": before } })).data.map(
          (x) => x.ID,
        ),
      );
      await n.api.request("PUT", "/v1/operator/snapshot", { ...transfer, data, headers: { ...octets, "X-Nomad-Token": before } });
      // the restore replaced the ACL tokens too: the snapshot's management token works from here on
      const token = await settled(() => workingToken("Nomad", tokens, nomadProbe(n)));
      const headers = { "X-Nomad-Token": token };
      const restored = await settled(
        async () => (await n.api.request<{ ID: string; Name: string }[]>("GET", "/v1/nodes", { headers })).data,
      );
      // the snapshot's client nodes are other machines (other node IDs): purged, their allocations are placed anew
      const stale = restored.filter((x) => !current.has(x.ID));
      for (const node of stale) await settled(() => n.api.request("PUT", `/v1/node/${node.ID}/purge`, { headers }));
      return `Nomad snapshot restored (through ${host.name}${stale.length ? `, ${stale.length} old client nodes purged` : ""})`;
    }),
  );
}

/** The raft snapshot into the active Vault `v`, forced (it holds another cluster's keyring). */
export async function forceRestoreVault(v: VaultClient, data: Buffer, tokens: (string | undefined)[]): Promise<void> {
  const health = await v.health();
  if (health.sealed || health.standby) throw new OperationError(`not the active Vault (${health.sealed ? "sealed" : "standby"})`);
  const token = await workingToken("Vault", tokens, vaultProbe(v));
  const answer = await v.api.request("POST", "/v1/sys/storage/raft/snapshot-force", {
    ...transfer,
    data,
    headers: { ...octets, "X-Vault-Token": token },
  });
  if (answer.status >= 300) throw new OperationError(`Vault answered ${answer.status} (not the active node?)`);
}

/**
 * A Vault after a forced restore: sealed (its keyring is the snapshot's) a moment
 * after the restore returned, so wait for that and unseal with the snapshot's
 * keys; true when it was sealed.
 */
export async function unsealAfterRestore(v: VaultClient, keys: string[]): Promise<boolean> {
  await v.waitUntil(() => true, { timeoutMs: 60_000, what: "reachable after the restore" });
  for (let i = 0; i < 10; i++) {
    const status = await settled(() => v.sealStatus());
    if (status.sealed) {
      await unsealWith(v, keys);
      return true;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  return false;
}

/** Unsealed and active again, and the snapshot's root token accepted. */
export async function restoredVaultAnswers(v: VaultClient, rootToken: string): Promise<void> {
  await v.waitUntil((h) => !h.sealed && h.initialized, { timeoutMs: 60_000, what: "unsealed with the snapshot's keys" });
  await settled(() => vaultProbe(v)(rootToken));
}

async function restoreVault(run: ClusterRun, data: Buffer, tokens: (string | undefined)[]): Promise<string> {
  const vaultHosts = hostsWithRole(run.inventory, "vault");
  return eachUntilOne("Vault", vaultHosts, (host) =>
    withVault(run, host, async (v) => {
      await forceRestoreVault(v, data, tokens);
      return `Vault snapshot restored (through ${host.name}, forced: the snapshot's keyring)`;
    }),
  );
}

/** Every Vault node unsealed with the snapshot's keys, and the snapshot's root token accepted. */
async function unsealRestoredVault(run: ClusterRun, snapshot: SnapshotSecrets): Promise<string> {
  const unsealed: string[] = [];
  for (const host of hostsWithRole(run.inventory, "vault")) {
    if (await withVault(run, host, (v) => unsealAfterRestore(v, snapshot.unsealKeys))) unsealed.push(host.name);
  }
  const leader = hostsWithRole(run.inventory, "vault")[0] as InventoryHost;
  await withVault(run, leader, (v) => restoredVaultAnswers(v, snapshot.rootToken));
  return unsealed.length ? `Vault unsealed with the snapshot's keys (${unsealed.join(", ")})` : "Vault unsealed";
}

/**
 * The agents' certificates (and consul-template's bundles, which it reads back)
 * were issued by this cluster's CA: removed, so the certificates stage waits for
 * new ones from the restored PKI. Vault keeps serving its own until the vault
 * stage replaces it; only its bundle goes, so the renewal agent never installs
 * the old one again.
 */
async function removeAgentCertificates(run: ClusterRun): Promise<string> {
  const agents = [layout.consul, layout.nomad].flatMap((p) => [p.certFile, p.keyFile, bundleFile(p.certFile)]);
  for (const host of run.inventory.hosts) {
    const files = host.roles.includes("vault") ? [...agents, bundleFile(layout.vault.certFile)] : agents;
    await run.remote(host).runAsRoot(sh`rm -f ${files}`);
  }
  return `agent certificates of the cluster's own CA removed on ${run.inventory.hosts.length} nodes`;
}
