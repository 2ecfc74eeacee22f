/**
 * The exporter's state: one `sample()` per interval turns node energy and task
 * CPU time into per-task counters; `render()` writes them for Prometheus.
 *
 * - CPU time is tracked per cgroup (one run of a task): a cgroup seen again
 *   after a gap is credited only what it used since it was last read, and a
 *   cgroup new since the last sample at most what the interval allows.
 * - A task is exported once it has its Nomad labels (or after
 *   `labelGraceMs`), so its series has them from its first sample; energy it
 *   used meanwhile is in that first value.
 * - Ended tasks keep their final values for `retentionMs` (several scrape
 *   intervals) for every scraper; `render()` changes nothing, so HEAD, curl
 *   and a second Prometheus see the same.
 * - The text is built once per sample and reused by every scrape until the
 *   next one; per-task label strings are built once per task.
 */
import { attributeInto } from "./attribution.ts";
import { co2eGrams, type Intensity } from "./carbon.ts";
import type { TaskCpuReader, TaskUsage } from "./cgroups.ts";
import type { ContainerDirectory } from "./docker.ts";
import { escapeLabel, ExpositionBuffer } from "./exposition.ts";
import type { HostReader } from "./host.ts";
import type { AllocationMeta, MetadataLookup } from "./nomad-metadata.ts";
import type { PowerSource } from "./power.ts";
import { type CpuTimes, readCpuTimes, utilisation } from "./procfs.ts";

export const prefix = "hashistack_energy_";

export interface ExporterDeps {
  reader: HostReader;
  procfs: string;
  node: string;
  power: PowerSource;
  tasks: TaskCpuReader;
  metadata?: MetadataLookup;
  /** maps docker container cgroups to Nomad tasks */
  containers?: ContainerDirectory;
  intensity: () => Intensity;
  /** failed live intensity refreshes so far */
  intensityErrors?: () => number;
  pue: number;
  version: string;
  now?: () => number;
  /** how long an ended task keeps being exported with its final values (default 5 min) */
  retentionMs?: number;
  /** how long a new task waits for its Nomad labels before it is exported without them (default 30 s) */
  labelGraceMs?: number;
}

interface Totals {
  joules: number;
  grams: number;
  watts: number;
}

/** one task's totals and labels; a class, so every task has the same shape (monomorphic property reads) */
class TaskState implements Totals {
  joules = 0;
  grams = 0;
  watts = 0;
  meta: AllocationMeta | undefined = undefined;
  /** when its last cgroup disappeared; dropped `retentionMs` later */
  goneAtMs: number | undefined = undefined;
  exported = false;
  /** its three sample-line prefixes (joules, watts, grams) as UTF-8, built when the labels change */
  linePrefixes: [Buffer, Buffer, Buffer] | undefined = undefined;
  labelMeta: AllocationMeta | undefined = undefined;
  labelBase: string | undefined = undefined;
  /** the sample that last credited it CPU time (no per-sample map of deltas) */
  creditedSample = -1;
  /** CPU-seconds of that sample */
  cpuSeconds = 0;

  constructor(
    readonly allocId: string,
    readonly task: string,
    readonly firstSeenMs: number,
  ) {}
}

interface CgroupState {
  lastCpuSeconds: number;
  goneAtMs?: number;
  /** the sample that last saw it (no per-sample set of seen cgroups) */
  seenSample: number;
}

/** the exported tasks' line prefixes per family (joules, watts, grams): views of one buffer per family, in task order */
interface TaskTemplate {
  base: string;
  tasks: TaskState[];
  prefixes: [Buffer[], Buffer[], Buffer[]];
}

const taskFamilies: [0 | 1 | 2, string, "counter" | "gauge", string][] = [
  [0, "task_joules_total", "counter", "Energy attributed to a Nomad task (its CPU-time share of the dynamic power)."],
  [1, "task_watts", "gauge", "Average power attributed to a Nomad task over the last interval."],
  [2, "task_co2e_grams_total", "counter", "CO2e attributed to a Nomad task."],
];

const zero = (): Totals => ({ joules: 0, grams: 0, watts: 0 });
/** how long a vanished cgroup's last CPU time is remembered, in case it comes back */
const cgroupMemoryMs = 3600_000;

