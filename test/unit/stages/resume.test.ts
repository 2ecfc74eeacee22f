/**
 * Resuming a rolling restart that stopped halfway (resume.ts, the journal in
 * state/rollout-journal.ts) on fake nodes: the files of a config change are on
 * every server before the first restart, so a run that stops after one restart
 * leaves servers whose files are current but whose agent runs the old config.
 * The re-run must restart exactly those, first, and leave no journal behind.
 */
import { existsSync } from "node:fs";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { OperationError } from "../../../scripts/lib/errors.ts";
import type { InventoryHost } from "../../../scripts/lib/inventory/schema.ts";
import { nodeLayout } from "../../../scripts/lib/render/layout.ts";
import { planCluster } from "../../../scripts/lib/render/plan.ts";
import { consulStage, installConsulAgents } from "../../../scripts/lib/stages/consul.ts";
import { agentRollouts } from "../../../scripts/lib/stages/install.ts";
import type { ServerGate } from "../../../scripts/lib/stages/rolling.ts";
import type { ClusterRun } from "../../../scripts/lib/stages/run-context.ts";
import { fakeRemotes } from "../../helpers/fake-remote.ts";
import { fixedSecrets, loopbackInventory, makeConfig, scratchDirs } from "../../helpers/fixtures.ts";

const scratch = scratchDirs();
afterAll(() => scratch.removeAll());

const layout = nodeLayout();
const names = ["server-1", "server-2", "server-3", "client-1", "client-2"];
const inventory = loopbackInventory(
  names.map((name, i) => ({
    name,
    roles: name === "server-1" ? ["server", "vault"] : name.startsWith("server") ? ["server"] : ["client"],
    ip: `127.0.0.${i + 1}`,
  })),
);
const servers = inventory.hosts.filter((h) => h.roles.includes("server"));
const clients = inventory.hosts.filter((h) => h.roles.includes("client"));

/** server-3 leads; `failAt` does not come back after its restart (once) */
function gate(events: string[], failAt?: string): ServerGate {
  let failing = failAt;
  return {
    leader: async () => "server-3",
    transferLeadership: async (from) => {
      events.push(`transfer ${from.name}`);
      return true;
    },
    async waitHealthy(host) {
      if (host.name === failing) {
        failing = undefined;
        throw new OperationError(`Consul on ${host.name} did not rejoin a healthy cluster within 180s after its restart.`, {
          hint: "Check 'journalctl -u consul'.",
        });
      }
      events.push(`healthy ${host.name}`);
    },
  };
}

const quietClients = { waitHealthy: async () => {} };

/** a running cluster (every agent started with the INFO config) and a way to run again with another config */
async function runningCluster() {
  const fakes = fakeRemotes(names);
  const stateDir = await scratch.make("resume-state");
  const state = { rollout: join(stateDir, "rollout.json") };
  const runWith = (logLevel: string) => {
    const config = makeConfig({ name: "unit-resume", agents: { logLevel } });
    const plans = new Map(planCluster(config, inventory, fixedSecrets(names)).map((p) => [p.host.name, p]));
    return { config, inventory, plans, state, remote: fakes.remote } as unknown as ClusterRun;
  };
  const first = runWith("info");
  const rollouts = agentRollouts(first, gate([]), quietClients);
  await installConsulAgents(first, servers, rollouts.servers);
  await installConsulAgents(first, clients, rollouts.clients);
  const restarts = () =>
    Object.fromEntries(
      names.map((n) => [
        n,
        fakes
          .remote(n)
          .takeLog()
          .filter((l) => l === "restart consul").length,
      ]),
    );
  restarts();
  const hasConfig = (host: InventoryHost | string, level: string) =>
    fakes.remote(host).files.get(layout.consul.configFile)?.content.toString().includes(`log_level      = "${level}"`);
  return { fakes, state, runWith, restarts, hasConfig };
}

const journalOf = async (file: string) => JSON.parse(await readFile(file, "utf8")) as { agents: Record<string, unknown> };

