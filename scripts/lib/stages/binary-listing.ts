/**
 * One checksum listing per host for the uploaded binaries, so a run with nothing to
 * install does not hash hundreds of MB on every node. After prepare installs the
 * binaries it records, per path, the SHA-256 it verified and the file's identity
 * (size, mtime and ctime in ns, inode, mode, owner, group). A later run reads the listing and
 * stats the files in the same command: a binary whose identity is unchanged still has
 * the recorded content (any write, chmod or chown moves its ctime, which no user can
 * set back), so it is compared by the recorded checksum; anything else goes through
 * the full upload check (remote sha256sum).
 */
import { posix } from "node:path";
import { zstdCopy as compressedCopy } from "../binaries/compressed.ts";
import { sh } from "../remote/command.ts";
import { parseStatLines, statCommand } from "../remote/file-state.ts";
import { shellQuote } from "../remote/quote.ts";
import type { Remote } from "../remote/remote.ts";
import { localFileSha256 } from "../remote/ssh.ts";

export interface ListedBinary {
  sha256: string;
  identity: string;
}

const separator = "--- hashistack stat ---";

/** The listing's path beside the binaries. */
export function listingPath(binDir: string): string {
  return posix.join(binDir, ".hashistack-binaries.sha256");
}

/** the identity stat prints; nanosecond times, so a same-second rewrite still shows */
const identityFields = "%s %.9Y %.9Z %i %a %U %G";

/** One command: the listing, a separator, then each existing file's identity. */
export function readListingCommand(binDir: string, paths: string[]): string {
  return `cat ${shellQuote(listingPath(binDir))} 2>/dev/null; echo ${shellQuote(separator)}; ${statCommand(paths, identityFields)}; true`;
}

/** The stat lines alone, after uploads, to write the new listing. */
export function statOnlyCommand(paths: string[]): string {
  return `${statCommand(paths, identityFields)}; true`;
}

/**
 * The paths whose recorded checksum still describes the file on the host (the
 * recorded identity matches the current one); missing or malformed parts count as unknown.
 */
export function parseListing(stdout: string): Map<string, ListedBinary> {
  const at = stdout.indexOf(separator);
  if (at < 0) return new Map();
  const current = parseStatLines(stdout.slice(at + separator.length));
  const listed = new Map<string, ListedBinary>();
  for (const line of stdout.slice(0, at).split("\n")) {
    const match = /^([0-9a-f]{64}) ([^|]+)\|(.+)$/.exec(line);
    if (!match) continue;
    const [, sha256, path, identity] = match as unknown as [string, string, string, string];
    if (current.get(path) === identity) listed.set(path, { sha256, identity });
  }
  return listed;
}

/** The listing's content: the verified checksums with the identities stat reports now. */
export function listingContent(sha256s: Map<string, string>, statStdout: string): string {
  const identities = parseStatLines(statStdout);
  const lines: string[] = [];
  for (const [path, sha256] of [...sha256s].sort(([a], [b]) => a.localeCompare(b))) {
    const identity = identities.get(path);
    if (identity) lines.push(`${sha256} ${path}|${identity}`);
  }
  return `${lines.join("\n")}\n`;
}

/** A binary to install: its name in binDir, the local file, how it prints its version. */
export interface BinaryUpload {
  name: string;
  localPath: string;
  versionArgs: string[];
}

/**
 * Install the binaries in binDir (root-owned, 0755). `listing` is what
 * readListingCommand answered. Returns how many were written or fixed; only then are
 * their versions printed (a check that they run) and the listing rewritten.
 */
export async function installBinaries(
  remote: Remote,
  binDir: string,
  binaries: BinaryUpload[],
  listing: Map<string, ListedBinary>,
  /** zstd: the host can unpack zstd copies, which are sent instead (binaries/compressed.ts) */
  options: { zstd?: boolean } = {},
): Promise<{ uploaded: number; versions: string[] }> {
  const sha256s = new Map<string, string>();
  let uploaded = 0;
  let checked = 0;
  for (const binary of binaries) {
    const path = posix.join(binDir, binary.name);
    const sha256 = await localFileSha256(binary.localPath);
    sha256s.set(path, sha256);
    const listed = listing.get(path);
    if (listed?.sha256 === sha256 && listed.identity.endsWith(" 755 root root")) continue;
    checked++;
    const zstdCopy = options.zstd ? await compressedCopy(binary.localPath, sha256) : undefined;
    const outcome = await remote.uploadFile(binary.localPath, path, { mode: 0o755, ...(zstdCopy ? { zstdCopy } : {}) });
    if (outcome !== "unchanged") uploaded++;
  }
  if (!checked) return { uploaded, versions: [] };
  const paths = [...sha256s.keys()];
  const stat = await remote.run(statOnlyCommand(paths));
  await remote.uploadContent(listingContent(sha256s, stat.stdout), listingPath(binDir), { mode: 0o644 });
  if (!uploaded) return { uploaded, versions: [] };
  const versions = await remote.run(
    binaries.map((b) => sh`${posix.join(binDir, b.name)} ${b.versionArgs} 2>&1 | head -1`).join("; "),
  );
  return { uploaded, versions: versions.stdout.trim().split("\n") };
}
