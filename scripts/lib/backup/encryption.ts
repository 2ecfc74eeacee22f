/**
 * Snapshot files encrypted to the operators' OpenPGP keys: the same keys the
 * config names for Vault (vault.unsealPgpKeys and vault.rootTokenPgpKey), each
 * file to all of them, so any one operator can open a snapshot with their own
 * keyring (HASHISTACK_GNUPGHOME, as for unseal). Without those keys the files
 * stay plaintext (0600), as before.
 */
import { readVaultPgpKeys } from "../config/pgp-keys.ts";
import type { ClusterConfig } from "../config/schema.ts";
import { OperationError } from "../errors.ts";
import { describeGnupgHome, operatorGnupgHome, type PgpPublicKey, pgpDecrypt } from "../util/pgp.ts";

/** The distinct keys snapshot files are encrypted to; empty without PGP keys in the config. */
export async function snapshotRecipients(
  config: Pick<ClusterConfig, "vault">,
  log: (line: string) => void,
): Promise<PgpPublicKey[]> {
  const keys = await readVaultPgpKeys(config, "cluster config", log);
  const all = [...(keys.unseal ?? []), ...(keys.rootToken ? [keys.rootToken] : [])];
  const seen = new Set<string>();
  return all.filter((k) => !seen.has(k.fingerprint) && seen.add(k.fingerprint));
}

/** One encrypted snapshot file, decrypted in memory with the operator's keyring. */
export async function decryptSnapshotFile(
  name: string,
  ciphertext: Buffer,
  encryptedTo: string[],
  homedir = operatorGnupgHome(),
): Promise<Buffer> {
  const result = await pgpDecrypt(ciphertext, homedir);
  if (result.ok) return result.plaintext;
  throw new OperationError(`Cannot decrypt ${name} with the local GnuPG keyring (${describeGnupgHome(homedir)}).`, {
    details: [`gpg: ${result.reason}`, `the snapshot is encrypted to ${encryptedTo.join(", ")}`],
    hint: "Nothing was changed. Run the restore where one of those secret keys is available (HASHISTACK_GNUPGHOME selects the keyring).",
  });
}