describe("a rollout that stops halfway", () => {
  it("names where it stopped, keeps the resume point, and the re-run restarts the servers left even though their files are current", async () => {
    const cluster = await runningCluster();
    const debug = cluster.runWith("debug");
    const events: string[] = [];
    const error = await installConsulAgents(debug, servers, agentRollouts(debug, gate(events, "server-2"), quietClients).servers)
      .then(() => undefined)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OperationError);
    const stopped = error as OperationError;
    expect(stopped.message).toMatch(/^The rolling restart of consul stopped at server-2: Consul on server-2 did not rejoin/);
    expect(stopped.details).toContain("restarted and healthy: server-1; not restarted yet: server-2, server-3");
    expect(stopped.hint).toContain("Check 'journalctl -u consul'.");
    expect(stopped.hint).toContain("A re-run of bootstrap resumes the rollout: it restarts server-2, server-3 first");
    expect(stopped.hint).toContain(cluster.state.rollout);
    expect(cluster.restarts()).toEqual({ "server-1": 1, "server-2": 1, "server-3": 0, "client-1": 0, "client-2": 0 });
    // the files went everywhere first: server-3 has the new config but runs the old one
    for (const s of servers) expect(cluster.hasConfig(s, "DEBUG")).toBe(true);

    expect((await stat(cluster.state.rollout)).mode & 0o777).toBe(0o600);
    expect((await journalOf(cluster.state.rollout)).agents.consul).toMatchObject({
      pending: ["server-1", "server-2", "server-3"],
      order: [["server-1"], ["server-2"], ["server-3"]],
      done: ["server-1"],
    });

    // the dry run of the re-run shows the resume, no file would change
    const plan = await consulStage.plan?.(debug);
    expect(plan).toEqual([
      "consul on server-2, server-3: not restarted by a stopped run, would restart to resume it",
      "consul would restart one at a time: server-2 → server-3",
      // the clients' turn had not come
      ...clients.map((c) => `${c.name}: ${layout.consul.configFile} would change`),
      "consul would restart in batches of 1: client-1 → client-2",
    ]);

    // the re-run: nothing differs on any node, yet server-2 and server-3 restart (the leader last), server-1 does not
    events.length = 0;
    const resumed = await installConsulAgents(debug, servers, agentRollouts(debug, gate(events), quietClients).servers);
    expect(resumed.steps).toEqual([{ hosts: ["server-2"] }, { hosts: ["server-3"], transferred: true }]);
    expect(events).toEqual(["healthy server-2", "transfer server-3", "healthy server-3"]);
    expect(cluster.restarts()).toEqual({ "server-1": 0, "server-2": 1, "server-3": 1, "client-1": 0, "client-2": 0 });
    expect(existsSync(cluster.state.rollout)).toBe(false);

    // and a third run has nothing left to do
    await installConsulAgents(debug, servers, agentRollouts(debug, gate([]), quietClients).servers);
    expect(cluster.restarts()).toEqual({ "server-1": 0, "server-2": 0, "server-3": 0, "client-1": 0, "client-2": 0 });
  });

  it("a run stopped while writing files: the hosts that got their files restart on the re-run, and a new change restarts the rest", async () => {
    const cluster = await runningCluster();
    const debug = cluster.runWith("debug");
    // server-3 drops off while its files are uploaded
    const server3 = cluster.fakes.remote("server-3");
    const upload = server3.uploadContent.bind(server3);
    server3.uploadContent = async () => {
      throw new OperationError("server-3: connection lost");
    };
    await expect(installConsulAgents(debug, servers, agentRollouts(debug, gate([]), quietClients).servers)).rejects.toThrow(
      "installing Consul failed on 1 of 3 hosts: server-3.",
    );
    expect(cluster.restarts()).toEqual({ "server-1": 0, "server-2": 0, "server-3": 0, "client-1": 0, "client-2": 0 });
    expect((await journalOf(cluster.state.rollout)).agents.consul).toMatchObject({
      pending: expect.arrayContaining(["server-1", "server-2", "server-3"]),
      done: [],
    });
    server3.uploadContent = upload;

    // the re-run: server-1 and server-2 already have their files, server-3 gets them; all three restart once
    const events: string[] = [];
    await installConsulAgents(debug, servers, agentRollouts(debug, gate(events), quietClients).servers);
    expect(cluster.restarts()).toEqual({ "server-1": 1, "server-2": 1, "server-3": 1, "client-1": 0, "client-2": 0 });
    expect(events.at(-2)).toBe("transfer server-3");
    expect(existsSync(cluster.state.rollout)).toBe(false);
  });

  it("clients resume by batch; a change made after the stop restarts the hosts left first, then the others", async () => {
    const cluster = await runningCluster();
    const debug = cluster.runWith("debug");
    let calls = 0;
    const failing = {
      waitHealthy: async (batch: InventoryHost[]) => {
        if (calls++ === 1) throw new OperationError(`Consul on ${batch[0]?.name} did not reach the servers.`);
      },
    };
    await expect(installConsulAgents(debug, clients, agentRollouts(debug, gate([]), failing).clients)).rejects.toThrow(
      /stopped at client-2: Consul on client-2 did not reach the servers/,
    );
    expect(cluster.restarts()).toMatchObject({ "client-1": 1, "client-2": 1 });

    // the operator changes the config again before re-running: every client restarts, client-2 (left) first
    const trace = cluster.runWith("trace");
    const batches: string[] = [];
    await installConsulAgents(
      trace,
      clients,
      agentRollouts(trace, gate([]), { waitHealthy: async (b) => void batches.push(b.map((h) => h.name).join("+")) }).clients,
    );
    expect(batches).toEqual(["client-2", "client-1"]);
    expect(cluster.restarts()).toMatchObject({ "client-1": 1, "client-2": 1 });
    for (const c of clients) expect(cluster.hasConfig(c, "TRACE")).toBe(true);
    expect(existsSync(cluster.state.rollout)).toBe(false);
  });

  it("the journal of one agent does not restart another, and a finished rollout of the servers keeps what the clients still need", async () => {
    const cluster = await runningCluster();
    const debug = cluster.runWith("debug");
    // servers done, the run stopped in the first client batch
    await installConsulAgents(debug, servers, agentRollouts(debug, gate([]), quietClients).servers);
    const failing = { waitHealthy: async () => Promise.reject(new OperationError("client did not come back")) };
    await expect(installConsulAgents(debug, clients, agentRollouts(debug, gate([]), failing).clients)).rejects.toThrow();
    const journal = (await journalOf(cluster.state.rollout)).agents;
    expect(Object.keys(journal)).toEqual(["consul"]);
    expect(journal.consul).toMatchObject({ pending: ["client-1", "client-2"], done: [] });
    cluster.restarts();
    // a servers-only re-run restarts no server and keeps the clients' resume point
    await installConsulAgents(debug, servers, agentRollouts(debug, gate([]), quietClients).servers);
    expect(cluster.restarts()).toMatchObject({ "server-1": 0, "server-2": 0, "server-3": 0 });
    expect((await journalOf(cluster.state.rollout)).agents.consul).toMatchObject({ pending: ["client-1", "client-2"] });
  });

  it("refuses a journal it cannot read, naming the file", async () => {
    const cluster = await runningCluster();
    await writeFile(cluster.state.rollout, "{ not json", { mode: 0o600 });
    const debug = cluster.runWith("debug");
    await expect(installConsulAgents(debug, servers, agentRollouts(debug, gate([]), quietClients).servers)).rejects.toThrow(
      `The rollout journal ${cluster.state.rollout} is not readable.`,
    );
    expect(cluster.restarts()).toMatchObject({ "server-1": 0, "server-2": 0, "server-3": 0 });
  });
});
