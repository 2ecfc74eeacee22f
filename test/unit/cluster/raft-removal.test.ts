/**
 * The order and the refusals of taking one server out of a raft cluster, against
 * a fake membership that keeps a raft configuration and records every call: a
 * leader hands leadership away before it leaves, nothing changes when another
 * server is unhealthy or too few voters are left, an unreachable node's peer is
 * removed through the others. (The real APIs: test/e2e/replace.test.ts.)
 */
import { describe, expect, it } from "vitest";
import { OperationError } from "../../../scripts/lib/errors.ts";
import type { InventoryHost } from "../../../scripts/lib/inventory/schema.ts";
import {
  checkRemovable,
  type RaftMembership,
  type RaftPeer,
  type RaftView,
  removalProblems,
  removeRaftServer,
  type RemovalOptions,
} from "../../../scripts/lib/cluster/raft-removal.ts";

const host = (name: string, i: number): InventoryHost => ({
  name,
  roles: ["server"],
  privateIp: `10.0.0.${i + 11}`,
  ssh: { user: "root", port: 22 },
});
const hosts = ["server-1", "server-2", "server-3", "server-4", "server-5"].map(host);
const h = (name: string) => hosts.find((x) => x.name === name) as InventoryHost;

interface FakeCluster {
  leader: string | undefined;
  peers: RaftPeer[];
  calls: string[];
  /** every moment the cluster had no leader while a removal changed it */
  leaderless: string[];
  membership: RaftMembership;
}

/** A raft cluster of `names`; `leaveRemovesPeer` like Consul, otherwise leave only stops the agent (Nomad, Vault). */
function fakeCluster(
  names: string[],
  options: {
    leader?: string;
    leaveRemovesPeer?: boolean;
    unhealthy?: string[];
    unreachable?: string[];
    /** views before the unhealthy servers report healthy again */
    healthyAfterViews?: number;
    /** the leader moves only after this many views once transferred */
    transferTakesViews?: number;
  } = {},
): FakeCluster {
  const cluster: FakeCluster = {
    leader: options.leader ?? names[0],
    peers: names.map((n, i) => ({ id: `id-${n}`, host: n, address: `10.0.0.${i + 11}:8300`, voter: true, healthy: true })),
    calls: [],
    leaderless: [],
    membership: undefined as unknown as RaftMembership,
  };
  for (const p of cluster.peers) if (options.unhealthy?.includes(p.host)) p.healthy = false;
  let views = 0;
  let transferTo: string | undefined;
  let transferViews = 0;
  const down = new Set(options.unreachable ?? []);
  const snapshot = (): RaftView => ({ leader: cluster.leader, peers: cluster.peers.map((p) => ({ ...p })) });
  const mutate = (what: string) => {
    cluster.calls.push(what);
    if (!cluster.leader) cluster.leaderless.push(what);
  };
  cluster.membership = {
    product: "Consul",
    async view(via) {
      if (down.has(via.name)) throw new Error(`${via.name} does not answer`);
      views++;
      if (options.healthyAfterViews !== undefined && views > options.healthyAfterViews)
        for (const p of cluster.peers) p.healthy = !down.has(p.host);
      if (transferTo && ++transferViews > (options.transferTakesViews ?? 0)) {
        cluster.leader = transferTo;
        transferTo = undefined;
      }
      return snapshot();
    },
    async transferLeadership(via, from, to) {
      mutate(`transfer ${from.name}→${to.host} via ${via.name}`);
      transferTo = to.host;
    },
    async leave(target) {
      mutate(`leave ${target.name}`);
      if (down.has(target.name)) throw new Error(`${target.name}: not connected`);
      // a leader that simply goes away leaves the cluster without one until an election
      if (cluster.leader === target.name) cluster.leader = undefined;
      if (options.leaveRemovesPeer) cluster.peers = cluster.peers.filter((p) => p.host !== target.name);
      else for (const p of cluster.peers) if (p.host === target.name) p.healthy = false;
    },
    leaveRemovesPeer: options.leaveRemovesPeer ?? false,
    async removePeer(via, peer) {
      mutate(`remove-peer ${peer.host} via ${via.name}`);
      cluster.peers = cluster.peers.filter((p) => p.id !== peer.id);
    },
    async forget(via, target) {
      mutate(`forget ${target.name} via ${via.name}`);
    },
  };
  return cluster;
}

