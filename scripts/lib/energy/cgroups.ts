/**
 * Per-task CPU time from the cgroups of Nomad's task drivers.
 *
 * exec/raw_exec/java (Nomad's own cgroups; the parent is the client's
 * `cgroup_parent`, default nomad.slice on v2 and /nomad on v1):
 *   v2, Nomad ≥1.7: <root>/<parent>/{share,reserve}.slice/<allocID>.<task>.scope  (cpu.stat usage_usec)
 *   v2, Nomad <1.7: <root>/<parent>/<allocID>.<task>.scope
 *   v1:             <root>/{cpuacct,cpu,cpuacct,cpuacct,cpu}/<parent>/<allocID>.<task>  (cpuacct.usage, ns)
 * docker (Nomad ≥1.7 no longer sets a cgroup parent on containers, so
 * docker's own placement applies; see Nomad's drivers/docker/handle.go
 * dockerCgroup()); the parents are the daemon's `cgroup-parent`:
 *   cgroupfs driver: <root>/docker/<id> (v2), <root>/<ctrl>/docker/<id> (v1)
 *   systemd driver:  <root>/system.slice/docker-<id>.scope (v2; v1 under <ctrl>/)
 * Docker cgroups name a container, not a task: `ContainerDirectory` maps the
 * ID to allocation and task.
 *
 * On v1 hosts where a task is in the `cpu` hierarchy but cpuacct is a separate
 * mount (this CI host is one), no cgroup counts its CPU time; we then sum
 * utime+stime of the processes in the cgroup, which misses time of children
 * that already exited — it is marked `method: procfs`.
 */
import { join } from "node:path";
import type { FolderStamp, HostReader } from "./host.ts";
import { readProcessCpuSeconds } from "./procfs.ts";

const uuid = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
const v2Scope = new RegExp(`^(${uuid})\\.(.+)\\.scope$`);
const v1Dir = new RegExp(`^(${uuid})[.-](.+)$`);
const containerDir = /^(?:docker-)?([0-9a-f]{64})(?:\.scope)?$/;

export interface TaskCgroup {
  /** the cgroup's directory: identifies one run of a task (a restarted container is a new one) */
  dir: string;
  /** set for Nomad-named cgroups */
  allocId?: string;
  task?: string;
  /** set for docker cgroups: the container ID to resolve */
  containerId?: string;
  method: "cgroup-v2" | "cpuacct" | "procfs";
  /** the counter file read every tick (cpu.stat or cpuacct.usage), built once */
  counterFile?: string;
  /** `<allocID>/<task>` for Nomad-named cgroups, built once */
  key?: string;
  /** the task or container it counts for (`<allocID>/<task>`, `docker/<id>`): one cgroup per identity */
  identity?: string;
}

export interface TaskUsage extends TaskCgroup {
  /** cumulative CPU-seconds (monotonic for as long as the cgroup lives) */
  cpuSeconds: number;
}

export interface CgroupLayout {
  root: string;
  /** Nomad client's cgroup_parent; default by cgroup version */
  nomadParent?: string;
  /** docker daemon cgroup parents (cgroupfs: docker, systemd: system.slice) */
  dockerParents: string[];
}

export const defaultDockerParents = ["docker", "system.slice"];

export function isCgroupV2(reader: HostReader, root: string, controllers = join(root, "cgroup.controllers")): boolean {
  if (reader.exists) return reader.exists(controllers);
  try {
    reader.readText(controllers);
    return true;
  } catch {
    return false;
  }
}

/**
 * A systemd slice name is a path: a-b.slice lives in a.slice/a-b.slice.
 * Other parents (cgroupfs) are relative paths already.
 */
export function parentPath(parent: string): string {
  const trimmed = parent.replace(/^\/+|\/+$/g, "");
  if (!/^[^/]+\.slice$/.test(trimmed) || trimmed === "-.slice") return trimmed;
  const parts = trimmed.slice(0, -".slice".length).split("-");
  return parts.map((_, i) => `${parts.slice(0, i + 1).join("-")}.slice`).join("/");
}

const v1CpuacctControllers = ["cpuacct", "cpu,cpuacct", "cpuacct,cpu"];
const v1OtherControllers = ["cpu", "memory", "freezer", "pids"];

/**
 * Parsed cgroup names, kept between listings so a tick parses only new ones:
 * per listed folder, per entry name, what it is and the listing that last saw
 * it (no path strings or "seen" sets built per tick).
 */
export class CgroupNameCache {
  generation = 0;
  readonly dirs = new Map<string, Map<string, { cg: TaskCgroup | null; seen: number }>>();
  /** the listing that last took each identity (one cgroup per task or container, no per-tick map) */
  readonly identities = new Map<string, number>();
  /** the folders to list, by cgroup version, built once */
  plans: { [version in "v1" | "v2"]?: ListingPlan } = {};
  /** each folder's stamp when it was last listed, and whether an unchanged stamp proves an unchanged listing */
  readonly listings = new Map<string, FolderStamp & { reusable: boolean }>();
  /** folders to list again whatever their stamp: one of their cgroups could not be read */
  readonly dirty = new Set<string>();
}

