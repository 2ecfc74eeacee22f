/**
 * Which parts of the state come from the snapshot and which stay the target
 * cluster's, and the swap that puts them in place.
 *
 * From the snapshot (they belong to the restored data): every secret in
 * secrets/ — Vault's unseal keys and root token, the Consul and Nomad
 * management tokens, the CI tokens, the agents' Consul tokens, the renewal
 * tokens, the platform's passwords — and the root CA (tls/ca.pem).
 *
 * The target's own: the gossip keys (not in any raft snapshot: every running
 * agent's keyring holds the target's key, and changing it would need a gossip
 * key rotation), the inventory, SSH keys and known hosts, the provider's files
 * and stages.json. Secrets named for a host the target does not have are left
 * out; a target host the snapshot does not know keeps its own (the stages
 * create or replace them in the restored Consul and Vault).
 *
 * tls/: the operator's certificate is dropped (it was issued by the target's CA;
 * the vault stage issues a new one from the restored PKI), and the target's CA
 * becomes bootstrap-ca.pem, which Vault clients trust until the vault stage has
 * replaced every Vault certificate and removes it (as after a first bootstrap).
 */
import { existsSync } from "node:fs";
import { chmod, cp, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { OperationError } from "../errors.ts";
import type { StatePaths } from "../state/paths.ts";

/** secrets that stay the target cluster's */
export const targetSecrets = new Set(["consul-gossip-key", "nomad-gossip-key"]);
/** secrets named `<prefix>.<host>` */
const hostScoped = /^(consul-agent-token|vault-renewal-token)\.(.+)$/;

export interface SecretChoice {
  /** from the snapshot, replacing the target's file of that name if any */
  fromSnapshot: string[];
  /** left out, with the reason */
  skipped: { name: string; reason: string }[];
}

export function chooseSecrets(snapshotSecrets: readonly string[], targetHosts: readonly string[]): SecretChoice {
  const hosts = new Set(targetHosts);
  const choice: SecretChoice = { fromSnapshot: [], skipped: [] };
  for (const name of [...snapshotSecrets].sort()) {
    const scoped = hostScoped.exec(name);
    if (targetSecrets.has(name))
      choice.skipped.push({ name, reason: "the running agents' gossip keyring holds the cluster's own" });
    else if (scoped && !hosts.has(scoped[2] as string))
      choice.skipped.push({ name, reason: `the cluster has no host ${scoped[2]}` });
    else choice.fromSnapshot.push(name);
  }
  return choice;
}

/** Where a restore keeps its work under the state dir (0700): never in /tmp, since it holds secrets. */
export function restorePaths(state: Pick<StatePaths, "root">) {
  const work = join(state.root, "restore");
  return {
    work,
    /** the snapshot's state, unpacked */
    snapshot: join(work, "snapshot"),
    /** the secrets/ and tls/ that go in */
    next: join(work, "next"),
    /** the target's secrets/ and tls/ as they were: kept until the restore succeeded */
    previous: join(work, "previous"),
  };
}

async function privateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
}

const listFiles = async (dir: string) =>
  existsSync(dir) ? (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name) : [];

/**
 * Build next/secrets and next/tls from the target's state and the unpacked
 * snapshot state (`snapshotRoot`, the old state dir's layout). Writes nothing
 * outside restore/.
 */
