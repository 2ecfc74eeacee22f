/**
 * The defects of issue 15, each reproduced on generated host trees with a
 * controlled clock: every test here failed on the exporter before the fix.
 */
import { rmSync } from "node:fs";
import { request } from "node:http";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createRecordingReporter } from "../../../scripts/lib/cli/output.ts";
import type { HttpApi } from "../../../scripts/lib/clients/http.ts";
import { TaskCpuReader } from "../../../scripts/lib/energy/cgroups.ts";
import { exporterConfigSchema } from "../../../scripts/lib/energy/config.ts";
import { EnergyExporter } from "../../../scripts/lib/energy/exporter.ts";
import { fsHostReader, type HostReader } from "../../../scripts/lib/energy/host.ts";
import { coefficientsFor, modelPower } from "../../../scripts/lib/energy/model.ts";
import { type MetadataLookup, NomadAllocationDirectory } from "../../../scripts/lib/energy/nomad-metadata.ts";
import { choosePowerSource } from "../../../scripts/lib/energy/power.ts";
import { startExporter } from "../../../scripts/lib/energy/run.ts";
import { createExporterServer } from "../../../scripts/lib/energy/server.ts";
import { allocA, allocB, FakeHost, switchableReader } from "../../helpers/energy-trees.ts";
import { tempDir } from "../../helpers/fixtures.ts";

let dir: Awaited<ReturnType<typeof tempDir>>;
let host: FakeHost;
let now = 0;

beforeEach(async () => {
  dir = await tempDir("energy-defects");
  host = new FakeHost(dir.path).machine("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", 8 * 1024 * 1024);
  now = 1_000_000;
});
afterEach(() => dir.remove());

function config(over: Record<string, unknown> = {}) {
  return exporterConfigSchema.parse({
    source: "rapl",
    host: { sysfs: host.sysfs, procfs: host.procfs, cgroup: host.cgroup },
    docker: { socket: "" },
    ...over,
  });
}

function exporterOn(
  options: { metadata?: MetadataLookup; reader?: HostReader; rapl?: Record<string, unknown>; retentionMs?: number } = {},
) {
  const reader = options.reader ?? fsHostReader;
  return new EnergyExporter({
    reader,
    procfs: host.procfs,
    node: "n1",
    power: choosePowerSource(config({ rapl: options.rapl ?? { idleWatts: 1 } }), reader, now),
    tasks: new TaskCpuReader(reader, { cgroup: host.cgroup, procfs: host.procfs }),
    metadata: options.metadata,
    intensity: () => ({ gramsPerKwh: 100, source: "static", provider: "static" }),
    pue: 1,
    version: "test",
    now: () => now,
    retentionMs: options.retentionMs,
  });
}

function series(text: string, name: string, match: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`hashistack_energy_${name}{`) && l.includes(match));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

/** node busy CPU-seconds and energy both advance; each interval is 10 s */
let busyJiffies = 0;
let idleJiffies = 0;
function advance(joulesUj: number | undefined, busyCpuSeconds: number, vcpus = 4) {
  now += 10_000;
  busyJiffies += busyCpuSeconds * 100;
  idleJiffies += (vcpus * 10 - busyCpuSeconds) * 100;
  host.stat({ user: busyJiffies, idle: idleJiffies, vcpus });
  if (joulesUj !== undefined) host.setEnergy("intel-rapl:0", joulesUj);
}
beforeEach(() => {
  busyJiffies = 0;
  idleJiffies = 0;
});

describe("defect 1: a failed energy_uj read during fast polling", () => {
  it("does not end the process; the poll is counted and the exporter keeps sampling", async () => {
    // 200 J range at the default 1000 W bound: polled every 0.1 s, well inside the 5 s interval
    host.zone({ id: "intel-rapl:0", name: "package-0", maxRangeUj: 200e6, energyUj: 0 }).stat({ user: 0, idle: 0 });
    const reader = switchableReader();
    const reporter = createRecordingReporter();
    const running = await startExporter(config({ listen: "127.0.0.1:0", interval: 5 }), reporter, { reader });
    try {
      reader.failures.energy_uj = "EIO";
      await new Promise((resolve) => setTimeout(resolve, 600));
      const text = running.exporter.render();
      const readErrors = series(text, "rapl_rejected_total", 'reason="read_error"') ?? 0;
      expect(readErrors + running.exporter.pollErrors).toBeGreaterThan(2);
      delete reader.failures.energy_uj;
      host.setEnergy("intel-rapl:0", 1e6);
      await running.exporter.sample();
      expect(running.exporter.samples).toBe(2);
    } finally {
      await running.stop();
    }
  });
});

