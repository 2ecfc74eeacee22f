/**
 * Which hosts a run goes on without when some do not answer over SSH: clients
 * are skipped, servers and Vault nodes refused with the quorum left, hosts that
 * answer wrongly never skipped (the connections themselves: e2e/dead-node).
 */
import { describe, expect, it } from "vitest";
import { connectForRun, planReachability, quorumState, skippedLine } from "../../../scripts/lib/cluster/reachability.ts";
import { ExitCode, OperationError } from "../../../scripts/lib/errors.ts";
import type { InventoryHost } from "../../../scripts/lib/inventory/schema.ts";
import { HostsFailedError, HostUnreachableError } from "../../../scripts/lib/remote/errors.ts";
import { clusterProblems, type ClusterHealth } from "../../../scripts/lib/stages/health.ts";
import { loopbackInventory } from "../../helpers/fixtures.ts";

/** 3 servers with Vault HA and 2 clients, as the local provider plans them */
const inventory = loopbackInventory([
  { name: "server-1", roles: ["server", "vault"], ip: "10.87.0.11" },
  { name: "server-2", roles: ["server", "vault"], ip: "10.87.0.12" },
  { name: "server-3", roles: ["server", "vault"], ip: "10.87.0.13" },
  { name: "client-1", roles: ["client"], ip: "10.87.0.101" },
  { name: "client-2", roles: ["client"], ip: "10.87.0.102" },
]);
const host = (name: string) => inventory.hosts.find((h) => h.name === name) as InventoryHost;

/** What RemoteHost.connect throws for a host that never answers, and for one that answers wrongly. */
const silent = (name: string) =>
  new HostUnreachableError(
    name,
    `cannot connect to ${host(name).privateIp}:22 over SSH after 9 attempts: Timed out while waiting for handshake.`,
    "Check that the host is up.",
    { noAnswer: true },
  );
const changedKey = (name: string) =>
  new HostUnreachableError(name, `the SSH host key of ${host(name).privateIp}:22 changed.`, "Investigate.");

/** A fake host interface: `connect` answers for every host but the ones given, which fail as told. */
function fakeConnect(failing: Record<string, (name: string) => Error>) {
  const attempted: string[] = [];
  return {
    attempted,
    connect: async (h: InventoryHost) => {
      attempted.push(h.name);
      await new Promise((r) => setTimeout(r, 1));
      const fail = failing[h.name];
      if (fail) throw fail(h.name);
    },
  };
}

const caught = async (run: Promise<unknown>) =>
  run.then(
    () => undefined,
    (e: unknown) => e as Error,
  );

describe("connectForRun with an unreachable client", () => {
  it("skips it and works on every other host (bootstrap)", async () => {
    const fake = fakeConnect({ "client-2": silent });
    const plan = await connectForRun(inventory, fake.connect, { concurrency: 2, policy: "skip-clients" });
    expect(fake.attempted.sort()).toEqual(inventory.hosts.map((h) => h.name).sort());
    expect(plan.skipped.map((h) => h.name)).toEqual(["client-2"]);
    expect(plan.reachable.map((h) => h.name)).toEqual(["server-1", "server-2", "server-3", "client-1"]);
    expect(skippedLine(host("client-2"))).toBe("client-2 (10.87.0.102): unreachable over SSH — skipped");
  });

  it("skips every unreachable client, and nothing when all answer", async () => {
    const both = await connectForRun(inventory, fakeConnect({ "client-1": silent, "client-2": silent }).connect, {
      concurrency: 5,
      policy: "skip-clients",
    });
    expect(both.skipped.map((h) => h.name)).toEqual(["client-1", "client-2"]);
    expect(both.reachable.map((h) => h.name)).toEqual(["server-1", "server-2", "server-3"]);
    const none = await connectForRun(inventory, fakeConnect({}).connect, { concurrency: 5, policy: "skip-clients" });
    expect(none).toEqual({ reachable: inventory.hosts, skipped: [], unreachable: [] });
  });

  it("stops the run when every host must answer (the library default)", async () => {
    const error = await caught(
      connectForRun(inventory, fakeConnect({ "client-2": silent }).connect, { concurrency: 5, policy: "require-all" }),
    );
    expect(error).toBeInstanceOf(HostsFailedError);
    expect(error?.message).toBe("Connecting over SSH failed on 1 of 5 hosts: client-2.");
  });

  it("goes on with every host listed when told to tolerate (status, unseal, snapshot name it themselves)", async () => {
    const plan = await connectForRun(inventory, fakeConnect({ "server-2": silent, "client-2": silent }).connect, {
      concurrency: 5,
      policy: "tolerate",
    });
    expect(plan.reachable).toEqual(inventory.hosts);
    expect(plan.skipped).toEqual([]);
    expect(plan.unreachable.map((h) => h.name)).toEqual(["server-2", "client-2"]);
  });

  it("never skips a client that answers wrongly (changed host key): that stops the run, named", async () => {
    const error = await caught(
      connectForRun(inventory, fakeConnect({ "client-1": silent, "client-2": changedKey }).connect, {
        concurrency: 5,
        policy: "skip-clients",
      }),
    );
    expect(error).toBeInstanceOf(HostsFailedError);
    expect(error?.message).toBe("Connecting over SSH failed on 1 of 5 hosts: client-2.");
    expect((error as HostsFailedError).details).toEqual(["client-2: the SSH host key of 10.87.0.102:22 changed."]);
  });
});

