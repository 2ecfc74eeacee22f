/**
 * The Vault part of `npm run restore` against a real Vault on its own loopback
 * address: a KV secret and a PKI root CA are written to Vault A and snapshotted;
 * A goes away and Vault B starts empty on the same address and node ID (a fresh
 * cluster of the same topology) with keys of its own. The forced restore seals B
 * with A's keyring; A's unseal keys open it, A's root token works, B's does not,
 * and the secret and the root CA are A's.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { forceRestoreVault, restoredVaultAnswers, unsealAfterRestore } from "../../../scripts/lib/backup/restore.ts";
import { ApiError } from "../../../scripts/lib/clients/http.ts";
import { VaultClient } from "../../../scripts/lib/clients/vault.ts";
import { OperationError } from "../../../scripts/lib/errors.ts";
import { requireBinary } from "../../helpers/binaries.ts";
import { tempDir } from "../../helpers/fixtures.ts";
import { createTestCa, issueTestCert } from "../../helpers/pki.ts";
import { type Agent, startAgent, untilReady } from "../../helpers/processes.ts";

// an address and ports of their own: other suites (and other worktrees) use 127.0.0.1:8200
const ip = "127.0.0.88";
const apiPort = 18881;
const clusterPort = 18882;

let dir: Awaited<ReturnType<typeof tempDir>>;
let agent: Agent | undefined;
let caFile: string;
let certs: { certFile: string; keyFile: string };

interface Initialised {
  keys: string[];
  rootToken: string;
}

async function startVault(name: string): Promise<VaultClient> {
  const data = join(dir.path, `data-${name}`);
  await mkdir(data, { recursive: true });
  const config = join(dir.path, `vault-${name}.hcl`);
  await writeFile(
    config,
    `
disable_mlock = true
api_addr      = "https://${ip}:${apiPort}"
cluster_addr  = "https://${ip}:${clusterPort}"
storage "raft" {
  path    = "${data}"
  node_id = "server-1"
}
listener "tcp" {
  address         = "${ip}:${apiPort}"
  cluster_address = "${ip}:${clusterPort}"
  tls_cert_file   = "${certs.certFile}"
  tls_key_file    = "${certs.keyFile}"
}
`,
  );
  agent = startAgent("vault", requireBinary("vault"), ["server", `-config=${config}`], join(dir.path, `vault-${name}.log`));
  const vault = new VaultClient({ address: `https://${ip}:${apiPort}`, caFile });
  await untilReady(agent, () => vault.health());
  return vault;
}

async function initialise(vault: VaultClient): Promise<Initialised> {
  const init = await vault.api.put<{ keys_base64: string[]; root_token: string }>("/v1/sys/init", {
    secret_shares: 1,
    secret_threshold: 1,
  });
  await vault.unseal(init.keys_base64[0] as string);
  await vault.waitUntil((h) => !h.sealed && !h.standby, { timeoutMs: 60_000, what: "active" });
  return { keys: init.keys_base64, rootToken: init.root_token };
}

let a: Initialised;
let b: Initialised;
let snapshot: Buffer;
let rootCaOfA: string;
let vaultB: VaultClient;

beforeAll(async () => {
  dir = await tempDir("vault-restore");
  const ca = await createTestCa(join(dir.path, "ca"));
  caFile = ca.caFile;
  certs = await issueTestCert(ca, "vault", { dns: ["localhost"], ips: [ip] });

  const vaultA = await startVault("a");
  a = await initialise(vaultA);
  const root = vaultA.withToken(a.rootToken);
  await root.ensureMount("secret", "kv", {}, { version: "2" });
  await root.api.post("/v1/secret/data/app/db", { data: { password: "from-cluster-a" } });
  await root.ensureMount("pki-root", "pki", { max_lease_ttl: "87600h" });
  await root.api.post("/v1/pki-root/root/generate/internal", { common_name: "a root CA", ttl: "87600h" });
  rootCaOfA = (await vaultA.api.getText("/v1/pki-root/ca/pem")).trim();
  snapshot = Buffer.from(
    (await root.api.request<ArrayBuffer>("GET", "/v1/sys/storage/raft/snapshot", { responseType: "arraybuffer" })).data,
  );
  await agent?.stop();

  // cluster A is gone; B is a fresh Vault of the same topology with keys of its own
  vaultB = await startVault("b");
  b = await initialise(vaultB);
}, 180_000);

afterAll(async () => {
  await agent?.stop();
  await dir?.remove();
});

describe("restoring Vault's raft snapshot into a fresh Vault", () => {
  it("refuses when neither token is accepted, changing nothing", async () => {
    const error = await forceRestoreVault(vaultB, snapshot, ["not-a-token", undefined]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OperationError);
    expect((error as OperationError).message).toBe(
      "Neither the cluster's nor the snapshot's Vault management token is accepted.",
    );
    expect(await vaultB.withToken(b.rootToken).api.get("/v1/auth/token/lookup-self")).toBeTruthy();
  });

  it("forced with B's root token, seals B with A's keyring; A's keys open it and A's root token works", async () => {
    await forceRestoreVault(vaultB, snapshot, [b.rootToken, a.rootToken]);
    expect(await unsealAfterRestore(vaultB, a.keys)).toBe(true);
    await restoredVaultAnswers(vaultB, a.rootToken);
    const lookup = await vaultB
      .withToken(b.rootToken)
      .api.get("/v1/auth/token/lookup-self")
      .catch((e: unknown) => e);
    expect(lookup).toBeInstanceOf(ApiError);
    expect((lookup as ApiError).status).toBe(403);
  });

  it("holds A's KV secret and A's root CA", async () => {
    const root = vaultB.withToken(a.rootToken);
    const secret = await root.api.get<{ data: { data: { password: string } } }>("/v1/secret/data/app/db");
    expect(secret.data.data.password).toBe("from-cluster-a");
    expect((await vaultB.api.getText("/v1/pki-root/ca/pem")).trim()).toBe(rootCaOfA);
  });

  it("a repeated restore works with the snapshot's token (the cluster's own is gone)", async () => {
    await forceRestoreVault(vaultB, snapshot, [b.rootToken, a.rootToken]);
    await unsealAfterRestore(vaultB, a.keys);
    await restoredVaultAnswers(vaultB, a.rootToken);
  });
});
