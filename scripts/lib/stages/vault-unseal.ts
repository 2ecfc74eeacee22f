/**
 * Vault's one `init` and every unseal, split from the vault stage so they can
 * be tested against a single real Vault.
 *
 * Without OpenPGP keys in the config, the unseal key shares and the root token
 * are kept in plaintext 0600 files, as before. With `vault.unsealPgpKeys`, Vault
 * encrypts each share to one key and the state holds only the encrypted shares
 * and their key fingerprints; unsealing decrypts just enough of them with the
 * operator's own gpg (their keyring and agent), in memory. With
 * `vault.rootTokenPgpKey` the root token is stored only encrypted too and is
 * decrypted the same way whenever a stage needs it.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { ApiError } from "../clients/http.ts";
import type { VaultClient } from "../clients/vault.ts";
import type { VaultPgpKeys } from "../config/pgp-keys.ts";
import { OperationError } from "../errors.ts";
import type { SecretStore } from "../state/secrets.ts";
import { describeGnupgHome, operatorGnupgHome, pgpDecrypt, secretKeyFingerprints } from "../util/pgp.ts";
import { retryWhile } from "../util/retry.ts";

export const initSecret = "vault-init.json";
export const rootTokenSecret = "vault-root-token";
export const encryptedRootTokenSecret = "vault-root-token.pgp.json";

/** What `vault-init.json` holds. */
export interface VaultInitRecord {
  /** the unseal key shares; with pgp_fingerprints, each is the base64 of a binary OpenPGP message */
  keys_base64: string[];
  threshold: number;
  /** the fingerprint of the key each share is encrypted to, in share order; absent for plaintext shares */
  pgp_fingerprints?: string[];
}

interface EncryptedRootToken {
  fingerprint: string;
  /** base64 of the binary OpenPGP message Vault returned */
  token_base64: string;
}

export interface VaultInitOptions {
  shares: number;
  threshold: number;
  keys: VaultPgpKeys;
}

/**
 * `init` an uninitialised Vault and keep what it returns before anything else
 * can fail: without the shares the Vault is lost.
 */
export async function initialiseVault(
  vault: VaultClient,
  secrets: SecretStore,
  options: VaultInitOptions,
): Promise<{ record: VaultInitRecord; rootToken?: string }> {
  const unsealKeys = options.keys.unseal;
  if (unsealKeys && unsealKeys.length !== options.shares) {
    throw new Error(`${unsealKeys.length} unseal PGP keys for ${options.shares} shares`);
  }
  const response = await vault.init({
    secretShares: options.shares,
    secretThreshold: options.threshold,
    pgpKeys: unsealKeys?.map((k) => k.base64),
    rootTokenPgpKey: options.keys.rootToken?.base64,
  });
  const record: VaultInitRecord = {
    keys_base64: response.keys_base64,
    threshold: options.threshold,
    ...(unsealKeys ? { pgp_fingerprints: unsealKeys.map((k) => k.fingerprint) } : {}),
  };
  await secrets.write(initSecret, JSON.stringify(record));
  if (options.keys.rootToken) {
    const encrypted: EncryptedRootToken = {
      fingerprint: options.keys.rootToken.fingerprint,
      token_base64: response.root_token,
    };
    await secrets.write(encryptedRootTokenSecret, JSON.stringify(encrypted));
    return { record };
  }
  await secrets.write(rootTokenSecret, response.root_token);
  return { record, rootToken: response.root_token };
}

/** The init record from the state; a corrupted file stops the run without echoing its content. */
export async function readInitRecord(secrets: SecretStore): Promise<VaultInitRecord | undefined> {
  const text = await secrets.read(initSecret);
  if (!text) return undefined;
  try {
    const parsed = JSON.parse(text) as VaultInitRecord;
    const shares = parsed.keys_base64;
    const fingerprints = parsed.pgp_fingerprints;
    if (
      Array.isArray(shares) &&
      shares.every((s) => typeof s === "string") &&
      Number.isInteger(parsed.threshold) &&
      parsed.threshold >= 1 &&
      shares.length >= parsed.threshold &&
      (fingerprints === undefined || (Array.isArray(fingerprints) && fingerprints.length === shares.length))
    )
      return parsed;
  } catch {
    // reported below without echoing the content
  }
  throw new OperationError(`Secret file ${secrets.fileFor(initSecret)} is corrupted (expected Vault's unseal keys as JSON).`, {
    hint: "Restore it from your backup; without the unseal keys a sealed Vault cannot be opened.",
  });
}

