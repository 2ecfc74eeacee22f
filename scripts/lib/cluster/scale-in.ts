/**
 * Scale in: when `topology.clients` is lower than the provisioned inventory, the
 * clients beyond it leave before the provider is asked for the smaller
 * topology. Each one is drained in Nomad (its allocations migrate, within
 * `rollout.drainDeadline`), leaves Consul gracefully and is pruned from the
 * member list, is purged from Nomad, and is removed by its provider. Lowering
 * `topology.servers` is refused: servers are raft peers, and removing them is
 * not built yet.
 */
import { existsSync } from "node:fs";
import type { NomadClient } from "../clients/nomad.ts";
import { InputError, NotImplementedError, OperationError } from "../errors.ts";
import { loadInventory } from "../inventory/load.ts";
import { hostsWithRole, type Inventory, type InventoryHost } from "../inventory/schema.ts";
import type { Provider, ProviderContext } from "../providers/types.ts";
import { pollUntil } from "../stages/rolling.ts";
import { openClusterRun, type ClusterRun } from "../stages/run-context.ts";
import { durationSeconds } from "../util/duration.ts";
import { withConsul, withNomad } from "./access.ts";

/** The clients a run with this config would remove from the provisioned inventory (the last ones first). */
export function clientsToRemove(topology: { servers: number; clients: number }, previous: Inventory): InventoryHost[] {
  const servers = hostsWithRole(previous, "server").length;
  if (topology.servers < servers) {
    const quorum = Math.floor(servers / 2) + 1;
    if (topology.servers < quorum)
      throw new InputError(
        `topology.servers is ${topology.servers}, but the cluster has ${servers} servers: removing ${servers - topology.servers} at once would lose the raft quorum (${quorum} of ${servers}).`,
        {
          hint: `Set topology.servers back to ${servers}. Servers can only leave one at a time with a quorum check, which is not built yet.`,
        },
      );
    throw new NotImplementedError(`Lowering topology.servers (${servers} → ${topology.servers})`, "issue 14 (scale in servers)");
  }
  return hostsWithRole(previous, "client").slice(topology.clients);
}

/** Remove the clients the config no longer has; returns one line per thing done (empty: nothing to remove). */
export async function scaleIn(context: ProviderContext, provider: Provider): Promise<string[]> {
  if (!existsSync(context.state.inventoryCopy)) return [];
  const previous = await loadInventory(context.state.inventoryCopy);
  const leaving = clientsToRemove(context.config.topology, previous);
  if (!leaving.length) return [];
  if (!provider.removeNodes) throw new NotImplementedError(`Removing nodes on the ${provider.name} provider`, "issue 14");
  const done: string[] = [];
  const run = await openClusterRun(context, previous);
  try {
    const server = hostsWithRole(previous, "server")[0] as InventoryHost;
    for (const host of leaving) {
      const step = context.reporter.step(`scale in: ${host.name}`);
      done.push(...(await drainAndLeave(run, server, host)));
      step.done(`drained and left`);
    }
    done.push(
      ...(await provider.removeNodes(
        context,
        leaving.map((h) => h.name),
      )),
    );
  } finally {
    run.close();
  }
  return done;
}

async function drainAndLeave(run: ClusterRun, server: InventoryHost, host: InventoryHost): Promise<string[]> {
  const done: string[] = [];
  const nomadToken = (await run.secrets.read("nomad-bootstrap-token")) ?? undefined;
  const consulToken = (await run.secrets.read("consul-bootstrap-token")) ?? undefined;
  const deadlineSeconds = durationSeconds(run.config.rollout.drainDeadline);
  const nodeId = await withNomad(
    run,
    server,
    async (nomad) => {
      const node = (await nomad.nodes()).find((n) => n.Name === host.name);
      if (!node) return undefined;
      await drainNode(nomad, node.ID, host, deadlineSeconds);
      done.push(`Nomad client ${host.name} drained`);
      return node.ID;
    },
    { token: nomadToken },
  );
  // graceful leave from the node's own agent, then pruned from every member list
  await withConsul(run, host, (consul) => consul.api.put("/v1/agent/leave"), { token: consulToken }).catch((error: unknown) => {
    run.reporter.warn(`Consul on ${host.name} did not leave gracefully (${(error as Error).message}); pruning it`);
  });
  await withConsul(
    run,
    server,
    (consul) => consul.api.put(`/v1/agent/force-leave/${encodeURIComponent(host.name)}`, undefined, { prune: true }),
    {
      token: consulToken,
    },
  );
  done.push(`Consul agent ${host.name} left`);
  await run.remote(host).runAsRoot("systemctl stop nomad consul consul-template", { allowFailure: true });
  if (nodeId) {
    await withNomad(run, server, (nomad) => nomad.api.post(`/v1/node/${nodeId}/purge`), { token: nomadToken });
    done.push(`Nomad node ${host.name} purged`);
  }
  return done;
}

/** Drain with a deadline (system jobs too) and wait until nothing runs there any more. */
async function drainNode(nomad: NomadClient, nodeId: string, host: InventoryHost, deadlineSeconds: number): Promise<void> {
  await nomad.api.post(`/v1/node/${nodeId}/drain`, {
    DrainSpec: { Deadline: deadlineSeconds * 1e9, IgnoreSystemJobs: false },
    MarkEligible: false,
    Meta: { message: "scale in (hashistack-bootstrap)" },
  });
  await pollUntil(
    async () => {
      const node = await nomad.api.get<{ DrainStrategy: unknown }>(`/v1/node/${nodeId}`);
      if (node.DrainStrategy) return false;
      const allocs = await nomad.api.get<{ ClientStatus: string }[]>(`/v1/node/${nodeId}/allocations`);
      return !allocs.some((a) => a.ClientStatus === "running" || a.ClientStatus === "pending");
    },
    {
      timeoutMs: (deadlineSeconds + 120) * 1000,
      intervalMs: 1000,
      fail: (last) =>
        new OperationError(`Nomad client ${host.name} still runs allocations after its drain deadline.`, {
          details: last instanceof Error ? [last.message] : [],
          hint: `Check 'nomad node status ${host.name}'; the node was not removed, and a re-run tries again.`,
        }),
    },
  );
}
