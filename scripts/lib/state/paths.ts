import { resolve } from "node:path";

/** Where a cluster's local state lives: `.hashistack/<cluster>/` (git-ignored). */
export interface StatePaths {
  root: string;
  secrets: string;
  inventoryCopy: string;
  stages: string;
  tls: string;
}

export function statePaths(
  cluster: string,
  base = process.env.HASHISTACK_STATE_DIR ?? resolve(process.cwd(), ".hashistack"),
): StatePaths {
  const root = resolve(base, cluster);
  return {
    root,
    secrets: resolve(root, "secrets"),
    inventoryCopy: resolve(root, "inventory.yaml"),
    stages: resolve(root, "stages.json"),
    tls: resolve(root, "tls"),
  };
}
