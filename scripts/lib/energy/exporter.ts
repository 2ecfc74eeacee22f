/**
 * The exporter's state: one `sample()` per interval turns node energy and task
 * CPU time into per-task counters; `render()` writes them for Prometheus.
 * Tasks that ended are exported until one scrape has seen their final values,
 * then forgotten, so memory stays bounded by the tasks alive.
 */
import { attribute } from "./attribution.ts";
import { co2eGrams, type Intensity } from "./carbon.ts";
import { type Family, type Labels, renderFamilies } from "./exposition.ts";
import type { HostReader } from "./host.ts";
import type { AllocationMeta, MetadataLookup } from "./nomad-metadata.ts";
import type { PowerSource } from "./power.ts";
import { type CpuTimes, readCpuTimes, utilisation } from "./procfs.ts";
import type { TaskCpuReader } from "./cgroups.ts";

export const prefix = "hashistack_energy_";

export interface ExporterDeps {
  reader: HostReader;
  procfs: string;
  node: string;
  power: PowerSource;
  tasks: TaskCpuReader;
  metadata?: MetadataLookup;
  intensity: () => Intensity;
  /** failed live intensity refreshes so far */
  intensityErrors?: () => number;
  pue: number;
  version: string;
  now?: () => number;
}

interface Totals {
  joules: number;
  grams: number;
  watts: number;
}

interface TaskState extends Totals {
  allocId: string;
  task: string;
  meta?: AllocationMeta;
  lastCpuSeconds: number;
  /** set when its cgroup disappeared; dropped after the next scrape */
  gone: boolean;
}

const zero = (): Totals => ({ joules: 0, grams: 0, watts: 0 });

export class EnergyExporter {
  readonly node = zero();
  readonly system = zero();
  readonly unattributed = zero();
  samples = 0;
  lastSampleMs: number | undefined;
  lastIntensity: Intensity | undefined;
  /** the last interval's split, for tests and debugging */
  lastConservationError = 0;
  private readonly taskStates = new Map<string, TaskState>();
  private previousCpu: CpuTimes | undefined;
  private previousMs: number | undefined;

  constructor(private readonly deps: ExporterDeps) {}

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  /** Take one sample. The first call only sets the baselines. */
  async sample(): Promise<void> {
    const nowMs = this.now();
    const cpu = readCpuTimes(this.deps.reader, this.deps.procfs);
    const usages = this.deps.tasks.read();
    const first = this.previousCpu === undefined || this.previousMs === undefined;
    const elapsed = first ? 0 : (nowMs - (this.previousMs as number)) / 1000;
    const util = first ? 0 : utilisation(this.previousCpu as CpuTimes, cpu);
    const nodeCpuSeconds = first ? 0 : cpu.busySeconds - (this.previousCpu as CpuTimes).busySeconds;

    const seen = new Set<string>();
    const deltas: { key: string; cpuSeconds: number }[] = [];
    for (const u of usages) {
      seen.add(u.key);
      const state = this.taskStates.get(u.key);
      if (!state) {
        // a task that appears after the first sample started within this interval: all its time is new
        this.taskStates.set(u.key, { ...zero(), allocId: u.allocId, task: u.task, lastCpuSeconds: u.cpuSeconds, gone: false });
        if (!first) deltas.push({ key: u.key, cpuSeconds: u.cpuSeconds });
        continue;
      }
      state.gone = false;
      deltas.push({ key: u.key, cpuSeconds: Math.max(0, u.cpuSeconds - state.lastCpuSeconds) });
      state.lastCpuSeconds = u.cpuSeconds;
    }
    for (const [key, state] of this.taskStates) {
      if (!seen.has(key)) {
        state.gone = true;
        state.watts = 0;
      }
    }

    // energy is read now, with the CPU times, not after a possibly slow Nomad lookup
    const energy = this.deps.power.measure(nowMs, elapsed, util, cpu.vcpus);
    if (this.deps.metadata) {
      const meta = await this.deps.metadata.lookup([...new Set(usages.map((u) => u.allocId))]);
      for (const state of this.taskStates.values()) state.meta = meta.get(state.allocId) ?? state.meta;
    }

    this.previousCpu = cpu;
    this.previousMs = nowMs;
    this.lastSampleMs = nowMs;
    this.samples++;
    if (first) return;

    const split = attribute({ nodeJoules: energy.joules, idleJoules: energy.idleJoules, nodeCpuSeconds, tasks: deltas });
    const intensity = this.deps.intensity();
    this.lastIntensity = intensity;
    const add = (totals: Totals, joules: number) => {
      totals.joules += joules;
      totals.grams += co2eGrams(joules, this.deps.pue, intensity.gramsPerKwh);
      totals.watts = elapsed > 0 ? joules / elapsed : 0;
    };
    add(this.node, energy.joules);
    add(this.system, split.system);
    add(this.unattributed, split.unattributed);
    let taskSum = 0;
    for (const [key, joules] of split.tasks) {
      const state = this.taskStates.get(key);
      if (state) add(state, joules);
      taskSum += joules;
    }
    this.lastConservationError = energy.joules - (taskSum + split.system + split.unattributed);
  }

  /** Tasks currently exported (alive, or ended but not yet scraped). */
  taskCount(): number {
    return this.taskStates.size;
  }

