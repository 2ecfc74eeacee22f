/**
 * Everything the cluster stages share for one run: the inventory, an SSH
 * connection per host, the secret store and the rendered file plan.
 */
import { existsSync } from "node:fs";
import { OperationError } from "../errors.ts";
import { loadInventory } from "../inventory/load.ts";
import type { Inventory, InventoryHost } from "../inventory/schema.ts";
import type { ProviderContext } from "../providers/types.ts";
import { onEachHost, requireAllSucceeded } from "../remote/fanout.ts";
import { KnownHosts } from "../remote/known-hosts.ts";
import type { Remote } from "../remote/remote.ts";
import { RemoteHost, sshTarget } from "../remote/ssh.ts";
import { type HostPlan, planCluster } from "../render/plan.ts";
import { ensureRenderSecrets, type RenderSecrets, SecretStore } from "../state/secrets.ts";

export interface ClusterRun extends ProviderContext {
  inventory: Inventory;
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
  options: { tolerateUnreachable?: boolean } = {},
): Promise<ClusterRun> {
  const secrets = new SecretStore(context.state);
  const { secrets: renderSecrets } = await ensureRenderSecrets(
    secrets,
    inventory.hosts.map((h) => h.name),
  );
  const knownHosts = new KnownHosts(context.state.knownHosts);
  const remotes = new Map(inventory.hosts.map((h) => [h.name, new RemoteHost(sshTarget(h))]));
  const connected = await onEachHost(
    [...remotes.values()],
    (r) => r.connect({ waitMs: options.tolerateUnreachable ? 3_000 : 60_000, knownHosts }),
    { concurrency: context.config.concurrency },
  );
  if (!options.tolerateUnreachable) {
    try {
      requireAllSucceeded("Connecting over SSH", connected);
    } catch (error) {
      for (const r of remotes.values()) r.dispose();
      throw error;
    }
  }
  const plans = new Map(planCluster(context.config, inventory, renderSecrets).map((p) => [p.host.name, p]));
  return {
    ...context,
    inventory,
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
