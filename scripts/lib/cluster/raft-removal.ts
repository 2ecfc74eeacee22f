/**
 * Taking one server out of a product's raft cluster without losing quorum or
 * a leader: first the product's own health verdict (autopilot) must name a
 * leader and call every other server healthy, and at least three peers must be
 * there; then a leader that is leaving hands leadership to a healthy voter;
 * only then does the agent leave (or stop) and its raft peer go. The product's
 * API calls are behind `RaftMembership` (raft-members.ts), so the order and
 * the refusals are tested with a fake.
 */
import { OperationError } from "../errors.ts";
import type { InventoryHost } from "../inventory/schema.ts";

export interface RaftPeer {
  /** the raft server ID */
  id: string;
  /** the inventory host it runs on (matched by address), or its raft name when no host matches */
  host: string;
  address: string;
  voter: boolean;
  /** autopilot's verdict */
  healthy: boolean;
}

export interface RaftView {
  /** the host that leads (undefined: no leader) */
  leader: string | undefined;
  peers: RaftPeer[];
}

/** One product's raft membership, as the removal needs it. */
export interface RaftMembership {
  product: "Consul" | "Nomad" | "Vault";
  /** the raft configuration with autopilot's health per server, asked through `via` */
  view(via: InventoryHost): Promise<RaftView>;
  /** ask the leader (through `via`) to hand leadership from `from` to `to` */
  transferLeadership(via: InventoryHost, from: InventoryHost, to: RaftPeer): Promise<void>;
  /** the agent on `host` leaves (gracefully where the product can) and stops */
  leave(host: InventoryHost): Promise<void>;
  /** true when a graceful `leave` removes the raft peer by itself (Consul) */
  leaveRemovesPeer: boolean;
  /** remove `peer` from the raft configuration through `via` */
  removePeer(via: InventoryHost, peer: RaftPeer): Promise<void>;
  /** prune `host` from the product's gossip member list, where it has one */
  forget?(via: InventoryHost, host: InventoryHost): Promise<void>;
}

export interface RemovalOptions {
  warn(message: string): void;
  /** how long an unhealthy cluster may take to become healthy before the removal is refused */
  healthyWithinMs: number;
  /** how long a leadership transfer and the peer's removal may take */
  settleMs: number;
  intervalMs: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

export const defaultRemovalTiming = { healthyWithinMs: 90_000, settleMs: 120_000, intervalMs: 500 } as const;

/** Why `host` cannot leave this raft cluster now (empty: it can). */
export function removalProblems(view: RaftView, host: string): string[] {
  const problems: string[] = [];
  if (!view.leader) problems.push("there is no leader");
  const others = view.peers.filter((p) => p.host !== host);
  const unhealthy = others.filter((p) => !p.healthy).map((p) => p.host);
  if (unhealthy.length) problems.push(`${unhealthy.join(", ")} ${unhealthy.length > 1 ? "are" : "is"} not healthy`);
  const voters = view.peers.filter((p) => p.voter).length;
  if (view.peers.some((p) => p.host === host) && voters < 3)
    problems.push(
      `only ${voters} voter${voters === 1 ? "" : "s"}: without ${host} there would be no quorum left to lose one more`,
    );
  return problems;
}

/** The first of `servers` that answers, with its view of the cluster. */
async function viewFrom(membership: RaftMembership, servers: InventoryHost[]): Promise<{ via: InventoryHost; view: RaftView }> {
  const errors: string[] = [];
  for (const via of servers) {
    try {
      return { via, view: await membership.view(via) };
    } catch (error) {
      errors.push(`${via.name}: ${(error as Error).message}`);
    }
  }
  throw new OperationError(`${membership.product}: none of ${servers.map((s) => s.name).join(", ")} answered.`, {
    details: errors,
    hint: "Check them with 'npm run status'.",
  });
}

async function waitFor(
  membership: RaftMembership,
  servers: InventoryHost[],
  done: (view: RaftView) => boolean,
  withinMs: number,
  options: RemovalOptions,
): Promise<{ via: InventoryHost; view: RaftView } | { failed: string; last?: RaftView }> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const deadline = now() + withinMs;
  let last: RaftView | undefined;
  let failed = "";
  for (;;) {
    try {
      const answer = await viewFrom(membership, servers);
      last = answer.view;
      if (done(answer.view)) return answer;
      failed = "";
    } catch (error) {
      failed = (error as Error).message;
    }
    if (now() >= deadline) return { failed, last };
    await sleep(options.intervalMs);
  }
}

/**
 * Wait (within `healthyWithinMs`) until `host` can leave: refuses with an
 * OperationError naming what is wrong otherwise. Nothing is changed.
 */