export class EnergyExporter {
  readonly node = zero();
  readonly system = zero();
  readonly unattributed = zero();
  samples = 0;
  /** fast RAPL polls that failed (they never end the process) */
  pollErrors = 0;
  /** CPU-seconds of docker containers not (yet) mapped to a task: counted as system */
  unresolvedContainers = 0;
  lastSampleMs: number | undefined;
  lastIntensity: Intensity | undefined;
  /** the last interval's split, for tests and debugging */
  lastConservationError = 0;
  private readonly taskStates = new Map<string, TaskState>();
  private readonly cgroupStates = new Map<string, CgroupState>();
  private previousCpu: CpuTimes | undefined;
  private previousMs: number | undefined;
  private cachedBytes: Buffer | undefined;
  private readonly exposition = new ExpositionBuffer();
  private readonly retentionMs: number;
  private readonly labelGraceMs: number;
  /** the tasks credited in the current sample, in first-seen order, and their CPU-seconds and joules (kept between samples) */
  private readonly credited: TaskState[] = [];
  private readonly creditedCpu: number[] = [];
  private readonly creditedJoules: number[] = [];
  /** bumped whenever the set of live tasks changes: the Nomad lookup runs only then, or while a live task has no labels */
  private liveVersion = 0;
  private lookedUpVersion = -1;
  /** the label base of the last render, reused while equal so task prefixes compare by reference */
  private lastBase = "";
  private readonly exportedTasks: TaskState[] = [];
  private template: TaskTemplate | undefined;
  private valueArrays: [Float64Array, Float64Array, Float64Array] = [
    new Float64Array(0),
    new Float64Array(0),
    new Float64Array(0),
  ];

  constructor(private readonly deps: ExporterDeps) {
    this.retentionMs = deps.retentionMs ?? 300_000;
    this.labelGraceMs = deps.labelGraceMs ?? 30_000;
  }

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  /** Take one sample. The first call only sets the baselines. */
  async sample(): Promise<void> {
    const nowMs = this.now();
    const cpu = readCpuTimes(this.deps.reader, this.deps.procfs);
    const usages = this.deps.tasks.read();
    // energy is read now, with the CPU times, not after a possibly slow lookup
    const first = this.previousCpu === undefined || this.previousMs === undefined;
    const elapsed = first ? 0 : (nowMs - (this.previousMs as number)) / 1000;
    const util = first ? 0 : utilisation(this.previousCpu as CpuTimes, cpu);
    const nodeCpuSeconds = first ? 0 : cpu.busySeconds - (this.previousCpu as CpuTimes).busySeconds;
    const energy = this.deps.power.measure(nowMs, elapsed, util, cpu.vcpus);

    const containers = await this.containerOwners(usages);
    const sample = this.samples;
    const credited = this.credited;
    credited.length = 0;
    for (const u of usages) {
      const cpuDelta = this.cgroupDelta(u, first, elapsed * cpu.vcpus);
      // a Nomad-named cgroup owns itself; a container is its task once resolved
      let owner: { allocId: string; task: string } | null | undefined;
      if (u.allocId !== undefined && u.task !== undefined) owner = u as { allocId: string; task: string };
      else if (u.containerId) owner = containers?.get(u.containerId);
      if (!owner) continue; // a container not (yet) known as a Nomad task: its time stays in `system`
      const key = u.key ?? `${owner.allocId}/${owner.task}`;
      let state = this.taskStates.get(key);
      if (!state) {
        state = new TaskState(owner.allocId, owner.task, nowMs);
        this.taskStates.set(key, state);
        this.liveVersion++;
      }
      if (state.creditedSample !== sample) {
        state.creditedSample = sample;
        state.cpuSeconds = 0;
        credited.push(state);
      }
      state.cpuSeconds += cpuDelta;
      if (state.goneAtMs !== undefined) {
        state.goneAtMs = undefined;
        this.liveVersion++;
      }
    }
    // forEach, not for-of over entries: no [key, value] array per entry and sample
    this.cgroupStates.forEach((cg, dir) => {
      if (cg.seenSample === this.samples) return;
      cg.goneAtMs ??= nowMs;
      if (nowMs - cg.goneAtMs > cgroupMemoryMs) this.cgroupStates.delete(dir);
    });
    this.taskStates.forEach((state, key) => {
      if (state.creditedSample === sample) return;
      if (state.goneAtMs === undefined) {
        state.goneAtMs = nowMs;
        this.liveVersion++;
      }
      state.watts = 0;
      if (nowMs - state.goneAtMs > this.retentionMs) this.taskStates.delete(key);
    });

    if (this.deps.metadata && this.lookupDue()) {
      const alive = new Set<string>();
      for (const s of this.taskStates.values()) if (s.goneAtMs === undefined) alive.add(s.allocId);
      this.lookedUpVersion = this.liveVersion;
      const meta = await this.deps.metadata.lookup([...alive]);
      for (const state of this.taskStates.values()) state.meta = meta.get(state.allocId) ?? state.meta;
    }
    this.taskStates.forEach((state) => {
      if (!state.exported) {
        state.exported = !this.deps.metadata || state.meta !== undefined || nowMs - state.firstSeenMs >= this.labelGraceMs;
      }
    });

    this.previousCpu = cpu;
    this.previousMs = nowMs;
    this.lastSampleMs = nowMs;
    this.samples++;
    this.cachedBytes = undefined;
    if (first) return;

    const count = credited.length;
    const cpuSeconds = this.creditedCpu;
    const joules = this.creditedJoules;
    cpuSeconds.length = count;
    joules.length = count;
    for (let i = 0; i < count; i++) cpuSeconds[i] = (credited[i] as TaskState).cpuSeconds;
    const split = attributeInto(
      { nodeJoules: energy.joules, idleJoules: energy.idleJoules, nodeCpuSeconds },
      cpuSeconds,
      count,
      joules,
    );
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
    for (let i = 0; i < count; i++) {
      add(credited[i] as TaskState, joules[i] as number);
      taskSum += joules[i] as number;
    }
    this.lastConservationError = energy.joules - (taskSum + split.system + split.unattributed);
  }

