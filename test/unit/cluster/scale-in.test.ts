/** Which clients a lowered topology removes (the removal itself: e2e/bootstrap; servers: removal-plan.test.ts). */
import { describe, expect, it } from "vitest";
import { clientsToRemove } from "../../../scripts/lib/cluster/scale-in.ts";
import { loopbackInventory } from "../../helpers/fixtures.ts";

const cluster = (servers: number, clients: number) =>
  loopbackInventory([
    ...Array.from({ length: servers }, (_, i) => ({
      name: `server-${i + 1}`,
      roles: ["server" as const],
      ip: `127.0.0.${i + 1}`,
    })),
    ...Array.from({ length: clients }, (_, i) => ({
      name: `client-${i + 1}`,
      roles: ["client" as const],
      ip: `127.0.1.${i + 1}`,
    })),
  ]);

describe("clientsToRemove", () => {
  it("removes the last clients beyond topology.clients, nothing when it did not go down", () => {
    expect(clientsToRemove({ clients: 2 }, cluster(3, 3)).map((h) => h.name)).toEqual(["client-3"]);
    expect(clientsToRemove({ clients: 0 }, cluster(3, 2)).map((h) => h.name)).toEqual(["client-1", "client-2"]);
    expect(clientsToRemove({ clients: 4 }, cluster(3, 2))).toEqual([]);
  });
});
