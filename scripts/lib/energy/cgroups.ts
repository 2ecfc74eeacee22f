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
import type { HostReader } from "./host.ts";
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

export function isCgroupV2(reader: HostReader, root: string): boolean {
  try {
    reader.readText(join(root, "cgroup.controllers"));
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

export function discoverTaskCgroups(reader: HostReader, layout: CgroupLayout): TaskCgroup[] {
  const { root } = layout;
  const found = new Map<string, TaskCgroup>();
  // one entry per task/container: the first hierarchy that counts CPU wins
  const add = (identity: string, cg: TaskCgroup) => {
    if (!found.has(identity)) found.set(identity, cg);
  };
  const nomadName = (dir: string, name: string, pattern: RegExp, method: TaskCgroup["method"]) => {
    const match = pattern.exec(name);
    if (!match) return;
    const [, allocId = "", task = ""] = match;
    add(`${allocId}/${task}`, { dir: join(dir, name), allocId, task, method });
  };
  const container = (dir: string, name: string, method: TaskCgroup["method"]) => {
    const match = containerDir.exec(name);
    if (match) add(`docker/${match[1]}`, { dir: join(dir, name), containerId: match[1], method });
  };
  const dockerParents = layout.dockerParents.map(parentPath);
  if (isCgroupV2(reader, root)) {
    const slice = join(root, parentPath(layout.nomadParent ?? "nomad.slice"));
    for (const sub of ["share.slice", "reserve.slice", "."]) {
      const dir = join(slice, sub);
      for (const name of reader.listDirs(dir)) nomadName(dir, name, v2Scope, "cgroup-v2");
    }
    for (const parent of dockerParents) {
      const dir = join(root, parent);
      for (const name of reader.listDirs(dir)) container(dir, name, "cgroup-v2");
    }
    return [...found.values()];
  }
  const nomadParent = parentPath(layout.nomadParent ?? "nomad");
  // v1: prefer a hierarchy that has cpuacct, fall back to any with the task in it
  for (const [controllers, method] of [
    [v1CpuacctControllers, "cpuacct"],
    [v1OtherControllers, "procfs"],
  ] as const) {
    for (const controller of controllers) {
      const dir = join(root, controller, nomadParent);
      for (const name of reader.listDirs(dir)) nomadName(dir, name, v1Dir, method);
      for (const parent of dockerParents) {
        const dockerDir = join(root, controller, parent);
        for (const name of reader.listDirs(dockerDir)) container(dockerDir, name, method);
      }
    }
  }
  return [...found.values()];
}

/**
 * Reads task CPU time. The procfs method keeps per-process state so the
 * task's total only grows: exited processes keep what they had used.
 */
export class TaskCpuReader {
  private perProcess = new Map<string, { pids: Map<number, number>; total: number }>();
  private lastSeconds = new Map<string, number>();
  private readonly layout: CgroupLayout;

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
    const usages: TaskUsage[] = [];
    const seen = new Set<string>();
    for (const cg of discoverTaskCgroups(this.reader, this.layout)) {
      // a failed read of a cgroup that was listed keeps the task with its last
      // value: a task must not flicker out and back (it would lose its totals)
      const seconds = this.cpuSeconds(cg) ?? this.lastSeconds.get(cg.dir);
      if (seconds === undefined) continue; // never read successfully: the cgroup went away as we looked
      seen.add(cg.dir);
      this.lastSeconds.set(cg.dir, seconds);
      usages.push({ ...cg, cpuSeconds: seconds });
    }
    for (const key of this.perProcess.keys()) if (!seen.has(key)) this.perProcess.delete(key);
    for (const key of this.lastSeconds.keys()) if (!seen.has(key)) this.lastSeconds.delete(key);
    return usages;
  }

  private cpuSeconds(cg: TaskCgroup): number | undefined {
    try {
      if (cg.method === "cgroup-v2") return parseUsageUsec(this.reader.readText(join(cg.dir, "cpu.stat")));
      if (cg.method === "cpuacct") {
        const text = this.reader.readText(join(cg.dir, "cpuacct.usage")).trim();
        return /^\d+$/.test(text) ? Number(text) / 1e9 : undefined;
      }
      return this.procfsSeconds(cg);
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

/** usage_usec from cpu.stat (its first line), without a regex over the whole file */
export function parseUsageUsec(text: string): number | undefined {
  const at = text.startsWith("usage_usec ") ? 0 : text.indexOf("\nusage_usec ") + 1;
  if (at < 0 || (at === 0 && !text.startsWith("usage_usec "))) return undefined;
  const start = at + "usage_usec ".length;
  let end = text.indexOf("\n", start);
  if (end < 0) end = text.length;
  const value = Number(text.slice(start, end));
  return Number.isFinite(value) ? value / 1e6 : undefined;
}