/** Fast options: a fake clock that moves with every sleep. */
function fastOptions(warnings: string[] = []): RemovalOptions {
  let clock = 0;
  return {
    warn: (m) => warnings.push(m),
    healthyWithinMs: 5_000,
    settleMs: 5_000,
    intervalMs: 500,
    now: () => clock,
    sleep: async (ms) => {
      clock += ms;
    },
  };
}

const others = (name: string, names: string[]) => names.filter((n) => n !== name).map(h);
const three = ["server-1", "server-2", "server-3"];

describe("removalProblems", () => {
  const view = (peers: [string, boolean, boolean][], leader?: string): RaftView => ({
    leader,
    peers: peers.map(([n, voter, healthy]) => ({ id: n, host: n, address: "", voter, healthy })),
  });

  it("lets a server go from a healthy cluster of three voters with a leader, even when the leaving one is unhealthy", () => {
    expect(
      removalProblems(
        view(
          [
            ["a", true, true],
            ["b", true, false],
            ["c", true, true],
          ],
          "a",
        ),
        "b",
      ),
    ).toEqual([]);
  });

  it("names every reason: no leader, other unhealthy servers, too few voters", () => {
    expect(
      removalProblems(
        view([
          ["a", true, false],
          ["b", true, true],
          ["c", false, false],
        ]),
        "b",
      ),
    ).toEqual([
      "there is no leader",
      "a, c are not healthy",
      "only 2 voters: without b there would be no quorum left to lose one more",
    ]);
    expect(
      removalProblems(
        view(
          [
            ["a", true, true],
            ["b", true, true],
          ],
          "a",
        ),
        "b",
      ),
    ).toEqual(["only 2 voters: without b there would be no quorum left to lose one more"]);
  });
});

