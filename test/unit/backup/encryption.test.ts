/**
 * Snapshot files encrypted to the operators' OpenPGP keys with the real gpg and
 * throwaway keys in temp GNUPGHOMEs: written only encrypted, opened by any one
 * recipient's keyring, refused (nothing changed) by a keyring that is none.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { snapshotRecipients } from "../../../scripts/lib/backup/encryption.ts";
import { readManifest } from "../../../scripts/lib/backup/manifest.ts";
import { openSnapshot } from "../../../scripts/lib/backup/restore.ts";
import { SnapshotWriter } from "../../../scripts/lib/backup/snapshot.ts";
import { clusterConfigSchema } from "../../../scripts/lib/config/schema.ts";
import { OperationError } from "../../../scripts/lib/errors.ts";
import { scratchDirs } from "../../helpers/fixtures.ts";
import { copySecretKeys, generateTestKey, gnupgHome, stopGnupgHome, type TestPgpKey } from "../../helpers/gpg.ts";

const scratch = scratchDirs();
const homes: string[] = [];
let keys: TestPgpKey[];
/** a keyring with op-1's secret key only, and one with a key no file is encrypted to */
let op1Home: string;
let strangerHome: string;

const plaintext = {
  consul: Buffer.from("CONSUL-RAFT-SNAPSHOT-MARKER"),
  nomad: Buffer.from("NOMAD-RAFT-SNAPSHOT-MARKER"),
  vault: Buffer.from("VAULT-RAFT-SNAPSHOT-MARKER"),
  state: Buffer.from("STATE-ARCHIVE-WITH-UNSEAL-KEYS-MARKER"),
};

beforeAll(async () => {
  const dir = await scratch.make("snapshot-pgp");
  const all = await gnupgHome(join(dir, "all"));
  homes.push(all);
  keys = [];
  for (let i = 0; i < 3; i++) keys.push(await generateTestKey(all, `op-${i}`, join(dir, "keys")));
  op1Home = await gnupgHome(join(dir, "op-1-home"));
  strangerHome = await gnupgHome(join(dir, "stranger-home"));
  homes.push(op1Home, strangerHome);
  await copySecretKeys(all, op1Home, [keys[1]!.fingerprint]);
  await copySecretKeys(all, strangerHome, [keys[2]!.fingerprint]);
}, 60_000);

afterAll(async () => {
  for (const home of homes) await stopGnupgHome(home);
  await scratch.removeAll();
});

async function encryptedSnapshot(): Promise<string> {
  const config = clusterConfigSchema.parse({
    name: "pgp",
    // op-0 holds a share and the root token: encrypted to each key once
    vault: {
      keyShares: 2,
      keyThreshold: 2,
      unsealPgpKeys: [keys[0]!.armored, keys[1]!.binary],
      rootTokenPgpKey: keys[0]!.armored,
    },
  });
  const recipients = await snapshotRecipients(config, () => undefined);
  expect(recipients.map((k) => k.fingerprint)).toEqual([keys[0]!.fingerprint, keys[1]!.fingerprint]);
  const dir = await scratch.make("snapshot-pgp-folder");
  const writer = new SnapshotWriter(dir, recipients);
  for (const part of ["consul", "nomad", "vault", "state"] as const) await writer.keep(part, { data: plaintext[part] });
  await writer.finish({
    cluster: "pgp",
    takenAt: new Date().toISOString(),
    topology: { servers: 1, clients: 0, vault: 1, hosts: ["server-1"] },
    versions: { consul: "1.22.5", nomad: "1.11.3", vault: "1.21.0" },
  });
  return dir;
}

describe("snapshots encrypted to the operators' keys", () => {
  it("writes only .gpg files (no plaintext anywhere in the folder) and names the keys in the manifest", async () => {
    const dir = await encryptedSnapshot();
    expect((await readdir(dir)).sort()).toEqual([
      "consul.snap.gpg",
      "manifest.json",
      "nomad.snap.gpg",
      "state.tar.gz.gpg",
      "vault.snap.gpg",
    ]);
    for (const name of await readdir(dir)) {
      const content = await readFile(join(dir, name));
      expect(content.includes("MARKER"), name).toBe(false);
    }
    const manifest = await readManifest(dir);
    expect(manifest.encryptedTo).toEqual([keys[0]!.fingerprint, keys[1]!.fingerprint]);
  });

  it("any one recipient's keyring opens every file, checked against the manifest first", async () => {
    const dir = await encryptedSnapshot();
    const opened = await openSnapshot(dir, op1Home);
    for (const part of ["consul", "nomad", "vault", "state"] as const)
      expect(opened.parts.get(part)?.toString(), part).toBe(plaintext[part].toString());
  });

  it("a keyring without any of the keys: an error naming the keys, before anything is restored", async () => {
    const dir = await encryptedSnapshot();
    const error = (await openSnapshot(dir, strangerHome).catch((e: unknown) => e)) as OperationError;
    expect(error).toBeInstanceOf(OperationError);
    expect(error.message).toBe(`Cannot decrypt consul.snap.gpg with the local GnuPG keyring (${strangerHome}).`);
    expect(error.details).toContain(`the snapshot is encrypted to ${keys[0]!.fingerprint}, ${keys[1]!.fingerprint}`);
    expect(error.hint).toContain("Nothing was changed");
  });

  it("without PGP keys in the config the files stay plaintext", async () => {
    expect(await snapshotRecipients(clusterConfigSchema.parse({ name: "plain" }), () => undefined)).toEqual([]);
  });
});