describe("defect 2: late labels split a task's series", () => {
  it("looks an allocation up as soon as its cgroup appears, rate-limited per allocation, not globally", async () => {
    let stubs = [{ ID: allocA, Namespace: "dev", JobID: "web", TaskGroup: "g", NodeID: "node" }];
    let requests = 0;
    const api = {
      async get() {
        requests++;
        return stubs;
      },
    } as unknown as HttpApi;
    const directory = new NomadAllocationDirectory(api, { nodeId: "node", minRefreshMs: 10_000, now: () => now });
    expect((await directory.lookup([allocA])).get(allocA)?.job).toBe("web");
    // B starts 2 s after A's lookup: it is asked about at once
    now += 2000;
    stubs = [...stubs, { ID: allocB, Namespace: "prod", JobID: "batch", TaskGroup: "b", NodeID: "node" }];
    expect((await directory.lookup([allocA, allocB])).get(allocB)?.job).toBe("batch");
    expect(requests).toBe(2);
    // an allocation the token cannot see is asked about at most once per 10 s
    const hidden = "0b6c5a3e-3333-4d2e-9a55-000000000003";
    await directory.lookup([allocA, allocB, hidden]);
    now += 5000;
    await directory.lookup([allocA, allocB, hidden]);
    expect(requests).toBe(3);
    now += 5000;
    await directory.lookup([allocA, allocB, hidden]);
    expect(requests).toBe(4);
  });

  it("exports a task with its Nomad labels from its first sample, with all its energy", async () => {
    host.zone({ id: "intel-rapl:0", name: "package-0", maxRangeUj: 1e12, energyUj: 0 }).stat({ user: 0, idle: 0, vcpus: 4 });
    host.v2Task(allocA, "web", 0);
    let known = new Map([[allocA, { namespace: "dev", job: "web", group: "g" }]]);
    const metadata: MetadataLookup = { errors: 0, lookup: async () => known };
    const exporter = exporterOn({ metadata });
    await exporter.sample();
    advance(100e6, 10);
    host.v2Task(allocA, "web", 5e6).v2Task(allocB, "batch", 3e6); // B started in this interval
    known = new Map([...known, [allocB, { namespace: "prod", job: "batch", group: "b" }]]);
    await exporter.sample();
    const text = exporter.render();
    const lines = text.split("\n").filter((l) => l.startsWith("hashistack_energy_task_joules_total{") && l.includes(allocB));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('nomad_namespace="prod",nomad_job="batch"');
    // an allocation Nomad does not name yet is held back (its energy kept), not exported without labels
    const allocC = "0b6c5a3e-4444-4d2e-9a55-000000000004";
    advance(300e6, 10); // 200 J: 10 J idle (1 W), 190 J dynamic
    host.v2Task(allocA, "web", 8e6).v2Task(allocB, "batch", 5e6).v2Task(allocC, "late", 2e6);
    await exporter.sample();
    expect(exporter.render()).not.toContain(allocC);
    advance(500e6, 10);
    host.v2Task(allocA, "web", 10e6).v2Task(allocB, "batch", 7e6).v2Task(allocC, "late", 4e6);
    known = new Map([...known, [allocC, { namespace: "dev", job: "late", group: "l" }]]);
    await exporter.sample();
    // its first exported value has both intervals: 2 of 10 busy CPU-s of 190 J, twice
    expect(series(exporter.render(), "task_joules_total", `nomad_job="late"`)).toBeCloseTo(76, 6);
  });
});

