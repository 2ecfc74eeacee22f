/**
 * Which state files a restore takes from the snapshot and which stay the
 * cluster's own, and the swap: prepared under restore/, put in place by renames,
 * the cluster's own kept in restore/previous/ until the restore succeeded.
 */
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  abandonRestoreWork,
  chooseSecrets,
  commitRestoredState,
  completeInterruptedCommit,
  prepareRestoredState,
  removeRestoreWork,
  restorePaths,
} from "../../../scripts/lib/backup/restored-state.ts";
import { type StatePaths, statePaths } from "../../../scripts/lib/state/paths.ts";
import { scratchDirs } from "../../helpers/fixtures.ts";

const scratch = scratchDirs();
afterAll(() => scratch.removeAll());

async function stateWith(base: string, files: Record<string, string>): Promise<StatePaths> {
  const state = statePaths("c1", base);
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(state.root, name, ".."), { recursive: true, mode: 0o700 });
    await writeFile(join(state.root, name), content, { mode: name.startsWith("secrets/") ? 0o600 : 0o644 });
  }
  return state;
}

const read = (state: StatePaths, name: string) => readFile(join(state.root, name), "utf8");

async function fixture() {
  const base = await scratch.make("restored-state");
  const target = await stateWith(join(base, "target"), {
    "secrets/consul-gossip-key": "target-gossip",
    "secrets/nomad-gossip-key": "target-nomad-gossip",
    "secrets/consul-bootstrap-token": "target-consul",
    "secrets/vault-init.json": "target-init",
    "secrets/consul-agent-token.client-2": "target-agent-client-2",
    "tls/ca.pem": "TARGET CA",
    "tls/operator.pem": "target operator",
    "tls/operator-key.pem": "target operator key",
    "tls/vault-trust.pem": "TARGET CA",
    "inventory.yaml": "target inventory",
    "ssh/id_ed25519": "target ssh key",
  });
  const snapshot = await stateWith(join(base, "snapshot"), {
    "secrets/consul-gossip-key": "old-gossip",
    "secrets/nomad-gossip-key": "old-nomad-gossip",
    "secrets/consul-bootstrap-token": "old-consul",
    "secrets/vault-init.json": "old-init",
    "secrets/vault-root-token": "old-root",
    "secrets/consul-agent-token.client-1": "old-agent-client-1",
    "secrets/vault-renewal-token.client-9": "old-renewal-client-9",
    "tls/ca.pem": "OLD CA",
    "tls/operator.pem": "old operator",
    "inventory.yaml": "old inventory",
  });
  return { target, snapshot };
}

describe("which secrets come from the snapshot", () => {
  it("all but the gossip keys and those of hosts the cluster does not have", () => {
    const choice = chooseSecrets(
      [
        "vault-init.json",
        "vault-root-token",
        "consul-gossip-key",
        "nomad-gossip-key",
        "consul-agent-token.server-1",
        "consul-agent-token.client-7",
        "vault-renewal-token.server-1",
        "nomad-ci-token-dev",
      ],
      ["server-1", "client-1"],
    );
    expect(choice.fromSnapshot).toEqual([
      "consul-agent-token.server-1",
      "nomad-ci-token-dev",
      "vault-init.json",
      "vault-renewal-token.server-1",
      "vault-root-token",
    ]);
    expect(choice.skipped.map((s) => s.name)).toEqual(["consul-agent-token.client-7", "consul-gossip-key", "nomad-gossip-key"]);
    expect(choice.skipped[0]?.reason).toBe("the cluster has no host client-7");
  });
});

