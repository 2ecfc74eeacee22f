/**
 * PGP-wrapped unseal keys against a real Vault on its own loopback address and
 * ports: the cluster config names throwaway public keys (made by gpg in a temp
 * GNUPGHOME), the vault stage's own init/unseal functions initialise Vault with
 * them, and the state is checked to hold no plaintext share or root token. The
 * shares are decrypted independently with the gpg CLI to prove they are the
 * real ones; a keyring with too few keys gets the clear error and Vault stays
 * sealed until a key holder enters a share by hand.
 */
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import { VaultClient } from "../../../scripts/lib/clients/vault.ts";
import { loadClusterConfig } from "../../../scripts/lib/config/load.ts";
import { readVaultPgpKeys } from "../../../scripts/lib/config/pgp-keys.ts";
import { OperationError } from "../../../scripts/lib/errors.ts";
import {
  encryptedRootTokenSecret,
  initialiseVault,
  initSecret,
  readInitRecord,
  rootTokenSecret,
  unsealIfSealed,
  unsealKeys,
  unsealWith,
  vaultRootToken,
  type VaultInitRecord,
} from "../../../scripts/lib/stages/vault-unseal.ts";
import { statePaths } from "../../../scripts/lib/state/paths.ts";
import { SecretStore } from "../../../scripts/lib/state/secrets.ts";
import { requireBinary } from "../../helpers/binaries.ts";
import { tempDir } from "../../helpers/fixtures.ts";
import { copySecretKeys, generateTestKey, gnupgHome, stopGnupgHome, type TestPgpKey } from "../../helpers/gpg.ts";
import { createTestCa, issueTestCert } from "../../helpers/pki.ts";
import { type Agent, startAgent, untilReady } from "../../helpers/processes.ts";

// an address and ports of its own: other suites (and other worktrees) use 127.0.0.1:8200
const ip = "127.0.0.81";
const apiPort = 18281;
const clusterPort = 18282;

let dir: Awaited<ReturnType<typeof tempDir>>;
let agent: Agent;
let vault: VaultClient;
let store: SecretStore;
/** all five share keys and the root token key */
let fullHome: string;
/** share keys 0 and 1 only */
let partialHome: string;
let shareKeys: TestPgpKey[];
let rootKey: TestPgpKey;
let record: VaultInitRecord;

/** Decrypt with the gpg CLI, independently of the code under test. */
async function gpgDecrypt(home: string, base64: string): Promise<string> {
  const out = await $({ quiet: true, input: Buffer.from(base64, "base64") })`gpg --homedir ${home} --batch --quiet --decrypt`;
  return out.stdout.trim();
}

/** Every file of the state, name → content. */
async function stateFiles(root: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) {
      const path = join(entry.parentPath, entry.name);
      files.set(path, await readFile(path, "utf8"));
    }
  }
  return files;
}

beforeAll(async () => {
  dir = await tempDir("vault-pgp");
  fullHome = await gnupgHome(join(dir.path, "gnupg-full"));
  partialHome = await gnupgHome(join(dir.path, "gnupg-partial"));
  const keysDir = join(dir.path, "config", "keys");
  shareKeys = [];
  for (let i = 0; i < 5; i++) shareKeys.push(await generateTestKey(fullHome, `operator-${i}`, keysDir));
  rootKey = await generateTestKey(fullHome, "root-token", keysDir);
  await copySecretKeys(fullHome, partialHome, [shareKeys[0]!.fingerprint, shareKeys[1]!.fingerprint]);

  const ca = await createTestCa(join(dir.path, "ca"));
  const server = await issueTestCert(ca, "vault", { dns: ["localhost"], ips: [ip] });
  const config = join(dir.path, "vault.hcl");
  await writeFile(
    config,
    `
disable_mlock = true
api_addr      = "https://${ip}:${apiPort}"
cluster_addr  = "https://${ip}:${clusterPort}"
storage "raft" {
  path    = "${join(dir.path, "data")}"
  node_id = "pgp-1"
}
listener "tcp" {
  address         = "${ip}:${apiPort}"
  cluster_address = "${ip}:${clusterPort}"
  tls_cert_file   = "${server.certFile}"
  tls_key_file    = "${server.keyFile}"
}
`,
  );
  await $({ quiet: true })`mkdir -p ${join(dir.path, "data")}`;
  agent = startAgent("vault", requireBinary("vault"), ["server", `-config=${config}`], join(dir.path, "vault.log"));
  vault = new VaultClient({ address: `https://${ip}:${apiPort}`, caFile: ca.caFile });
  await untilReady(agent, () => vault.health());
  store = new SecretStore(statePaths("pgp", join(dir.path, "state")));
});

