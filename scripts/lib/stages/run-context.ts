/**
 * Everything the cluster stages share for one run: the inventory, an SSH
 * connection per host, the secret store and the rendered file plan.
 */
import { existsSync } from "node:fs";
import { OperationError } from "../errors.ts";
import { connectForRun, isEssential, type ReachabilityPlan, type UnreachablePolicy } from "../cluster/reachability.ts";
import { loadInventory } from "../inventory/load.ts";
import type { Inventory, InventoryHost } from "../inventory/schema.ts";
import type { ProviderContext } from "../providers/types.ts";
import { KnownHosts } from "../remote/known-hosts.ts";
import type { Remote } from "../remote/remote.ts";
import { RemoteHost, sshTarget } from "../remote/ssh.ts";
import { type HostPlan, planCluster } from "../render/plan.ts";
import { ensureRenderSecrets, type RenderSecrets, SecretStore } from "../state/secrets.ts";

export interface ClusterRun extends ProviderContext {
  /** the hosts this run works on: every host, less the unreachable clients a bootstrap skips */
  inventory: Inventory;
  /** unreachable clients this run goes on without (`skipUnreachableClients`); empty otherwise */
  skipped: InventoryHost[];
  /** hosts of `inventory` that did not answer (`tolerateUnreachable`): the run works around them and names them */
  unreachable: InventoryHost[];
  remotes: Map<string, RemoteHost>;
  secrets: SecretStore;
  renderSecrets: RenderSecrets;
  plans: Map<string, HostPlan>;
  remote(host: InventoryHost | string): Remote;
  close(): void;
}

export async function openClusterRun(
  context: ProviderContext,
  inventory: Inventory,
  options: {
    /** go on with any host unreachable (status, unseal, snapshot: they name it) */
    tolerateUnreachable?: boolean;
    /**
     * go on without clients that do not answer (bootstrap): they are left out of
     * `inventory` and listed in `skipped`; an unreachable server or Vault node is refused
     */
    skipUnreachableClients?: boolean;
  } = {},
): Promise<ClusterRun> {
  const secrets = new SecretStore(context.state);
  const { secrets: renderSecrets } = await ensureRenderSecrets(
    secrets,
    inventory.hosts.map((h) => h.name),
  );
  const knownHosts = new KnownHosts(context.state.knownHosts);
  const remotes = new Map(inventory.hosts.map((h) => [h.name, new RemoteHost(sshTarget(h))]));
  const policy: UnreachablePolicy = options.tolerateUnreachable
    ? "tolerate"
    : options.skipUnreachableClients
      ? "skip-clients"
      : "require-all";
  let plan: ReachabilityPlan;
  try {
    plan = await connectForRun(
      inventory,
      (host) => (remotes.get(host.name) as RemoteHost).connect({ waitMs: connectWaitMs(policy, host), knownHosts }),
      { concurrency: context.config.concurrency, policy },
    );
  } catch (error) {
    for (const r of remotes.values()) r.dispose();
    throw error;
  }
  // rendered for every host: a server's files do not depend on which clients answer today
  const plans = new Map(planCluster(context.config, inventory, renderSecrets).map((p) => [p.host.name, p]));
  return {
    ...context,
    inventory: plan.skipped.length ? { ...inventory, hosts: plan.reachable } : inventory,
    skipped: plan.skipped,
    unreachable: plan.unreachable,
    remotes,
    secrets,
    renderSecrets,
    plans,
    remote(host) {
      const name = typeof host === "string" ? host : host.name;
      const remote = remotes.get(name);
      if (!remote) throw new Error(`no connection for host ${name}`);
      return remote;
    },
    close() {
      for (const r of remotes.values()) r.dispose();
    },
  };
}

/** The inventory of a cluster that was bootstrapped (a clear error otherwise), for the day-two commands. */
export async function bootstrappedInventory(context: ProviderContext): Promise<Inventory> {
  if (!existsSync(context.state.inventoryCopy)) {
    throw new OperationError(`Cluster '${context.config.name}' has not been bootstrapped.`, {
      hint: "Run 'npm run bootstrap' first.",
    });
  }
  return loadInventory(context.state.inventoryCopy);
}

/** How long a run waits for a host's SSH: a client it may skip gets 15 s, not the minute a server gets. */
function connectWaitMs(policy: UnreachablePolicy, host: InventoryHost): number {
  if (policy === "tolerate") return 3_000;
  return policy === "skip-clients" && !isEssential(host) ? 15_000 : 60_000;
}
