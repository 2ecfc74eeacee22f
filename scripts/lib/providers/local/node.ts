/**
 * One local node: an overlay root over the base image, its own identity
 * (hostname, machine-id, SSH host key, authorised key) and a detached
 * systemd-nspawn process that outlives the CLI, tracked by PID in the state.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, openSync, closeSync } from "node:fs";
import { mkdir, readdir, readFile, rm, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { OperationError } from "../../errors.ts";
import { fingerprint } from "../../remote/known-hosts.ts";
import { readFileIfExists } from "../../util/fs.ts";
import { hostRun } from "./host-command.ts";

export interface NodePaths {
  dir: string;
  upper: string;
  work: string;
  root: string;
  pidFile: string;
  consoleLog: string;
  /** the node's /var/lib/docker: on the host's own filesystem, since overlay2 cannot sit on the overlay root */
  dockerData: string;
}

export function nodePaths(nodesDir: string, name: string): NodePaths {
  const dir = join(nodesDir, name);
  return {
    dir,
    upper: join(dir, "upper"),
    work: join(dir, "work"),
    root: join(dir, "root"),
    pidFile: join(dir, "nspawn.pid"),
    consoleLog: join(dir, "console.log"),
    dockerData: join(dir, "docker"),
  };
}

export async function isMounted(path: string): Promise<boolean> {
  return (await hostRun(["mountpoint", "-q", path], { allowFailure: true })).code === 0;
}

export async function ensureOverlay(paths: NodePaths, lower: string): Promise<void> {
  for (const dir of [paths.upper, paths.work, paths.root]) await mkdir(dir, { recursive: true });
  if (await isMounted(paths.root)) return;
  await hostRun([
    "mount",
    "-t",
    "overlay",
    "overlay",
    "-o",
    `lowerdir=${lower},upperdir=${paths.upper},workdir=${paths.work}`,
    paths.root,
  ]);
}

