/** CPU time and machine facts from procfs. */
import { join } from "node:path";
import type { HostReader } from "./host.ts";

/** USER_HZ: /proc/stat counts in 1/100 s on every Linux architecture we target. */
export const userHz = 100;

export interface CpuTimes {
  /** CPU-seconds spent working (user+nice+system+irq+softirq; guest is inside user) */
  busySeconds: number;
  /** busy + idle + iowait; steal is left out: time the hypervisor gave to others is not ours */
  totalSeconds: number;
  vcpus: number;
}

export function parseProcStat(text: string): CpuTimes {
  const lines = text.split("\n");
  const cpu = lines.find((l) => l.startsWith("cpu "));
  if (!cpu) throw new Error("/proc/stat has no aggregate 'cpu' line");
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0] = cpu
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const busy = user + nice + system + irq + softirq;
  return {
    busySeconds: busy / userHz,
    totalSeconds: (busy + idle + iowait) / userHz,
    vcpus: Math.max(1, lines.filter((l) => /^cpu\d+\s/.test(l)).length),
  };
}

/** /proc/stat, read every tick: kept open where the reader can (it is regenerated on every read from offset 0) */
export function readCpuTimes(reader: HostReader, procfs: string): CpuTimes {
  const path = join(procfs, "stat");
  return parseProcStat(reader.readKept ? reader.readKept(path) : reader.readText(path));
}

/** Utilisation (0..1) between two reads. */
export function utilisation(previous: CpuTimes, current: CpuTimes): number {
  const total = current.totalSeconds - previous.totalSeconds;
  if (total <= 0) return 0;
  return Math.min(1, Math.max(0, (current.busySeconds - previous.busySeconds) / total));
}

export function readMemTotalGb(reader: HostReader, procfs: string): number {
  const match = /^MemTotal:\s+(\d+) kB/m.exec(reader.readText(join(procfs, "meminfo")));
  return match ? Number(match[1]) / 1024 / 1024 : 0;
}

export function readCpuModel(reader: HostReader, procfs: string): string {
  try {
    const text = reader.readText(join(procfs, "cpuinfo"));
    const match = /^(?:model name|Model|cpu model)\s*:\s*(.+)$/m.exec(text);
    return match?.[1]?.trim() ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** utime+stime (seconds) of a process, or undefined when it has gone. */
export function readProcessCpuSeconds(reader: HostReader, procfs: string, pid: number): number | undefined {
  let text: string;
  try {
    text = reader.readText(join(procfs, String(pid), "stat"));
  } catch {
    return undefined;
  }
  // the command name may hold spaces and parentheses: fields start after the last ')'
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return Number.isFinite(utime + stime) ? (utime + stime) / userHz : undefined;
}
