/**
 * The upload path for Docker Engine (air-gapped hosts and local nodes, which
 * reach no package mirror): the operator's Debian machine works out which
 * packages a node lacks (apt's simulation against the node's own dpkg status),
 * downloads those .deb files once into ~/.cache/hashistack/debs/ and prepare
 * uploads them. Needs apt with the node release's package lists on this machine.
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { $ } from "zx";
import { cacheRoot } from "../binaries/build.ts";
import { withLock } from "../binaries/lock.ts";
import { OperationError } from "../errors.ts";
import { debFileName, parseSimulatedInstall } from "./engine.ts";

export function debCacheDir(): string {
  return join(cacheRoot(), "debs");
}

export interface DebFile {
  name: string;
  version: string;
  /** file name in the cache (and on the node) */
  file: string;
  path: string;
}

/** The .deb files a node with this dpkg status needs for docker.io=version, downloaded into the cache. */
export async function debsForNode(
  dpkgStatus: string,
  version: string,
  host: string,
  log: (line: string) => void,
): Promise<DebFile[]> {
  const scratch = await mkdtemp(join(tmpdir(), "hashistack-dpkg-"));
  let wanted: { name: string; version: string }[];
  try {
    const status = join(scratch, "status");
    await writeFile(status, dpkgStatus);
    const simulated = await $({
      quiet: true,
      nothrow: true,
    })`apt-get -s -o Dir::State::status=${status} install --no-install-recommends ${`docker.io=${version}`}`;
    if (simulated.exitCode !== 0) {
      throw new OperationError(`${host}: apt on this machine cannot resolve docker.io=${version} for the node.`, {
        details: simulated.stderr.trim().split("\n").slice(-6),
        hint: "The upload path needs a Debian machine with the node release's package lists: run 'apt-get update', or use jobs.docker.install: apt where the nodes reach a mirror.",
      });
    }
    wanted = parseSimulatedInstall(simulated.stdout);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return ensureDebs(wanted, log);
}

/** The named package versions as .deb files in the cache, downloaded once. */
export async function ensureDebs(wanted: { name: string; version: string }[], log: (line: string) => void): Promise<DebFile[]> {
  const dir = debCacheDir();
  await mkdir(dir, { recursive: true });
  const find = async (p: { name: string; version: string }) => {
    const files = await readdir(dir);
    // the architecture part is amd64 or all
    const prefix = debFileName(p.name, p.version, "").replace(/_\.deb$/, "_");
    return files.find((f) => f.startsWith(prefix) && f.endsWith(".deb"));
  };
  const missing: { name: string; version: string }[] = [];
  for (const p of wanted) if (!(await find(p))) missing.push(p);
  if (missing.length) {
    await withLock(join(cacheRoot(), "locks", "debs"), async () => {
      const still: { name: string; version: string }[] = [];
      for (const p of missing) if (!(await find(p))) still.push(p);
      if (!still.length) return;
      log(`downloading ${still.length} .deb files with apt-get download: ${still.map((p) => p.name).join(", ")}`);
      // downloaded into a scratch folder first, so an interrupted run leaves no partial file in the cache
      const partial = join(dir, `.partial-${process.pid}`);
      await rm(partial, { recursive: true, force: true });
      await mkdir(partial);
      try {
        const result = await $({
          quiet: true,
          nothrow: true,
          cwd: partial,
        })`apt-get download ${still.map((p) => `${p.name}=${p.version}`)}`;
        if (result.exitCode !== 0) {
          throw new OperationError("apt-get download could not fetch the Docker Engine packages.", {
            details: result.stderr.trim().split("\n").slice(-6),
            hint: "Check this machine's Debian package sources (apt-get update) and try again.",
          });
        }
        for (const file of await readdir(partial)) await $({ quiet: true })`mv ${join(partial, file)} ${join(dir, file)}`;
      } finally {
        await rm(partial, { recursive: true, force: true });
      }
    });
  }
  const debs: DebFile[] = [];
  for (const p of wanted) {
    const file = await find(p);
    if (!file || !existsSync(join(dir, file)))
      throw new OperationError(`${p.name} ${p.version} is not in ${dir} after download.`);
    debs.push({ ...p, file, path: join(dir, file) });
  }
  return debs;
}
