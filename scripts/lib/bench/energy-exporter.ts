/**
 * Overhead of the bundled energy exporter: it runs as its own process (as on
 * a node, with the job's node flags) at a 1 s interval over a generated host
 * tree with N Nomad task cgroups (50 and 500 in `npm run bench`) whose
 * counters this process advances every second, and is scraped every interval. Measured from /proc: CPU (% of one core) over the window,
 * RSS and peak RSS; then the latency of back-to-back scrapes. The window starts after a 15 s warm-up: the
 * exporter runs for months, and its start (loading the bundle, the first listings and lookups, V8's first
 * garbage collections 8–10 s in) is a one-time cost, reported on its own as `startupCpuSeconds`.
 * Not included: Nomad metadata lookups (they run only when new allocations
 * appear) and the live intensity provider.
 */
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { buildExporterBundle } from "../build/exporter-bundle.ts";
import { exporterNodeFlags } from "../energy/node-flags.ts";

export interface EnergyExporterFigures {
  tasks: number;
  intervalSeconds: number;
  windowSeconds: number;
  cpuPercentOfOneCore: number;
  /** CPU seconds from the exporter's start to the end of the warm-up (one-time) */
  startupCpuSeconds: number;
  warmupSeconds: number;
  rssMb: number;
  peakRssMb: number;
  scrapeMs: { median: number; p95: number; max: number; runs: number };
  scrapeBytes: number;
  bundleKb: number;
  /** the machine's 1-minute load average before and after: CPU figures are inflated on a busy machine */
  loadAverage: { before: number; after: number };
  /** peak RSS and median scrape are what the targets are checked against */
  targets: { cpuPercent: number; rssMb: number; scrapeMedianMs: number };
}

/** in place, as the kernel's pseudo-files change (the exporter keeps cgroup files open) */
function write(path: string, text: string): void {
  writeFileSync(path, text);
}

function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function statusKb(pid: number, field: "VmRSS" | "VmHWM"): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(match?.[1] ?? 0);
}