/**
 * A folder's last listing still holds while its stamp is unchanged, when
 * - every subfolder in it is a cgroup we read every tick (link count = 2 +
 *   those): a cgroup added changes the count, one removed fails its next read
 *   (ENODEV on cgroupfs) and has its folder listed again at once, and both at
 *   once still fail that read; folders with other subfolders (system.slice's
 *   services, nomad.slice's slices) are listed every tick;
 * - and its mtime was older than `racyMs` when it was listed, so a later
 *   change cannot carry the same coarse kernel timestamp (on ext4 and tmpfs,
 *   where a removed file stays readable, mtime is what shows a change).
 */
const racyMs = 100;

function sameStamp(a: FolderStamp, b: FolderStamp): boolean {
  return (
    a.ino === b.ino && a.nlink === b.nlink && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.isFolder === b.isFolder
  );
}

/** the folder a cgroup was listed in */
export function folderOf(dir: string): string {
  return dir.slice(0, dir.lastIndexOf("/"));
}

/** one folder to list: what its entries are and how their CPU time is read */
interface ListedFolder {
  dir: string;
  kind: "nomad-v2" | "nomad-v1" | "docker";
  method: TaskCgroup["method"];
}

type ListingPlan = ListedFolder[];

function listingPlan(layout: CgroupLayout, v2: boolean): ListingPlan {
  const { root } = layout;
  const dockerParents = layout.dockerParents.map(parentPath);
  const plan: ListingPlan = [];
  if (v2) {
    const slice = join(root, parentPath(layout.nomadParent ?? "nomad.slice"));
    for (const sub of ["share.slice", "reserve.slice", "."])
      plan.push({ dir: join(slice, sub), kind: "nomad-v2", method: "cgroup-v2" });
    for (const parent of dockerParents) plan.push({ dir: join(root, parent), kind: "docker", method: "cgroup-v2" });
    return plan;
  }
  const nomadParent = parentPath(layout.nomadParent ?? "nomad");
  // v1: prefer a hierarchy that has cpuacct, fall back to any with the task in it
  for (const [controllers, method] of [
    [v1CpuacctControllers, "cpuacct"],
    [v1OtherControllers, "procfs"],
  ] as const) {
    for (const controller of controllers) {
      plan.push({ dir: join(root, controller, nomadParent), kind: "nomad-v1", method });
      for (const parent of dockerParents) plan.push({ dir: join(root, controller, parent), kind: "docker", method });
    }
  }
  return plan;
}

function parseEntry(folder: ListedFolder, name: string): TaskCgroup | null {
  const path = `${folder.dir}/${name}`;
  const { method } = folder;
  if (folder.kind === "docker") {
    const match = containerDir.exec(name);
    if (!match) return null;
    return { dir: path, containerId: match[1], method, identity: `docker/${match[1]}`, counterFile: counterFile(path, method) };
  }
  const match = (folder.kind === "nomad-v2" ? v2Scope : v1Dir).exec(name);
  if (!match) return null;
  const [, allocId = "", task = ""] = match;
  const key = `${allocId}/${task}`;
  return { dir: path, allocId, task, method, key, identity: key, counterFile: counterFile(path, method) };
}

