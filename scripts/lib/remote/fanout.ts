/**
 * Run an action on many hosts with a concurrency bound. Every host's outcome is
 * collected — one failure never hides another — and failures are raised
 * together, each naming its host.
 */
import pLimit from "p-limit";
import { HostsFailedError } from "./errors.ts";

export interface HostOutcome<T> {
  host: string;
  ok: boolean;
  value?: T;
  error?: Error;
  ms: number;
}

export async function onEachHost<H extends { name: string }, T>(
  hosts: H[],
  action: (host: H) => Promise<T>,
  options: { concurrency: number },
): Promise<HostOutcome<T>[]> {
  const limit = pLimit(Math.max(1, options.concurrency));
  return Promise.all(
    hosts.map((host) =>
      limit(async (): Promise<HostOutcome<T>> => {
        const started = Date.now();
        try {
          return { host: host.name, ok: true, value: await action(host), ms: Date.now() - started };
        } catch (error) {
          return { host: host.name, ok: false, error: error as Error, ms: Date.now() - started };
        }
      }),
    ),
  );
}

export function requireAllSucceeded<T>(what: string, outcomes: HostOutcome<T>[]): T[] {
  const failures = outcomes.filter((o) => !o.ok).map((o) => ({ host: o.host, error: o.error as Error }));
  if (failures.length) throw new HostsFailedError(what, failures, outcomes.length);
  return outcomes.map((o) => o.value as T);
}