export async function checkRemovable(
  membership: RaftMembership,
  host: InventoryHost,
  remaining: InventoryHost[],
  options: RemovalOptions,
): Promise<RaftView> {
  const answer = await waitFor(
    membership,
    remaining,
    (view) => removalProblems(view, host.name).length === 0,
    options.healthyWithinMs,
    options,
  );
  if ("view" in answer) return answer.view;
  const problems = answer.last
    ? removalProblems(answer.last, host.name)
    : [`none of ${remaining.map((r) => r.name).join(", ")} answered`];
  throw new OperationError(`${membership.product}: refusing to remove ${host.name}: ${problems.join("; ")}.`, {
    details: answer.last ? describeView(answer.last) : [answer.failed],
    hint: "Nothing was removed. Bring the cluster back to health (npm run status shows it), then re-run.",
  });
}

function describeView(view: RaftView): string[] {
  return [
    `leader: ${view.leader ?? "none"}`,
    ...view.peers.map((p) => `${p.host} ${p.address} ${p.voter ? "voter" : "non-voter"} ${p.healthy ? "healthy" : "unhealthy"}`),
  ];
}

/**
 * Take `host` out of the raft cluster; `remaining` are the servers that stay.
 * Returns one line per thing done.
 */
export async function removeRaftServer(
  membership: RaftMembership,
  host: InventoryHost,
  remaining: InventoryHost[],
  options: RemovalOptions,
): Promise<string[]> {
  const { product } = membership;
  const done: string[] = [];
  const view = await checkRemovable(membership, host, remaining, options);
  if (!view.peers.some((p) => p.host === host.name)) {
    // a run that stopped halfway: the peer is gone already, the agent may still run
    await membership.leave(host).catch(() => undefined);
    return [`${product}: ${host.name} was no raft peer any more`];
  }
  if (view.leader === host.name) {
    const target = view.peers.find((p) => p.host !== host.name && p.voter && p.healthy) as RaftPeer;
    const via = remaining.find((h) => h.name === target.host) ?? (remaining[0] as InventoryHost);
    await membership.transferLeadership(via, host, target);
    const moved = await waitFor(
      membership,
      remaining,
      (v) => v.leader !== undefined && v.leader !== host.name,
      options.settleMs,
      options,
    );
    if (!("view" in moved)) {
      throw new OperationError(`${product}: leadership did not move away from ${host.name}.`, {
        details: moved.last ? describeView(moved.last) : [moved.failed],
        hint: `${host.name} is still a member; re-run once '${product.toLowerCase()} operator raft list-peers' shows a steady leader.`,
      });
    }
    done.push(`${product} leadership handed from ${host.name} to ${moved.view.leader}`);
  }
  let left = true;
  try {
    await membership.leave(host);
  } catch (error) {
    left = false;
    options.warn(`${product} on ${host.name} did not leave gracefully (${(error as Error).message}); removing its raft peer`);
  }
  const gone = (v: RaftView) => v.leader !== undefined && !v.peers.some((p) => p.host === host.name);
  if (left && membership.leaveRemovesPeer) {
    // a graceful leave removes the peer by itself; the explicit removal is the fallback
    const removed = await waitFor(membership, remaining, gone, Math.min(15_000, options.settleMs), options);
    if ("view" in removed) {
      done.push(`${product} server ${host.name} left raft`);
      await forget(membership, remaining, host, options, done);
      return done;
    }
  }
  const current = await viewFrom(membership, remaining);
  const peer = current.view.peers.find((p) => p.host === host.name);
  if (peer) await membership.removePeer(current.via, peer);
  const removed = await waitFor(membership, remaining, gone, options.settleMs, options);
  if (!("view" in removed)) {
    throw new OperationError(`${product}: ${host.name} is still a raft peer after its removal.`, {
      details: removed.last ? describeView(removed.last) : [removed.failed],
      hint: "Re-run: the removal starts again from the health check.",
    });
  }
  done.push(`${product} raft peer ${host.name} removed`);
  await forget(membership, remaining, host, options, done);
  return done;
}

async function forget(
  membership: RaftMembership,
  remaining: InventoryHost[],
  host: InventoryHost,
  options: RemovalOptions,
  done: string[],
): Promise<void> {
  if (!membership.forget) return;
  const { via } = await viewFrom(membership, remaining);
  try {
    await membership.forget(via, host);
    done.push(`${membership.product} member ${host.name} pruned`);
  } catch (error) {
    options.warn(`${membership.product}: pruning ${host.name} from the member list failed (${(error as Error).message})`);
  }
}