/** Write this node's identity into its overlay; existing identity is kept (idempotent). */
export async function ensureIdentity(
  paths: NodePaths,
  hostname: string,
  authorizedKey: string,
): Promise<{ hostKeyFingerprint: string }> {
  const etc = join(paths.root, "etc");
  await writeFile(join(etc, "hostname"), `${hostname}\n`);
  await writeFile(join(etc, "hosts"), `127.0.0.1 localhost\n127.0.1.1 ${hostname}\n::1 localhost ip6-localhost ip6-loopback\n`);
  const machineId = (await readFileIfExists(join(etc, "machine-id")))?.trim();
  if (!machineId) await writeFile(join(etc, "machine-id"), `${randomBytes(16).toString("hex")}\n`);
  const hostKey = join(etc, "ssh", "ssh_host_ed25519_key");
  if (!existsSync(hostKey))
    await hostRun(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", `root@${hostname}`, "-f", hostKey]);
  const sshDir = join(paths.root, "root", ".ssh");
  await mkdir(sshDir, { recursive: true, mode: 0o700 });
  await writeFile(join(sshDir, "authorized_keys"), `${authorizedKey.trim()}\n`, { mode: 0o600 });
  return { hostKeyFingerprint: publicKeyFingerprint(await readFile(`${hostKey}.pub`, "utf8")) };
}

/** The SHA256 fingerprint of an OpenSSH public key line, as ssh2 reports it. */
export function publicKeyFingerprint(publicKeyLine: string): string {
  const blob = publicKeyLine.trim().split(/\s+/)[1];
  if (!blob) throw new Error("not an OpenSSH public key");
  return fingerprint(Buffer.from(blob, "base64"));
}

export async function readPid(paths: NodePaths): Promise<number | undefined> {
  const text = await readFileIfExists(paths.pidFile);
  const pid = Number(text?.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Alive and really our nspawn for this root (a recycled PID must not be mistaken for it). */
export async function runningPid(paths: NodePaths): Promise<number | undefined> {
  const pid = await readPid(paths);
  if (!pid) return undefined;
  const cmdline = await readFileIfExists(`/proc/${pid}/cmdline`);
  return cmdline?.split("\0").includes(`--directory=${paths.root}`) ? pid : undefined;
}

export interface BootOptions {
  /**
   * Run Docker Engine inside the node (clients of a docker-profile cluster):
   * every capability, the bpf syscall (runc's device cgroup filter) and
   * /var/lib/docker bound from the host's filesystem. Test machines on one host,
   * not a security boundary; exec-profile nodes keep nspawn's defaults.
   */
  docker?: boolean;
}

/** systemd-nspawn's arguments for a node. */
export function nspawnArgs(paths: NodePaths, machine: string, netns: string, options: BootOptions = {}): string[] {
  return [
    "--quiet",
    `--directory=${paths.root}`,
    `--machine=${machine}`,
    "--boot",
    "--register=no",
    "--keep-unit",
    `--network-namespace-path=/run/netns/${netns}`,
    "--console=read-only",
    "--resolv-conf=off",
    "--timezone=off",
    "--link-journal=no",
    // Nomad's exec driver (libcontainer) gives each task its own session keyring;
    // nspawn's default seccomp filter refuses keyctl/add_key
    ...(options.docker
      ? ["--capability=all", "--system-call-filter=@keyring bpf", `--bind=${paths.dockerData}:/var/lib/docker`]
      : ["--system-call-filter=@keyring"]),
  ];
}

export async function boot(paths: NodePaths, machine: string, netns: string, options: BootOptions = {}): Promise<number> {
  const existing = await runningPid(paths);
  if (existing) return existing;
  if (options.docker) await mkdir(paths.dockerData, { recursive: true, mode: 0o710 });
  const log = openSync(paths.consoleLog, "a");
  // cgroup v1 controllers are made writable inside the node by hashistack-cgroups-rw.service
  const child = spawn("systemd-nspawn", nspawnArgs(paths, machine, netns, options), {
    detached: true,
    stdio: ["ignore", log, log],
  });
  closeSync(log);
  const pid = child.pid;
  if (!pid)
    throw new OperationError(`Could not start systemd-nspawn for ${machine}.`, { hint: "Is systemd-container installed?" });
  child.unref();
  await writeFile(paths.pidFile, `${pid}\n`);
  return pid;
}

export async function consoleTail(paths: NodePaths, lines = 15): Promise<string[]> {
  // strip the colour codes systemd writes to the console
  // eslint-disable-next-line no-control-regex
  const text = ((await readFileIfExists(paths.consoleLog)) ?? "").replace(/\x1b\[[0-9;]*m/g, "");
  return text.trim().split("\n").slice(-lines);
}

/** Signal a process that may exit at any moment: "already gone" is success. */
function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

/** Every process in the node's network namespace: the container, whether or not nspawn still runs. */
export async function containerPids(netns: string): Promise<number[]> {
  if (!existsSync(`/run/netns/${netns}`)) return [];
  const result = await hostRun(["ip", "netns", "pids", netns], { allowFailure: true });
  return result.stdout.split(/\s+/).filter(Boolean).map(Number);
}

/** The container's init: the process that is PID 1 inside its own PID namespace. */
async function containerInit(pids: number[]): Promise<number | undefined> {
  for (const pid of pids) {
    const status = await readFileIfExists(`/proc/${pid}/status`);
    const nspid = status
      ?.match(/^NSpid:\s+(.*)$/m)?.[1]
      ?.trim()
      .split(/\s+/);
    if (nspid && nspid.length > 1 && nspid[nspid.length - 1] === "1") return pid;
  }
  return undefined;
}

/**
 * Power the node off: SIGTERM to nspawn asks for an orderly shutdown. If nspawn
 * is gone but the container lives on (nspawn was killed), signal the
 * container's init directly: SIGRTMIN+3 is systemd's "halt", and SIGKILL to a
 * PID namespace's init ends every process in it.
 */
export async function stop(paths: NodePaths, netns: string, graceMs = 20_000): Promise<boolean> {
  const nspawn = await runningPid(paths);
  const initial = await containerPids(netns);
  if (!nspawn && initial.length === 0) return false;
  const gone = async () => !(await runningPid(paths)) && (await containerPids(netns)).length === 0;
  const waitGone = async (ms: number) => {
    for (const deadline = Date.now() + ms; Date.now() < deadline; await sleep(200)) if (await gone()) return true;
    return gone();
  };
  if (nspawn) signal(nspawn, "SIGTERM");
  else {
    const init = await containerInit(initial);
    if (init) signal(init, "SIGRTMIN+3" as NodeJS.Signals);
  }
  if (await waitGone(graceMs)) return true;
  const init = await containerInit(await containerPids(netns));
  if (init) signal(init, "SIGKILL");
  const current = await runningPid(paths);
  if (current) signal(current, "SIGKILL");
  if (await waitGone(10_000)) return true;
  throw new OperationError(`Node processes in ${netns} did not stop: ${(await containerPids(netns)).join(", ")}.`, {
    hint: "Inspect them with 'ip netns pids' and stop them by PID before running teardown again.",
  });
}

/**
 * Nomad's task cgroups of a stopped node. The nodes share the host kernel's
 * cgroup v1 hierarchy, and a node that powers off leaves its tasks' cgroups
 * (`<controller>/nomad/<alloc>.<task>`) behind in the host's tree; removed here
 * by the allocation IDs in the node's Nomad data folder. Only empty cgroups can
 * be removed, so this runs after the node's processes are gone.
 */
export async function removeTaskCgroups(paths: NodePaths, cgroupRoot = "/sys/fs/cgroup"): Promise<string[]> {
  const allocDir = join(paths.upper, "opt", "nomad", "data", "alloc");
  if (!existsSync(allocDir)) return [];
  const allocs = new Set(await readdir(allocDir));
  let removed = 0;
  for (const controller of existsSync(cgroupRoot) ? await readdir(cgroupRoot) : []) {
    const nomadDir = join(cgroupRoot, controller, "nomad");
    if (!existsSync(nomadDir)) continue;
    for (const entry of await readdir(nomadDir)) {
      if (!allocs.has(entry.split(".")[0] ?? "")) continue;
      await rmdir(join(nomadDir, entry)).then(
        () => removed++,
        () => undefined, // still in use or already gone: not ours to force
      );
    }
  }
  return removed ? [`${removed} Nomad task cgroups`] : [];
}

/**
 * The same for a docker-profile node: dockerd (cgroupfs driver) makes
 * `<controller>/docker/<container id>` in the shared host tree. Removed by the
 * container IDs in the node's /var/lib/docker; only empty ones, after the node stopped.
 */
export async function removeDockerCgroups(paths: NodePaths, cgroupRoot = "/sys/fs/cgroup"): Promise<string[]> {
  const containersDir = join(paths.dockerData, "containers");
  if (!existsSync(containersDir)) return [];
  const ids = new Set(await readdir(containersDir));
  let removed = 0;
  for (const controller of existsSync(cgroupRoot) ? await readdir(cgroupRoot) : []) {
    const dockerDir = join(cgroupRoot, controller, "docker");
    if (!existsSync(dockerDir)) continue;
    for (const entry of await readdir(dockerDir)) {
      if (!ids.has(entry)) continue;
      await rmdir(join(dockerDir, entry)).then(
        () => removed++,
        () => undefined,
      );
    }
    // the parent too once empty (another node's containers keep it busy)
    if (removed) await rmdir(dockerDir).catch(() => undefined);
  }
  return removed ? [`${removed} Docker container cgroups`] : [];
}

export async function removeNodeFiles(paths: NodePaths): Promise<string[]> {
  const removed: string[] = [];
  if (await isMounted(paths.root)) {
    await hostRun(["umount", paths.root]);
    removed.push(`mount ${paths.root}`);
  }
  if (existsSync(paths.dir)) {
    await rm(paths.dir, { recursive: true, force: true });
    removed.push(`dir ${paths.dir}`);
  }
  return removed;
}
