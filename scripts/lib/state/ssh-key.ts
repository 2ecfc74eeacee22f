import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { $ } from "zx";
import type { StatePaths } from "./paths.ts";

export function clusterSshKeyPath(state: StatePaths): string {
  return join(state.root, "ssh", "id_ed25519");
}

/** The cluster's SSH key pair (ed25519), generated once; the private key is 0600. */
export async function ensureClusterSshKey(
  state: StatePaths,
  comment: string,
): Promise<{ privateKey: string; publicKey: string }> {
  const privateKey = clusterSshKeyPath(state);
  const dir = join(privateKey, "..");
  if (!existsSync(privateKey)) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await $({ quiet: true })`ssh-keygen -q -t ed25519 -N ${""} -C ${comment} -f ${privateKey}`;
  }
  return { privateKey, publicKey: (await readFile(`${privateKey}.pub`, "utf8")).trim() };
}
