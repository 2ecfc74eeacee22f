import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ClusterConfig, clusterConfigSchema } from "../../scripts/lib/config/schema.ts";
import type { Inventory } from "../../scripts/lib/inventory/schema.ts";
import type { RenderSecrets } from "../../scripts/lib/state/secrets.ts";

export function makeConfig(overrides: Record<string, unknown> = {}): ClusterConfig {
  return clusterConfigSchema.parse({ name: "test", ...overrides });
}

/** An inventory of loopback addresses so real agents can run on this machine. */
export function loopbackInventory(hosts: { name: string; roles: ("server" | "client" | "vault")[]; ip: string }[]): Inventory {
  return {
    cluster: "test",
    provider: "static",
    hosts: hosts.map((h) => ({ name: h.name, roles: h.roles, privateIp: h.ip, ssh: { user: "root", port: 22 } })),
  };
}

export function fixedSecrets(hostNames: string[]): RenderSecrets {
  return {
    consulGossipKey: Buffer.alloc(32, 7).toString("base64"),
    nomadGossipKey: Buffer.alloc(32, 9).toString("base64"),
    consulAgentTokens: Object.fromEntries(
      hostNames.map((h, i) => [h, `00000000-0000-4000-8000-${String(i + 1).padStart(12, "0")}`]),
    ),
    nomadConsulToken: "00000000-0000-4000-8000-00000000abcd",
  };
}

/** `base`: where to make it; /dev/shm for files a test rewrites many times a second (no writeback stalls) */
export async function tempDir(prefix: string, base = tmpdir()): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(base, `hashistack-${prefix}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/**
 * Temp dirs for a test file, all removed by `removeAll` (call it from afterAll),
 * so a failing assertion never leaves a directory behind in /tmp.
 */
export function scratchDirs(): { make(prefix: string): Promise<string>; removeAll(): Promise<void> } {
  const made: Awaited<ReturnType<typeof tempDir>>[] = [];
  return {
    async make(prefix) {
      const dir = await tempDir(prefix);
      made.push(dir);
      return dir.path;
    },
    async removeAll() {
      await Promise.all(made.splice(0).map((dir) => dir.remove()));
    },
  };
}
