/**
 * Nomad clients probe the cloud metadata services at start, one after another, each
 * with a 2 s timeout (client/fingerprint/env_*.go in Nomad 1.11), and register only
 * when all fingerprints are done. On nodes whose provider says which cloud they are in
 * (or that they are in none), the probes that cannot answer are skipped: on local and
 * Vagrant nodes the metadata address goes out through the host and nothing answers, so
 * the four probes cost up to 8 s on every client start. Static hosts may be anywhere
 * and keep every probe.
 */
import type { ProviderType } from "../providers/registry.ts";

const cloudFingerprinters = ["env_aws", "env_azure", "env_digitalocean", "env_gce"] as const;

const keptBy: Record<ProviderType, readonly string[] | "all"> = {
  local: [],
  vagrant: [],
  // droplets keep theirs: it sets the platform.digitalocean.* attributes (region, ids)
  digitalocean: ["env_digitalocean"],
  static: "all",
};

/** The fingerprinters a Nomad client on this provider's nodes leaves out. */
export function deniedFingerprinters(provider: ProviderType): string[] {
  const kept = keptBy[provider];
  return kept === "all" ? [] : cloudFingerprinters.filter((name) => !kept.includes(name));
}