describe("removeRaftServer", () => {
  it("a follower leaves without any leadership transfer: leave, peer removal, prune — through a server that stays", async () => {
    const cluster = fakeCluster(three, { leader: "server-1" });
    const done = await removeRaftServer(cluster.membership, h("server-2"), others("server-2", three), fastOptions());
    expect(cluster.calls).toEqual(["leave server-2", "remove-peer server-2 via server-1", "forget server-2 via server-1"]);
    expect(cluster.peers.map((p) => p.host)).toEqual(["server-1", "server-3"]);
    expect(done).toEqual(["Consul raft peer server-2 removed", "Consul member server-2 pruned"]);
  });

  it("the leader hands leadership to a healthy voter first and leaves only once another server leads", async () => {
    const cluster = fakeCluster(three, { leader: "server-2", transferTakesViews: 3 });
    const done = await removeRaftServer(cluster.membership, h("server-2"), others("server-2", three), fastOptions());
    expect(cluster.calls[0]).toBe("transfer server-2→server-1 via server-1");
    expect(cluster.calls[1]).toBe("leave server-2");
    // the cluster never went without a leader while it changed
    expect(cluster.leaderless).toEqual([]);
    expect(cluster.leader).toBe("server-1");
    expect(done[0]).toBe("Consul leadership handed from server-2 to server-1");
  });

  it("a graceful leave that removes the peer by itself (Consul) needs no explicit removal", async () => {
    const cluster = fakeCluster(three, { leaveRemovesPeer: true });
    await removeRaftServer(cluster.membership, h("server-3"), others("server-3", three), fastOptions());
    expect(cluster.calls).toEqual(["leave server-3", "forget server-3 via server-1"]);
  });

  it("refuses and changes nothing when another server is unhealthy", async () => {
    const cluster = fakeCluster(three, { unhealthy: ["server-3"] });
    const error = await removeRaftServer(cluster.membership, h("server-2"), others("server-2", three), fastOptions()).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(OperationError);
    expect((error as OperationError).message).toBe("Consul: refusing to remove server-2: server-3 is not healthy.");
    expect((error as OperationError).hint).toMatch(/^Nothing was removed/);
    expect((error as OperationError).details).toContain("server-3 10.0.0.13:8300 voter unhealthy");
    expect(cluster.calls).toEqual([]);
  });

  it("refuses a cluster of two voters (no quorum without one of them) and one without a leader", async () => {
    const two = fakeCluster(["server-1", "server-2"]);
    await expect(removeRaftServer(two.membership, h("server-2"), [h("server-1")], fastOptions())).rejects.toThrow(
      /only 2 voters/,
    );
    const leaderless = fakeCluster(three);
    leaderless.leader = undefined;
    await expect(
      removeRaftServer(leaderless.membership, h("server-2"), others("server-2", three), fastOptions()),
    ).rejects.toThrow("Consul: refusing to remove server-2: there is no leader.");
    expect([...two.calls, ...leaderless.calls]).toEqual([]);
  });

  it("waits for a cluster that becomes healthy within the window instead of refusing", async () => {
    const cluster = fakeCluster(three, { unhealthy: ["server-3"], healthyAfterViews: 4 });
    await removeRaftServer(cluster.membership, h("server-2"), others("server-2", three), fastOptions());
    expect(cluster.calls).toContain("remove-peer server-2 via server-1");
  });

  it("a node that does not answer (the one being replaced) is removed through the others, with a warning", async () => {
    const cluster = fakeCluster(three, { unreachable: ["server-2"], unhealthy: ["server-2"], leaveRemovesPeer: true });
    const warnings: string[] = [];
    await removeRaftServer(cluster.membership, h("server-2"), others("server-2", three), fastOptions(warnings));
    expect(cluster.calls).toEqual(["leave server-2", "remove-peer server-2 via server-1", "forget server-2 via server-1"]);
    expect(warnings).toEqual(["Consul on server-2 did not leave gracefully (server-2: not connected); removing its raft peer"]);
  });

  it("asks the next remaining server when the first does not answer", async () => {
    const five = ["server-1", "server-2", "server-3", "server-4", "server-5"];
    const cluster = fakeCluster(five, { unreachable: ["server-1"], unhealthy: [] });
    // server-1 does not answer but is a healthy peer (the fake keeps it healthy): the removal goes through server-2
    await removeRaftServer(cluster.membership, h("server-5"), others("server-5", five), fastOptions());
    expect(cluster.calls).toEqual(["leave server-5", "remove-peer server-5 via server-2", "forget server-5 via server-2"]);
  });

  it("a peer that is gone already (a run that stopped halfway) is not removed twice", async () => {
    const cluster = fakeCluster(["server-1", "server-3", "server-4"]);
    const done = await removeRaftServer(cluster.membership, h("server-5"), others("server-5", three), fastOptions());
    expect(done).toEqual(["Consul: server-5 was no raft peer any more"]);
    expect(cluster.calls).toEqual(["leave server-5"]);
  });

  it("fails with the last view when the leader does not move", async () => {
    const cluster = fakeCluster(three, { leader: "server-1", transferTakesViews: 1_000 });
    await expect(removeRaftServer(cluster.membership, h("server-1"), others("server-1", three), fastOptions())).rejects.toThrow(
      "Consul: leadership did not move away from server-1.",
    );
    expect(cluster.calls).toEqual(["transfer server-1→server-2 via server-2"]);
  });
});

describe("checkRemovable", () => {
  it("says which servers answered nothing when none of the remaining ones answers", async () => {
    const cluster = fakeCluster(three, { unreachable: ["server-1", "server-3"] });
    await expect(checkRemovable(cluster.membership, h("server-2"), others("server-2", three), fastOptions())).rejects.toThrow(
      "Consul: refusing to remove server-2: none of server-1, server-3 answered.",
    );
  });
});
