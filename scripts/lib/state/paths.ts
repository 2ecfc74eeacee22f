import { resolve } from "node:path";
import { clusterNamePattern } from "../config/schema.ts";

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
  // names reach here validated (config schema, --cluster); this keeps any other
  // caller from escaping the state dir with '..' or a '/'
  if (!clusterNamePattern.test(cluster))
    throw new Error(`bug: statePaths called with an unchecked cluster name ${JSON.stringify(cluster)}`);
  const root = resolve(base, cluster);
  return {
    root,
    secrets: resolve(root, "secrets"),
    inventoryCopy: resolve(root, "inventory.yaml"),
    stages: resolve(root, "stages.json"),
    tls: resolve(root, "tls"),
  };
}
