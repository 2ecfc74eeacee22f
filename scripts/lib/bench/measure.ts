/** Tiny benchmark helpers: repeated timings with median and spread, and memory. */
export interface Timing {
  name: string;
  runs: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
}

export async function time(name: string, runs: number, action: () => unknown | Promise<unknown>): Promise<Timing> {
  await action(); // warm-up: module loading and JIT are not what we measure
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = process.hrtime.bigint();
    await action();
    samples.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  samples.sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 100) / 100;
  return {
    name,
    runs,
    medianMs: round(samples[Math.floor(samples.length / 2)] ?? 0),
    minMs: round(samples[0] ?? 0),
    maxMs: round(samples[samples.length - 1] ?? 0),
  };
}

export function rssMb(): number {
  return Math.round((process.memoryUsage().rss / 1024 / 1024) * 10) / 10;
}
