/**
 * The operator-side registry for clusters whose nodes pull from this machine
 * (local and Vagrant nodes; air-gapped sites): Debian's docker-registry binary,
 * unpacked from its .deb into the cache (no service is installed or started
 * on this machine), storage under the cluster's state dir.
 *
 * Two processes on the same storage: the one the nodes pull from listens on the
 * cluster's private address and is read-only (a tenant's container on the
 * private network cannot push over a platform image); pushes go to a second,
 * writable one on 127.0.0.1 that lives only while bootstrap pushes. Both
 * speak plain HTTP: the clients' Docker accepts it for that one address only
 * (insecure-registries in daemon.json).
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { $ } from "zx";
import { cacheRoot } from "../binaries/build.ts";
import { withLock } from "../binaries/lock.ts";
import { ensureDebs } from "../docker/debs.ts";
import { OperationError } from "../errors.ts";
import type { StatePaths } from "../state/paths.ts";
import { readFileIfExists } from "../util/fs.ts";

export const registryPackage = { name: "docker-registry", version: "2.8.2+ds1-1" };

export function registryPaths(state: Pick<StatePaths, "root">) {
  const dir = join(state.root, "registry");
  return {
    dir,
    data: join(dir, "data"),
    serveConfig: join(dir, "serve.yml"),
    servePid: join(dir, "serve.pid"),
    serveLog: join(dir, "serve.log"),
    pushConfig: join(dir, "push.yml"),
    pushLog: join(dir, "push.log"),
  };
}

/** docker-registry from Debian's .deb, unpacked once into the cache. */
export async function ensureRegistryBinary(log: (line: string) => void): Promise<string> {
  const dir = join(cacheRoot(), "tools", "docker-registry", registryPackage.version);
  const binary = join(dir, "usr", "bin", "docker-registry");
  if (existsSync(binary)) return binary;
  const [deb] = await ensureDebs([registryPackage], log);
  if (!deb) throw new OperationError("docker-registry's .deb is missing after download.");
  await withLock(join(cacheRoot(), "locks", "docker-registry"), async () => {
    if (existsSync(binary)) return;
    const partial = `${dir}.partial-${process.pid}`;
    await $({ quiet: true })`rm -rf ${partial}`;
    await mkdir(partial, { recursive: true });
    await $({ quiet: true })`dpkg-deb -x ${deb.path} ${partial}`;
    await $({ quiet: true })`mv ${partial} ${dir}`;
  });
  return binary;
}

/** The registry's config: filesystem storage, no deletes, read-only for the served one. */
export function registryConfig(options: { address: string; data: string; readOnly: boolean; secret: string }): string {
  return [
    "version: 0.1",
    "log:",
    "  level: warn",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${JSON.stringify(options.data)}`,
    "  delete:",
    "    enabled: false",
    "  maintenance:",
    "    uploadpurging:",
    "      enabled: false",
    "    readonly:",
    `      enabled: ${options.readOnly}`,
    "http:",
    `  addr: ${JSON.stringify(options.address)}`,
    `  secret: ${JSON.stringify(options.secret)}`,
    "",
  ].join("\n");
}

async function registryPid(pidFile: string, config: string): Promise<number | undefined> {
  const pid = Number((await readFileIfExists(pidFile))?.trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const cmdline = await readFileIfExists(`/proc/${pid}/cmdline`);
  return cmdline?.split("\0").includes(config) ? pid : undefined;
}

async function waitReady(address: string, pid: number, logFile: string): Promise<void> {
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; await sleep(200)) {
    const ok = await fetch(`http://${address}/v2/`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    if (!existsSync(`/proc/${pid}`)) break;
  }
  throw new OperationError(`The image registry did not answer on ${address}.`, {
    details: ((await readFileIfExists(logFile)) ?? "").trim().split("\n").slice(-8),
    hint: `Is ${address.replace(/:\d+$/, "")} an address of this machine (the cluster's bridge or private network) and the port free?`,
  });
}

function startProcess(binary: string, config: string, logFile: string, detached: boolean): number {
  const log = openSync(logFile, "a");
  const child = spawn(binary, ["serve", config], { detached, stdio: ["ignore", log, log] });
  closeSync(log);
  if (!child.pid) throw new OperationError(`Could not start ${binary}.`);
  if (detached) child.unref();
  return child.pid;
}

/** Serve the cluster's images read-only at address; a running registry with the same config is left alone. */
export async function ensureServing(
  state: Pick<StatePaths, "root">,
  address: string,
  log: (line: string) => void,
): Promise<"started" | "running"> {
  const paths = registryPaths(state);
  await mkdir(paths.data, { recursive: true, mode: 0o700 });
  const running = await registryPid(paths.servePid, paths.serveConfig);
  const existing = await readFileIfExists(paths.serveConfig);
  const secret = /secret: "([^"]+)"/.exec(existing ?? "")?.[1] ?? randomBytes(16).toString("hex");
  const config = registryConfig({ address, data: paths.data, readOnly: true, secret });
  if (running && existing === config) return "running";
  if (running) await stopPid(running);
  await writeFile(paths.serveConfig, config, { mode: 0o600 });
  const binary = await ensureRegistryBinary(log);
  const pid = startProcess(binary, paths.serveConfig, paths.serveLog, true);
  await writeFile(paths.servePid, `${pid}\n`);
  await waitReady(address, pid, paths.serveLog);
  return "started";
}

async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/** Run `push` against a writable registry on 127.0.0.1 over the same storage; it is stopped afterwards. */
export async function withPushRegistry<T>(
  state: Pick<StatePaths, "root">,
  log: (line: string) => void,
  push: (base: string) => Promise<T>,
): Promise<T> {
  const paths = registryPaths(state);
  await mkdir(paths.data, { recursive: true, mode: 0o700 });
  const binary = await ensureRegistryBinary(log);
  const address = `127.0.0.1:${await freeLoopbackPort()}`;
  await writeFile(
    paths.pushConfig,
    registryConfig({ address, data: paths.data, readOnly: false, secret: randomBytes(16).toString("hex") }),
    { mode: 0o600 },
  );
  const pid = startProcess(binary, paths.pushConfig, paths.pushLog, false);
  try {
    await waitReady(address, pid, paths.pushLog);
    return await push(`http://${address}`);
  } finally {
    await stopPid(pid);
  }
}

/** Alive and not a zombie (a child we started is reaped by Node only after it exits). */
function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
}

async function stopPid(pid: number): Promise<void> {
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  for (const deadline = Date.now() + 10_000; Date.now() < deadline && alive(pid);) await sleep(100);
  if (alive(pid)) process.kill(pid, "SIGKILL");
}

/** Stop the served registry (teardown); returns what was stopped. */
export async function stopServing(state: Pick<StatePaths, "root">): Promise<string[]> {
  const paths = registryPaths(state);
  const pid = await registryPid(paths.servePid, paths.serveConfig);
  if (!pid) return [];
  await stopPid(pid);
  return [`image registry (pid ${pid})`];
}

export async function servingPid(state: Pick<StatePaths, "root">): Promise<number | undefined> {
  const paths = registryPaths(state);
  return registryPid(paths.servePid, paths.serveConfig);
}
