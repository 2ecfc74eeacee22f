/**
 * The order of rolling restarts (rolling.ts, install.ts) on fake nodes: files
 * everywhere before the first restart, servers one at a time with the leader
 * last after a transfer, each only after the previous one is healthy, clients in
 * batches; a dry run lists the same order and changes nothing.
 */
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { clusterConfigSchema } from "../../../scripts/lib/config/schema.ts";
import type { InventoryHost } from "../../../scripts/lib/inventory/schema.ts";
import { nodeLayout } from "../../../scripts/lib/render/layout.ts";
import { planCluster } from "../../../scripts/lib/render/plan.ts";
import { consulAgent, consulStage, installConsulAgents } from "../../../scripts/lib/stages/consul.ts";
import { agentRollouts, describeAgentPlan, describeRollout, planAgents } from "../../../scripts/lib/stages/install.ts";
import { type ClientGate, rollClients, rollServers, type ServerGate } from "../../../scripts/lib/stages/rolling.ts";
import type { ClusterRun } from "../../../scripts/lib/stages/run-context.ts";
import { fakeRemotes } from "../../helpers/fake-remote.ts";
import { fixedSecrets, loopbackInventory, makeConfig, scratchDirs } from "../../helpers/fixtures.ts";

const scratch = scratchDirs();
afterAll(() => scratch.removeAll());

const layout = nodeLayout();
const names = ["server-1", "server-2", "server-3", "client-1", "client-2", "client-3"];
const inventory = loopbackInventory(
  names.map((name, i) => ({
    name,
    roles: name === "server-1" ? ["server", "vault"] : name.startsWith("server") ? ["server"] : ["client"],
    ip: `127.0.0.${i + 1}`,
  })),
);
const servers = inventory.hosts.filter((h) => h.roles.includes("server"));
const clients = inventory.hosts.filter((h) => h.roles.includes("client"));

/** a gate whose leader moves when told, logging into `events` */
function recordingGate(events: string[], leaders: string[]): ServerGate {
  let leader = leaders.shift();
  return {
    leader: async () => leader,
    async transferLeadership(from) {
      events.push(`transfer ${from.name}`);
      leader = servers.find((s) => s.name !== from.name)?.name;
      return true;
    },
    async waitHealthy(host) {
      events.push(`healthy ${host.name}`);
      if (leaders.length) leader = leaders.shift();
    },
  };
}

describe("rollServers", () => {
  it("restarts followers first, one at a time, each after the previous one is healthy, the leader last after a transfer", async () => {
    const events: string[] = [];
    const steps = await rollServers(
      servers,
      async (h) => void events.push(`restart ${h.name}`),
      recordingGate(events, ["server-1"]),
      servers,
    );
    expect(events).toEqual([
      "restart server-2",
      "healthy server-2",
      "restart server-3",
      "healthy server-3",
      "transfer server-1",
      "restart server-1",
      "healthy server-1",
    ]);
    expect(steps).toEqual([{ hosts: ["server-2"] }, { hosts: ["server-3"] }, { hosts: ["server-1"], transferred: true }]);
  });

  it("asks for the leader before every step: an election in between moves the leader to the end", async () => {
    const events: string[] = [];
    // server-2 leads at first; after server-1's restart server-3 does
    await rollServers(
      servers,
      async (h) => void events.push(`restart ${h.name}`),
      recordingGate(events, ["server-2", "server-3"]),
      servers,
    );
    expect(events.filter((e) => e.startsWith("restart") || e.startsWith("transfer"))).toEqual([
      "restart server-1",
      "restart server-2",
      "transfer server-3",
      "restart server-3",
    ]);
  });

  it("stops at the first server that does not come back: the others keep running untouched", async () => {
    const restarted: string[] = [];
    const gate: ServerGate = {
      leader: async () => "server-1",
      transferLeadership: async () => true,
      waitHealthy: async (h) => {
        if (h.name === "server-2") throw new Error("server-2 did not rejoin");
      },
    };
    await expect(rollServers(servers, async (h) => void restarted.push(h.name), gate, servers)).rejects.toThrow(/did not rejoin/);
    expect(restarted).toEqual(["server-2"]);
  });

  it("a single server restarts without a transfer", async () => {
    const events: string[] = [];
    const one = [servers[0] as InventoryHost];
    await rollServers(one, async (h) => void events.push(`restart ${h.name}`), recordingGate(events, ["server-1"]), one);
    expect(events).toEqual(["restart server-1", "healthy server-1"]);
  });
});

describe("rollClients", () => {
  it("restarts clients in batches, each batch healthy before the next", async () => {
    const events: string[] = [];
    const gate: ClientGate = { waitHealthy: async (batch) => void events.push(`healthy ${batch.map((h) => h.name).join("+")}`) };
    const steps = await rollClients(clients, async (h) => void events.push(`restart ${h.name}`), gate, 2);
    expect(events).toEqual([
      "restart client-1",
      "restart client-2",
      "healthy client-1+client-2",
      "restart client-3",
      "healthy client-3",
    ]);
    expect(describeRollout({ started: [], steps })).toBe("3 restarted in order client-1 + client-2, client-3");
  });
});

