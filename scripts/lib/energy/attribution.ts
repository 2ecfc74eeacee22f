/**
 * Splitting one interval's node energy. The idle (static) part belongs to no
 * workload: it goes to `unattributed`. The dynamic part follows CPU time:
 * each task gets dynamic × its CPU-seconds / the node's busy CPU-seconds, and
 * what the node spent outside Nomad tasks (OS, agents, this exporter) is
 * `system`. When task time exceeds the node's (the two are read a few ms
 * apart) shares are normalised to the tasks' sum, so nothing is counted twice.
 *
 * Conservation: Σ tasks + system + unattributed = node, for every interval.
 */
export interface AttributionInput {
  nodeJoules: number;
  idleJoules: number;
  /** busy CPU-seconds of the whole node in the interval */
  nodeCpuSeconds: number;
  tasks: { key: string; cpuSeconds: number }[];
}

export interface Attribution {
  tasks: Map<string, number>;
  system: number;
  unattributed: number;
  idle: number;
  dynamic: number;
}

export function attribute(input: AttributionInput): Attribution {
  const cpuSeconds = input.tasks.map((t) => t.cpuSeconds);
  const joules: number[] = [];
  const split = attributeInto(input, cpuSeconds, cpuSeconds.length, joules);
  const tasks = new Map<string, number>();
  input.tasks.forEach((t, i) => tasks.set(t.key, joules[i] as number));
  return { tasks, ...split };
}

/**
 * `attribute` on arrays the caller keeps between intervals (the exporter:
 * nothing built per task and sample): task i's CPU-seconds are
 * `cpuSeconds[i]`, its joules are written to `joules[i]`, for i < count.
 */
export function attributeInto(
  input: Omit<AttributionInput, "tasks">,
  cpuSeconds: ArrayLike<number>,
  count: number,
  joules: number[],
): Omit<Attribution, "tasks"> {
  const node = Math.max(0, input.nodeJoules);
  const idle = Math.min(node, Math.max(0, input.idleJoules));
  const dynamic = node - idle;
  let taskCpu = 0;
  for (let i = 0; i < count; i++) taskCpu += Math.max(0, cpuSeconds[i] as number);
  const denominator = Math.max(Math.max(0, input.nodeCpuSeconds), taskCpu);
  if (denominator <= 0) {
    // no CPU time was seen at all: nothing to share by, so nothing is attributed
    for (let i = 0; i < count; i++) joules[i] = 0;
    return { system: 0, unattributed: node, idle, dynamic };
  }
  for (let i = 0; i < count; i++) joules[i] = (dynamic * Math.max(0, cpuSeconds[i] as number)) / denominator;
  const system = (dynamic * (denominator - taskCpu)) / denominator;
  return { system, unattributed: idle, idle, dynamic };
}
