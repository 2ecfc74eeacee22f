/**
 * The order in which changed agents restart, so that a re-run never takes a
 * cluster down: servers one at a time, each only after the previous one rejoined
 * and the cluster is healthy again, the leader last after handing leadership
 * away; clients in batches, each batch back before the next. What "leader",
 * "hand away" and "healthy" mean is the product's (a `ServerGate`); this module
 * only decides the order.
 */
import type { InventoryHost } from "../inventory/schema.ts";

/** How one product's servers are watched while they restart. */
export interface ServerGate {
  /** the name of the host that leads now (undefined: no leader or unknown) */
  leader(servers: InventoryHost[]): Promise<string | undefined>;
  /** hand leadership from `leader` to another server and wait for the new one; false when that was not possible */
  transferLeadership(leader: InventoryHost, servers: InventoryHost[]): Promise<boolean>;
  /** wait until `host` is back after its restart and the cluster is healthy again (throws on timeout) */
  waitHealthy(host: InventoryHost, servers: InventoryHost[]): Promise<void>;
}

/** How a batch of client agents is checked after its restart. */
export interface ClientGate {
  waitHealthy(batch: InventoryHost[]): Promise<void>;
}

export type Rollout =
  { kind: "servers"; gate: ServerGate; servers: InventoryHost[] } | { kind: "clients"; gate: ClientGate; batchSize: number };

/** One step of a rollout, in order: for reporting and dry runs. */
export interface RolloutStep {
  hosts: string[];
  /** leadership was handed away first */
  transferred?: boolean;
}

/** Called after each step, once its hosts are healthy again (the rollout journal records them). */
export type StepDone = (step: RolloutStep) => Promise<void>;

/**
 * Restart `pending` servers one at a time: a follower whenever there is one (in
 * `pending`'s order), the leader last (after a transfer when there is another
 * server to take over). The leader is asked again before every step: an election
 * in between changes it.
 */
export async function rollServers(
  pending: InventoryHost[],
  restart: (host: InventoryHost) => Promise<void>,
  gate: ServerGate,
  servers: InventoryHost[],
  onStep?: StepDone,
): Promise<RolloutStep[]> {
  const steps: RolloutStep[] = [];
  const left = [...pending];
  while (left.length) {
    const leader = await gate.leader(servers);
    const next = left.find((h) => h.name !== leader) ?? (left[0] as InventoryHost);
    left.splice(left.indexOf(next), 1);
    const step: RolloutStep = { hosts: [next.name] };
    if (next.name === leader && servers.length > 1) step.transferred = await gate.transferLeadership(next, servers);
    await restart(next);
    await gate.waitHealthy(next, servers);
    await onStep?.(step);
    steps.push(step);
  }
  return steps;
}

/** Restart clients `batchSize` at a time (in parallel within a batch), each batch healthy before the next. */
export async function rollClients(
  pending: InventoryHost[],
  restart: (host: InventoryHost) => Promise<void>,
  gate: ClientGate,
  batchSize: number,
  onStep?: StepDone,
): Promise<RolloutStep[]> {
  const steps: RolloutStep[] = [];
  for (const batch of batchesOf(pending, batchSize)) {
    await Promise.all(batch.map(restart));
    await gate.waitHealthy(batch);
    const step = { hosts: batch.map((h) => h.name) };
    await onStep?.(step);
    steps.push(step);
  }
  return steps;
}

export function batchesOf<T>(items: T[], size: number): T[][] {
  const batches: T[][] = [];
  for (let i = 0; i < items.length; i += Math.max(1, size)) batches.push(items.slice(i, i + Math.max(1, size)));
  return batches;
}

/** The restart order a dry run shows: servers with the leader last, clients in batches. */
export function plannedOrder(pending: InventoryHost[], rollout: Rollout, leader?: string): string[][] {
  if (rollout.kind === "clients") return batchesOf(pending, rollout.batchSize).map((b) => b.map((h) => h.name));
  const followers = pending.filter((h) => h.name !== leader).map((h) => [h.name]);
  const lead = pending.filter((h) => h.name === leader).map((h) => [h.name]);
  return [...followers, ...lead];
}

/** Poll `check` every `intervalMs` until it returns true; a throw counts as "not yet". Throws `fail()` at the deadline. */
export async function pollUntil(
  check: () => Promise<boolean>,
  options: { timeoutMs: number; intervalMs?: number; fail: (lastError?: unknown) => Error },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 500));
  }
  throw options.fail(lastError);
}
