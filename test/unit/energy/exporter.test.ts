/** The whole sampling loop on generated host trees, with a controlled clock. */
import { rmSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TaskCpuReader } from "../../../scripts/lib/energy/cgroups.ts";
import { co2eGrams, type Intensity } from "../../../scripts/lib/energy/carbon.ts";
import { exporterConfigSchema } from "../../../scripts/lib/energy/config.ts";
import { EnergyExporter } from "../../../scripts/lib/energy/exporter.ts";
import { fsHostReader } from "../../../scripts/lib/energy/host.ts";
import type { AllocationMeta, MetadataLookup } from "../../../scripts/lib/energy/nomad-metadata.ts";
import { choosePowerSource } from "../../../scripts/lib/energy/power.ts";
import { allocA, allocB, FakeHost } from "../../helpers/energy-trees.ts";
import { tempDir } from "../../helpers/fixtures.ts";

let dir: Awaited<ReturnType<typeof tempDir>>;
let host: FakeHost;
let now = 0;
let intensity: Intensity = { gramsPerKwh: 100, source: "static", provider: "static" };

beforeEach(async () => {
  dir = await tempDir("exporter");
  host = new FakeHost(dir.path).machine("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", 8 * 1024 * 1024);
  now = 1_000_000;
});
afterEach(() => dir.remove());

const metadata: MetadataLookup & { calls: number } = {
  errors: 0,
  calls: 0,
  async lookup() {
    this.calls++;
    return new Map<string, AllocationMeta>([[allocA, { namespace: "dev", job: "web", group: "frontend" }]]);
  },
};

function makeExporter(source: "rapl" | "model", options: { labelGraceMs?: number; retentionMs?: number } = {}) {
  const config = exporterConfigSchema.parse({
    source,
    host: { sysfs: host.sysfs, procfs: host.procfs, cgroup: host.cgroup },
    rapl: { maxZoneWatts: 500, idleWatts: 20 },
  });
  return new EnergyExporter({
    reader: fsHostReader,
    procfs: host.procfs,
    node: "client-1",
    power: choosePowerSource(config, fsHostReader, now),
    tasks: new TaskCpuReader(fsHostReader, { cgroup: host.cgroup, procfs: host.procfs }),
    metadata,
    intensity: () => intensity,
    pue: 1.5,
    version: "test",
    now: () => now,
    labelGraceMs: options.labelGraceMs ?? 0,
    retentionMs: options.retentionMs,
  });
}

function value(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(series + " ") || (l.startsWith(series + "{") && l.includes(series)));
  if (!line) throw new Error(`no ${series} in\n${text}`);
  return Number(line.slice(line.lastIndexOf(" ") + 1));
}

describe("the exporter on RAPL", () => {
  it("splits measured node energy over tasks, system and unattributed, and conserves it", async () => {
    host.zone({ id: "intel-rapl:0", name: "package-0", maxRangeUj: 1e12, energyUj: 0 });
    host.stat({ user: 0, idle: 0, vcpus: 4 }).v2Task(allocA, "web", 0).v2Task(allocB, "db", 0);
    const exporter = makeExporter("rapl");
    await exporter.sample(); // baseline
    expect(exporter.node.joules).toBe(0);

    // 10 s: 500 J (50 W; 20 W idle → 200 J idle, 300 J dynamic); node busy 10 CPU-s: web 6, db 2, host 2
    now += 10_000;
    host
      .setEnergy("intel-rapl:0", 500e6)
      .stat({ user: 1000, idle: 3000, vcpus: 4 })
      .v2Task(allocA, "web", 6e6)
      .v2Task(allocB, "db", 2e6);
    await exporter.sample();
    const text = exporter.render();
    expect(value(text, 'hashistack_energy_node_joules_total{node="client-1",estimated="false"}')).toBeCloseTo(500, 6);
    expect(value(text, 'hashistack_energy_node_watts{node="client-1",estimated="false"}')).toBeCloseTo(50, 6);
    const web =
      'hashistack_energy_task_joules_total{node="client-1",estimated="false",nomad_namespace="dev",nomad_job="web",task_group="frontend",task="web",alloc_id="' +
      allocA +
      '"}';
    expect(value(text, web)).toBeCloseTo(180, 6);
    // db has no metadata (not in the lookup): exported with empty job labels, not dropped
    expect(text).toContain(`nomad_namespace="",nomad_job="",task_group="",task="db",alloc_id="${allocB}"} 60`);
    expect(value(text, 'hashistack_energy_bucket_joules_total{node="client-1",estimated="false",bucket="system"}')).toBeCloseTo(
      60,
      6,
    );
    expect(
      value(text, 'hashistack_energy_bucket_joules_total{node="client-1",estimated="false",bucket="unattributed"}'),
    ).toBeCloseTo(200, 6);
    expect(Math.abs(exporter.lastConservationError)).toBeLessThan(1e-9);
    expect(text).toMatch(
      /hashistack_energy_source_info\{node="client-1",source="rapl",estimated="false",.*zones="intel-rapl:0:package-0",idle="configured 20W"\} 1/,
    );
    expect(text).toMatch(/hashistack_energy_rapl_wraps_total\{node="client-1",zone="intel-rapl:0",zone_name="package-0"\} 0/);
    expect(text).toContain('hashistack_energy_pue{node="client-1"} 1.5');
  });
});

