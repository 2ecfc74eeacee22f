/**
 * HashiCorp's official release binaries (`install.method: download`), fetched on the
 * operator's machine: the zip, `<tool>_<ver>_SHA256SUMS` and its detached signature
 * `…_SHA256SUMS.sig`. The signature is checked with gpgv against a keyring holding only
 * the key with the pinned fingerprint, the zip against its SHA256SUMS line, and the
 * binary is cached in `~/.cache/hashistack/releases/<tool>/<version>/` with a
 * `release.json` of what was verified. The cache only ever holds verified files: a
 * release is assembled in a staging directory and renamed into place.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { $ } from "zx";
import { OperationError, errorMessage } from "../errors.ts";
import { cacheRoot } from "./build.ts";
import { withLock } from "./lock.ts";
import { ensureReleaseTools, exportKeyring, keyFingerprints, verifyDetached } from "./pgp.ts";
import { normalizeFingerprint } from "./release-source.ts";

export interface ReleaseSource {
  /** base of the release tree, e.g. https://releases.hashicorp.com */
  releasesUrl: string;
  /** armored public key of the release signer */
  signingKeyUrl: string;
  /** the only primary key fingerprint whose signature is accepted */
  fingerprint: string;
}

export interface FetchOptions {
  /** a request that sends nothing for this long is aborted (default 60 s) */
  idleTimeoutMs?: number;
  /** attempts for 5xx answers and network errors (default 3) */
  attempts?: number;
  /** default `cacheRoot()` */
  cacheRoot?: string;
  log?: (line: string) => void;
}

export interface ReleaseFile {
  name: string;
  url: string;
}

export function releaseFiles(
  releasesUrl: string,
  tool: string,
  version: string,
): { zip: ReleaseFile; sums: ReleaseFile; signature: ReleaseFile } {
  const dir = `${releasesUrl.replace(/\/+$/, "")}/${encodeURIComponent(tool)}/${encodeURIComponent(version)}`;
  const file = (name: string): ReleaseFile => ({ name, url: `${dir}/${name}` });
  return {
    zip: file(`${tool}_${version}_linux_amd64.zip`),
    sums: file(`${tool}_${version}_SHA256SUMS`),
    signature: file(`${tool}_${version}_SHA256SUMS.sig`),
  };
}

/** `sha256sum` output: `<64 hex>  <name>` (or ` *<name>` in binary mode) per line; file name → digest */
export function parseSha256Sums(text: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const line of text.split("\n")) {
    const match = /^([0-9a-fA-F]{64}) [ *](.+?)\s*$/.exec(line);
    if (match?.[1] && match[2]) sums.set(match[2], match[1].toLowerCase());
  }
  return sums;
}

export function releaseBinaryPath(tool: string, version: string, root = cacheRoot()): string {
  return join(root, "releases", tool, version, tool);
}

export interface ReleaseRecord {
  tool: string;
  version: string;
  zip: string;
  zipSha256: string;
  binarySha256: string;
  signedBy: string;
  sumsUrl: string;
  signatureUrl: string;
  sizeBytes: number;
  verifiedAt: string;
}

/** The source from the config, with the environment's overrides for mirrors and tests. */
export function releaseSource(install: {
  releasesUrl: string;
  signingKeyUrl: string;
  signingKeyFingerprint: string;
}): ReleaseSource {
  return {
    releasesUrl: process.env.HASHISTACK_RELEASES_URL || install.releasesUrl,
    signingKeyUrl: process.env.HASHISTACK_SIGNING_KEY_URL || install.signingKeyUrl,
    fingerprint: normalizeFingerprint(install.signingKeyFingerprint),
  };
}

/**
 * A verified release binary of `tool` at `version` from the cache, downloading and
 * verifying it first when it is not there. Parallel runs download once (a lock).
 */
export async function ensureReleaseBinary(
  tool: string,
  version: string,
  source: ReleaseSource,
  options: FetchOptions = {},
): Promise<{ path: string; downloaded: boolean }> {
  const root = options.cacheRoot ?? cacheRoot();
  const target = releaseBinaryPath(tool, version, root);
  const cached = () => existsSync(target) && existsSync(join(target, "..", "release.json"));
  if (cached()) return { path: target, downloaded: false };
  return withLock(join(root, "locks", `release-${tool}-${version}`), async () => {
    if (cached()) return { path: target, downloaded: false }; // downloaded while we waited
    await download(tool, version, source, target, root, options);
    return { path: target, downloaded: true };
  });
}