export function discoverTaskCgroups(
  reader: HostReader,
  layout: CgroupLayout,
  cache?: CgroupNameCache,
  onGone?: (cg: TaskCgroup) => void,
): TaskCgroup[] {
  const found: TaskCgroup[] = [];
  const generation = cache ? ++cache.generation : 0;
  // one entry per task/container: the first hierarchy that counts CPU wins
  const taken = cache ? undefined : new Set<string>();
  const add = (cg: TaskCgroup) => {
    const identity = cg.identity as string;
    if (taken) {
      if (taken.has(identity)) return;
      taken.add(identity);
    } else {
      const identities = (cache as CgroupNameCache).identities;
      if (identities.get(identity) === generation) return;
      identities.set(identity, generation);
    }
    found.push(cg);
  };
  // names alone are enough: the patterns match no control file (cgroup.procs, cpu.stat, …)
  const list = (dir: string) => (reader.listNames ? reader.listNames(dir) : reader.listDirs(dir));
  const version = isCgroupV2(reader, layout.root) ? "v2" : "v1";
  const plan = cache ? (cache.plans[version] ??= listingPlan(layout, version === "v2")) : listingPlan(layout, version === "v2");
  const stamps = cache && reader.folderStamp ? cache : undefined;
  const listedAtMs = Date.now();
  for (const folder of plan) {
    let stamp: FolderStamp | undefined;
    if (stamps) {
      stamp = (reader.folderStamp as (path: string) => FolderStamp | undefined)(folder.dir);
      const last = stamps.listings.get(folder.dir);
      if (stamp === undefined || !stamp.isFolder) {
        // missing (or a file): nothing in it, and no failing readdir
        stamps.listings.delete(folder.dir);
        continue;
      }
      if (last !== undefined && last.reusable && sameStamp(last, stamp) && !stamps.dirty.has(folder.dir)) {
        stamps.dirs.get(folder.dir)?.forEach((entry) => {
          entry.seen = generation;
          if (entry.cg) add(entry.cg);
        });
        continue;
      }
      stamps.dirty.delete(folder.dir);
    }
    const names = list(folder.dir);
    if (!cache) {
      for (const name of names) {
        const cg = parseEntry(folder, name);
        if (cg) add(cg);
      }
      continue;
    }
    let entries = cache.dirs.get(folder.dir);
    if (!entries) {
      // a folder that does not exist keeps no (empty) map
      if (names.length === 0) {
        if (stamp) cache.listings.set(folder.dir, { ...stamp, reusable: false });
        continue;
      }
      cache.dirs.set(folder.dir, (entries = new Map()));
    }
    let cgroups = 0;
    for (const name of names) {
      let entry = entries.get(name);
      if (entry) entry.seen = generation;
      else entries.set(name, (entry = { cg: parseEntry(folder, name), seen: generation }));
      if (entry.cg) {
        cgroups++;
        add(entry.cg);
      }
    }
    if (stamp) {
      const settled = listedAtMs - stamp.mtimeMs > racyMs;
      cache.listings.set(folder.dir, { ...stamp, reusable: settled && cgroups > 0 && stamp.nlink === cgroups + 2 });
    }
  }
  if (cache) {
    cache.dirs.forEach((entries, dir) => {
      entries.forEach((entry, name) => {
        if (entry.seen === generation) return;
        entries.delete(name);
        if (entry.cg) onGone?.(entry.cg);
      });
      if (entries.size === 0) cache.dirs.delete(dir);
    });
    cache.identities.forEach((seen, identity) => {
      if (seen !== generation) cache.identities.delete(identity);
    });
  }
  return found;
}

/**
 * Reads task CPU time. The procfs method keeps per-process state so the
 * task's total only grows: exited processes keep what they had used.
 */
export class TaskCpuReader {
  private perProcess = new Map<string, { pids: Map<number, number>; total: number }>();
  private readonly layout: CgroupLayout;
  private readonly names = new CgroupNameCache();

  constructor(
    private readonly reader: HostReader,
    private readonly roots: { cgroup: string; procfs: string; nomadParent?: string; dockerParents?: string[] },
  ) {
    this.layout = {
      root: roots.cgroup,
      nomadParent: roots.nomadParent,
      dockerParents: roots.dockerParents ?? defaultDockerParents,
    };
  }

  read(): TaskUsage[] {
    const gone = (cg: TaskCgroup) => {
      this.perProcess.delete(cg.dir);
      this.reader.release?.(cg.dir);
    };
    const listed = discoverTaskCgroups(this.reader, this.layout, this.names, gone);
    const usages = this.readAll(listed);
    if (this.names.dirty.size === 0) return usages;
    // a cgroup could not be read: its folder is listed again now (a cgroup may
    // have ended and another begun since the last listing), the others reused
    return this.readAll(discoverTaskCgroups(this.reader, this.layout, this.names, gone), new Set(listed));
  }

  /** reads each cgroup's CPU time, except those in `done` (read in this tick already) */
  private readAll(cgroups: TaskCgroup[], done?: Set<TaskCgroup>): TaskUsage[] {
    const usages: TaskUsage[] = [];
    for (const cg of cgroups) {
      // the cached entry carries its latest reading: a failed read of a listed
      // cgroup keeps the last value (a task must not flicker out and back)
      const usage = cg as Partial<TaskUsage> & TaskCgroup;
      if (!done?.has(cg)) {
        const seconds = this.cpuSeconds(cg);
        if (seconds !== undefined) usage.cpuSeconds = seconds;
        else if (this.reader.folderStamp) this.names.dirty.add(folderOf(cg.dir)); // only reused listings need it
      }
      if (usage.cpuSeconds === undefined) continue; // never read successfully: the cgroup went away as we looked
      usages.push(usage as TaskUsage);
    }
    return usages;
  }

  /** per-cgroup counters are read every tick: keep them open where the reader can */
  private readCounter(path: string): string {
    return this.reader.readKept ? this.reader.readKept(path) : this.reader.readText(path);
  }

