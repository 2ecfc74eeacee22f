/**
 * zstd copies of the binaries, for nodes that can unpack them. A 5-node first run
 * uploads about 2.5 GB of binaries; zstd -3 makes the Vault binary 22 % of its size
 * (361 → 78 MB) and a node unpacks it in about half a second, so far fewer bytes cross
 * SSH (one thread here, the operator's uplink on real hosts). The copies are kept by
 * the SHA-256 of what they unpack to, in ~/.cache/hashistack/zst/; what a node unpacks
 * is hashed there and compared with the original's checksum before it replaces anything,
 * exactly like a plain upload. Without zstd on this machine, uploads stay plain.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { $ } from "zx";
import { cacheRoot } from "./build.ts";

const copies = new Map<string, Promise<string | undefined>>();
let localZstd: Promise<boolean> | undefined;

/** The path of a zstd copy of `localPath` (whose SHA-256 is `sha256`), made once; undefined without a local zstd. */
export function zstdCopy(localPath: string, sha256: string, root = cacheRoot()): Promise<string | undefined> {
  const key = `${root}\0${sha256}`;
  let copy = copies.get(key);
  if (!copy) {
    copy = makeCopy(localPath, join(root, "zst", `${sha256}.zst`));
    copies.set(key, copy);
  }
  return copy;
}

async function makeCopy(localPath: string, target: string): Promise<string | undefined> {
  if (existsSync(target)) return target;
  localZstd ??= $({ quiet: true, nothrow: true })`zstd --version`.then((r) => r.exitCode === 0);
  if (!(await localZstd)) return undefined;
  await mkdir(dirname(target), { recursive: true });
  // written beside the target and renamed: a copy that exists is always complete
  const temp = `${target}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    await $({ quiet: true })`zstd -q -3 -T0 -o ${temp} ${localPath}`;
    await rename(temp, target);
  } finally {
    await rm(temp, { force: true });
  }
  return target;
}
