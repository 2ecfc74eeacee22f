/**
 * Scale in: when `topology.clients` or `topology.servers` is lower than the
 * provisioned inventory, the nodes beyond it leave before the provider is asked
 * for the smaller topology. Clients are drained and leave (client-removal.ts);
 * servers leave one at a time, the last one first, each behind the quorum
 * checks of raft-removal.ts, and each is removed by its provider (and the
 * inventory rewritten without it) before the next one goes. An even server
 * count or one below the quorum of the current servers is refused
 * (removal-plan.ts).
 */
import { existsSync } from "node:fs";
import { NotImplementedError } from "../errors.ts";
import { loadInventory } from "../inventory/load.ts";
import { hostsWithRole, type Inventory, type InventoryHost } from "../inventory/schema.ts";
import { saveInventory } from "../providers/local-state.ts";
import type { Provider, ProviderContext } from "../providers/types.ts";
import { openClusterRun } from "../stages/run-context.ts";
import { drainAndLeave } from "./client-removal.ts";
import { removeFromCluster } from "./node-removal.ts";
import { serversToRemove } from "./removal-plan.ts";

/** The clients a run with this config would remove from the provisioned inventory (the last ones). */
export function clientsToRemove(topology: { clients: number }, previous: Inventory): InventoryHost[] {
  return hostsWithRole(previous, "client").slice(topology.clients);
}

/** Remove the nodes the config no longer has; returns one line per thing done (empty: nothing to remove). */
export async function scaleIn(context: ProviderContext, provider: Provider): Promise<string[]> {
  if (!existsSync(context.state.inventoryCopy)) return [];
  let inventory = await loadInventory(context.state.inventoryCopy);
  // the refusals first: nothing leaves when the server count is wrong
  const servers = serversToRemove(context.config.topology.servers, inventory);
  const clients = clientsToRemove(context.config.topology, inventory);
  if (!clients.length && !servers.length) return [];
  if (!provider.removeNodes) throw new NotImplementedError(`Removing nodes on the ${provider.name} provider`, "issue 14");
  const done: string[] = [];
  const run = await openClusterRun(context, inventory);
  try {
    if (clients.length) {
      const server = hostsWithRole(inventory, "server")[0] as InventoryHost;
      for (const host of clients) {
        const step = context.reporter.step(`scale in: ${host.name}`);
        done.push(...(await drainAndLeave(run, server, host)));
        step.done(`drained and left`);
      }
      done.push(
        ...(await provider.removeNodes(
          context,
          clients.map((h) => h.name),
        )),
      );
      inventory = await withoutHosts(context, inventory, clients);
    }
    // one server at a time: the next one's quorum check sees the cluster without the last
    for (const host of servers) {
      const step = context.reporter.step(`scale in: server ${host.name}`);
      done.push(...(await removeFromCluster(run, inventory, host)));
      done.push(...(await provider.removeNodes(context, [host.name])));
      inventory = await withoutHosts(context, inventory, [host]);
      step.done(`left raft and removed`);
    }
  } finally {
    run.close();
  }
  return done;
}

/** The inventory without these hosts, written where every later command reads it. */
async function withoutHosts(context: ProviderContext, inventory: Inventory, gone: InventoryHost[]): Promise<Inventory> {
  const next = { ...inventory, hosts: inventory.hosts.filter((h) => !gone.some((g) => g.name === h.name)) };
  await saveInventory(context, next);
  return next;
}