  /**
   * Whether the Nomad lookup is needed: the set of live tasks changed since
   * the last one (a new allocation to name, or ones gone to forget), or a live
   * task still has no labels (the lookup limits its retries per allocation).
   * Otherwise it would ask nothing and return what it returned before.
   */
  private lookupDue(): boolean {
    if (this.liveVersion !== this.lookedUpVersion) return true;
    let unnamed = false;
    this.taskStates.forEach((state) => {
      if (state.goneAtMs === undefined && state.meta === undefined) unnamed = true;
    });
    return unnamed;
  }

  /**
   * CPU-seconds a cgroup used since the last sample. One seen before (even
   * before a gap) is credited its growth; a smaller value means the cgroup was
   * recreated, and all of it is new. A cgroup new since the last sample began
   * within the interval, so at most the interval's CPU capacity is new.
   */
  private cgroupDelta(u: TaskUsage, first: boolean, capacity: number): number {
    const cg = this.cgroupStates.get(u.dir);
    if (!cg) {
      this.cgroupStates.set(u.dir, { lastCpuSeconds: u.cpuSeconds, seenSample: this.samples });
      return first ? 0 : Math.min(u.cpuSeconds, capacity);
    }
    const delta = u.cpuSeconds >= cg.lastCpuSeconds ? u.cpuSeconds - cg.lastCpuSeconds : Math.min(u.cpuSeconds, capacity);
    cg.lastCpuSeconds = u.cpuSeconds;
    cg.goneAtMs = undefined;
    cg.seenSample = this.samples;
    return delta;
  }

  /**
   * The task of each docker container cgroup, from the container's Nomad
   * identity (null: not a Nomad task; undefined: not known yet); undefined
   * when there is no container cgroup. Nomad-named cgroups name their task.
   */
  private async containerOwners(usages: TaskUsage[]): Promise<Map<string, { allocId: string; task: string } | null> | undefined> {
    const containerIds: string[] = [];
    for (const u of usages) {
      if ((u.allocId === undefined || u.task === undefined) && u.containerId) containerIds.push(u.containerId);
    }
    if (containerIds.length === 0) return undefined;
    const resolved: Map<string, { allocId: string; task: string } | null> = this.deps.containers
      ? await this.deps.containers.resolve(containerIds)
      : new Map();
    let unresolved = 0;
    for (const id of containerIds) if (resolved.get(id) === undefined) unresolved++;
    this.unresolvedContainers = unresolved;
    return resolved;
  }

  /** Tasks held (alive, or ended within the retention window). */
  taskCount(): number {
    return this.taskStates.size;
  }