export async function benchEnergyExporter(
  log: (line: string) => void,
  options: {
    tasks?: number;
    intervalSeconds?: number;
    windowSeconds?: number;
    listen?: string;
    /** Node.js flags added to the exporter's, e.g. --cpu-prof to see where its time goes */
    extraNodeFlags?: string[];
  } = {},
): Promise<EnergyExporterFigures> {
  const tasks = options.tasks ?? 50;
  const interval = options.intervalSeconds ?? 1;
  const windowSeconds = options.windowSeconds ?? 60;
  const warmupSeconds = 15;
  const listen = options.listen ?? "127.0.0.62:9875";
  const root = await mkdtemp(join(tmpdir(), "hashistack-bench-energy-"));
  const bundle = await buildExporterBundle(join(root, "energy-exporter.mjs"));
  const sysfs = join(root, "sys");
  const procfs = join(root, "proc");
  const cgroup = join(root, "cgroup");
  const zone = join(sysfs, "class", "powercap", "intel-rapl:0");
  mkdirSync(zone, { recursive: true });
  mkdirSync(procfs, { recursive: true });
  mkdirSync(join(cgroup, "nomad.slice", "share.slice"), { recursive: true });
  write(join(zone, "name"), "package-0\n");
  write(join(zone, "max_energy_range_uj"), "262143328850\n");
  write(join(procfs, "cpuinfo"), "model name\t: Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz\n");
  write(join(procfs, "meminfo"), "MemTotal:       8388608 kB\n");
  write(join(cgroup, "cgroup.controllers"), "cpu memory\n");
  const scopes = Array.from({ length: tasks }, (_, i) => {
    const alloc = `00000000-0000-4000-8000-${String(Math.floor(i / 2)).padStart(12, "0")}`;
    const dir = join(cgroup, "nomad.slice", "share.slice", `${alloc}.task${i % 2}.scope`);
    mkdirSync(dir, { recursive: true });
    return dir;
  });
  const started = Date.now();
  const advance = () => {
    const t = (Date.now() - started) / 1000;
    write(join(zone, "energy_uj"), `${Math.round(t * 60e6)}\n`);
    write(join(procfs, "stat"), `cpu  ${Math.round(t * 150)} 0 0 ${Math.round(t * 50)} 0 0 0 0 0 0\ncpu0 0\ncpu1 0\n`);
    scopes.forEach((dir, i) => write(join(dir, "cpu.stat"), `usage_usec ${Math.round(t * 20_000 * (1 + (i % 5)))}\n`));
  };
  advance();
  const ticker = setInterval(advance, 1000);
  const child = spawn(
    process.execPath,
    [
      ...exporterNodeFlags,
      ...(options.extraNodeFlags ?? []),
      bundle.file,
      "--listen",
      listen,
      "--interval",
      String(interval),
      "--source",
      "rapl",
      "--node",
      "bench",
    ],
    {
      stdio: ["ignore", "ignore", "pipe"],
      env: {
        ...process.env,
        HASHISTACK_ENERGY_HOST_SYSFS: sysfs,
        HASHISTACK_ENERGY_HOST_PROCFS: procfs,
        HASHISTACK_ENERGY_HOST_CGROUP: cgroup,
        NOMAD_ADDR: "",
      },
    },
  );
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const pid = child.pid as number;
  const scrape = async () => {
    const begin = process.hrtime.bigint();
    const response = await fetch(`http://${listen}/metrics`);
    const body = await response.text();
    return { ms: Number(process.hrtime.bigint() - begin) / 1e6, bytes: body.length };
  };
  try {
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`the exporter exited (${child.exitCode}): ${stderr}`);
      try {
        await scrape();
        break;
      } catch {
        if (i > 100) throw new Error(`the exporter did not come up: ${stderr}`);
        await sleep(100);
      }
    }
    log(`exporter up (pid ${pid}); warming up for ${warmupSeconds} s`);
    await sleep(warmupSeconds * 1000);
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the exporter exited (${child.exitCode ?? child.signalCode}): ${stderr.slice(-2000)}`);
    }
    const loadBefore = loadavg()[0] ?? 0;
    const cpuBefore = processCpuSeconds(pid);
    const wallBefore = Date.now();
    const startupCpuSeconds = cpuBefore;
    log(`measuring CPU over ${windowSeconds} s, scraped every ${interval} s`);
    while (Date.now() - wallBefore < windowSeconds * 1000) {
      await scrape();
      await sleep(interval * 1000);
    }
    const cpuPercent = ((processCpuSeconds(pid) - cpuBefore) / ((Date.now() - wallBefore) / 1000)) * 100;
    const samples: number[] = [];
    let bytes = 0;
    for (let i = 0; i < 30; i++) {
      const s = await scrape();
      samples.push(s.ms);
      bytes = s.bytes;
    }
    samples.sort((a, b) => a - b);
    const round = (n: number) => Math.round(n * 100) / 100;
    return {
      tasks,
      intervalSeconds: interval,
      windowSeconds,
      cpuPercentOfOneCore: round(cpuPercent),
      startupCpuSeconds: round(startupCpuSeconds),
      warmupSeconds,
      rssMb: round(statusKb(pid, "VmRSS") / 1024),
      peakRssMb: round(statusKb(pid, "VmHWM") / 1024),
      scrapeMs: {
        median: round(samples[Math.floor(samples.length / 2)] ?? 0),
        p95: round(samples[Math.floor(samples.length * 0.95)] ?? 0),
        max: round(samples[samples.length - 1] ?? 0),
        runs: samples.length,
      },
      scrapeBytes: bytes,
      bundleKb: Math.round(bundle.bytes / 1024),
      loadAverage: { before: round(loadBefore), after: round(loadavg()[0] ?? 0) },
      targets: { cpuPercent: 1, rssMb: 80, scrapeMedianMs: 20 },
    };
  } finally {
    clearInterval(ticker);
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await Promise.race([exited, sleep(5000).then(() => child.kill("SIGKILL"))]);
    }
    await rm(root, { recursive: true, force: true });
  }
}
