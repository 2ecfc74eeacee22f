/**
 * Host-side names for a local cluster. Interface names are limited to 15
 * characters, so they are derived from a hash of the cluster (and node) name.
 */
import { createHash } from "node:crypto";

const short = (text: string, length = 8) => createHash("sha256").update(text).digest("hex").slice(0, length);

export function localNames(cluster: string) {
  return {
    bridge: `hs-${short(cluster)}`,
    netns: (node: string) => `hs-${cluster}-${node}`,
    hostVeth: (node: string) => `hv${short(`${cluster}/${node}`)}`,
    peerVeth: (node: string) => `hp${short(`${cluster}/${node}`)}`,
    machine: (node: string) => `${cluster}-${node}`,
  };
}
