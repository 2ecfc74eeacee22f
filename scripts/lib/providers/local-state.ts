/**
 * What every provider keeps on this machine for a cluster: the inventory
 * (inventories/<cluster>.yaml and its copy in the state) and the state directory.
 * Written and removed in one place, so teardown lists exactly what it removes.
 */
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { inventoryPath, writeInventory } from "../inventory/load.ts";
import type { Inventory } from "../inventory/schema.ts";
import type { DownOptions, ProviderContext } from "./types.ts";

/**
 * Writes the inventory to inventories/<cluster>.yaml (unless `published` is false:
 * the static provider's inventory is the user's own file) and to the state copy
 * every later command reads. Returns the published file, if any.
 */
export async function saveInventory(
  context: Pick<ProviderContext, "config" | "state">,
  inventory: Inventory,
  options: { published?: boolean } = {},
): Promise<string | undefined> {
  const file = options.published === false ? undefined : inventoryPath(context.config.name);
  if (file) await writeInventory(file, inventory);
  await writeInventory(context.state.inventoryCopy, inventory);
  return file;
}

export interface LocalLeftovers {
  /** "inventory <file>", "state <dir>": what exists and would go */
  items: string[];
  remove(): Promise<void>;
}

/** The published inventory (unless `published` is false) and, unless --keep-state, the state directory. */
export function localLeftovers(
  context: Pick<ProviderContext, "config" | "state">,
  options: Pick<DownOptions, "keepState"> & { published?: boolean },
): LocalLeftovers {
  const file = options.published === false ? undefined : inventoryPath(context.config.name);
  const found: { item: string; path: string }[] = [];
  if (file && existsSync(file)) found.push({ item: `inventory ${file}`, path: file });
  if (!options.keepState && existsSync(context.state.root))
    found.push({ item: `state ${context.state.root}`, path: context.state.root });
  return {
    items: found.map((f) => f.item),
    async remove() {
      for (const { path } of found) await rm(path, { recursive: true, force: true });
    },
  };
}