async function download(
  tool: string,
  version: string,
  source: ReleaseSource,
  target: string,
  root: string,
  options: FetchOptions,
): Promise<void> {
  const log = options.log ?? (() => {});
  await ensureReleaseTools(log);
  // the key first: nothing of the release is fetched with a key we would refuse
  let key = await signingKeyring(source, root, options);
  const files = releaseFiles(source.releasesUrl, tool, version);
  const toolDir = join(target, "..", "..");
  await mkdir(toolDir, { recursive: true });
  const staging = await mkdtemp(join(toolDir, `.staging-${version}-`));
  try {
    log(`downloading ${files.sums.url} and its signature`);
    const sumsFile = join(staging, files.sums.name);
    const signatureFile = join(staging, files.signature.name);
    await fetchToFile(files.sums.url, sumsFile, options);
    await fetchToFile(files.signature.url, signatureFile, options);
    let check = await verifyDetached(key.keyring, source.fingerprint, signatureFile, sumsFile);
    if (!check.ok && check.unknownKey && key.cached) {
      // signed by a subkey newer than our cached copy of the key: fetch the key again (same pin)
      log("the signature is by a subkey the cached signing key lacks; fetching the key again");
      key = await signingKeyring(source, root, options, true);
      check = await verifyDetached(key.keyring, source.fingerprint, signatureFile, sumsFile);
    }
    if (!check.ok) {
      throw new OperationError(`The signature of ${files.sums.url} is not valid: ${check.reason}.`, {
        hint: check.unknownKey
          ? "Do not use this release. If HashiCorp has rotated its release key, check the fingerprint on https://www.hashicorp.com/security and set install.signingKeyFingerprint to it (docs/binaries.md: 'Where the pinned fingerprint comes from'); otherwise check the mirror."
          : "Do not use this release. If you use a mirror, check that it serves HashiCorp's files unaltered (install.releasesUrl / HASHISTACK_RELEASES_URL).",
      });
    }
    const expected = parseSha256Sums(await readFile(sumsFile, "utf8")).get(files.zip.name);
    if (!expected) {
      throw new OperationError(`${files.sums.url} has no line for ${files.zip.name}.`, {
        hint: `Check that ${tool} ${version} is published for linux_amd64 (versions.* in the cluster config).`,
      });
    }
    log(`downloading ${files.zip.url}`);
    const zipFile = join(staging, files.zip.name);
    await fetchToFile(files.zip.url, zipFile, options);
    const actual = await sha256File(zipFile);
    if (actual !== expected) {
      throw new OperationError(
        `${files.zip.name} from ${files.zip.url} does not match its signed checksum (sha256 ${actual}, SHA256SUMS says ${expected}).`,
        {
          hint: "The download was altered or truncated; nothing was cached. Run the command again, and if it persists, check the mirror.",
        },
      );
    }
    const unpacked = join(staging, "unpacked");
    await mkdir(unpacked);
    const unzip = await $({ quiet: true, nothrow: true })`unzip -q -o ${zipFile} ${tool} -d ${unpacked}`;
    const binary = join(unpacked, tool);
    if (unzip.exitCode !== 0 || !existsSync(binary)) {
      throw new OperationError(`${files.zip.name} holds no '${tool}' binary (unzip exit ${unzip.exitCode}).`, {
        details: unzip.stderr.trim().split("\n").slice(-4),
      });
    }
    await chmod(binary, 0o755);
    const release = join(staging, "release");
    await mkdir(release);
    await rename(binary, join(release, tool));
    const record: ReleaseRecord = {
      tool,
      version,
      zip: files.zip.url,
      zipSha256: actual,
      binarySha256: await sha256File(join(release, tool)),
      signedBy: source.fingerprint,
      sumsUrl: files.sums.url,
      signatureUrl: files.signature.url,
      sizeBytes: (await stat(join(release, tool))).size,
      verifiedAt: new Date().toISOString(),
    };
    await writeFile(join(release, "release.json"), `${JSON.stringify(record, null, 2)}\n`);
    // a version directory without release.json is a leftover of an older layout or a crash
    await rm(join(target, ".."), { recursive: true, force: true });
    await rename(release, join(target, ".."));
    log(`${tool} ${version} verified (SHA256SUMS signed by ${source.fingerprint}) and cached at ${target}`);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * A gpgv keyring with the release signing key, fetched once and cached by fingerprint
 * (`refresh` fetches it again, for a signing subkey added since). The key file is refused
 * unless one of its primary keys has the pinned fingerprint, and the keyring holds only
 * that key; a refused key leaves the cached keyring as it was.
 */
async function signingKeyring(
  source: ReleaseSource,
  root: string,
  options: FetchOptions,
  refresh = false,
): Promise<{ keyring: string; cached: boolean }> {
  const dir = join(root, "releases", "keys");
  const keyring = join(dir, `${source.fingerprint}.gpg`);
  if (!refresh && existsSync(keyring)) return { keyring, cached: true };
  return withLock(join(root, "locks", `release-key-${source.fingerprint}`), async () => {
    if (!refresh && existsSync(keyring)) return { keyring, cached: true };
    await mkdir(dir, { recursive: true });
    const staging = await mkdtemp(join(dir, ".staging-"));
    try {
      const keyFile = join(staging, "key.asc");
      options.log?.(`fetching the release signing key from ${source.signingKeyUrl}`);
      await fetchToFile(source.signingKeyUrl, keyFile, options);
      const found = await keyFingerprints(keyFile);
      if (!found.includes(source.fingerprint)) {
        throw new OperationError(
          `The signing key from ${source.signingKeyUrl} is not the pinned one: it has ${found.length ? found.join(", ") : "no key"}, the pinned fingerprint is ${source.fingerprint}.`,
          {
            hint: "Nothing was verified or downloaded with it. Check the key URL (install.signingKeyUrl / HASHISTACK_SIGNING_KEY_URL); change install.signingKeyFingerprint only after checking HashiCorp's published fingerprint (https://www.hashicorp.com/security).",
          },
        );
      }
      await exportKeyring(keyFile, source.fingerprint, join(staging, "keyring.gpg"));
      await rename(join(staging, "keyring.gpg"), keyring);
      return { keyring, cached: false };
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  });
}

/** GET `url` into `file`, retrying 5xx answers and network errors; any other failure names the URL. */
export async function fetchToFile(url: string, file: string, options: FetchOptions = {}): Promise<void> {
  const attempts = options.attempts ?? 3;
  const idleMs = options.idleTimeoutMs ?? 60_000;
  for (let attempt = 1; ; attempt++) {
    const failure = await fetchOnce(url, file, idleMs);
    if (!failure) return;
    await rm(file, { force: true });
    if (!failure.retry || attempt >= attempts) {
      throw new OperationError(`Downloading ${url} failed: ${failure.reason}.`, {
        hint: failure.hint ?? "Check the network and the URL (install.releasesUrl / HASHISTACK_RELEASES_URL), then run again.",
      });
    }
    options.log?.(`${url}: ${failure.reason}; retrying (${attempt}/${attempts - 1})`);
    await sleep(500 * 2 ** (attempt - 1));
  }
}

async function fetchOnce(
  url: string,
  file: string,
  idleMs: number,
): Promise<{ reason: string; retry: boolean; hint?: string } | undefined> {
  const abort = new AbortController();
  let timer = setTimeout(() => abort.abort(), idleMs);
  const touch = () => {
    clearTimeout(timer);
    timer = setTimeout(() => abort.abort(), idleMs);
  };
  try {
    const response = await fetch(url, { signal: abort.signal, redirect: "follow" });
    if (!response.ok || !response.body) {
      await response.body?.cancel().catch(() => {});
      const reason = `HTTP ${response.status} ${response.statusText}`.trim();
      if (response.status === 404) {
        return { reason, retry: false, hint: "Check the version in the cluster config (versions.*) and the releases URL." };
      }
      return { reason, retry: response.status >= 500 };
    }
    touch();
    const idle = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        touch();
        done(null, chunk);
      },
    });
    await pipeline(Readable.fromWeb(response.body as import("node:stream/web").ReadableStream), idle, createWriteStream(file));
    return undefined;
  } catch (error) {
    if (abort.signal.aborted)
      return {
        reason: `no data for ${idleMs >= 1000 ? `${Math.round(idleMs / 1000)} s` : `${idleMs} ms`} (timed out)`,
        retry: true,
      };
    const cause = (error as { cause?: unknown }).cause;
    return { reason: cause ? `${errorMessage(error)} (${errorMessage(cause)})` : errorMessage(error), retry: true };
  } finally {
    clearTimeout(timer);
  }
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

export async function readReleaseRecord(tool: string, version: string, root = cacheRoot()): Promise<ReleaseRecord | undefined> {
  try {
    return JSON.parse(
      await readFile(join(releaseBinaryPath(tool, version, root), "..", "release.json"), "utf8"),
    ) as ReleaseRecord;
  } catch {
    return undefined;
  }
}