describe("rollout config", () => {
  it("defaults to one client at a time and refuses a batch of 0", () => {
    expect(makeConfig().rollout.clientBatchSize).toBe(1);
    const bad = clusterConfigSchema.safeParse({ name: "x", rollout: { clientBatchSize: 0 } });
    expect(bad.success).toBe(false);
    expect(JSON.stringify(bad.error?.issues)).toContain("clientBatchSize");
  });
});

async function fakeCluster(config = makeConfig({ name: "unit-rolling" })) {
  const fakes = fakeRemotes(names);
  const plans = new Map(planCluster(config, inventory, fixedSecrets(names)).map((p) => [p.host.name, p]));
  const state = { rollout: join(await scratch.make("rolling-state"), "rollout.json") };
  const run = { config, inventory, plans, state, remote: fakes.remote } as unknown as ClusterRun;
  return { run, fakes };
}

describe("a Consul config change on a running cluster", () => {
  it("is installed on every server before the first restart, then restarts them one at a time, the leader last", async () => {
    const first = await fakeCluster();
    const quiet = agentRollouts(first.run, recordingGate([], ["server-1"]), { waitHealthy: async () => {} });
    await installConsulAgents(first.run, servers, quiet.servers);
    // the same nodes, now with log_level DEBUG in the cluster config
    const changed = makeConfig({ name: "unit-rolling", agents: { logLevel: "debug" } });
    const plans = new Map(planCluster(changed, inventory, fixedSecrets(names)).map((p) => [p.host.name, p]));
    const run = { ...first.run, config: changed, plans } as unknown as ClusterRun;
    const events: string[] = [];
    const gate = recordingGate(events, ["server-3"]);
    const leader = gate.leader.bind(gate);
    gate.leader = async (all) => {
      // before any restart, every server already has its new file
      for (const s of servers) {
        const config = first.fakes.remote(s).files.get(layout.consul.configFile)?.content.toString();
        events.push(`${s.name} ${config?.includes('log_level      = "DEBUG"') ? "has" : "lacks"} the new config`);
      }
      return leader(all);
    };
    const rollouts = agentRollouts(run, gate, { waitHealthy: async () => {} });
    const plan = describeAgentPlan("consul", await planAgents(run, servers, consulAgent), rollouts.servers, "server-3");
    expect(plan.at(-1)).toBe(
      "consul would restart one at a time: server-1 → server-2 → server-3 (server-3 leads: last, after a leadership transfer)",
    );
    // the dry run changed nothing
    expect(first.fakes.remote("server-1").files.get(layout.consul.configFile)?.content.toString()).toContain('"INFO"');

    const result = await installConsulAgents(run, servers, rollouts.servers);
    expect(result.steps.map((s) => s.hosts[0])).toEqual(["server-1", "server-2", "server-3"]);
    expect(events.slice(0, 3)).toEqual(servers.map((s) => `${s.name} has the new config`));
    expect(events.filter((e) => !e.includes("config"))).toEqual([
      "healthy server-1",
      "healthy server-2",
      "transfer server-3",
      "healthy server-3",
    ]);
    for (const s of servers)
      expect(
        first.fakes
          .remote(s)
          .takeLog()
          .filter((l) => l === "restart consul"),
      ).toHaveLength(1);
  });
});

describe("the consul stage's dry run", () => {
  it("lists the changed files and the restart order of servers and clients, and changes nothing", async () => {
    const { run, fakes } = await fakeCluster();
    const quiet = agentRollouts(run, recordingGate([], ["server-1"]), { waitHealthy: async () => {} });
    await installConsulAgents(run, servers, quiet.servers);
    await installConsulAgents(run, clients, quiet.clients);
    expect(await consulStage.plan?.(run)).toEqual([]);

    const changed = makeConfig({ name: "unit-rolling", agents: { logLevel: "debug" }, rollout: { clientBatchSize: 2 } });
    const plans = new Map(planCluster(changed, inventory, fixedSecrets(names)).map((p) => [p.host.name, p]));
    for (const name of names) fakes.remote(name).takeLog();
    const lines = await consulStage.plan?.({ ...run, config: changed, plans } as unknown as ClusterRun);
    expect(lines).toEqual([
      ...servers.map((s) => `${s.name}: ${layout.consul.configFile} would change`),
      // no API in a unit test: the leader is unknown, so no server is held back
      "consul would restart one at a time: server-1 → server-2 → server-3",
      ...clients.map((c) => `${c.name}: ${layout.consul.configFile} would change`),
      "consul would restart in batches of 2: client-1 + client-2 → client-3",
    ]);
    for (const name of names)
      expect(
        fakes
          .remote(name)
          .takeLog()
          .filter((l) => /^(upload|chmod|start|restart|reload|daemon-reload)/.test(l)),
      ).toEqual([]);
  });
});
