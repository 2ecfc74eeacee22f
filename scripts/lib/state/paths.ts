import { resolve } from "node:path";
import { clusterNamePattern } from "../config/schema.ts";

/** Where a cluster's local state lives: `.hashistack/<cluster>/` (git-ignored). */
export interface StatePaths {
  root: string;
  secrets: string;
  inventoryCopy: string;
  stages: string;
  /** the resume point of a rolling restart that has not finished (rollout-journal.ts), 0600 */
  rollout: string;
  tls: string;
  /** held while a bootstrap runs against the cluster */
  lock: string;
  /** SSH host keys learnt on first contact (trust on first use) */
  knownHosts: string;
  /** the local copies of the cluster's CA, Vault's trust bundle and the operator's client certificate */
  tlsFiles: TlsFiles;
}

export interface TlsFiles {
  rootCa: string;
  bootstrapCa: string;
  trustBundle: string;
  operatorCert: string;
  operatorKey: string;
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
  const tls = resolve(root, "tls");
  return {
    root,
    secrets: resolve(root, "secrets"),
    inventoryCopy: resolve(root, "inventory.yaml"),
    stages: resolve(root, "stages.json"),
    rollout: resolve(root, "rollout.json"),
    tls,
    lock: resolve(root, "bootstrap.lock"),
    knownHosts: resolve(root, "known_hosts.json"),
    tlsFiles: {
      rootCa: resolve(tls, "ca.pem"),
      bootstrapCa: resolve(tls, "bootstrap-ca.pem"),
      trustBundle: resolve(tls, "vault-trust.pem"),
      operatorCert: resolve(tls, "operator.pem"),
      operatorKey: resolve(tls, "operator-key.pem"),
    },
  };
}