describe("connectForRun with an unreachable server or Vault node", () => {
  it("refuses (exit 3), naming the server and saying that quorum holds", async () => {
    const error = await caught(
      connectForRun(inventory, fakeConnect({ "server-2": silent, "client-2": silent }).connect, {
        concurrency: 5,
        policy: "skip-clients",
      }),
    );
    expect(error).toBeInstanceOf(OperationError);
    const refusal = error as OperationError;
    expect(refusal.exitCode).toBe(ExitCode.operation);
    expect(refusal.message).toBe(
      "server-2 (10.87.0.12) is unreachable over SSH: bootstrap changes agent configuration and does not run on part of the servers.",
    );
    expect(refusal.details).toEqual([
      "2 of 3 servers reachable: quorum holds; bring server-2 back or replace it",
      "2 of 3 Vault nodes reachable: quorum holds; bring server-2 back or replace it",
      "server-2: cannot connect to 10.87.0.12:22 over SSH after 9 attempts: Timed out while waiting for handshake.",
      "also unreachable (a client is skipped): client-2",
    ]);
    expect(refusal.hint).toMatch(/^Bring server-2 back .*'npm run status', 'unseal' and 'snapshot' work while it is down\.$/);
  });

  it("says when quorum is lost", () => {
    const failures = ["server-1", "server-3"].map((name) => ({ host: name, error: silent(name) }));
    const error = (() => {
      try {
        planReachability(inventory, failures);
      } catch (e) {
        return e as OperationError;
      }
    })();
    expect(error?.message).toMatch(/^server-1 \(10\.87\.0\.11\), server-3 \(10\.87\.0\.13\) are unreachable over SSH/);
    expect(error?.details[0]).toBe("1 of 3 servers reachable: quorum is lost (2 needed); bring server-1, server-3 back");
  });

  it("refuses a client that carries Vault, and names a single server as the only one", () => {
    const small = loopbackInventory([
      { name: "server-1", roles: ["server"], ip: "10.87.0.11" },
      { name: "client-1", roles: ["client", "vault"], ip: "10.87.0.101" },
      { name: "client-2", roles: ["client"], ip: "10.87.0.102" },
    ]);
    expect(() => planReachability(small, [{ host: "client-1", error: silent("client-1") }])).toThrow(
      /^client-1 \(10\.87\.0\.101\) is unreachable over SSH/,
    );
    expect(planReachability(small, [{ host: "client-2", error: silent("client-2") }]).skipped.map((h) => h.name)).toEqual([
      "client-2",
    ]);
    const servers = small.hosts.filter((h) => h.roles.includes("server"));
    expect(quorumState("servers", servers, new Set(["server-1"]))).toBe(
      "servers: server-1, the only one, is unreachable: bring it back",
    );
    expect(quorumState("servers", servers, new Set(["client-2"]))).toBeUndefined();
  });
});

describe("health problems of a run that skipped a client", () => {
  const health: Omit<ClusterHealth, "problems"> = {
    consul: {
      leader: "10.87.0.11:8300",
      peers: 3,
      members: inventory.hosts.map((h) => ({
        name: h.name,
        address: h.privateIp,
        status: h.name === "client-2" ? "failed" : "alive",
      })),
    },
    nomad: {
      leader: "10.87.0.11:4647",
      peers: 3,
      nodes: [
        { name: "client-1", address: "10.87.0.101", status: "ready" },
        { name: "client-2", address: "10.87.0.102", status: "down" },
      ],
      jobs: [{ id: "fabio", status: "running", running: 1, failed: 0 }],
    },
    vault: [],
    certificates: [],
    identity: { nomadKeys: [], proxies: [] },
  };
  const expected = { runtime: "exec" as const, alertLifetimeLeft: 0.07 };

  it("does not count the skipped client as a problem, nor expect it among the members and clients", () => {
    const reachable = inventory.hosts.filter((h) => h.name !== "client-2");
    expect(clusterProblems(health, { ...expected, hosts: reachable, skipped: ["client-2"] })).toEqual([]);
  });

  it("still names it when the run did not skip it (status, and a client that is down but answers SSH)", () => {
    expect(clusterProblems(health, { ...expected, hosts: inventory.hosts, skipped: [] })).toEqual([
      "Consul member client-2 (10.87.0.102) is failed",
      "Nomad client client-2 is down",
    ]);
    expect(
      clusterProblems(health, { ...expected, hosts: inventory.hosts, skipped: [], unreachable: [host("client-2")] }),
    ).toEqual([
      "client-2 (10.87.0.102): unreachable over SSH",
      "Consul member client-2 (10.87.0.102) is failed",
      "Nomad client client-2 is down",
    ]);
  });

  it("still names every other host that is down", () => {
    const reachable = inventory.hosts.filter((h) => h.name !== "client-2");
    const worse = {
      ...health,
      nomad: { ...health.nomad, nodes: health.nomad.nodes.map((n) => ({ ...n, status: "down" })) },
    };
    expect(clusterProblems(worse, { ...expected, hosts: reachable, skipped: ["client-2"] })).toEqual([
      "Nomad client client-1 is down",
    ]);
  });
});
