/**
 * One node out of the running cluster, before its provider removes it: a
 * server leaves Vault's (if it is a Vault node), Nomad's and Consul's raft one
 * product at a time behind the quorum checks of raft-removal.ts (every check
 * passes before anything changes); a client is drained and leaves like a
 * scaled-in one (scale-in.ts).
 */
import { hostsWithRole, type Inventory, type InventoryHost } from "../inventory/schema.ts";
import type { ClusterRun } from "../stages/run-context.ts";
import { consulMembership, nomadMembership, vaultMembership } from "./raft-members.ts";
import {
  checkRemovable,
  defaultRemovalTiming,
  type RaftMembership,
  removeRaftServer,
  type RemovalOptions,
} from "./raft-removal.ts";
import { drainAndLeave } from "./client-removal.ts";

/** The raft memberships `host` holds, each with the hosts that stay in it; Vault first, Consul last. */
export function membershipsOf(
  run: ClusterRun,
  inventory: Inventory,
  host: InventoryHost,
): { membership: RaftMembership; remaining: InventoryHost[] }[] {
  const others = (role: "server" | "vault") => hostsWithRole(inventory, role).filter((h) => h.name !== host.name);
  const list: { membership: RaftMembership; remaining: InventoryHost[] }[] = [];
  if (host.roles.includes("vault") && others("vault").length)
    list.push({ membership: vaultMembership(run), remaining: others("vault") });
  if (host.roles.includes("server")) {
    list.push({ membership: nomadMembership(run), remaining: others("server") });
    list.push({ membership: consulMembership(run), remaining: others("server") });
  }
  return list;
}

/** Take `host` out of the cluster described by `inventory` (it is still in it); one line per thing done. */
export async function removeFromCluster(
  run: ClusterRun,
  inventory: Inventory,
  host: InventoryHost,
  timing: Partial<Omit<RemovalOptions, "warn">> = {},
): Promise<string[]> {
  const options: RemovalOptions = { ...defaultRemovalTiming, ...timing, warn: (m) => run.reporter.warn(m) };
  const memberships = membershipsOf(run, inventory, host);
  // every product healthy (the others than `host`) before any of them changes
  for (const { membership, remaining } of memberships) await checkRemovable(membership, host, remaining, options);
  const done: string[] = [];
  for (const { membership, remaining } of memberships)
    done.push(...(await removeRaftServer(membership, host, remaining, options)));
  if (host.roles.includes("client")) {
    done.push(...(await drainAndLeave(run, hostsWithRole(inventory, "server")[0] as InventoryHost, host)));
  } else {
    // what is left on a server (consul-template, a Consul agent that did not exit): the node goes next
    await run
      .remote(host)
      .runAsRoot("systemctl stop consul-template nomad consul vault", { allowFailure: true })
      .catch(() => undefined);
  }
  return done;
}