  render(): string {
    const d = this.deps;
    const estimated = String(d.power.estimated);
    const base: Labels = { node: d.node, estimated };
    const families: Family[] = [];
    const family = (name: string, type: Family["type"], help: string, samples: Family["samples"]) =>
      families.push({ name: prefix + name, type, help, samples });

    family("build_info", "gauge", "Exporter version; always 1.", [
      { labels: { version: d.version, nodejs: process.versions.node }, value: 1 },
    ]);
    const info: Labels = { node: d.node, source: d.power.kind, estimated, cpu_model: d.power.cpuModel };
    if (d.power.coefficients) {
      info.cpu_family = d.power.coefficients.family;
      info.coefficients = d.power.description;
    } else info.zones = d.power.description;
    family("source_info", "gauge", "Where node energy comes from: rapl (measured) or model (estimated); always 1.", [
      { labels: info, value: 1 },
    ]);
    family("node_joules_total", "counter", "Energy used by the node.", [{ labels: base, value: this.node.joules }]);
    family("node_watts", "gauge", "Average node power over the last interval.", [{ labels: base, value: this.node.watts }]);
    family("node_co2e_grams_total", "counter", "CO2-equivalent emitted for the node's energy (× PUE × grid intensity).", [
      { labels: base, value: this.node.grams },
    ]);
    const buckets = [
      { labels: { ...base, bucket: "system" }, t: this.system },
      { labels: { ...base, bucket: "unattributed" }, t: this.unattributed },
    ];
    family(
      "bucket_joules_total",
      "counter",
      "Node energy not attributed to Nomad tasks: system (host processes' CPU share) and unattributed (idle/static power).",
      buckets.map((b) => ({ labels: b.labels, value: b.t.joules })),
    );
    family(
      "bucket_co2e_grams_total",
      "counter",
      "CO2e of the system and unattributed buckets.",
      buckets.map((b) => ({ labels: b.labels, value: b.t.grams })),
    );
    const tasks = [...this.taskStates.values()].map((t) => ({
      t,
      labels: {
        ...base,
        nomad_namespace: t.meta?.namespace ?? "",
        nomad_job: t.meta?.job ?? "",
        task_group: t.meta?.group ?? "",
        task: t.task,
        alloc_id: t.allocId,
      } as Labels,
    }));
    family(
      "task_joules_total",
      "counter",
      "Energy attributed to a Nomad task (its CPU-time share of the dynamic power).",
      tasks.map((x) => ({ labels: x.labels, value: x.t.joules })),
    );
    family(
      "task_watts",
      "gauge",
      "Average power attributed to a Nomad task over the last interval.",
      tasks.map((x) => ({ labels: x.labels, value: x.t.watts })),
    );
    family(
      "task_co2e_grams_total",
      "counter",
      "CO2e attributed to a Nomad task.",
      tasks.map((x) => ({ labels: x.labels, value: x.t.grams })),
    );
    if (this.lastIntensity) {
      family("carbon_intensity_grams_per_kwh", "gauge", "Grid carbon intensity in use (gCO2e per kWh).", [
        {
          labels: { node: d.node, source: this.lastIntensity.source, provider: this.lastIntensity.provider },
          value: this.lastIntensity.gramsPerKwh,
        },
      ]);
    }
    if (d.intensityErrors) {
      family(
        "carbon_intensity_errors_total",
        "counter",
        "Failed live carbon intensity refreshes (the static value is used meanwhile).",
        [{ labels: { node: d.node }, value: d.intensityErrors() }],
      );
    }
    family("pue", "gauge", "Power usage effectiveness applied to CO2e.", [{ labels: { node: d.node }, value: d.pue }]);
    if (d.power.rapl) {
      const rapl = d.power.rapl;
      family(
        "rapl_wraps_total",
        "counter",
        "Wrap-arounds of a RAPL zone's energy counter handled.",
        rapl.zones.map((z) => ({
          labels: { node: d.node, zone: z.id, zone_name: z.name },
          value: rapl.counters.get(z.id)?.wraps ?? 0,
        })),
      );
      family(
        "rapl_rejected_total",
        "counter",
        "RAPL readings rejected: implausible power, or too long between reads to rule out a double wrap.",
        rapl.zones.flatMap((z) =>
          (["implausible", "too_long_between_reads"] as const).map((reason) => ({
            labels: { node: d.node, zone: z.id, reason },
            value: rapl.counters.get(z.id)?.rejected[reason] ?? 0,
          })),
        ),
      );
    }
    if (d.metadata) {
      family("nomad_lookup_errors_total", "counter", "Failed requests to the local Nomad agent for allocation metadata.", [
        { labels: { node: d.node }, value: d.metadata.errors },
      ]);
    }
    family("samples_total", "counter", "Samples taken.", [{ labels: { node: d.node }, value: this.samples }]);
    if (this.lastSampleMs !== undefined) {
      family("last_sample_timestamp_seconds", "gauge", "When the last sample was taken.", [
        { labels: { node: d.node }, value: this.lastSampleMs / 1000 },
      ]);
    }
    const text = renderFamilies(families);
    // ended tasks have now been exported with their final values once
    for (const [key, state] of this.taskStates) if (state.gone) this.taskStates.delete(key);
    return text;
  }
}
