/**
 * Host-side names for a local cluster. Interface names are limited to 15
 * characters, so they are derived from a hash of the cluster (and node) name.
 *
 * Each state directory has its own cluster id (local-cluster-id), and every name
 * carries it, so two checkouts with a cluster called `demo` never meet each
 * other's bridge, veths, network namespaces or machines. Clusters made before the
 * id existed keep their old names (`legacy`) until they are torn down.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { StatePaths } from "../../state/paths.ts";
import { readFileIfExists, writeFileAtomic } from "../../util/fs.ts";

const short = (text: string, length = 8) => createHash("sha256").update(text).digest("hex").slice(0, length);

/** A state dir's cluster id, or `legacy` for a cluster created before ids. */
export type LocalIdentity = string | "legacy";

export type LocalNames = ReturnType<typeof localNames>;

export function localNames(cluster: string, identity: LocalIdentity) {
  if (identity === "legacy") {
    return {
      bridge: `hs-${short(cluster)}`,
      netns: (node: string) => `hs-${cluster}-${node}`,
      hostVeth: (node: string) => `hv${short(`${cluster}/${node}`)}`,
      peerVeth: (node: string) => `hp${short(`${cluster}/${node}`)}`,
      machine: (node: string) => `${cluster}-${node}`,
    };
  }
  const scope = `${cluster}@${identity}`;
  return {
    bridge: `hs-${short(scope)}`,
    netns: (node: string) => `hs-${cluster}-${node}-${identity}`,
    hostVeth: (node: string) => `hv${short(`${scope}/${node}`)}`,
    peerVeth: (node: string) => `hp${short(`${scope}/${node}`)}`,
    machine: (node: string) => `${cluster}-${node}-${identity}`,
  };
}

export const identityFile = (state: Pick<StatePaths, "root">) => join(state.root, "local-cluster-id");

/**
 * The identity recorded in the state dir. Without a record, a state that already
 * holds nodes or an inventory is a cluster from before ids (`legacy`); an empty
 * one has nothing on this machine (undefined) unless `create` makes a new id.
 */
export async function localIdentity(
  state: Pick<StatePaths, "root" | "inventoryCopy">,
  options: { create?: boolean } = {},
): Promise<LocalIdentity | undefined> {
  const recorded = (await readFileIfExists(identityFile(state)))?.trim();
  if (recorded) return recorded;
  if (existsSync(join(state.root, "nodes")) || existsSync(state.inventoryCopy)) return "legacy";
  if (!options.create) return undefined;
  const id = randomBytes(4).toString("hex");
  await mkdir(state.root, { recursive: true, mode: 0o700 });
  await writeFileAtomic(identityFile(state), `${id}\n`, 0o644);
  return id;
}

/** The names of the cluster whose state this is, or undefined when it has nothing on this machine. */
export async function localNamesFor(context: {
  config: { name: string };
  state: Pick<StatePaths, "root" | "inventoryCopy">;
}): Promise<LocalNames | undefined> {
  const identity = await localIdentity(context.state);
  return identity ? localNames(context.config.name, identity) : undefined;
}