/**
 * The plaintext unseal keys a sealed Vault needs, in memory only: the
 * threshold, or fewer when key holders have already entered shares by hand
 * (`needed`, from the seal status: t − progress). PGP-wrapped shares are
 * decrypted with the operator's gpg, trying only shares whose key the local
 * keyring holds, and no more than needed. Too few → an OperationError naming
 * the keys that are needed and how to unseal by hand.
 */
export async function unsealKeys(
  record: VaultInitRecord,
  context: { secretsFile: string; what: string; homedir?: string; needed?: number },
): Promise<string[]> {
  if (!record.pgp_fingerprints) return record.keys_base64.slice(0, record.threshold);
  const needed = Math.min(Math.max(context.needed ?? record.threshold, 1), record.threshold);
  const entered = record.threshold - needed;
  const homedir = context.homedir ?? operatorGnupgHome();
  const available = await secretKeyFingerprints(homedir);
  const keys: string[] = [];
  const problems: string[] = [];
  for (const [index, share] of record.keys_base64.entries()) {
    if (keys.length >= needed) break;
    const fingerprint = (record.pgp_fingerprints[index] ?? "").toUpperCase();
    if (!available.has(fingerprint)) continue;
    const result = await pgpDecrypt(Buffer.from(share, "base64"), homedir);
    // a decrypted share is the key in hex, which sys/unseal takes as it is; gpg may exit 0 on a truncated message
    const decrypted = result.ok ? result.plaintext.toString("utf8").trim() : "";
    if (result.ok && /^(?:[0-9a-f]{2})+$/i.test(decrypted)) keys.push(decrypted);
    else
      problems.push(
        `share ${index} (key ${fingerprint}): ${result.ok ? "gpg decrypted it to something that is not an unseal key share (damaged?)" : `gpg could not decrypt it: ${result.reason}`}`,
      );
  }
  if (keys.length >= needed) return keys;

  const missing = record.pgp_fingerprints
    .map((fingerprint, index) => ({ fingerprint: fingerprint.toUpperCase(), index }))
    .filter(({ fingerprint }) => !available.has(fingerprint));
  throw new OperationError(
    `${context.what} is sealed and only ${keys.length} of the ${needed} unseal key shares it needs${entered ? ` (${entered} of ${record.threshold} already entered)` : ""} can be decrypted with the local GnuPG keyring (${describeGnupgHome(homedir)}).`,
    {
      details: [...problems, ...missing.map(({ fingerprint, index }) => `share ${index}: needs the secret key ${fingerprint}`)],
      hint: [
        `Holders of ${needed - keys.length} more of the keys listed above each decrypt their share and enter it,`,
        `e.g. jq -r '.keys_base64[<share>]' ${context.secretsFile} | base64 -d | gpg -d`,
        "then, on the Vault node, 'VAULT_ADDR=https://127.0.0.1:8200 VAULT_CACERT=/etc/vault.d/tls/ca.pem vault operator unseal'",
        "(paste the decrypted share at the prompt, never as an argument).",
        "Run 'npm run bootstrap' again once Vault is unsealed, or once enough shares are entered for this keyring to add the rest.",
        "HASHISTACK_GNUPGHOME selects another keyring for this tool.",
      ].join("\n"),
    },
  );
}