export async function prepareRestoredState(
  state: StatePaths,
  snapshotRoot: string,
  targetHosts: readonly string[],
): Promise<SecretChoice> {
  const paths = restorePaths(state);
  await rm(paths.next, { recursive: true, force: true });
  const secrets = join(paths.next, "secrets");
  const tls = join(paths.next, "tls");
  await privateDir(secrets);
  await privateDir(tls);
  if (existsSync(state.secrets)) await cp(state.secrets, secrets, { recursive: true });
  const choice = chooseSecrets(await listFiles(join(snapshotRoot, "secrets")), targetHosts);
  for (const name of choice.fromSnapshot) {
    await writeFile(join(secrets, name), await readFile(join(snapshotRoot, "secrets", name)), { mode: 0o600 });
    await chmod(join(secrets, name), 0o600);
  }
  if (existsSync(state.tls)) await cp(state.tls, tls, { recursive: true });
  const tlsFile = (file: string) => join(tls, file.slice(state.tls.length + 1));
  const files = state.tlsFiles;
  // the target's CA(s), trusted for Vault until its certificates come from the restored PKI
  const transitional = (
    await Promise.all([files.rootCa, files.bootstrapCa].filter(existsSync).map((f) => readFile(f, "utf8")))
  ).join("\n");
  const snapshotCa = join(snapshotRoot, "tls", "ca.pem");
  if (!existsSync(snapshotCa)) {
    throw new OperationError("The snapshot's state has no tls/ca.pem (the cluster root CA).", {
      hint: "Nothing was changed. The snapshot was taken of a cluster whose vault stage never finished: use another one.",
    });
  }
  await writeFile(tlsFile(files.rootCa), await readFile(snapshotCa), { mode: 0o644 });
  if (transitional) await writeFile(tlsFile(files.bootstrapCa), transitional, { mode: 0o644 });
  for (const file of [files.operatorCert, files.operatorKey, files.trustBundle]) await rm(tlsFile(file), { force: true });
  return choice;
}

/**
 * Put next/secrets and next/tls in place, the target's own moved to previous/
 * (each directory by two renames, so a file is never half-written). Returns
 * what a failed restore names as the backup.
 */
export async function commitRestoredState(state: StatePaths): Promise<string> {
  const paths = restorePaths(state);
  await privateDir(paths.previous);
  for (const [live, name] of [
    [state.secrets, "secrets"],
    [state.tls, "tls"],
  ] as const) {
    const next = join(paths.next, name);
    if (!existsSync(next)) throw new Error(`bug: commitRestoredState without ${next}`);
    const kept = join(paths.previous, name);
    // a restore run again after a failure: the backup of the cluster's own state is already there, keep it
    const aside = existsSync(kept) ? join(paths.work, `${name}.replaced`) : kept;
    if (existsSync(live)) await rename(live, aside);
    await rename(next, live);
    if (aside !== kept) await rm(aside, { recursive: true, force: true });
  }
  return paths.previous;
}

/**
 * A commit that stopped between its two renames leaves secrets/ or tls/
 * missing with the new one still in next/: finish it (run before anything
 * reads the state, so no stage generates fresh secrets into an empty dir).
 */
export async function completeInterruptedCommit(state: StatePaths): Promise<boolean> {
  const paths = restorePaths(state);
  let completed = false;
  for (const [live, name] of [
    [state.secrets, "secrets"],
    [state.tls, "tls"],
  ] as const) {
    const next = join(paths.next, name);
    if (!existsSync(live) && existsSync(next) && existsSync(join(paths.previous, name))) {
      await rename(next, live);
      completed = true;
    }
  }
  return completed;
}

/** After a restore that succeeded: the unpacked snapshot, next/ and the backup go. */
export async function removeRestoreWork(state: Pick<StatePaths, "root">): Promise<void> {
  await rm(restorePaths(state).work, { recursive: true, force: true });
}

/** Before anything was committed: only the work files go (the state is untouched). */
export async function abandonRestoreWork(state: Pick<StatePaths, "root">): Promise<void> {
  const paths = restorePaths(state);
  await rm(paths.snapshot, { recursive: true, force: true });
  await rm(paths.next, { recursive: true, force: true });
  if (!existsSync(paths.previous)) await rm(paths.work, { recursive: true, force: true });
}

export async function prepareWorkDir(state: Pick<StatePaths, "root">): Promise<void> {
  const paths = restorePaths(state);
  await privateDir(paths.work);
  await rm(paths.snapshot, { recursive: true, force: true });
  await privateDir(paths.snapshot);
}
