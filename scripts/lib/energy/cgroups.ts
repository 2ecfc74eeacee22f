/**
 * Per-task CPU time from Nomad's cgroups. Layouts we know:
 *   v2, Nomad ≥1.7: <root>/nomad.slice/{share,reserve}.slice/<allocID>.<task>.scope  (cpu.stat usage_usec)
 *   v2, Nomad <1.7: <root>/nomad.slice/<allocID>.<task>.scope
 *   v1:             <root>/{cpuacct,cpu,cpuacct,cpu}/nomad/<allocID>.<task>        (cpuacct.usage, ns)
 * On v1 hosts where Nomad puts tasks in the `cpu` hierarchy but cpuacct is a
 * separate mount (this CI host is one), no cgroup counts the task's CPU time;
 * we then sum utime+stime of the processes in the cgroup, which misses time
 * of children that already exited — it is marked `method: procfs`.
 */
import { join } from "node:path";
import type { HostReader } from "./host.ts";
import { readProcessCpuSeconds } from "./procfs.ts";

const uuid = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
const v2Scope = new RegExp(`^(${uuid})\\.(.+)\\.scope$`);
const v1Dir = new RegExp(`^(${uuid})[.-](.+)$`);

export interface TaskCgroup {
  key: string;
  allocId: string;
  task: string;
  dir: string;
  method: "cgroup-v2" | "cpuacct" | "procfs";
}

export interface TaskUsage extends TaskCgroup {
  /** cumulative CPU-seconds (monotonic for as long as the task lives) */
  cpuSeconds: number;
}

export function isCgroupV2(reader: HostReader, root: string): boolean {
  try {
    reader.readText(join(root, "cgroup.controllers"));
    return true;
  } catch {
    return false;
  }
}

export function discoverTaskCgroups(reader: HostReader, root: string): TaskCgroup[] {
  const found = new Map<string, TaskCgroup>();
  const add = (dir: string, name: string, pattern: RegExp, method: TaskCgroup["method"]) => {
    const match = pattern.exec(name);
    if (!match) return;
    const [, allocId = "", task = ""] = match;
    const key = `${allocId}/${task}`;
    if (!found.has(key)) found.set(key, { key, allocId, task, dir: join(dir, name), method });
  };
  if (isCgroupV2(reader, root)) {
    const slice = join(root, "nomad.slice");
    for (const sub of ["share.slice", "reserve.slice", "."]) {
      const dir = join(slice, sub);
      for (const name of reader.listDirs(dir)) add(dir, name, v2Scope, "cgroup-v2");
    }
    return [...found.values()];
  }
  // v1: prefer a hierarchy that has cpuacct, fall back to any with the task in it
  for (const controller of ["cpuacct", "cpu,cpuacct", "cpuacct,cpu"]) {
    const dir = join(root, controller, "nomad");
    for (const name of reader.listDirs(dir)) add(dir, name, v1Dir, "cpuacct");
  }
  for (const controller of ["cpu", "memory", "freezer", "pids"]) {
    const dir = join(root, controller, "nomad");
    for (const name of reader.listDirs(dir)) add(dir, name, v1Dir, "procfs");
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

  constructor(
    private readonly reader: HostReader,
    private readonly roots: { cgroup: string; procfs: string },
  ) {}

  read(): TaskUsage[] {
    const usages: TaskUsage[] = [];
    const seen = new Set<string>();
    for (const cg of discoverTaskCgroups(this.reader, this.roots.cgroup)) {
      // a failed read of a cgroup that was listed keeps the task with its last
      // value: a task must not flicker out and back (it would lose its totals)
      const seconds = this.cpuSeconds(cg) ?? this.lastSeconds.get(cg.key);
      if (seconds === undefined) continue; // never read successfully: the cgroup went away as we looked
      seen.add(cg.key);
      this.lastSeconds.set(cg.key, seconds);
      usages.push({ ...cg, cpuSeconds: seconds });
    }
    for (const key of this.perProcess.keys()) if (!seen.has(key)) this.perProcess.delete(key);
    for (const key of this.lastSeconds.keys()) if (!seen.has(key)) this.lastSeconds.delete(key);
    return usages;
  }

  private cpuSeconds(cg: TaskCgroup): number | undefined {
    try {
      if (cg.method === "cgroup-v2") {
        const match = /^usage_usec (\d+)$/m.exec(this.reader.readText(join(cg.dir, "cpu.stat")));
        return match ? Number(match[1]) / 1e6 : undefined;
      }
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
    const state = this.perProcess.get(cg.key) ?? { pids: new Map<number, number>(), total: 0 };
    const next = new Map<number, number>();
    for (const pid of pids) {
      const seconds = readProcessCpuSeconds(this.reader, this.roots.procfs, pid);
      if (seconds === undefined) continue;
      const before = state.pids.get(pid) ?? 0;
      state.total += Math.max(0, seconds - before);
      next.set(pid, seconds);
    }
    state.pids = next;
    this.perProcess.set(cg.key, state);
    return state.total;
  }
}
