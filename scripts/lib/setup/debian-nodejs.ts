/**
 * Debian 12's own Node.js 18 (what the exec-profile nodes run the exporter
 * with), unpacked from its .deb files into the cache without installing it —
 * this machine's node stays as it is. Debian's node loads some builtins from
 * /usr/share/nodejs, so it runs in a private mount namespace with the
 * unpacked tree bound there (`unshare`, util-linux).
 */
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { $ } from "zx";
import { OperationError } from "../errors.ts";
import { cacheRoot } from "../binaries/build.ts";

export const debianNodeDir = () => join(cacheRoot(), "debian-nodejs-18");

async function debianVersion(pkg: string, major?: string): Promise<string> {
  const madison = await $({ quiet: true, nothrow: true })`apt-cache madison ${pkg}`;
  const versions = madison.stdout
    .split("\n")
    .map((l) => l.split("|").map((f) => f.trim()))
    .filter(([, version, source]) => version && source && /debian/.test(source) && !/nodesource/.test(version))
    .map(([, version]) => version as string);
  const version = major ? versions.find((v) => v.startsWith(`${major}.`)) : versions[0];
  if (!version) {
    throw new OperationError(`No Debian package ${pkg}${major ? ` ${major}.x` : ""} is known to apt.`, {
      hint: "Run 'apt-get update' (Debian 12 sources) and try again.",
    });
  }
  return version;
}

/** The path of a script that runs Debian's node 18 with the given arguments. */
export async function ensureDebianNodejs18(log: (line: string) => void): Promise<string> {
  const dir = debianNodeDir();
  const runner = join(dir, "node18.sh");
  if (existsSync(runner)) return runner;
  log("unpacking Debian 12's nodejs 18 into the cache (apt-get download, not installed)");
  const root = join(dir, "root");
  const debs = join(dir, "debs");
  await mkdir(debs, { recursive: true });
  const node = await debianVersion("nodejs", "18");
  const wanted = [`nodejs=${node}`, `libnode108=${node}`];
  for (const pkg of ["libuv1", "node-undici", "node-acorn", "node-cjs-module-lexer"])
    wanted.push(`${pkg}=${await debianVersion(pkg)}`);
  const download = await $({ quiet: true, nothrow: true, cwd: debs })`apt-get download ${wanted}`;
  if (download.exitCode !== 0) {
    throw new OperationError(`apt-get download failed for ${wanted.join(" ")}.`, {
      details: download.stderr.trim().split("\n").slice(-5),
    });
  }
  for (const deb of (await $({ quiet: true, cwd: debs })`ls`).stdout.split("\n").filter((f) => f.endsWith(".deb"))) {
    await $({ quiet: true })`dpkg-deb -x ${join(debs, deb)} ${root}`;
  }
  // the mount point must exist on the host; an empty directory is all it takes
  await mkdir("/usr/share/nodejs", { recursive: true });
  await writeFile(
    runner,
    [
      "#!/bin/sh",
      "# Debian 12's node 18 from unpacked .debs; run as: unshare --mount --propagation private node18.sh ARGS",
      `mount --bind ${root}/usr/share/nodejs /usr/share/nodejs || exit 1`,
      `export LD_LIBRARY_PATH=${root}/usr/lib/x86_64-linux-gnu`,
      `exec ${root}/usr/bin/node "$@"`,
      "",
    ].join("\n"),
    { mode: 0o755 },
  );
  return runner;
}
