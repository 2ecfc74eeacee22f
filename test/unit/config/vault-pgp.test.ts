/**
 * vault.* in the cluster config: share counts checked by the schema, key files
 * checked with gpg at load (throwaway keys in a temp GNUPGHOME), every problem
 * naming the config file and the field.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import { loadClusterConfig } from "../../../scripts/lib/config/load.ts";
import { clusterConfigSchema } from "../../../scripts/lib/config/schema.ts";
import { InputError, OperationError } from "../../../scripts/lib/errors.ts";
import { initSecret, readInitRecord, unsealKeys } from "../../../scripts/lib/stages/vault-unseal.ts";
import { statePaths } from "../../../scripts/lib/state/paths.ts";
import { SecretStore } from "../../../scripts/lib/state/secrets.ts";
import { tempDir } from "../../helpers/fixtures.ts";
import { generateTestKey, gnupgHome, stopGnupgHome, type TestPgpKey } from "../../helpers/gpg.ts";
import { validationProblems } from "../../helpers/validation.ts";

const problems = (yaml: string) => validationProblems(yaml, "cluster.yaml", clusterConfigSchema, "Cluster config");
const keyList = (n: number) => Array.from({ length: n }, (_, i) => `    - keys/op-${i}.asc`).join("\n");

let dir: Awaited<ReturnType<typeof tempDir>>;
let home: string;
let keys: TestPgpKey[];
let configDir: string;

beforeAll(async () => {
  dir = await tempDir("vault-pgp-config");
  home = await gnupgHome(join(dir.path, "gnupg"));
  configDir = join(dir.path, "config");
  keys = [];
  for (let i = 0; i < 3; i++) keys.push(await generateTestKey(home, `op-${i}`, join(configDir, "keys")));
  // a signing-only key, a secret key, two keys in one file, and a file that is no key at all
  await $({ quiet: true })`gpg --homedir ${home} --batch --passphrase ${""} --quick-gen-key ${"signer <s@t>"} ed25519 sign never`;
  await writeFile(
    join(configDir, "keys", "signer.asc"),
    (await $({ quiet: true })`gpg --homedir ${home} --batch --armor --export ${"signer <s@t>"}`).stdout,
  );
  await writeFile(
    join(configDir, "keys", "secret.asc"),
    (
      await $({
        quiet: true,
      })`gpg --homedir ${home} --batch --pinentry-mode loopback --passphrase ${""} --armor --export-secret-keys ${keys[0]!.fingerprint}`
    ).stdout,
  );
  await writeFile(
    join(configDir, "keys", "two.asc"),
    (await $({ quiet: true })`gpg --homedir ${home} --batch --armor --export ${keys[0]!.fingerprint} ${keys[1]!.fingerprint}`)
      .stdout,
  );
  await writeFile(join(configDir, "keys", "notes.txt"), "this is not a key\n");
  await mkdir(join(configDir, "keys", "a-directory"));
});

afterAll(async () => {
  if (home) await stopGnupgHome(home);
  await dir?.remove();
});

describe("vault config: shares and threshold", () => {
  it("defaults to 5 shares, threshold 3, no PGP keys", () => {
    expect(clusterConfigSchema.parse({ name: "lab" }).vault).toEqual({ keyShares: 5, keyThreshold: 3 });
  });

  it("needs one key file per share", () => {
    expect(problems(`name: lab\nvault:\n  unsealPgpKeys:\n${keyList(3)}\n`)).toEqual([
      "cluster.yaml:4:5 vault.unsealPgpKeys: expected 5 key files, one per unseal key share (vault.keyShares: 5), found 3",
    ]);
    expect(problems(`name: lab\nvault:\n  keyShares: 3\n  keyThreshold: 2\n  unsealPgpKeys:\n${keyList(4)}\n`)).toEqual([
      "cluster.yaml:6:5 vault.unsealPgpKeys: expected 3 key files, one per unseal key share (vault.keyShares: 3), found 4",
    ]);
    expect(problems("name: lab\nvault:\n  unsealPgpKeys: []\n")).toEqual([
      "cluster.yaml:3:18 vault.unsealPgpKeys: expected 5 key files, one per unseal key share (vault.keyShares: 5), found 0",
    ]);
  });

  it("keeps the threshold within the shares", () => {
    expect(problems("name: lab\nvault:\n  keyShares: 3\n  keyThreshold: 4\n")).toEqual([
      "cluster.yaml:4:17 vault.keyThreshold: 4 must not exceed vault.keyShares (3)",
    ]);
    expect(problems("name: lab\nvault:\n  keyThreshold: 1\n")).toEqual([
      "cluster.yaml:3:17 vault.keyThreshold: Vault needs a threshold of at least 2 when there are several shares (vault.keyShares: 5), found number 1",
    ]);
    expect(problems("name: lab\nvault:\n  unsealKeys: 5\n")).toEqual([
      "cluster.yaml:3:15 vault: unknown field 'unsealKeys' (check the spelling; allowed fields are listed in cluster.example.yaml)",
    ]);
  });
});

describe("vault config: key files checked with gpg at load", () => {
  const load = async (vault: string[]) => {
    const file = join(configDir, "cluster.yaml");
    await writeFile(file, ["name: lab", "vault:", "  keyShares: 3", "  keyThreshold: 2", ...vault, ""].join("\n"));
    return { file, result: await loadClusterConfig({ file }).catch((e: unknown) => e) };
  };

  it("accepts one public key per share, armored or binary, relative to the config file", async () => {
    const { result } = await load([
      "  unsealPgpKeys: [keys/op-0.asc, keys/op-1.gpg, keys/op-2.asc]",
      "  rootTokenPgpKey: keys/op-0.gpg",
    ]);
    expect(result).not.toBeInstanceOf(Error);
    const { config } = result as Awaited<ReturnType<typeof loadClusterConfig>>;
    expect(config.vault.unsealPgpKeys).toEqual([keys[0]!.armored, keys[1]!.binary, keys[2]!.armored]);
    expect(config.vault.rootTokenPgpKey).toBe(keys[0]!.binary);
  });

  it("names the field and the reason for every unusable file at once", async () => {
    const { file, result } = await load([
      "  unsealPgpKeys: [keys/missing.asc, keys/notes.txt, keys/secret.asc]",
      "  rootTokenPgpKey: keys/signer.asc",
    ]);
    expect(result).toBeInstanceOf(InputError);
    const error = result as InputError;
    expect(error.message).toBe(`Cluster config ${file} has 4 problems with OpenPGP keys.`);
    const k = (name: string) => join(configDir, "keys", name);
    const signer = error.details[3]?.match(/key ([0-9A-F]{40})/)?.[1];
    expect(error.details).toEqual([
      `${file} vault.unsealPgpKeys[0]: cannot read ${k("missing.asc")}: no such file`,
      `${file} vault.unsealPgpKeys[1]: ${k("notes.txt")} is not an OpenPGP public key (gpg --show-keys found none)`,
      `${file} vault.unsealPgpKeys[2]: ${k("secret.asc")} holds a secret key: give the public key only ('gpg --export --armor <fingerprint>'); never put private keys in the config`,
      `${file} vault.rootTokenPgpKey: ${k("signer.asc")}: key ${signer} has no usable encryption subkey (signing-only, expired or revoked)`,
    ]);
    expect(error.exitCode).toBe(2);
  });

  it("refuses a file with two keys and a directory", async () => {
    const { file, result } = await load(["  unsealPgpKeys: [keys/two.asc, keys/a-directory, keys/op-2.asc]"]);
    expect((result as InputError).details).toEqual([
      `${file} vault.unsealPgpKeys[0]: ${join(configDir, "keys", "two.asc")} holds 2 public keys: give exactly one key per file`,
      `${file} vault.unsealPgpKeys[1]: cannot read ${join(configDir, "keys", "a-directory")}: EISDIR: illegal operation on a directory, read`,
    ]);
  });
});

describe("vault-init.json", () => {
  it("without PGP: the first threshold shares as they are, no gpg involved", async () => {
    const record = { keys_base64: ["a", "b", "c", "d", "e"], threshold: 3 };
    expect(await unsealKeys(record, { secretsFile: "x", what: "Vault", homedir: "/nonexistent" })).toEqual(["a", "b", "c"]);
  });

  it("a record whose fingerprints do not match its shares is reported as corrupted, without its content", async () => {
    const store = new SecretStore(statePaths("pgp-unit", join(dir.path, "state")));
    await store.write(initSecret, JSON.stringify({ keys_base64: ["s1", "s2"], threshold: 2, pgp_fingerprints: ["F1"] }));
    const error = (await readInitRecord(store).catch((e: unknown) => e)) as OperationError;
    expect(error).toBeInstanceOf(OperationError);
    expect(error.message).toBe(`Secret file ${store.fileFor(initSecret)} is corrupted (expected Vault's unseal keys as JSON).`);
    expect(error.message).not.toContain("s1");
  });
});
