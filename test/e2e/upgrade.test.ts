/**
 * Changing a real 3-server cluster safely (local provider, Vault HA): bootstrapped
 * with an older consul-template build, then upgraded to the pinned one together
 * with agents.logLevel info → debug in one re-run of the whole pipeline, so the
 * Consul and Nomad servers roll too (a consul-template upgrade alone restarts no
 * server agent). Every 200 ms each server is asked for its leader (Consul, Nomad,
 * Vault): a leader at every poll (no gap of one election timeout), never two
 * servers down at once, the servers restarted one after the other, and every node
 * reporting the new consul-template afterwards. Then a bootstrap killed right after
 * its first Consul server restarted: the re-run restarts the servers it left, whose
 * files were already current. Needs root and the older build from the test
 * prerequisites.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { $ } from "zx";
import { binaryPath } from "../../scripts/lib/binaries/build.ts";
import { tools, upgradeTestFrom } from "../../scripts/lib/binaries/catalog.ts";
import type { Inventory } from "../../scripts/lib/inventory/schema.ts";
import { localProvider } from "../../scripts/lib/providers/local/provider.ts";
import type { ProviderContext } from "../../scripts/lib/providers/types.ts";
import { planStagesOn, runStages } from "../../scripts/lib/stages/pipeline.ts";
import { type LeaderPoll, longestLeaderless, mostDownAtOnce, pollLeaders, probes } from "../helpers/leader-polls.ts";
import { type IsolatedCluster, isolatedLocalCluster, withDetails } from "../helpers/local-cluster.ts";

const cidr = "10.86.0.0/24";
const from = upgradeTestFrom["consul-template"].version;
const to = tools["consul-template"].version;
const units = ["consul", "nomad", "vault", "consul-template"] as const;
type Unit = (typeof units)[number];

let isolated: IsolatedCluster;
let context: ProviderContext;
let inventory: Inventory;
const servers = () => inventory.hosts.filter((h) => h.roles.includes("server"));

const ssh = (address: string, command: string) =>
  $({
    quiet: true,
    nothrow: true,
  })`ssh -i ${join(context.state.root, "ssh", "id_ed25519")} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR root@${address} ${command}`;

/** the context with other settings (the upgrade's versions, another log level) */
const withSettings = (changes: { consulTemplate?: string; logLevel?: "info" | "debug" | "warn" }): ProviderContext => ({
  ...context,
  config: {
    ...context.config,
    versions: { ...context.config.versions, consulTemplate: changes.consulTemplate ?? context.config.versions.consulTemplate },
    agents: { ...context.config.agents, logLevel: changes.logLevel ?? context.config.agents.logLevel },
  },
});

/** per host and unit: when it last entered "active" (CLOCK_MONOTONIC µs, one clock for all nspawn nodes) */
async function unitStarts(): Promise<Record<string, Record<Unit, number>>> {
  const starts: Record<string, Record<Unit, number>> = {};
  await Promise.all(
    inventory.hosts.map(async (host) => {
      const answer = await ssh(
        host.privateIp,
        `for u in ${units.join(" ")}; do systemctl show -p ActiveEnterTimestampMonotonic --value $u; done`,
      );
      const values = answer.stdout.trim().split("\n").map(Number);
      starts[host.name] = Object.fromEntries(units.map((u, i) => [u, values[i] ?? 0])) as Record<Unit, number>;
    }),
  );
  return starts;
}

async function consulTemplateVersions(): Promise<Record<string, string>> {
  const versions: Record<string, string> = {};
  for (const host of inventory.hosts) {
    const answer = await ssh(host.privateIp, "/usr/local/bin/consul-template -version 2>&1");
    versions[host.name] = /v(\d+\.\d+\.\d+)/.exec(answer.stdout)?.[1] ?? `(none: ${answer.stdout.trim()})`;
  }
  return versions;
}

function watchLeaders(nomadToken: string) {
  const tls = context.state.tlsFiles;
  const files = { ca: readFileSync(tls.rootCa), cert: readFileSync(tls.operatorCert), key: readFileSync(tls.operatorKey) };
  const addresses = servers().map((h) => h.privateIp);
  return {
    consul: pollLeaders(addresses, probes.consul(files)),
    nomad: pollLeaders(addresses, probes.nomad(files, nomadToken)),
    vault: pollLeaders(addresses, probes.vault(files.ca)),
  };
}

function processGroupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

const figures = (polls: LeaderPoll[]) => ({
  polls: polls.length,
  longestLeaderlessMs: longestLeaderless(polls),
  mostServersDownAtOnce: mostDownAtOnce(polls),
  pollsWithoutLeader: polls.filter((p) => !p.answers.some((a) => a)).length,
});

beforeAll(async () => {
  const cached = binaryPath(upgradeTestFrom["consul-template"]);
  if (!existsSync(cached))
    throw new Error(`consul-template ${from} is not built at ${cached}: run 'npx tsx scripts/setup/test-prerequisites.ts'.`);
  isolated = await isolatedLocalCluster("upgrade", {
    name: "upgrade",
    topology: { servers: 3, clients: 0 },
    provider: { local: { cidr } },
    versions: { consulTemplate: from },
    // the builds in the local cache, never a download
    install: { method: "upload" },
  });
  context = isolated.context;
  inventory = await localProvider.up(context);
  await withDetails(runStages(context, inventory));
}, 900_000);

afterAll(async () => isolated?.dispose());

describe(`an upgrade of consul-template ${from} → ${to} with a log-level change`, () => {
  it(`runs consul-template ${from} on every node before the upgrade`, async () => {
    expect(Object.values(await consulTemplateVersions())).toEqual(inventory.hosts.map(() => from));
  });

  it("rolls the change with a leader at every poll, one server at a time, and every node reports the new version", async () => {
    const upgraded = withSettings({ consulTemplate: to, logLevel: "debug" });
    const before = await unitStarts();
    const token = (await readFile(join(context.state.secrets, "nomad-bootstrap-token"), "utf8")).trim();
    const watch = watchLeaders(token);
    const started = Date.now();
    let records: Awaited<ReturnType<typeof runStages>>;
    try {
      records = await withDetails(runStages(upgraded, inventory));
    } finally {
      await Promise.all(Object.values(watch).map((w) => w.stop()));
    }
    const seconds = (Date.now() - started) / 1000;
    const after = await unitStarts();
    const report: Record<string, unknown> = { seconds };
    for (const [product, watcher] of Object.entries(watch)) report[product] = figures(watcher.polls);
    console.info(`upgrade: ${JSON.stringify(report)}`);

    expect(records.prepare?.summary).toBe(`${inventory.hosts.length} binaries uploaded`);
    expect(await consulTemplateVersions()).toEqual(Object.fromEntries(inventory.hosts.map((h) => [h.name, to])));
    for (const host of inventory.hosts) {
      // the replaced binary restarted consul-template everywhere; Vault's config did not change: it kept running
      expect(after[host.name]?.["consul-template"], host.name).toBeGreaterThan(before[host.name]?.["consul-template"] ?? 0);
      expect(after[host.name]?.vault, host.name).toBe(before[host.name]?.vault);
    }
    for (const product of ["consul", "nomad"] as const) {
      const summary = records[product]?.summary ?? "";
      const order = /3 restarted in order (server-\d), (server-\d), (server-\d) \(after a leadership transfer\)/.exec(summary);
      expect(order, summary).not.toBeNull();
      // each server restarted once, in the summary's order (the leader last)
      const starts = (order ?? []).slice(1).map((name) => after[name]?.[product] ?? 0);
      for (const host of servers())
        expect(after[host.name]?.[product], host.name).toBeGreaterThan(before[host.name]?.[product] ?? 0);
      expect([...starts].sort((a, b) => a - b)).toEqual(starts);
    }
    for (const [product, watcher] of Object.entries(watch)) {
      const { longestLeaderlessMs, mostServersDownAtOnce } = figures(watcher.polls);
      // raft_multiplier 1: one election timeout is 1 s in Consul and Nomad (Vault's raft: 1 s too, by default)
      expect(longestLeaderlessMs, `${product} was without a leader for ${longestLeaderlessMs} ms`).toBeLessThan(1000);
      expect(mostServersDownAtOnce, `${product}: servers down at the same time`).toBeLessThanOrEqual(1);
    }
    expect(existsSync(context.state.rollout)).toBe(false);
    // nothing left to do
    const plans = await planStagesOn(upgraded, inventory, ["vault", "consul", "nomad"]);
    expect(plans.map((p) => p.changes)).toEqual([[], [], []]);
    context = upgraded;
  }, 600_000);

  it("a bootstrap killed after its first Consul server restarted: the re-run restarts the servers left, whose files were already current", async () => {
    const warn = withSettings({ logLevel: "warn" });
    const config = join(isolated.dir, "cluster.yaml");
    await writeFile(config, stringify(warn.config));
    const before = await unitStarts();
    // the real CLI in its own process group (npx → tsx → node die together)
    const child = spawn("npx", ["--no-install", "tsx", "scripts/bootstrap.ts", "--config", config, "--stages", "consul"], {
      env: { ...process.env, CI: "true" },
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr.on("data", (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    let first: string | undefined;
    const spawned = Date.now();
    let killedAtMs = 0;
    const deadline = Date.now() + 240_000;
    try {
      while (!first && Date.now() < deadline && child.exitCode === null) {
        const now = await unitStarts();
        first = servers().find((h) => now[h.name]?.consul !== before[h.name]?.consul)?.name;
        if (!first) await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      killedAtMs = Date.now() - spawned;
      if (child.pid && child.exitCode === null) process.kill(-child.pid, "SIGKILL");
    }
    await exited;
    // until every process of the group is gone, the killed bootstrap holds the cluster lock
    const groupGone = Date.now() + 30_000;
    while (processGroupAlive(child.pid as number)) {
      if (Date.now() > groupGone) throw new Error("the killed bootstrap's processes did not exit within 30 s");
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(first, `no Consul server restarted before the bootstrap ended:\n${output}`).toBeDefined();
    const stopped = await unitStarts();
    const restartedBeforeKill = servers().filter((h) => stopped[h.name]?.consul !== before[h.name]?.consul);
    const left = servers().filter((h) => stopped[h.name]?.consul === before[h.name]?.consul);
    // killed while the first restarted server rejoined (or, on a slow poll, a little later): at least one left
    expect(restartedBeforeKill.map((h) => h.name)).toContain(first);
    expect(left.length, `servers left by the killed run:\n${output}`).toBeGreaterThan(0);
    // the state a re-run without the journal would miss: new files on every server, two still running the old ones
    for (const host of servers()) {
      const file = await ssh(host.privateIp, "grep log_level /etc/consul.d/consul.hcl");
      expect(file.stdout, host.name).toContain('"WARN"');
    }
    const journal = JSON.parse(await readFile(context.state.rollout, "utf8")) as {
      agents: { consul: { pending: string[]; done: string[]; order: string[][] } };
    };
    expect([...journal.agents.consul.pending].sort()).toEqual(servers().map((h) => h.name));
    for (const host of left) expect(journal.agents.consul.done).not.toContain(host.name);
    const plan = (await planStagesOn(warn, inventory, ["consul"]))[0]?.changes ?? [];
    expect(plan.join("\n")).toMatch(/consul on .*: not restarted by a stopped run, would restart to resume it/);

    const token = (await readFile(join(context.state.secrets, "nomad-bootstrap-token"), "utf8")).trim();
    const watch = watchLeaders(token);
    let records: Awaited<ReturnType<typeof runStages>>;
    try {
      records = await withDetails(runStages(warn, inventory, ["consul"]));
    } finally {
      await Promise.all(Object.values(watch).map((w) => w.stop()));
    }
    const after = await unitStarts();
    console.info(
      `resume: ${JSON.stringify({
        killedAfterFirstRestart: first,
        killedAtMsAfterSpawn: killedAtMs,
        journalDone: journal.agents.consul.done,
        summary: records.consul?.summary,
        consul: figures(watch.consul.polls),
      })}`,
    );
    for (const host of left) expect(after[host.name]?.consul, host.name).toBeGreaterThan(stopped[host.name]?.consul ?? 0);
    expect(records.consul?.summary).toMatch(/restarted in order/);
    const { longestLeaderlessMs, mostServersDownAtOnce } = figures(watch.consul.polls);
    expect(longestLeaderlessMs).toBeLessThan(1000);
    expect(mostServersDownAtOnce).toBeLessThanOrEqual(1);
    expect(existsSync(context.state.rollout)).toBe(false);
    expect((await planStagesOn(warn, inventory, ["consul"]))[0]?.changes).toEqual([]);
  }, 600_000);
});
