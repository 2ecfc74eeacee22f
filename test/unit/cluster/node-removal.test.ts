/** Which raft memberships a node leaves, in which order, with which servers staying. */
import { describe, expect, it } from "vitest";
import { membershipsOf } from "../../../scripts/lib/cluster/node-removal.ts";
import { clusterConfigSchema } from "../../../scripts/lib/config/schema.ts";
import type { Inventory, InventoryHost } from "../../../scripts/lib/inventory/schema.ts";
import type { ClusterRun } from "../../../scripts/lib/stages/run-context.ts";
import { plannedInventory } from "../../../scripts/lib/topology.ts";

const inventoryOf = (topology: Record<string, unknown>): Inventory =>
  plannedInventory(clusterConfigSchema.parse({ name: "unit", topology }), "10.99.0.0/24", { user: "root", port: 22 }, "local");
// the memberships only keep the run for their API calls, which these tests do not make
const run = {} as ClusterRun;
const of = (inventory: Inventory, name: string) =>
  membershipsOf(run, inventory, inventory.hosts.find((h) => h.name === name) as InventoryHost).map(
    (m) => `${m.membership.product}: ${m.remaining.map((h) => h.name).join(" ")}`,
  );

describe("membershipsOf", () => {
  it("a Vault server leaves Vault first, then Nomad, then Consul, each with the other servers staying", () => {
    const inventory = inventoryOf({ servers: 5, clients: 1 });
    expect(of(inventory, "server-2")).toEqual([
      "Vault: server-1 server-3",
      "Nomad: server-1 server-3 server-4 server-5",
      "Consul: server-1 server-3 server-4 server-5",
    ]);
    expect(of(inventory, "server-5")).toEqual([
      "Nomad: server-1 server-2 server-3 server-4",
      "Consul: server-1 server-2 server-3 server-4",
    ]);
  });

  it("a client holds no raft seat (it is drained instead); a client Vault node leaves Vault's raft", () => {
    expect(of(inventoryOf({ servers: 3, clients: 1 }), "client-1")).toEqual([]);
    const clientVault = inventoryOf({
      servers: 1,
      clients: 3,
      vaultHa: true,
      vaultNodes: ["client-1", "client-2", "client-3"],
    });
    expect(of(clientVault, "client-2")).toEqual(["Vault: client-1 client-3"]);
  });
});
