/**
 * OpenPGP through the operator's own `gpg`: reading public key files (in a
 * throwaway GNUPGHOME, so the operator's keyring is never touched) and
 * decrypting Vault's PGP-wrapped unseal key shares and root token with the
 * operator's keyring and agent, and encrypting snapshot files to the
 * operators' public keys. Decrypted values stay in memory: they are returned to
 * the caller and never logged or written.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OperationError } from "../errors.ts";
import { ensureDebianPackages } from "../setup/debian-packages.ts";

export interface PgpPublicKey {
  /** the file it was read from (absolute) */
  file: string;
  /** the primary key's fingerprint, upper-case hex */
  fingerprint: string;
  userIds: string[];
  /** the binary public key (as `gpg --export` writes it), base64-encoded: what Vault's pgp_keys take */
  base64: string;
}

/** A key file that is not a usable OpenPGP public key; the message says why, without the content. */
export class PgpKeyError extends Error {}

interface GpgResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Run gpg with stdin from `input`; stdout stays a Buffer and is never echoed anywhere. */
function gpg(args: string[], options: { input?: Buffer; homedir?: string } = {}): Promise<GpgResult> {
  const fullArgs = [...(options.homedir ? ["--homedir", options.homedir] : []), "--batch", "--no-tty", ...args];
  return new Promise((resolve, reject) => {
    const child = spawn("gpg", fullArgs, { stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => err.push(chunk));
    child.on("error", reject);
    child.on("close", (code) =>
      resolve({ code: code ?? 1, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString("utf8") }),
    );
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.input ?? Buffer.alloc(0));
  });
}

let gpgChecked = false;

/** Make sure `gpg` runs, installing Debian's gnupg when it is missing (as root). */
export async function ensureGpg(log: (line: string) => void): Promise<void> {
  if (gpgChecked) return;
  const works = await gpg(["--version"]).then(
    (r) => r.code === 0,
    () => false,
  );
  if (!works) await ensureDebianPackages(["gnupg"], log);
  gpgChecked = true;
}

/** Records of `--with-colons` output: one array of fields per line. */
function colonRecords(text: string): string[][] {
  return text
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => line.split(":"));
}

async function withTempHome<T>(work: (home: string) => Promise<T>): Promise<T> {
  const home = await mkdtemp(join(tmpdir(), "hashistack-gnupg-"));
  try {
    return await work(home);
  } finally {
    // stop a gpg-agent that gpg may have started for this home (only that home's)
    await new Promise<void>((done) => {
      const child = spawn("gpgconf", ["--homedir", home, "--kill", "all"], { stdio: "ignore" });
      child.on("error", () => done());
      child.on("close", () => done());
    });
    await rm(home, { recursive: true, force: true });
  }
}

/**
 * Read one OpenPGP public key file (ASCII-armored or binary), parsed by gpg in a
 * throwaway GNUPGHOME. Exactly one public key that can encrypt is accepted.
 */
export async function readPgpPublicKey(file: string): Promise<PgpPublicKey> {
  try {
    await readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new PgpKeyError(
      code === "ENOENT" ? `cannot read ${file}: no such file` : `cannot read ${file}: ${(error as Error).message}`,
    );
  }
  return withTempHome(async (home) => {
    const shown = await gpg(["--with-colons", "--fixed-list-mode", "--show-keys", file], { homedir: home });
    const records = colonRecords(shown.stdout.toString("utf8"));
    if (records.some((r) => r[0] === "sec")) {
      throw new PgpKeyError(
        `${file} holds a secret key: give the public key only ('gpg --export --armor <fingerprint>'); never put private keys in the config`,
      );
    }
    const primaries = records.filter((r) => r[0] === "pub");
    if (shown.code !== 0 || primaries.length === 0) {
      throw new PgpKeyError(`${file} is not an OpenPGP public key (gpg --show-keys found none)`);
    }
    if (primaries.length > 1) {
      throw new PgpKeyError(`${file} holds ${primaries.length} public keys: give exactly one key per file`);
    }
    const primary = primaries[0] as string[];
    const fingerprint = records.find((r, i) => r[0] === "fpr" && records[i - 1]?.[0] === "pub")?.[9] ?? "";
    const userIds = records.filter((r) => r[0] === "uid").map((r) => r[9] ?? "");
    const validity = primary[1] ?? "";
    if (validity === "r") throw new PgpKeyError(`${file}: key ${fingerprint} is revoked`);
    if (validity === "e") throw new PgpKeyError(`${file}: key ${fingerprint} has expired`);
    // field 12: the key's overall capabilities; an upper-case E means a usable encryption (sub)key
    if (!(primary[11] ?? "").includes("E")) {
      throw new PgpKeyError(`${file}: key ${fingerprint} has no usable encryption subkey (signing-only, expired or revoked)`);
    }
    const imported = await gpg(["--import", file], { homedir: home });
    const exported = await gpg(["--export", fingerprint], { homedir: home });
    if (imported.code !== 0 || exported.code !== 0 || exported.stdout.length === 0) {
      throw new PgpKeyError(`${file}: gpg could not import key ${fingerprint} (${imported.stderr.trim().split("\n").pop()})`);
    }
    return { file, fingerprint, userIds, base64: exported.stdout.toString("base64") };
  });
}

