/**
 * Existing hosts from a hand-written inventory. `up` creates nothing: it checks
 * that every host answers over SSH and names each one that does not.
 */
import { InputError } from "../errors.ts";
import { loadInventory } from "../inventory/load.ts";
import { localLeftovers, saveInventory } from "./local-state.ts";
import type { Inventory } from "../inventory/schema.ts";
import { requireEssentialHostsAnswered } from "../cluster/reachability.ts";
import { onEachHost } from "../remote/fanout.ts";
import { KnownHosts } from "../remote/known-hosts.ts";
import { RemoteHost, sshTarget } from "../remote/ssh.ts";
import type { DownOptions, Provider, ProviderContext } from "./types.ts";

async function inventoryOf(context: ProviderContext): Promise<Inventory> {
  const file = context.config.provider.static?.inventory;
  if (!file) {
    throw new InputError("provider.type is static but provider.static.inventory is not set.", {
      hint: "Point provider.static.inventory at a hand-written inventory (see inventories/example-static.yaml).",
    });
  }
  const inventory = await loadInventory(file);
  if (inventory.cluster !== context.config.name) {
    throw new InputError(`Inventory ${file} is for cluster '${inventory.cluster}', not '${context.config.name}'.`, {
      hint: "Make the 'cluster' field of the inventory match the config's name (or pass --cluster).",
    });
  }
  return inventory;
}

/** Connect to every host and run `true`; each unreachable host is reported by name. */
export async function checkReachable(inventory: Inventory, knownHosts: KnownHosts, concurrency: number, waitMs = 10_000) {
  return onEachHost(
    inventory.hosts,
    async (host) => {
      const remote = new RemoteHost(sshTarget(host));
      try {
        await remote.connect({ waitMs, knownHosts });
        await remote.run("true", { timeoutMs: 10_000 });
      } finally {
        remote.dispose();
      }
    },
    { concurrency },
  );
}

export const staticProvider: Provider = {
  name: "static",

  async up(context) {
    const inventory = await inventoryOf(context);
    const step = context.reporter.step(`checking SSH on ${inventory.hosts.length} hosts`);
    const outcomes = await checkReachable(inventory, new KnownHosts(context.state.knownHosts), context.config.concurrency);
    let silent: Inventory["hosts"];
    try {
      silent = requireEssentialHostsAnswered("Reaching the inventory's hosts", inventory, outcomes);
    } catch (error) {
      step.fail();
      throw error;
    }
    step.done(
      silent.length ? `${inventory.hosts.length - silent.length} of ${inventory.hosts.length} hosts answer` : "all hosts answer",
    );
    for (const host of silent) context.reporter.warn(`${host.name} (${host.privateIp}) does not answer over SSH`);
    await saveInventory(context, inventory, { published: false });
    return inventory;
  },

  async status(context) {
    const inventory = await inventoryOf(context);
    const outcomes = await checkReachable(inventory, new KnownHosts(context.state.knownHosts), context.config.concurrency, 0);
    return {
      provider: "static",
      nodes: inventory.hosts.map((host, i) => ({
        name: host.name,
        address: sshTarget(host).address,
        state: outcomes[i]?.ok ? "running" : "unknown",
        detail: outcomes[i]?.ok ? "SSH answers" : outcomes[i]?.error?.message,
      })),
      resources: [],
    };
  },

  async down(context, options) {
    // existing hosts are never touched, nor the inventory file they came from. They keep running
    // Vault, whose unseal keys and root token exist only in the state: it stays unless --delete-state
    const leftovers = localLeftovers(context, { keepState: keepsStaticState(options), published: false });
    if (!options.dryRun) await leftovers.remove();
    return leftovers.items;
  },
};

/** The static provider's state goes only with --delete-state (and never with --keep-state). */
export function keepsStaticState(options: Pick<DownOptions, "keepState" | "deleteState">): boolean {
  return options.keepState || !options.deleteState;
}
