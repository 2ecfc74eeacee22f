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
  const node = Math.max(0, input.nodeJoules);
  const idle = Math.min(node, Math.max(0, input.idleJoules));
  const dynamic = node - idle;
  const taskCpu = input.tasks.reduce((sum, t) => sum + Math.max(0, t.cpuSeconds), 0);
  const denominator = Math.max(Math.max(0, input.nodeCpuSeconds), taskCpu);
  const tasks = new Map<string, number>();
  if (denominator <= 0) {
    // no CPU time was seen at all: nothing to share by, so nothing is attributed
    for (const t of input.tasks) tasks.set(t.key, 0);
    return { tasks, system: 0, unattributed: node, idle, dynamic };
  }
  for (const t of input.tasks) tasks.set(t.key, (dynamic * Math.max(0, t.cpuSeconds)) / denominator);
  const system = (dynamic * (denominator - taskCpu)) / denominator;
  return { tasks, system, unattributed: idle, idle, dynamic };
}
