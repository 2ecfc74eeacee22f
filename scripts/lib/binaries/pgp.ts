/**
 * OpenPGP with GnuPG's own tools: the primary fingerprints of a key file
 * (`gpg --show-keys`), a keyring holding only the pinned key, and detached
 * signature checks with `gpgv` against that keyring. Nothing touches the
 * operator's ~/.gnupg: every gpg call gets a throwaway GNUPGHOME.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { $ } from "zx";
import { OperationError } from "../errors.ts";
import { ensureDebianPackages } from "../setup/debian-packages.ts";
import { normalizeFingerprint } from "./release-source.ts";

/** gpg, gpgv and unzip, installed from Debian when a command is missing */
export async function ensureReleaseTools(log: (line: string) => void): Promise<void> {
  const needed = { gpg: "gpg", gpgv: "gpgv", unzip: "unzip" };
  const missing: string[] = [];
  for (const [command, pkg] of Object.entries(needed)) {
    const found = await $({ quiet: true, nothrow: true })`command -v ${command}`;
    if (found.exitCode !== 0) missing.push(pkg);
  }
  if (missing.length) await ensureDebianPackages(missing, log);
}

async function withGnupgHome<T>(action: (home: string) => Promise<T>): Promise<T> {
  const home = await mkdtemp(join(tmpdir(), "hashistack-gnupg-"));
  try {
    return await action(home);
  } finally {
    // gpg may have started an agent for this home; it exits when its socket goes away
    await $({ quiet: true, nothrow: true })`gpgconf --homedir ${home} --kill all`;
    await rm(home, { recursive: true, force: true });
  }
}

/** The primary-key fingerprints in an armored or binary key file, without importing it anywhere. */
export async function keyFingerprints(keyFile: string): Promise<string[]> {
  return withGnupgHome(async (home) => {
    const shown = await $({ quiet: true, nothrow: true })`gpg --homedir ${home} --batch --with-colons --show-keys ${keyFile}`;
    if (shown.exitCode !== 0) {
      throw new OperationError(`${keyFile} is not an OpenPGP public key.`, {
        details: shown.stderr.trim().split("\n").slice(-4),
        hint: "Check the signing key URL (install.signingKeyUrl / HASHISTACK_SIGNING_KEY_URL): it must serve an armored public key.",
      });
    }
    return primaryFingerprints(shown.stdout);
  });
}

/** `fpr` records that directly follow a `pub` record (subkey fingerprints follow `sub`). */
export function primaryFingerprints(colons: string): string[] {
  const result: string[] = [];
  let previous = "";
  for (const line of colons.split("\n")) {
    const fields = line.split(":");
    if (fields[0] === "fpr" && previous === "pub" && fields[9]) result.push(normalizeFingerprint(fields[9]));
    if (fields[0] !== "fpr") previous = fields[0] ?? "";
  }
  return result;
}

/**
 * A binary keyring for gpgv holding the key with `fingerprint` (and its subkeys)
 * from `keyFile`, and nothing else, even if the file carries further keys.
 */
export async function exportKeyring(keyFile: string, fingerprint: string, keyring: string): Promise<void> {
  await withGnupgHome(async (home) => {
    const imported = await $({ quiet: true, nothrow: true })`gpg --homedir ${home} --batch --import ${keyFile}`;
    const exported = await $({
      quiet: true,
      nothrow: true,
    })`gpg --homedir ${home} --batch --yes --output ${keyring} --export ${fingerprint}`;
    if (imported.exitCode !== 0 || exported.exitCode !== 0) {
      throw new OperationError(`Cannot make a keyring from ${keyFile} for key ${fingerprint}.`, {
        details: (exported.stderr || imported.stderr).trim().split("\n").slice(-4),
      });
    }
  });
}

/** `unknownKey`: made by a key (or subkey) the keyring does not hold */
export type SignatureCheck = { ok: true } | { ok: false; reason: string; unknownKey: boolean };

/**
 * Check a detached signature with gpgv against `keyring`. Good only when gpgv
 * exits 0 *and* reports a valid signature whose primary key is `fingerprint`.
 */
export async function verifyDetached(
  keyring: string,
  fingerprint: string,
  signature: string,
  data: string,
): Promise<SignatureCheck> {
  const result = await $({ quiet: true, nothrow: true })`gpgv --status-fd 1 --keyring ${keyring} ${signature} ${data}`;
  const status = result.stdout.split("\n").filter((l) => l.startsWith("[GNUPG:] "));
  // VALIDSIG <sig-key-fpr> <date> <timestamp> <expire> <version> <reserved> <pubkey-algo> <hash-algo> <class> <primary-fpr>
  const valid = status.map((l) => l.split(" ")).find((f) => f[1] === "VALIDSIG");
  const primary = valid ? normalizeFingerprint(valid[valid.length - 1] ?? "") : undefined;
  if (result.exitCode === 0 && primary === normalizeFingerprint(fingerprint)) return { ok: true };
  const noKey = status.find((l) => l.includes(" NO_PUBKEY ") || l.includes(" ERRSIG "));
  if (noKey) return { ok: false, unknownKey: true, reason: `it was not made by key ${fingerprint} (gpgv: ${noKey.slice(9)})` };
  const bad = status.find((l) => l.includes(" BADSIG "));
  if (bad) {
    return { ok: false, unknownKey: false, reason: "the signature does not match the file (BADSIG): the file was altered" };
  }
  return { ok: false, unknownKey: false, reason: `gpgv refused it: ${result.stderr.trim().split("\n").slice(-2).join(" ")}` };
}
