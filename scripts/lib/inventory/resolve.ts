import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { ClusterConfig } from "../config/schema.ts";
import { InputError } from "../errors.ts";
import { plannedInventory } from "../topology.ts";
import { inventoryPath, loadInventory } from "./load.ts";
import type { Inventory } from "./schema.ts";

export interface ResolvedInventory {
  inventory: Inventory;
  /** where it came from: a file path, or "planned from the topology" */
  source: string;
}

/**
 * The inventory for a command: an explicit file, the provider-written
 * `inventories/<cluster>.yaml`, or — for providers whose addresses we choose —
 * the addresses the provider will use, so configs can be read before provisioning.
 */
export async function resolveInventory(config: ClusterConfig, explicit?: string): Promise<ResolvedInventory> {
  const file =
    explicit !== undefined
      ? resolve(explicit)
      : config.provider.type === "static" && config.provider.static
        ? resolve(config.provider.static.inventory)
        : inventoryPath(config.name);
  if (explicit !== undefined || existsSync(file)) {
    const inventory = await loadInventory(file);
    if (inventory.cluster !== config.name) {
      throw new InputError(`Inventory ${file} belongs to cluster '${inventory.cluster}', not '${config.name}'.`, {
        hint: `Pass --cluster ${inventory.cluster}, or fix the 'cluster' field of the inventory.`,
      });
    }
    return { inventory, source: file };
  }
  const ssh = { user: "root", port: 22 };
  switch (config.provider.type) {
    case "local":
      return {
        inventory: plannedInventory(config, config.provider.local.cidr, ssh, "local"),
        source: "planned from the topology",
      };
    case "vagrant":
      return {
        inventory: plannedInventory(config, config.provider.vagrant.cidr, { ...ssh, user: "vagrant" }, "vagrant"),
        source: "planned from the topology",
      };
    default:
      throw new InputError(`No inventory for cluster '${config.name}' at ${file}.`, {
        hint: "Provision the cluster first (npm run bootstrap), or pass --inventory FILE.",
      });
  }
}