describe("defect 3: the default idle power under steady load", () => {
  it("gives busy tasks energy in every interval (model-shape idle), not 0 J", async () => {
    host.zone({ id: "intel-rapl:0", name: "package-0", maxRangeUj: 1e12, energyUj: 0 }).stat({ user: 0, idle: 0, vcpus: 4 });
    host.v2Task(allocA, "web", 0);
    const exporter = exporterOn({ rapl: {} });
    await exporter.sample();
    const c = coefficientsFor("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", {});
    let uj = 0;
    let taskCpu = 0;
    let expected = 0;
    for (let i = 0; i < 6; i++) {
      // constant 60 W, the node half busy (20 of 40 CPU-s), all of it the task's
      uj += 600e6;
      taskCpu += 20;
      advance(uj, 20);
      host.v2Task(allocA, "web", taskCpu * 1e6);
      const before = exporter.unattributed.joules;
      await exporter.sample();
      // package only: no memory term. idle share = P(0) / P(0.5)
      const idleShare = modelPower(c, 4, 0, 0).watts / modelPower(c, 4, 0, 0.5).watts;
      expect(exporter.unattributed.joules - before).toBeCloseTo(600 * idleShare, 6);
      expected += 600 * (1 - idleShare);
    }
    expect(series(exporter.render(), "task_joules_total", 'task="web"')).toBeCloseTo(expected, 6);
    expect(expected).toBeGreaterThan(0);
    expect(exporter.render()).toMatch(/source_info\{[^}]*idle="model-shape intel-cascade-lake/);
  });

  it("uses a configured idle power as is", async () => {
    host.zone({ id: "intel-rapl:0", name: "package-0", maxRangeUj: 1e12, energyUj: 0 }).stat({ user: 0, idle: 0, vcpus: 4 });
    const exporter = exporterOn({ rapl: { idle: 25 } });
    await exporter.sample();
    advance(600e6, 20);
    await exporter.sample();
    expect(exporter.unattributed.joules).toBeCloseTo(250, 6);
  });
});

describe("defect 4: the first scraper erased ended tasks for everyone", () => {
  it("serves an ended task's final value to every scraper and HEAD for the retention window", async () => {
    host.zone({ id: "intel-rapl:0", name: "package-0", maxRangeUj: 1e12, energyUj: 0 }).stat({ user: 0, idle: 0, vcpus: 4 });
    host.v2Task(allocA, "web", 0).v2Task(allocB, "db", 0);
    const exporter = exporterOn({ retentionMs: 60_000 });
    await exporter.sample();
    advance(100e6, 10);
    host.v2Task(allocA, "web", 4e6).v2Task(allocB, "db", 4e6);
    await exporter.sample();
    rmSync(`${host.cgroup}/nomad.slice/share.slice/${allocB}.db.scope`, { recursive: true });
    advance(200e6, 10);
    host.v2Task(allocA, "web", 8e6);
    await exporter.sample();

    const server = createExporterServer(exporter, 10, () => now);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    const get = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const head = () =>
      new Promise<number>((resolve, reject) =>
        request({ host: "127.0.0.1", port, path: "/metrics", method: "HEAD" }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
          .on("error", reject)
          .end(),
      );
    try {
      const prometheusA = await get();
      expect(await head()).toBe(200);
      const curl = await get();
      const prometheusB = await get();
      const db = series(prometheusA, "task_joules_total", 'task="db"');
      expect(db).toBeCloseTo(36, 6); // (100 − 1 W × 10 s) × 4/10
      for (const text of [curl, prometheusB]) expect(series(text, "task_joules_total", 'task="db"')).toBe(db);
      // still there through several more samples inside the window, gone after it
      for (let i = 0; i < 5; i++) {
        advance(200e6 + (i + 1) * 100e6, 10);
        host.v2Task(allocA, "web", (9 + i) * 1e6);
        await exporter.sample();
        expect(series(await get(), "task_joules_total", 'task="db"')).toBe(db);
      }
      advance(800e6, 10);
      await exporter.sample();
      advance(900e6, 10);
      await exporter.sample();
      expect(await get()).not.toContain('task="db"');
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe("defect 5: a cgroup seen again", () => {
  it("is credited only what it used since it was last read, not its whole cumulative time", async () => {
    host.zone({ id: "intel-rapl:0", name: "package-0", maxRangeUj: 1e12, energyUj: 0 }).stat({ user: 0, idle: 0, vcpus: 4 });
    host.v2Task(allocA, "web", 0).v2Task(allocB, "db", 500e6); // db has run for 500 CPU-s already
    const exporter = exporterOn();
    await exporter.sample();
    // db's cgroup is missing from one listing (it is back in the next)
    rmSync(`${host.cgroup}/nomad.slice/share.slice/${allocB}.db.scope`, { recursive: true });
    advance(100e6, 10);
    host.v2Task(allocA, "web", 8e6);
    await exporter.sample();
    exporter.render();
    advance(200e6, 10);
    host.v2Task(allocA, "web", 12e6).v2Task(allocB, "db", 504e6); // 4 s each in this interval (and 2 s of db's in the gap)
    await exporter.sample();
    const text = exporter.render();
    const web = series(text, "task_joules_total", 'task="web"') ?? 0;
    const db = series(text, "task_joules_total", 'task="db"') ?? 0;
    // interval 1: web 8 of 10 CPU-s of 90 J dynamic; interval 2: web 4, db 4 of 10
    expect(web).toBeCloseTo(90 * 0.8 + 90 * 0.4, 6);
    expect(db).toBeCloseTo(90 * 0.4, 6);
    expect(Math.abs(exporter.lastConservationError)).toBeLessThan(1e-9);
  });

  it("credits a cgroup new since the last sample at most the interval's CPU capacity", async () => {
    host.zone({ id: "intel-rapl:0", name: "package-0", maxRangeUj: 1e12, energyUj: 0 }).stat({ user: 0, idle: 0, vcpus: 4 });
    host.v2Task(allocA, "web", 0);
    const exporter = exporterOn();
    await exporter.sample();
    advance(100e6, 40);
    host.v2Task(allocA, "web", 20e6).v2Task(allocB, "db", 5000e6); // cannot have used 5000 CPU-s in 10 s on 4 vCPUs
    await exporter.sample();
    const db = series(exporter.render(), "task_joules_total", 'task="db"') ?? 0;
    expect(db).toBeCloseTo(90 * (40 / 60), 6); // capped at 40 CPU-s; shares normalised over 60
  });
});

describe("defect 6: a PSYS zone whose counter never advances", () => {
  it("falls back to package + DRAM with a warning metric instead of reporting 0 J", async () => {
    host
      .zone({ id: "intel-rapl:0", name: "package-0", maxRangeUj: 1e12, energyUj: 0 })
      .zone({ id: "intel-rapl:0:2", name: "dram", maxRangeUj: 1e12, energyUj: 0 })
      .zone({ id: "intel-rapl:1", name: "psys", maxRangeUj: 1e12, energyUj: 7e6 })
      .stat({ user: 0, idle: 0, vcpus: 4 });
    const exporter = exporterOn();
    expect(exporter.render()).toMatch(/zones="intel-rapl:1:psys"/);
    await exporter.sample();
    advance(80e6, 10);
    host.setEnergy("intel-rapl:0:2", 20e6); // psys stays at 7e6
    await exporter.sample();
    expect(exporter.node.joules).toBeCloseTo(100, 6);
    const text = exporter.render();
    expect(text).toContain('hashistack_energy_rapl_zone_stuck{node="n1",zone="intel-rapl:1",zone_name="psys"} 1');
    expect(text).toMatch(/zones="intel-rapl:0:package-0,intel-rapl:0:2:dram"/);
    advance(160e6, 10);
    host.setEnergy("intel-rapl:0:2", 40e6).setEnergy("intel-rapl:1", 9e6);
    await exporter.sample();
    expect(exporter.node.joules).toBeCloseTo(200, 6);
  });

  it("keeps a PSYS zone that advances, and does not add the packages to it", async () => {
    host
      .zone({ id: "intel-rapl:0", name: "package-0", maxRangeUj: 1e12, energyUj: 0 })
      .zone({ id: "intel-rapl:1", name: "psys", maxRangeUj: 1e12, energyUj: 0 })
      .stat({ user: 0, idle: 0, vcpus: 4 });
    const exporter = exporterOn();
    await exporter.sample();
    advance(80e6, 10);
    host.setEnergy("intel-rapl:1", 130e6);
    await exporter.sample();
    expect(exporter.node.joules).toBeCloseTo(130, 6);
    expect(exporter.render()).not.toContain("rapl_zone_stuck{");
  });
});