describe("the state swap", () => {
  it("prepares, commits and keeps the cluster's own until the end", async () => {
    const { target, snapshot } = await fixture();
    const choice = await prepareRestoredState(target, snapshot.root, ["server-1", "client-1", "client-2"]);
    expect(choice.skipped.map((s) => s.name)).toEqual(["consul-gossip-key", "nomad-gossip-key", "vault-renewal-token.client-9"]);
    // nothing in place yet
    expect(await read(target, "secrets/vault-init.json")).toBe("target-init");

    const previous = await commitRestoredState(target);
    expect(previous).toBe(restorePaths(target).previous);
    // the snapshot's secrets and CA; the gossip keys and a host only the target has stay its own
    expect(await read(target, "secrets/vault-init.json")).toBe("old-init");
    expect(await read(target, "secrets/vault-root-token")).toBe("old-root");
    expect(await read(target, "secrets/consul-bootstrap-token")).toBe("old-consul");
    expect(await read(target, "secrets/consul-agent-token.client-1")).toBe("old-agent-client-1");
    expect(await read(target, "secrets/consul-agent-token.client-2")).toBe("target-agent-client-2");
    expect(await read(target, "secrets/consul-gossip-key")).toBe("target-gossip");
    expect(await read(target, "secrets/nomad-gossip-key")).toBe("target-nomad-gossip");
    expect(existsSync(join(target.secrets, "vault-renewal-token.client-9"))).toBe(false);
    for (const name of await readdir(target.secrets))
      expect((await stat(join(target.secrets, name))).mode & 0o777, name).toBe(0o600);
    expect((await stat(target.secrets)).mode & 0o777).toBe(0o700);
    // the old root CA; the target's trusted for Vault until its certificates are replaced; no operator certificate
    expect(await read(target, "tls/ca.pem")).toBe("OLD CA");
    expect(await read(target, "tls/bootstrap-ca.pem")).toBe("TARGET CA");
    for (const gone of ["tls/operator.pem", "tls/operator-key.pem", "tls/vault-trust.pem"])
      expect(existsSync(join(target.root, gone)), gone).toBe(false);
    // everything else is the target's
    expect(await read(target, "inventory.yaml")).toBe("target inventory");
    expect(await read(target, "ssh/id_ed25519")).toBe("target ssh key");
    // the backup: the cluster's own secrets and TLS as they were
    expect(await readFile(join(previous, "secrets", "vault-init.json"), "utf8")).toBe("target-init");
    expect(await readFile(join(previous, "tls", "operator.pem"), "utf8")).toBe("target operator");

    // run again (a restore repeated after a failure): the first backup stays
    await prepareRestoredState(target, snapshot.root, ["server-1", "client-1", "client-2"]);
    await commitRestoredState(target);
    expect(await readFile(join(previous, "secrets", "vault-init.json"), "utf8")).toBe("target-init");
    expect(await read(target, "secrets/vault-init.json")).toBe("old-init");

    await removeRestoreWork(target);
    expect(existsSync(restorePaths(target).work)).toBe(false);
  });

  it("a snapshot state without the root CA is refused before anything is in place", async () => {
    const { target } = await fixture();
    const noCa = await stateWith(join(target.root, "..", "..", "noca"), { "secrets/vault-init.json": "x" });
    await expect(prepareRestoredState(target, noCa.root, ["server-1"])).rejects.toThrow("has no tls/ca.pem");
    await abandonRestoreWork(target);
    expect(existsSync(restorePaths(target).work)).toBe(false);
    expect(await read(target, "secrets/vault-init.json")).toBe("target-init");
  });

  it("a commit interrupted between its renames is finished before anything reads the state", async () => {
    const { target, snapshot } = await fixture();
    await prepareRestoredState(target, snapshot.root, ["server-1"]);
    const paths = restorePaths(target);
    // what a crash after the first rename of secrets/ leaves
    await mkdir(paths.previous, { recursive: true });
    await rename(target.secrets, join(paths.previous, "secrets"));
    expect(await completeInterruptedCommit(target)).toBe(true);
    expect(await read(target, "secrets/vault-init.json")).toBe("old-init");
    expect(await completeInterruptedCommit(target)).toBe(false);
  });
});