  /** the sample-line prefixes of a task's three series, rebuilt only when its labels change */
  private taskLines(base: string, t: TaskState): [Buffer, Buffer, Buffer] {
    if (t.linePrefixes === undefined || t.labelMeta !== t.meta || t.labelBase !== base) {
      t.labelMeta = t.meta;
      t.labelBase = base;
      const labels =
        `${base},nomad_namespace="${escapeLabel(t.meta?.namespace ?? "")}",nomad_job="${escapeLabel(t.meta?.job ?? "")}"` +
        `,task_group="${escapeLabel(t.meta?.group ?? "")}",task="${escapeLabel(t.task)}",alloc_id="${escapeLabel(t.allocId)}"`;
      t.linePrefixes = [
        Buffer.from(`${prefix}task_joules_total{${labels}} `),
        Buffer.from(`${prefix}task_watts{${labels}} `),
        Buffer.from(`${prefix}task_co2e_grams_total{${labels}} `),
      ];
    }
    return t.linePrefixes;
  }

  /** the three task families' label prefixes for these tasks in this order, each family's back to back in one buffer */
  private buildTemplate(base: string, tasks: TaskState[]): TaskTemplate {
    const lines = tasks.map((t) => this.taskLines(base, t));
    const family = (index: 0 | 1 | 2): Buffer[] => {
      const bytes = Buffer.concat(lines.map((l) => l[index]));
      let at = 0;
      return lines.map((l) => bytes.subarray(at, (at += l[index].length)));
    };
    this.template = { base, tasks: [...tasks], prefixes: [family(0), family(1), family(2)] };
    return this.template;
  }

  /** the value arrays of the three task families, kept between renders */
  private values(count: number): [Float64Array, Float64Array, Float64Array] {
    if (this.valueArrays[0].length < count) {
      const size = Math.max(count, this.valueArrays[0].length * 2);
      this.valueArrays = [new Float64Array(size), new Float64Array(size), new Float64Array(size)];
    }
    return this.valueArrays;
  }

  /** The exposition text; built once per sample, and changes nothing. */
  render(): string {
    return this.renderBytes().toString("utf8");
  }

  /** The exposition as bytes (what /metrics sends); built once per sample, and changes nothing. */
  renderBytes(): Buffer {
    this.cachedBytes ??= this.build();
    return this.cachedBytes;
  }

