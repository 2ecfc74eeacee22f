/**
 * What lowering topology.servers and --replace would remove, and the refusals
 * decided before the cluster is asked: even counts, below the quorum, unknown
 * nodes, the last servers, the only Vault node, a changed topology.
 */
import { describe, expect, it } from "vitest";
import { lowerServerCounts, plannedRemovals, planReplace, serversToRemove } from "../../../scripts/lib/cluster/removal-plan.ts";
import { clusterConfigSchema } from "../../../scripts/lib/config/schema.ts";
import { ExitCode, InputError } from "../../../scripts/lib/errors.ts";
import type { Inventory } from "../../../scripts/lib/inventory/schema.ts";
import { plannedInventory } from "../../../scripts/lib/topology.ts";

const config = (topology: Record<string, unknown>) => clusterConfigSchema.parse({ name: "unit", topology });
const inventoryOf = (topology: Record<string, unknown>): Inventory =>
  plannedInventory(config(topology), "10.99.0.0/24", { user: "root", port: 22 }, "local");
const refusal = (fn: () => unknown): InputError => {
  try {
    fn();
  } catch (error) {
    return error as InputError;
  }
  throw new Error("expected a refusal");
};

describe("serversToRemove", () => {
  it("removes the last servers first, none when the count did not go down", () => {
    expect(serversToRemove(3, inventoryOf({ servers: 5, clients: 1 })).map((h) => h.name)).toEqual(["server-5", "server-4"]);
    expect(serversToRemove(5, inventoryOf({ servers: 7 })).map((h) => h.name)).toEqual(["server-7", "server-6"]);
    expect(serversToRemove(3, inventoryOf({ servers: 3 }))).toEqual([]);
    expect(serversToRemove(5, inventoryOf({ servers: 3 }))).toEqual([]);
  });

  it("refuses an even count as bad input (exit 2), naming the counts that work", () => {
    const error = refusal(() => serversToRemove(4, inventoryOf({ servers: 5 })));
    expect(error).toBeInstanceOf(InputError);
    expect(error.exitCode).toBe(ExitCode.usage);
    expect(error.message).toBe("topology.servers is 4: a raft cluster needs an odd number of servers.");
    expect(error.hint).toBe("Set topology.servers to 3 (or back to 5): a run keeps at least a quorum of the servers it finds.");
  });

  it("refuses anything below the quorum of the current servers, with a hint to set it back", () => {
    const five = refusal(() => serversToRemove(1, inventoryOf({ servers: 5 })));
    expect(five.message).toBe(
      "topology.servers is 1, but the cluster has 5 servers: removing 4 at once would lose the raft quorum (3 of 5).",
    );
    expect(five.hint).toMatch(/^Set topology.servers to 3 \(or back to 5\)/);
    const three = refusal(() => serversToRemove(1, inventoryOf({ servers: 3 })));
    expect(three.exitCode).toBe(ExitCode.usage);
    expect(three.message).toBe(
      "topology.servers is 1, but the cluster has 3 servers: removing 2 at once would lose the raft quorum (2 of 3).",
    );
    expect(three.hint).toBe("Set topology.servers back to 3: 1 would be fewer than the quorum of 3 (2).");
    expect(lowerServerCounts(7)).toEqual([5]);
    expect(lowerServerCounts(5)).toEqual([3]);
    expect(lowerServerCounts(3)).toEqual([]);
  });
});

describe("planReplace", () => {
  const three = { servers: 3, clients: 1 };

  it("a server of three (a Vault HA node) can be replaced; the others keep the quorum", () => {
    const plan = planReplace("server-2", config(three), inventoryOf(three));
    expect(plan.host.roles).toEqual(["server", "vault"]);
    expect(plan.remainingServers.map((h) => h.name)).toEqual(["server-1", "server-3"]);
    expect(plan.remainingVault.map((h) => h.name)).toEqual(["server-1", "server-3"]);
    expect(planReplace("client-1", config(three), inventoryOf(three)).host.roles).toEqual(["client"]);
  });

  it("refuses the only server, the only Vault node, an unknown node and an unprovisioned cluster", () => {
    const single = { servers: 1, clients: 1 };
    const server = refusal(() => planReplace("server-1", config(single), inventoryOf(single)));
    expect(server.exitCode).toBe(ExitCode.usage);
    expect(server.message).toBe("--replace server-1: the cluster has 1 server; without server-1 there is no raft quorum.");
    // three servers, one Vault: Consul and Nomad keep their quorum, Vault would lose its data
    const oneVault = { servers: 3, clients: 1, vaultHa: false };
    const vault = refusal(() => planReplace("server-1", config(oneVault), inventoryOf(oneVault)));
    expect(vault.message).toMatch(/^--replace server-1: it is the only Vault node; without it Vault's raft has no quorum/);
    expect(planReplace("server-2", config(oneVault), inventoryOf(oneVault)).host.roles).toEqual(["server"]);
    const unknown = refusal(() => planReplace("server-9", config(three), inventoryOf(three)));
    expect(unknown.message).toBe("--replace server-9: cluster 'unit' has no node 'server-9'.");
    expect(unknown.hint).toBe("Its nodes are server-1, server-2, server-3, client-1.");
    expect(refusal(() => planReplace("server-2", config(three), undefined)).message).toBe(
      "--replace server-2: cluster 'unit' has no nodes yet.",
    );
  });

  it("refuses while the config's topology differs from the provisioned nodes", () => {
    const error = refusal(() => planReplace("server-2", config({ servers: 3, clients: 2 }), inventoryOf(three)));
    expect(error.message).toBe("--replace server-2: the config's topology differs from the provisioned nodes.");
    expect(error.details).toEqual([
      "config: server-1, server-2, server-3, client-1, client-2",
      "provisioned: server-1, server-2, server-3, client-1",
    ]);
  });
});

describe("plannedRemovals (the dry run)", () => {
  it("lists the replaced node's steps, and each server that would leave, in order", () => {
    const lines = plannedRemovals(config({ servers: 3 }), inventoryOf({ servers: 3 }), "server-2");
    expect(lines[0]).toMatch(/^--replace server-2: it leaves the cluster, its provider destroys it/);
    expect(lines.slice(1)).toEqual([
      "server-2: Vault: the active node steps down if it is this one, then its raft peer is removed (sys/storage/raft/remove-peer)",
      "server-2: Nomad: leadership handed away if it leads, the server stops, its raft peer is removed and it is pruned",
      "server-2: Consul: leadership handed away if it leads, a graceful leave, then force-leave -prune",
    ]);
    const scaled = plannedRemovals(config({ servers: 3, clients: 1 }), inventoryOf({ servers: 5, clients: 2 }));
    expect(scaled.filter((l) => l.startsWith("scale in:"))).toEqual([
      "scale in: client-2 leaves and its node is removed",
      "scale in: server-5 leaves and its node is removed (one server at a time, each behind a quorum check)",
      "scale in: server-4 leaves and its node is removed (one server at a time, each behind a quorum check)",
    ]);
    expect(plannedRemovals(config({ servers: 3 }), inventoryOf({ servers: 3 }))).toEqual([]);
    expect(() => plannedRemovals(config({ servers: 3 }), inventoryOf({ servers: 7 }))).toThrow(InputError);
  });
});
