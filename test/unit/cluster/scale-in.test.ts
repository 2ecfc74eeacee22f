/** Which clients a lowered topology removes, and the refusals for servers (the removal itself: e2e/bootstrap). */
import { describe, expect, it } from "vitest";
import { clientsToRemove } from "../../../scripts/lib/cluster/scale-in.ts";
import { ExitCode, InputError, NotImplementedError } from "../../../scripts/lib/errors.ts";
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
    expect(clientsToRemove({ servers: 3, clients: 2 }, cluster(3, 3)).map((h) => h.name)).toEqual(["client-3"]);
    expect(clientsToRemove({ servers: 3, clients: 0 }, cluster(3, 2)).map((h) => h.name)).toEqual(["client-1", "client-2"]);
    expect(clientsToRemove({ servers: 3, clients: 4 }, cluster(3, 2))).toEqual([]);
  });

  it("refuses to take servers below quorum, with a hint to set them back", () => {
    const error = (() => {
      try {
        clientsToRemove({ servers: 1, clients: 2 }, cluster(3, 2));
      } catch (e) {
        return e;
      }
    })() as InputError;
    expect(error).toBeInstanceOf(InputError);
    expect(error.message).toBe(
      "topology.servers is 1, but the cluster has 3 servers: removing 2 at once would lose the raft quorum (2 of 3).",
    );
    expect(error.hint).toMatch(/Set topology.servers back to 3/);
  });

  it("refuses removing servers that would keep quorum as not built yet (exit 4)", () => {
    expect(() => clientsToRemove({ servers: 3, clients: 2 }, cluster(5, 2))).toThrow(NotImplementedError);
    try {
      clientsToRemove({ servers: 3, clients: 2 }, cluster(5, 2));
    } catch (e) {
      expect((e as NotImplementedError).exitCode).toBe(ExitCode.notImplemented);
    }
  });
});
