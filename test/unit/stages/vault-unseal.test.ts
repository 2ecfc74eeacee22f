/**
 * Choosing and decrypting PGP-wrapped shares with a real gpg and throwaway keys
 * (no Vault needed: the shares here are messages encrypted by the gpg CLI):
 * shares whose key the keyring lacks are skipped, a share that gpg cannot
 * decrypt is reported and the next one tried, and no more than the threshold
 * is decrypted.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OperationError } from "../../../scripts/lib/errors.ts";
import { unsealKeys, type VaultInitRecord } from "../../../scripts/lib/stages/vault-unseal.ts";
import { tempDir } from "../../helpers/fixtures.ts";
import { copySecretKeys, generateTestKey, gnupgHome, stopGnupgHome, type TestPgpKey } from "../../helpers/gpg.ts";

let dir: Awaited<ReturnType<typeof tempDir>>;
/** keys a, b, c and d */
let full: string;
/** a and c only */
let local: string;
let keys: Record<"a" | "b" | "c" | "d", TestPgpKey>;

const plain = (n: number) => n.toString(16).padStart(2, "0").repeat(33);

/** Encrypt with the gpg CLI (binary output, so not through zx's text stdout). */
function encryptTo(key: TestPgpKey, text: string): string {
  return execFileSync(
    "gpg",
    ["--homedir", full, "--batch", "--trust-model", "always", "--encrypt", "--recipient", key.fingerprint],
    { input: text },
  ).toString("base64");
}

beforeAll(async () => {
  dir = await tempDir("vault-unseal");
  full = await gnupgHome(join(dir.path, "full"));
  local = await gnupgHome(join(dir.path, "local"));
  const out = join(dir.path, "keys");
  keys = {
    a: await generateTestKey(full, "a", out),
    b: await generateTestKey(full, "b", out),
    c: await generateTestKey(full, "c", out),
    d: await generateTestKey(full, "d", out),
  };
  await copySecretKeys(full, local, [keys.a.fingerprint, keys.c.fingerprint]);
});

afterAll(async () => {
  if (full) await stopGnupgHome(full);
  if (local) await stopGnupgHome(local);
  await dir?.remove();
});

describe("unsealKeys with PGP-wrapped shares", () => {
  it("skips shares whose key is not here and stops at the threshold", async () => {
    const record: VaultInitRecord = {
      keys_base64: [encryptTo(keys.b, plain(0)), encryptTo(keys.a, plain(1)), encryptTo(keys.c, plain(2))],
      threshold: 2,
      pgp_fingerprints: [keys.b.fingerprint, keys.a.fingerprint, keys.c.fingerprint],
    };
    expect(await unsealKeys(record, { secretsFile: "vault-init.json", what: "Vault", homedir: local })).toEqual([
      plain(1),
      plain(2),
    ]);
    // with every key here, the first two shares are enough
    expect(await unsealKeys(record, { secretsFile: "vault-init.json", what: "Vault", homedir: full })).toEqual([
      plain(0),
      plain(1),
    ]);
  });

  it("reports a damaged share (gpg exits 0 on a truncated message), tries the next, and names the keys still needed", async () => {
    const broken = Buffer.from(encryptTo(keys.a, plain(0)), "base64")
      .subarray(0, 40)
      .toString("base64");
    const garbage = Buffer.from("not an OpenPGP message at all").toString("base64");
    const record: VaultInitRecord = {
      keys_base64: [broken, garbage, encryptTo(keys.c, plain(2)), encryptTo(keys.b, plain(3)), encryptTo(keys.d, plain(4))],
      threshold: 2,
      pgp_fingerprints: [keys.a.fingerprint, keys.c.fingerprint, keys.c.fingerprint, keys.b.fingerprint, keys.d.fingerprint],
    };
    const error = (await unsealKeys(record, {
      secretsFile: "/s/vault-init.json",
      what: "Vault on server-2",
      homedir: local,
    }).catch((e: unknown) => e)) as OperationError;
    expect(error).toBeInstanceOf(OperationError);
    expect(error.exitCode).toBe(3);
    expect(error.message).toBe(
      `Vault on server-2 is sealed and only 1 of the 2 unseal key shares it needs can be decrypted with the local GnuPG keyring (${local}).`,
    );
    expect(error.details[0]).toBe(
      `share 0 (key ${keys.a.fingerprint}): gpg decrypted it to something that is not an unseal key share (damaged?)`,
    );
    expect(error.details[1]).toMatch(new RegExp(`^share 1 \\(key ${keys.c.fingerprint}\\): gpg could not decrypt it: gpg: .+`));
    expect(error.details.slice(2)).toEqual([
      `share 3: needs the secret key ${keys.b.fingerprint}`,
      `share 4: needs the secret key ${keys.d.fingerprint}`,
    ]);
    // no plaintext share in what is shown
    expect(JSON.stringify([error.message, error.details, error.hint])).not.toContain(plain(2));
    expect(error.hint).toContain("Holders of 1 more of the keys listed above");

    // one share already entered by hand: the one this keyring can decrypt completes the threshold
    expect(await unsealKeys(record, { secretsFile: "/s/vault-init.json", what: "Vault", homedir: local, needed: 1 })).toEqual([
      plain(2),
    ]);
    const withoutC = {
      ...record,
      keys_base64: record.keys_base64.slice(0, 2),
      pgp_fingerprints: record.pgp_fingerprints!.slice(0, 2),
    };
    await expect(
      unsealKeys(withoutC, { secretsFile: "/s/vault-init.json", what: "Vault", homedir: local, needed: 1 }),
    ).rejects.toThrow(
      `Vault is sealed and only 0 of the 1 unseal key shares it needs (1 of 2 already entered) can be decrypted with the local GnuPG keyring (${local}).`,
    );
  });
});
