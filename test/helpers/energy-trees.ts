/**
 * Generated sysfs/procfs/cgroup trees for the exporter's tests, written to a
 * temp directory with the same file names and formats as the kernel's.
 */
import { mkdirSync, writeFileSync as writeFileInPlace } from "node:fs";
import { join } from "node:path";
import { fsHostReader, type HostReader } from "../../scripts/lib/energy/host.ts";

/**
 * Kernel pseudo-files change in place: the same inode gives new content on
 * every read (the exporter keeps per-cgroup files open), so the fakes are
 * rewritten in place too. A reader in another process may then see an empty
 * file for an instant, which the exporter must (and does) take for no reading.
 */
function writeFileSync(path: string, text: string): void {
  writeFileInPlace(path, text);
}

export interface ZoneSpec {
  id: string; // intel-rapl:0, intel-rapl:0:2, intel-rapl-mmio:0
  name: string; // package-0, dram, core, uncore, psys
  maxRangeUj: number;
  energyUj: number;
}

export class FakeHost {
  readonly sysfs: string;
  readonly procfs: string;
  readonly cgroup: string;

  constructor(readonly root: string) {
    this.sysfs = join(root, "sys");
    this.procfs = join(root, "proc");
    this.cgroup = join(root, "cgroup");
    for (const d of [this.sysfs, this.procfs, this.cgroup]) mkdirSync(d, { recursive: true });
  }

  zone(z: ZoneSpec): this {
    const dir = join(this.sysfs, "class", "powercap", z.id);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "name"), `${z.name}\n`);
    writeFileSync(join(dir, "max_energy_range_uj"), `${z.maxRangeUj}\n`);
    writeFileSync(join(dir, "energy_uj"), `${z.energyUj}\n`);
    return this;
  }

  setEnergy(id: string, uj: number): this {
    writeFileSync(join(this.sysfs, "class", "powercap", id, "energy_uj"), `${uj}\n`);
    return this;
  }

  /** /proc/stat with the given jiffies (user, system, idle, steal) spread over `vcpus` lines. */
  stat(t: { user: number; system?: number; idle: number; iowait?: number; steal?: number; vcpus?: number }): this {
    const fields = (u: number, s: number, i: number, w: number, st: number) => `${u} 0 ${s} ${i} ${w} 0 0 ${st} 0 0`;
    const vcpus = t.vcpus ?? 2;
    const lines = [`cpu  ${fields(t.user, t.system ?? 0, t.idle, t.iowait ?? 0, t.steal ?? 0)}`];
    for (let i = 0; i < vcpus; i++) lines.push(`cpu${i} 0 0 0 0 0 0 0 0 0 0`);
    lines.push("intr 0", "ctxt 0", "btime 0");
    writeFileSync(join(this.procfs, "stat"), `${lines.join("\n")}\n`);
    return this;
  }

  machine(cpuModel = "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", memTotalKb = 8 * 1024 * 1024): this {
    writeFileSync(join(this.procfs, "cpuinfo"), `processor\t: 0\nmodel name\t: ${cpuModel}\n`);
    writeFileSync(join(this.procfs, "meminfo"), `MemTotal:       ${memTotalKb} kB\nMemFree:        1000 kB\n`);
    return this;
  }

  /** A Nomad ≥1.7 cgroup v2 task scope with usage_usec. */
  v2Task(allocId: string, task: string, usageUsec: number, slice = "share.slice"): this {
    writeFileSync(join(this.cgroup, "cgroup.controllers"), "cpu memory pids\n");
    const dir = join(this.cgroup, "nomad.slice", slice, `${allocId}.${task}.scope`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "cpu.stat"), `usage_usec ${usageUsec}\nuser_usec ${usageUsec}\nsystem_usec 0\n`);
    return this;
  }

  /** A cgroup v1 task under cpuacct/nomad with cpuacct.usage (ns). */
  v1Task(allocId: string, task: string, usageNs: number, controller = "cpuacct"): this {
    const dir = join(this.cgroup, controller, "nomad", `${allocId}.${task}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "cpuacct.usage"), `${usageNs}\n`);
    return this;
  }

  /** A v1 task in the cpu hierarchy only, with its processes' /proc/<pid>/stat. */
  v1ProcTask(allocId: string, task: string, pids: Record<number, number>): this {
    const dir = join(this.cgroup, "cpu", "nomad", `${allocId}.${task}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "cgroup.procs"), Object.keys(pids).join("\n") + "\n");
    for (const [pid, jiffies] of Object.entries(pids)) this.process(Number(pid), jiffies);
    return this;
  }

  /**
   * A docker container's cgroup in the shapes the docker daemon makes (Nomad's
   * drivers/docker/handle.go dockerCgroup()): v2 cgroupfs <root>/docker/<id>,
   * v2 systemd <root>/system.slice/docker-<id>.scope; on v1 the same under
   * <root>/<controller>/, with cpuacct.usage.
   */
  dockerContainer(
    id: string,
    cpuSeconds: number,
    shape: { version: 1 | 2; driver: "cgroupfs" | "systemd"; parent?: string; controller?: string },
  ): this {
    const name = shape.driver === "systemd" ? `docker-${id}.scope` : id;
    const parent = shape.parent ?? (shape.driver === "systemd" ? "system.slice" : "docker");
    if (shape.version === 2) {
      writeFileSync(join(this.cgroup, "cgroup.controllers"), "cpu memory pids\n");
      const dir = join(this.cgroup, parent, name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, "cpu.stat"), `usage_usec ${Math.round(cpuSeconds * 1e6)}\nuser_usec 0\nsystem_usec 0\n`);
    } else {
      const dir = join(this.cgroup, shape.controller ?? "cpu,cpuacct", parent, name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, "cpuacct.usage"), `${Math.round(cpuSeconds * 1e9)}\n`);
    }
    return this;
  }

  process(pid: number, jiffies: number, comm = "sh (x)"): this {
    mkdirSync(join(this.procfs, String(pid)), { recursive: true });
    // fields after "(comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime …
    const utime = Math.floor(jiffies / 2);
    writeFileSync(
      join(this.procfs, String(pid), "stat"),
      `${pid} (${comm}) S 1 1 1 0 -1 0 0 0 0 0 ${utime} ${jiffies - utime} 0 0 20 0 1 0\n`,
    );
    return this;
  }
}

/** A reader whose failures can be switched on and off while it is in use. */
export function switchableReader(base: HostReader = fsHostReader): HostReader & { failures: Record<string, string> } {
  const failures: Record<string, string> = {};
  const inner = failingReader(failures, base);
  return { failures, readText: inner.readText, listDirs: inner.listDirs };
}

/** A reader that fails on chosen paths, the way the kernel would (root cannot be denied by modes). */
export function failingReader(failures: Record<string, string>, base: HostReader = fsHostReader): HostReader {
  const fail = (path: string) => {
    for (const [suffix, code] of Object.entries(failures)) {
      if (path.endsWith(suffix)) throw Object.assign(new Error(`${code}: ${path}`), { code });
    }
  };
  return {
    readText: (path) => (fail(path), base.readText(path)),
    listDirs: (path) => base.listDirs(path),
  };
}

/** Deterministic PRNG (mulberry32) for property tests. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const allocA = "0b6c5a3e-1111-4d2e-9a55-000000000001";
export const allocB = "0b6c5a3e-2222-4d2e-9a55-000000000002";

export const containerA = "a".repeat(8) + "0123456789abcdef".repeat(3) + "b".repeat(8);
export const containerB = "c".repeat(16) + "0123456789abcdef".repeat(3);