describe("the exporter on the model", () => {
  it("labels everything estimated, integrates CO2e with a changing intensity, and drops ended tasks after the retention window", async () => {
    host.stat({ user: 0, idle: 0, vcpus: 2 }).v2Task(allocA, "web", 0).v2Task(allocB, "db", 0);
    const exporter = makeExporter("model");
    await exporter.sample();
    let expectedGrams = 0;
    let expectedJoules = 0;
    let busy = 0;
    let idle = 0;
    for (const [i, g] of [100, 400, 250].entries()) {
      intensity = { gramsPerKwh: g, source: "live", provider: "uk-carbon-intensity" };
      now += 5000;
      busy += 500; // 5 CPU-s of 10 → 50 %
      idle += 500;
      host
        .stat({ user: busy, idle, vcpus: 2 })
        .v2Task(allocA, "web", (i + 1) * 3e6)
        .v2Task(allocB, "db", (i + 1) * 1e6);
      await exporter.sample();
      // Cascade Lake (CCF): 2 × (0.64 + 3.33 × 0.5) + 8 GB × 0.392 W, for 5 s
      const joules = (2 * (0.64 + 3.33 * 0.5) + 8 * 0.392) * 5;
      expectedJoules += joules;
      expectedGrams += co2eGrams(joules, 1.5, g);
    }
    expect(exporter.node.joules).toBeCloseTo(expectedJoules, 6);
    expect(exporter.node.grams).toBeCloseTo(expectedGrams, 9);
    const tasks = [...(exporter as unknown as { taskStates: Map<string, { joules: number }> }).taskStates.values()];
    const sum = tasks.reduce((s, t) => s + t.joules, 0) + exporter.system.joules + exporter.unattributed.joules;
    expect(sum).toBeCloseTo(exporter.node.joules, 9);

    let text = exporter.render();
    expect(text).toContain('hashistack_energy_node_joules_total{node="client-1",estimated="true"}');
    expect(text).toMatch(/source_info\{.*source="model",estimated="true",.*cpu_family="intel-cascade-lake"/);
    expect(text).toContain(
      'hashistack_energy_carbon_intensity_grams_per_kwh{node="client-1",source="live",provider="uk-carbon-intensity"} 250',
    );

    // db ends: its final values stay exported through the retention window, then it is forgotten
    const dbFinal = exporter.render().match(/task_joules_total\{[^}]*task="db"[^}]*\} (\S+)/)?.[1];
    rmSync(`${host.cgroup}/nomad.slice/share.slice/${allocB}.db.scope`, { recursive: true });
    now += 5000;
    await exporter.sample();
    expect(exporter.taskCount()).toBe(2);
    text = exporter.render();
    expect(text).toMatch(new RegExp(`task_joules_total\\{[^}]*task="db"[^}]*\\} ${dbFinal}`));
    expect(text).toMatch(/task_watts\{[^}]*task="db"[^}]*\} 0/);
    expect(exporter.render()).toContain(`task="db"`);
    now += 300_001;
    await exporter.sample();
    expect(exporter.taskCount()).toBe(1);
    expect(exporter.render()).not.toContain(`task="db"`);
  });
});

describe("the exporter's Nomad lookups", () => {
  it("asks only when the live tasks change or one has no labels yet, and labels a task as soon as Nomad names it", async () => {
    host.stat({ user: 0, idle: 0, vcpus: 2 }).v2Task(allocA, "web", 0);
    let known = new Map<string, AllocationMeta>([[allocA, { namespace: "dev", job: "web", group: "frontend" }]]);
    const asked: string[][] = [];
    const lookup: MetadataLookup = {
      errors: 0,
      async lookup(ids) {
        asked.push([...ids].sort());
        return known;
      },
    };
    const config = exporterConfigSchema.parse({
      source: "model",
      host: { sysfs: host.sysfs, procfs: host.procfs, cgroup: host.cgroup },
    });
    const exporter = new EnergyExporter({
      reader: fsHostReader,
      procfs: host.procfs,
      node: "client-1",
      power: choosePowerSource(config, fsHostReader, now),
      tasks: new TaskCpuReader(fsHostReader, { cgroup: host.cgroup, procfs: host.procfs }),
      metadata: lookup,
      intensity: () => intensity,
      pue: 1,
      version: "test",
      now: () => now,
      labelGraceMs: 60_000,
    });
    const step = async () => {
      now += 5000;
      await exporter.sample();
    };
    await step();
    await step();
    expect(asked).toEqual([[allocA]]); // named, nothing changed: not asked again
    host.v2Task(allocB, "db", 0);
    await step();
    await step();
    expect(asked.slice(1)).toEqual([[allocA, allocB].sort(), [allocA, allocB].sort()]); // B has no labels yet: asked every sample
    expect(exporter.render()).not.toContain(allocB);
    known = new Map([...known, [allocB, { namespace: "prod", job: "db", group: "backend" }]]);
    await step();
    expect(exporter.render()).toContain(
      `nomad_namespace="prod",nomad_job="db",task_group="backend",task="db",alloc_id="${allocB}"`,
    );
    await step();
    expect(asked).toHaveLength(4);
    rmSync(`${host.cgroup}/nomad.slice/share.slice/${allocB}.db.scope`, { recursive: true });
    await step();
    expect(asked.at(-1)).toEqual([allocA]); // B ended: asked once more, so the directory can forget it
    await step();
    expect(asked).toHaveLength(5);
  });
});