afterAll(async () => {
  await agent?.stop();
  if (fullHome) await stopGnupgHome(fullHome);
  if (partialHome) await stopGnupgHome(partialHome);
  await dir?.remove();
});

describe("PGP-wrapped Vault unseal keys", () => {
  it("loads the keys named in the cluster config, relative to it, in both formats", async () => {
    const file = join(dir.path, "config", "cluster.yaml");
    await writeFile(
      file,
      [
        "name: pgp",
        "vault:",
        "  unsealPgpKeys:",
        // armored and binary files, relative to the config file
        ...shareKeys.map((k, i) => `    - keys/${k.name}.${i % 2 ? "gpg" : "asc"}`),
        `  rootTokenPgpKey: keys/${rootKey.name}.asc`,
        "",
      ].join("\n"),
    );
    const { config } = await loadClusterConfig({ file });
    expect(config.vault.unsealPgpKeys).toEqual(shareKeys.map((k, i) => (i % 2 ? k.binary : k.armored)));
    const keys = await readVaultPgpKeys(config, file);
    expect(keys.unseal?.map((k) => k.fingerprint)).toEqual(shareKeys.map((k) => k.fingerprint));
    expect(keys.rootToken?.fingerprint).toBe(rootKey.fingerprint);

    ({ record } = await initialiseVault(vault, store, { shares: 5, threshold: 3, keys }));
    expect(await vault.health()).toMatchObject({ initialized: true, sealed: true });
  });

  it("keeps only encrypted shares, their fingerprints in order, and an encrypted root token (0600)", async () => {
    const initFile = store.fileFor(initSecret);
    expect((await stat(initFile)).mode & 0o777).toBe(0o600);
    expect((await stat(store.fileFor(encryptedRootTokenSecret))).mode & 0o777).toBe(0o600);
    await expect(stat(store.fileFor(rootTokenSecret))).rejects.toMatchObject({ code: "ENOENT" });

    const stored = JSON.parse(await readFile(initFile, "utf8")) as VaultInitRecord;
    expect(stored).toEqual(record);
    expect(stored.threshold).toBe(3);
    expect(stored.pgp_fingerprints).toEqual(shareKeys.map((k) => k.fingerprint));
    expect(stored.keys_base64).toHaveLength(5);

    // each share decrypts (to a 33-byte Shamir share in hex) with its own key's subkey; none is in any state file
    const state = await stateFiles(store.paths.root);
    const secrets = [...state.values()].join("\n");
    for (const [i, share] of stored.keys_base64.entries()) {
      const plain = await gpgDecrypt(fullHome, share);
      expect(plain).toMatch(/^[0-9a-f]{66}$/);
      expect(secrets).not.toContain(plain);
      expect(secrets).not.toContain(Buffer.from(plain, "hex").toString("base64"));
      const listed = await $({
        quiet: true,
        input: Buffer.from(share, "base64"),
      })`gpg --homedir ${fullHome} --batch --list-packets`;
      const subkey = (
        await $({ quiet: true })`gpg --homedir ${fullHome} --batch --with-colons --list-keys ${shareKeys[i]!.fingerprint}`
      ).stdout
        .split("\n")
        .find((l) => l.startsWith("sub:"))
        ?.split(":")[4];
      expect(listed.stdout).toContain(`keyid ${subkey}`);
    }
    const encryptedToken = JSON.parse(await readFile(store.fileFor(encryptedRootTokenSecret), "utf8")) as {
      fingerprint: string;
      token_base64: string;
    };
    expect(encryptedToken.fingerprint).toBe(rootKey.fingerprint);
    const token = await gpgDecrypt(fullHome, encryptedToken.token_base64);
    expect(token).toMatch(/^hvs\./);
    expect(secrets).not.toContain(token);
  });

  it("with 2 of the 5 keys and threshold 3: a clear error naming the missing keys, Vault stays sealed, nothing written", async () => {
    const before = await stateFiles(store.paths.root);
    const error = (await unsealKeys(record, {
      secretsFile: store.fileFor(initSecret),
      what: "Vault on server-1",
      homedir: partialHome,
    }).catch((e: unknown) => e)) as OperationError;
    expect(error).toBeInstanceOf(OperationError);
    expect(error.exitCode).toBe(3);
    expect(error.message).toBe(
      `Vault on server-1 is sealed and only 2 of the 3 unseal key shares it needs can be decrypted with the local GnuPG keyring (${partialHome}).`,
    );
    expect(error.details).toEqual([2, 3, 4].map((i) => `share ${i}: needs the secret key ${shareKeys[i]!.fingerprint}`));
    expect(error.hint).toContain(`jq -r '.keys_base64[<share>]' ${store.fileFor(initSecret)} | base64 -d | gpg -d`);
    expect(error.hint).toContain("vault operator unseal");
    expect(error.hint).toContain("npm run bootstrap");
    expect((await vault.sealStatus()).sealed).toBe(true);
    expect(await stateFiles(store.paths.root)).toEqual(before);

    // the root token key is not in this keyring either
    await expect(vaultRootToken(store, partialHome)).rejects.toThrow(
      `The Vault root token is encrypted to key ${rootKey.fingerprint}, which the local GnuPG keyring (${partialHome}) cannot decrypt.`,
    );
  });

  it("a third key holder enters their share by hand; the run then adds the two shares its keyring can decrypt", async () => {
    // as the error's hint says: jq -r '.keys_base64[4]' vault-init.json | base64 -d | gpg -d, then vault operator unseal
    const byHand = await gpgDecrypt(fullHome, record.keys_base64[4]!);
    const status = await vault.unseal(byHand);
    expect(status).toMatchObject({ sealed: true, progress: 1, t: 3 });
    const keys = await unsealKeys(record, {
      secretsFile: store.fileFor(initSecret),
      what: "Vault",
      homedir: partialHome,
      needed: status.t - status.progress,
    });
    expect(keys).toEqual(await Promise.all([0, 1].map((i) => gpgDecrypt(fullHome, record.keys_base64[i]!))));
    await unsealWith(vault, keys);
    await vault.waitUntil((h) => !h.sealed && !h.standby, { timeoutMs: 60_000, what: "unsealed and active" });
  });

  it("decrypts the root token in memory, and it is Vault's root token", async () => {
    const token = await vaultRootToken(store, fullHome);
    const self = await vault.withToken(token).api.get<{ data: { policies: string[] } }>("/v1/auth/token/lookup-self");
    expect(self.data.policies).toContain("root");
    await expect(stat(store.fileFor(rootTokenSecret))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("a later run unseals a resealed Vault from the state with only the first three shares", async () => {
    const token = await vaultRootToken(store, fullHome);
    await vault.withToken(token).api.put("/v1/sys/seal", {});
    expect((await vault.sealStatus()).sealed).toBe(true);
    const stored = await readInitRecord(store);
    expect(stored).toEqual(record);
    const keys = await unsealKeys(stored!, { secretsFile: store.fileFor(initSecret), what: "Vault", homedir: fullHome });
    expect(keys).toHaveLength(3);
    expect(keys).toEqual(await Promise.all([0, 1, 2].map((i) => gpgDecrypt(fullHome, record.keys_base64[i]!))));
    await unsealWith(vault, keys);
    expect((await vault.sealStatus()).sealed).toBe(false);
  });

  it("npm run unseal's step: nothing on an unsealed Vault, the state's PGP shares on a sealed one", async () => {
    const context = { secretsFile: store.fileFor(initSecret), what: "Vault", homedir: fullHome };
    expect(await unsealIfSealed(vault, record, context)).toBe(false);
    // a raft Vault unsealed a moment ago may still be standby, which refuses to seal: wait until it is active
    for (let tries = 0; tries < 60 && (await vault.health()).standby; tries++) await new Promise((r) => setTimeout(r, 500));
    await vault.withToken(await vaultRootToken(store, fullHome)).api.put("/v1/sys/seal", {});
    expect(await unsealIfSealed(vault, record, context)).toBe(true);
    expect((await vault.sealStatus()).sealed).toBe(false);
  });
});