  private build(): Buffer {
    const d = this.deps;
    const out = this.exposition;
    out.start();
    const node = `node="${escapeLabel(d.node)}"`;
    const estimated = String(d.power.estimated);
    const built = `${node},estimated="${estimated}"`;
    // the same string object while unchanged: taskLines compares it by reference, not by its characters
    if (built !== this.lastBase) this.lastBase = built;
    const base = this.lastBase;
    const labelsOf = (labels: Record<string, string>) =>
      Object.entries(labels)
        .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
        .join(",");
    const header = (full: string, type: "counter" | "gauge", help: string) =>
      out.write(`# HELP ${full} ${help}\n# TYPE ${full} ${type}\n`);
    const family = (name: string, type: "counter" | "gauge", help: string, samples: [string, number][]) => {
      if (samples.length === 0) return;
      const full = prefix + name;
      header(full, type, help);
      for (const [labels, value] of samples) out.sample(`${full}{${labels}} `, value);
    };

    family("build_info", "gauge", "Exporter version; always 1.", [
      [labelsOf({ version: d.version, nodejs: process.versions.node }), 1],
    ]);
    const info: Record<string, string> = { node: d.node, source: d.power.kind, estimated, cpu_model: d.power.cpuModel };
    if (d.power.kind === "model" && d.power.coefficients) {
      info.cpu_family = d.power.coefficients.family;
      info.coefficients = d.power.description;
    } else {
      info.zones = d.power.description;
      info.idle = d.power.idleDescription ?? "";
    }
    family("source_info", "gauge", "Where node energy comes from: rapl (measured) or model (estimated); always 1.", [
      [labelsOf(info), 1],
    ]);
    family("node_joules_total", "counter", "Energy used by the node.", [[base, this.node.joules]]);
    family("node_watts", "gauge", "Average node power over the last interval.", [[base, this.node.watts]]);
    family("node_co2e_grams_total", "counter", "CO2-equivalent emitted for the node's energy (× PUE × grid intensity).", [
      [base, this.node.grams],
    ]);
    const buckets: [string, Totals][] = [
      [`${base},bucket="system"`, this.system],
      [`${base},bucket="unattributed"`, this.unattributed],
    ];
    family(
      "bucket_joules_total",
      "counter",
      "Node energy not attributed to Nomad tasks: system (host processes' CPU share) and unattributed (idle/static power).",
      buckets.map(([l, t]) => [l, t.joules]),
    );
    family(
      "bucket_co2e_grams_total",
      "counter",
      "CO2e of the system and unattributed buckets.",
      buckets.map(([l, t]) => [l, t.grams]),
    );
    // tasks: 500 tasks are 1500 lines. Their label prefixes lie back to back in
    // one buffer per family (rebuilt when the exported tasks or their labels
    // change) and their values in arrays: the lines are copied from
    // contiguous memory, no string but the number's per line
    const tasks = this.exportedTasks;
    tasks.length = 0;
    this.taskStates.forEach((t) => {
      if (t.exported) tasks.push(t);
    });
    const count = tasks.length;
    if (count > 0) {
      let template = this.template;
      let stale = template === undefined || template.base !== base || template.tasks.length !== count;
      const values = this.values(count);
      for (let i = 0; i < count; i++) {
        const t = tasks[i] as TaskState;
        if (!stale && (template?.tasks[i] !== t || t.labelMeta !== t.meta)) stale = true;
        values[0][i] = t.joules;
        values[1][i] = t.watts;
        values[2][i] = t.grams;
      }
      if (stale) template = this.buildTemplate(base, tasks);
      const { prefixes } = template as TaskTemplate;
      for (const [index, name, type, help] of taskFamilies) {
        header(prefix + name, type, help);
        out.samplesFrom(prefixes[index], values[index], count);
      }
    }
    if (this.lastIntensity) {
      family("carbon_intensity_grams_per_kwh", "gauge", "Grid carbon intensity in use (gCO2e per kWh).", [
        [
          labelsOf({ node: d.node, source: this.lastIntensity.source, provider: this.lastIntensity.provider }),
          this.lastIntensity.gramsPerKwh,
        ],
      ]);
    }
    if (d.intensityErrors) {
      family(
        "carbon_intensity_errors_total",
        "counter",
        "Failed live carbon intensity refreshes (the static value is used meanwhile).",
        [[node, d.intensityErrors()]],
      );
    }
    family("pue", "gauge", "Power usage effectiveness applied to CO2e.", [[node, d.pue]]);
    if (d.power.rapl) {
      const rapl = d.power.rapl;
      const zoneLabels = (z: { id: string; name: string }) =>
        `${node},zone="${escapeLabel(z.id)}",zone_name="${escapeLabel(z.name)}"`;
      family(
        "rapl_wraps_total",
        "counter",
        "Wrap-arounds of a RAPL zone's energy counter handled.",
        rapl.tracked.map((z) => [zoneLabels(z), rapl.counters.get(z.id)?.wraps ?? 0]),
      );
      family(
        "rapl_rejected_total",
        "counter",
        "RAPL readings rejected: implausible power, too long between reads to rule out a double wrap, or a failed read.",
        rapl.tracked.flatMap((z) =>
          (["implausible", "too_long_between_reads", "read_error"] as const).map((reason): [string, number] => [
            `${node},zone="${escapeLabel(z.id)}",reason="${reason}"`,
            rapl.counters.get(z.id)?.rejected[reason] ?? 0,
          ]),
        ),
      );
      family(
        "rapl_zone_stuck",
        "gauge",
        "1 for a PSYS zone whose counter did not advance while the packages' did: it is no longer used, package + DRAM are.",
        rapl.stuckZones.map((z) => [zoneLabels(z), 1]),
      );
      family("rapl_poll_errors_total", "counter", "Fast RAPL polls that failed (logged once; the sample loop goes on).", [
        [node, this.pollErrors],
      ]);
    }
    if (d.metadata) {
      family("nomad_lookup_errors_total", "counter", "Failed requests to the local Nomad agent for allocation metadata.", [
        [node, d.metadata.errors],
      ]);
    }
    if (d.containers) {
      family("docker_lookup_errors_total", "counter", "Failed requests to the Docker Engine API for container identities.", [
        [node, d.containers.errors],
      ]);
      family(
        "docker_unresolved_containers",
        "gauge",
        "Docker container cgroups not yet mapped to a Nomad task (their CPU time counts as system).",
        [[node, this.unresolvedContainers]],
      );
    }
    family("samples_total", "counter", "Samples taken.", [[node, this.samples]]);
    if (this.lastSampleMs !== undefined) {
      family("last_sample_timestamp_seconds", "gauge", "When the last sample was taken.", [[node, this.lastSampleMs / 1000]]);
    }
    return out.finish();
  }
}
