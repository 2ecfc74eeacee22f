/**
 * What a lowered `topology.servers` or `--replace <node>` would take out of the
 * provisioned cluster, and the refusals that need no cluster to decide: an even
 * number of servers, fewer than a quorum of the current ones, a node that is
 * not there, the last server or the only Vault node. Changes nothing.
 */
import type { ClusterConfig } from "../config/schema.ts";
import { InputError } from "../errors.ts";
import { hostsWithRole, type Inventory, type InventoryHost } from "../inventory/schema.ts";
import { plannedHosts } from "../topology.ts";

export const quorumOf = (servers: number) => Math.floor(servers / 2) + 1;

/** The odd server counts a run may lower `current` servers to (at least their quorum). */
export function lowerServerCounts(current: number): number[] {
  const counts: number[] = [];
  for (let n = quorumOf(current); n < current; n++) if (n % 2 === 1) counts.push(n);
  return counts;
}

function serverCountHint(current: number): string {
  const lower = lowerServerCounts(current);
  return lower.length
    ? `Set topology.servers to ${lower.join(" or ")} (or back to ${current}): a run keeps at least a quorum of the servers it finds.`
    : `Set topology.servers back to ${current}: ${current - 2} would be fewer than the quorum of ${current} (${quorumOf(current)}).`;
}

/**
 * The servers a smaller `topology.servers` removes, in the order they leave
 * (the last one first). Refuses an even number and anything below the quorum
 * of the current servers as bad input.
 */
export function serversToRemove(wanted: number, previous: Inventory): InventoryHost[] {
  const servers = hostsWithRole(previous, "server");
  if (wanted >= servers.length) return [];
  if (wanted % 2 === 0)
    throw new InputError(`topology.servers is ${wanted}: a raft cluster needs an odd number of servers.`, {
      hint: serverCountHint(servers.length),
    });
  const quorum = quorumOf(servers.length);
  if (wanted < quorum)
    throw new InputError(
      `topology.servers is ${wanted}, but the cluster has ${servers.length} servers: removing ${servers.length - wanted} at once would lose the raft quorum (${quorum} of ${servers.length}).`,
      { hint: serverCountHint(servers.length) },
    );
  return servers.slice(wanted).reverse();
}

export interface ReplacePlan {
  host: InventoryHost;
  /** the servers other than the node (the ones that keep the quorum) */
  remainingServers: InventoryHost[];
  /** the Vault nodes other than the node */
  remainingVault: InventoryHost[];
}

/** Refusals of `--replace <name>` that the inventory and config decide. */
export function planReplace(name: string, config: ClusterConfig, previous: Inventory | undefined): ReplacePlan {
  if (!previous)
    throw new InputError(`--replace ${name}: cluster '${config.name}' has no nodes yet.`, {
      hint: "Run 'npm run bootstrap' without --replace first.",
    });
  const host = previous.hosts.find((h) => h.name === name);
  if (!host)
    throw new InputError(`--replace ${name}: cluster '${config.name}' has no node '${name}'.`, {
      hint: `Its nodes are ${previous.hosts.map((h) => h.name).join(", ")}.`,
    });
  const planned = plannedHosts(config);
  const changed = planned.length !== previous.hosts.length || planned.some((p) => !previous.hosts.some((h) => h.name === p.name));
  if (changed)
    throw new InputError(`--replace ${name}: the config's topology differs from the provisioned nodes.`, {
      details: [
        `config: ${planned.map((p) => p.name).join(", ")}`,
        `provisioned: ${previous.hosts.map((h) => h.name).join(", ")}`,
      ],
      hint: "Apply the topology change with a run without --replace first, or set the topology back.",
    });
  const servers = hostsWithRole(previous, "server");
  const vault = hostsWithRole(previous, "vault");
  const isServer = host.roles.includes("server");
  if (isServer && servers.length < 3)
    throw new InputError(
      `--replace ${name}: the cluster has ${servers.length} server${servers.length === 1 ? "" : "s"}; without ${name} there is no raft quorum.`,
      {
        hint: "Replacing a server keeps the cluster up only with three or more: raise topology.servers to 3 first (or take a snapshot and bootstrap anew).",
      },
    );
  if (host.roles.includes("vault") && vault.length < 3)
    throw new InputError(
      `--replace ${name}: it is ${vault.length === 1 ? "the only Vault node" : `one of only ${vault.length} Vault nodes`}; without it Vault's raft has no quorum and its data would be lost.`,
      { hint: "Use Vault HA (three Vault nodes, topology.vaultHa) to replace Vault nodes; 'npm run snapshot' backs Vault up." },
    );
  return {
    host,
    remainingServers: servers.filter((h) => h.name !== name),
    remainingVault: vault.filter((h) => h.name !== name),
  };
}

/** The steps a removal takes, for dry runs and the confirmation. */
export function describeRemoval(host: InventoryHost): string[] {
  const steps: string[] = [];
  if (host.roles.includes("vault"))
    steps.push(
      "Vault: the active node steps down if it is this one, then its raft peer is removed (sys/storage/raft/remove-peer)",
    );
  if (host.roles.includes("server")) {
    steps.push("Nomad: leadership handed away if it leads, the server stops, its raft peer is removed and it is pruned");
    steps.push("Consul: leadership handed away if it leads, a graceful leave, then force-leave -prune");
  } else steps.push("Nomad: drained (rollout.drainDeadline), then purged; Consul: a graceful leave, then force-leave -prune");
  return steps.map((s) => `${host.name}: ${s}`);
}

/**
 * The dry run's lines for the nodes a run would take out: `--replace` and a
 * lowered `topology.servers`/`topology.clients`. Throws the same refusals the
 * run would (bad input, exit 2).
 */
export function plannedRemovals(config: ClusterConfig, inventory: Inventory | undefined, replace?: string): string[] {
  const lines: string[] = [];
  if (replace !== undefined) {
    const plan = planReplace(replace, config, inventory);
    lines.push(
      `--replace ${replace}: it leaves the cluster, its provider destroys it and provisions a fresh ${replace}, then every stage runs and it joins again`,
      ...describeRemoval(plan.host),
    );
  }
  if (!inventory) return lines;
  for (const host of hostsWithRole(inventory, "client").slice(config.topology.clients))
    lines.push(`scale in: ${host.name} leaves and its node is removed`, ...describeRemoval(host));
  for (const host of serversToRemove(config.topology.servers, inventory))
    lines.push(
      `scale in: ${host.name} leaves and its node is removed (one server at a time, each behind a quorum check)`,
      ...describeRemoval(host),
    );
  return lines;
}
