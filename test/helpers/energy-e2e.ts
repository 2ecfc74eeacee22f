/**
 * The e2e clusters' burn-versus-idle check of the energy exporter: two tasks on
 * one client, one spinning a CPU and one asleep, read from that client's
 * exporter until both are exported with their Nomad labels, then again after a
 * window; the burning task must have gained clearly more energy.
 */
import { setTimeout as sleep } from "node:timers/promises";

/** the task series of one Nomad job in an exposition text */
export function taskSeries(metrics: string, nomadJob: string): { labels: Record<string, string>; joules: number }[] {
  return metrics
    .split("\n")
    .filter((l) => l.startsWith("hashistack_energy_task_joules_total{") && l.includes(`nomad_job="${nomadJob}"`))
    .map((line) => {
      const labels: Record<string, string> = {};
      const body = line.slice(line.indexOf("{") + 1, line.lastIndexOf("}"));
      for (const match of body.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[match[1] as string] = match[2] as string;
      return { labels, joules: Number(line.split(" ").pop()) };
    });
}

export interface BurnVersusIdle {
  /** joules gained over the window */
  burned: number;
  idled: number;
  /** the series as first seen with both tasks exported */
  burnSeries: ReturnType<typeof taskSeries>;
  idleSeries: ReturnType<typeof taskSeries>;
}

/** `scrape` returns the client's /metrics text ("" when it does not answer). */
export async function burnVersusIdle(
  scrape: () => Promise<string>,
  jobs: { burn: string; idle: string },
  windowMs = 30_000,
): Promise<BurnVersusIdle> {
  const read = async () => {
    const text = await scrape();
    const burn = taskSeries(text, jobs.burn);
    const idle = taskSeries(text, jobs.idle);
    const sum = (s: typeof burn) => s.reduce((total, x) => total + x.joules, 0);
    return { burn, idle, burnJoules: sum(burn), idleJoules: sum(idle) };
  };
  // both tasks running and named by the exporter, then a window of accumulation
  let start = await read();
  for (let i = 0; i < 40 && !(start.burnJoules > 0 && start.idle.length > 0); i++) {
    await sleep(3000);
    start = await read();
  }
  await sleep(windowMs);
  const end = await read();
  return {
    burned: end.burnJoules - start.burnJoules,
    idled: end.idleJoules - start.idleJoules,
    burnSeries: start.burn,
    idleSeries: start.idle,
  };
}