/** The operator's GnuPG home: HASHISTACK_GNUPGHOME, else gpg's own default (GNUPGHOME or ~/.gnupg). */
export function operatorGnupgHome(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.HASHISTACK_GNUPGHOME || undefined;
}

export function describeGnupgHome(homedir: string | undefined): string {
  return homedir ?? process.env.GNUPGHOME ?? "~/.gnupg";
}

/** Fingerprints (primary keys and subkeys) whose secret part the keyring has, possibly on a card or as a stub. */
export async function secretKeyFingerprints(homedir?: string): Promise<Set<string>> {
  const listed = await gpg(["--with-colons", "--fixed-list-mode", "--list-secret-keys"], { homedir });
  const records = colonRecords(listed.stdout.toString("utf8"));
  const found = new Set<string>();
  records.forEach((r, i) => {
    const previous = records[i - 1]?.[0];
    if (r[0] === "fpr" && (previous === "sec" || previous === "ssb") && r[9]) found.add(r[9].toUpperCase());
  });
  return found;
}

/**
 * Decrypt one message with the operator's keyring and agent (pinentry may ask
 * for a passphrase). The plaintext is returned, never logged; on failure only
 * gpg's last error line comes back.
 */
export async function pgpDecrypt(
  ciphertext: Buffer,
  homedir?: string,
): Promise<{ ok: true; plaintext: Buffer } | { ok: false; reason: string }> {
  let result: GpgResult;
  try {
    result = await gpg(["--quiet", "--decrypt"], { input: ciphertext, homedir });
  } catch (error) {
    throw new OperationError("Could not run gpg to decrypt a Vault secret.", {
      cause: error,
      hint: "Install GnuPG ('apt-get install gnupg') or check PATH.",
    });
  }
  if (result.code === 0) return { ok: true, plaintext: result.stdout };
  const reason =
    result.stderr
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean)
      .pop() ?? `gpg exited ${result.code}`;
  return { ok: false, reason };
}

/**
 * Encrypt to every recipient (any one of them can decrypt), in a throwaway
 * GNUPGHOME holding only their public keys, so the operator's keyring and its
 * trust settings play no part. The plaintext goes to gpg on stdin and the
 * ciphertext comes back in memory: no plaintext file is ever written.
 */
export async function pgpEncrypt(plaintext: Buffer, recipients: PgpPublicKey[]): Promise<Buffer> {
  if (recipients.length === 0) throw new Error("bug: pgpEncrypt without recipients");
  return withTempHome(async (home) => {
    for (const key of recipients) {
      const imported = await gpg(["--import"], { input: Buffer.from(key.base64, "base64"), homedir: home });
      if (imported.code !== 0) {
        throw new OperationError(`gpg could not import the public key ${key.fingerprint} (${key.file}).`, {
          details: [imported.stderr.trim().split("\n").pop() ?? ""],
        });
      }
    }
    const args = [
      "--quiet",
      "--trust-model",
      "always",
      "--encrypt",
      ...recipients.flatMap((k) => ["--recipient", k.fingerprint]),
    ];
    const result = await gpg(args, { input: plaintext, homedir: home });
    if (result.code !== 0 || result.stdout.length === 0) {
      throw new OperationError(`gpg could not encrypt to ${recipients.map((k) => k.fingerprint).join(", ")}.`, {
        details: [result.stderr.trim().split("\n").pop() ?? `gpg exited ${result.code}`],
        hint: "Check that each key has a usable encryption subkey (not expired or revoked).",
      });
    }
    return result.stdout;
  });
}