  private cpuSeconds(cg: TaskCgroup): number | undefined {
    try {
      if (cg.method === "procfs") return this.procfsSeconds(cg);
      const file = cg.counterFile ?? `${cg.dir}/${cg.method === "cgroup-v2" ? "cpu.stat" : "cpuacct.usage"}`;
      if (this.reader.readKeptInto) {
        // one read into a fixed buffer, parsed from the bytes: no string per cgroup and tick
        const length = this.reader.readKeptInto(file, counterBuffer);
        if (length < counterBuffer.length) {
          return cg.method === "cgroup-v2" ? usageUsecFromBytes(counterBuffer, length) : cpuacctFromBytes(counterBuffer, length);
        }
      }
      return cg.method === "cgroup-v2" ? parseUsageUsec(this.readCounter(file)) : parseCpuacctUsage(this.readCounter(file));
    } catch {
      return undefined;
    }
  }

  private procfsSeconds(cg: TaskCgroup): number {
    const pids = this.reader.readText(join(cg.dir, "cgroup.procs")).split("\n").filter(Boolean).map(Number);
    const state = this.perProcess.get(cg.dir) ?? { pids: new Map<number, number>(), total: 0 };
    const next = new Map<number, number>();
    for (const pid of pids) {
      const seconds = readProcessCpuSeconds(this.reader, this.roots.procfs, pid);
      if (seconds === undefined) continue;
      const before = state.pids.get(pid) ?? 0;
      state.total += Math.max(0, seconds - before);
      next.set(pid, seconds);
    }
    state.pids = next;
    this.perProcess.set(cg.dir, state);
    return state.total;
  }
}

function counterFile(dir: string, method: TaskCgroup["method"]): string | undefined {
  if (method === "cgroup-v2") return `${dir}/cpu.stat`;
  if (method === "cpuacct") return `${dir}/cpuacct.usage`;
  return undefined;
}

/** cpuacct.usage (ns) in seconds; undefined for an empty or garbled read */
export function parseCpuacctUsage(text: string): number | undefined {
  const trimmed = text.trim();
  return /^\d+$/.test(trimmed) ? Number(trimmed) / 1e9 : undefined;
}

/** one buffer for every counter read (cpu.stat is a few hundred bytes, cpuacct.usage one number) */
const counterBuffer = Buffer.allocUnsafe(4096);

const digit0 = 0x30;
const newline = 0x0a;
const usageKey = Buffer.from("usage_usec ");

/**
 * The decimal number in bytes [start, end), or undefined when it is not all
 * digits. Up to 15 digits are summed exactly; longer ones go through Number()
 * as the text parsers do, so both give the same double.
 */
function digitsValue(bytes: Buffer, start: number, end: number): number | undefined {
  if (end <= start) return undefined;
  let value = 0;
  for (let i = start; i < end; i++) {
    const d = (bytes[i] as number) - digit0;
    if (d < 0 || d > 9) return undefined;
    value = value * 10 + d;
  }
  return end - start <= 15 ? value : Number(bytes.toString("latin1", start, end));
}

function startsWithKey(bytes: Buffer, length: number): boolean {
  if (length <= usageKey.length) return false;
  for (let i = 0; i < usageKey.length; i++) if (bytes[i] !== usageKey[i]) return false;
  return true;
}

/**
 * parseUsageUsec on bytes: cpu.stat starts with its usage_usec line; any
 * other shape goes to the text parser, so both always agree.
 */
export function usageUsecFromBytes(bytes: Buffer, length: number): number | undefined {
  if (startsWithKey(bytes, length)) {
    let end = usageKey.length;
    while (end < length && bytes[end] !== newline) end++;
    const usec = digitsValue(bytes, usageKey.length, end);
    if (usec !== undefined) return usec / 1e6;
  }
  return parseUsageUsec(bytes.toString("utf8", 0, length));
}

/** parseCpuacctUsage on bytes: digits and a newline read directly, anything else by the text parser */
export function cpuacctFromBytes(bytes: Buffer, length: number): number | undefined {
  const end = length > 0 && bytes[length - 1] === newline ? length - 1 : length;
  const ns = digitsValue(bytes, 0, end);
  return ns !== undefined ? ns / 1e9 : parseCpuacctUsage(bytes.toString("utf8", 0, length));
}

/** usage_usec from cpu.stat; undefined for an empty or garbled read (never taken for a reset to 0) */
export function parseUsageUsec(text: string): number | undefined {
  const key = "usage_usec ";
  const at = text.startsWith(key) ? 0 : text.indexOf(`\n${key}`) + 1;
  if (at === 0 && !text.startsWith(key)) return undefined;
  const start = at + key.length;
  let end = text.indexOf("\n", start);
  if (end < 0) end = text.length;
  const digits = text.slice(start, end);
  return /^\d+$/.test(digits) ? Number(digits) / 1e6 : undefined;
}
