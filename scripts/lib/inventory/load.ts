import { dirname, isAbsolute, resolve } from "node:path";
import { stringify } from "yaml";
import { writeFileAtomic } from "../util/fs.ts";
import { loadYamlFile } from "../util/validated-yaml.ts";
import { type Inventory, inventorySchema } from "./schema.ts";

/** `inventories/<cluster>.yaml`; HASHISTACK_INVENTORY_DIR moves the folder (tests, CI). */
export function inventoryPath(
  cluster: string,
  dir = process.env.HASHISTACK_INVENTORY_DIR ?? resolve(process.cwd(), "inventories"),
): string {
  return resolve(dir, `${cluster}.yaml`);
}

export async function loadInventory(file: string): Promise<Inventory> {
  const inventory = await loadYamlFile(
    file,
    inventorySchema,
    "Inventory",
    "See inventories/example-static.yaml for the format; providers write this file for you.",
  );
  // key paths are relative to the inventory so the file can move with its keys
  for (const host of inventory.hosts) {
    if (host.ssh.keyPath && !isAbsolute(host.ssh.keyPath)) host.ssh.keyPath = resolve(dirname(file), host.ssh.keyPath);
  }
  return inventory;
}

export async function writeInventory(file: string, inventory: Inventory): Promise<void> {
  const header = `# Written by hashistack-bootstrap for cluster '${inventory.cluster}'. Hosts: name, roles, addresses, SSH.\n`;
  await writeFileAtomic(file, header + stringify(inventory, { aliasDuplicateObjects: false }), 0o644);
}