/** Unseal one Vault with the given keys; raft followers answer "not initialized" until they have joined. */
export async function unsealWith(vault: VaultClient, keys: string[]): Promise<void> {
  await retryWhile(
    async () => {
      for (const key of keys) {
        const status = await vault.unseal(key);
        if (!status.sealed) return;
      }
    },
    (e) => e instanceof ApiError && /not initialized/i.test(e.apiMessage),
    { timeoutMs: 60_000, initialDelayMs: 200 },
  );
  // a raft follower uses the keys to join its leader (progress back to 0) and unseals a moment later
  let status = await vault.sealStatus();
  for (const deadline = Date.now() + 30_000; status.sealed && status.progress === 0 && Date.now() < deadline;) {
    await sleep(200);
    status = await vault.sealStatus();
  }
  if (status.sealed) {
    throw new OperationError(`Vault stayed sealed after ${keys.length} unseal keys (progress ${status.progress}/${status.t}).`, {
      hint: "A share entered by hand may be one decrypted here too (Vault ignores a repeated share): enter another one by hand. Otherwise the keys in the state do not belong to this Vault: restore vault-init.json from the backup of this cluster.",
    });
  }
}

/**
 * Unseal this Vault when it is sealed; true when it was. The shares are decrypted
 * (PGP) only for a sealed Vault and only in memory; shares entered by hand count
 * (a raft follower that has not joined yet reports t = 0: it needs the threshold).
 */
export async function unsealIfSealed(
  vault: VaultClient,
  record: VaultInitRecord,
  context: { secretsFile: string; what: string; homedir?: string },
): Promise<boolean> {
  const status = await vault.sealStatus();
  if (!status.sealed) return false;
  const keys = await unsealKeys(record, { ...context, needed: status.t > 0 ? status.t - status.progress : undefined });
  await unsealWith(vault, keys);
  return true;
}

/** decrypted root tokens by their ciphertext: a file replaced by a new init or a restore is decrypted anew */
const rootTokens = new Map<string, string>();

/**
 * The root token for the bootstrap's own work: the plaintext file, or the
 * PGP-encrypted one decrypted in memory (once per process and ciphertext).
 */
export async function vaultRootToken(secrets: SecretStore, homedir = operatorGnupgHome()): Promise<string> {
  const plain = await secrets.read(rootTokenSecret);
  if (plain) return plain;
  const encryptedFile = secrets.fileFor(encryptedRootTokenSecret);
  const text = await secrets.read(encryptedRootTokenSecret);
  if (!text) {
    throw new OperationError("The Vault root token is missing from the state.", {
      hint: `Restore ${secrets.fileFor(rootTokenSecret)} (or ${encryptedFile}) from your backup.`,
    });
  }
  let encrypted: EncryptedRootToken;
  try {
    encrypted = JSON.parse(text) as EncryptedRootToken;
    if (typeof encrypted.token_base64 !== "string" || typeof encrypted.fingerprint !== "string") throw new Error("shape");
  } catch {
    throw new OperationError(`Secret file ${encryptedFile} is corrupted (expected the encrypted Vault root token as JSON).`, {
      hint: "Restore it from your backup.",
    });
  }
  const cached = rootTokens.get(encrypted.token_base64);
  if (cached) return cached;
  const result = await pgpDecrypt(Buffer.from(encrypted.token_base64, "base64"), homedir);
  if (!result.ok) {
    throw new OperationError(
      `The Vault root token is encrypted to key ${encrypted.fingerprint}, which the local GnuPG keyring (${describeGnupgHome(homedir)}) cannot decrypt.`,
      {
        details: [`gpg: ${result.reason}`],
        hint: "Run the bootstrap where that secret key is available (or point HASHISTACK_GNUPGHOME at its keyring).",
      },
    );
  }
  const token = decodeRootToken(result.plaintext);
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new OperationError(`${encryptedFile} decrypted to something that is not a Vault token (damaged?).`, {
      hint: "Restore it from your backup.",
    });
  }
  rootTokens.set(encrypted.token_base64, token);
  return token;
}

/** Vault encrypts the root token itself (unlike the shares, which it encrypts as hex). */
export function decodeRootToken(plaintext: Buffer): string {
  return plaintext.toString("utf8").trim();
}
