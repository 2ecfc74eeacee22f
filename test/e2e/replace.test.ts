/**
 * Replacing a server of a running cluster and removing servers, through the
 * real CLI on local nodes: `--replace server-2` (a Consul, Nomad and Vault
 * raft peer) while the other servers are asked for their leader every 200 ms,
 * then three healthy raft peers in each product and a new machine under the
 * old name; and lowering topology.servers 5 → 3, one server at a time.
 * Needs root.
 */
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { $ } from "zx";
import type { RaftServer } from "../../scripts/lib/cluster/raft-members.ts";
import { loadInventory } from "../../scripts/lib/inventory/load.ts";
import { localProvider } from "../../scripts/lib/providers/local/provider.ts";
import type { ProviderContext } from "../../scripts/lib/providers/types.ts";
import { runStages } from "../../scripts/lib/stages/pipeline.ts";
import { leaderlessPolls, longestLeaderless, operatorTls, pollLeaders, probes } from "../helpers/leader-polls.ts";
import { type IsolatedCluster, isolatedLocalCluster, withDetails } from "../helpers/local-cluster.ts";

const cidr = "10.85.0.0/24";
const ip = (offset: number) => `10.85.0.${offset}`;
const server = (n: number) => ip(10 + n);
// this suite is about raft membership; the platform jobs are the 5-node suite's
const noJobs = {
  prometheus: { enabled: false },
  alertmanager: { enabled: false },
  grafana: { enabled: false },
  fabio: { enabled: false },
  energyExporter: { enabled: false },
};

/** The API clients of one isolated cluster: curl with its CA, operator certificate and tokens; ssh with its key. */
function clusterTools(context: () => ProviderContext) {
  const state = () => context().state;
  const secret = async (name: string) => (await $({ quiet: true })`cat ${join(state().secrets, name)}`).stdout.trim();
  const curl = async (url: string, headers: string[] = [], extra: string[] = []) => {
    const tls = state().tls;
    return $({
      quiet: true,
      nothrow: true,
    })`curl -sS --max-time 10 --cacert ${join(tls, "ca.pem")} --cert ${join(tls, "operator.pem")} --key ${join(tls, "operator-key.pem")} ${headers.flatMap((h) => ["-H", h])} ${extra} ${url}`;
  };
  const json = async <T>(url: string, headers: string[]): Promise<T | undefined> => {
    const result = await curl(url, headers);
    try {
      return result.exitCode === 0 ? (JSON.parse(result.stdout) as T) : undefined;
    } catch {
      return undefined;
    }
  };
  const tokenHeader = async (product: "consul" | "nomad" | "vault") =>
    ({
      consul: `X-Consul-Token: ${await secret("consul-bootstrap-token")}`,
      nomad: `X-Nomad-Token: ${await secret("nomad-bootstrap-token")}`,
      vault: `X-Vault-Token: ${await secret("vault-root-token")}`,
    })[product];
  const ports = { consul: 8501, nomad: 4646, vault: 8200 };
  return {
    secret,
    /** a write to a product's API; fails the test unless it succeeds */
    async write(product: "consul" | "nomad" | "vault", address: string, method: string, path: string) {
      const result = await curl(
        `https://${address}:${ports[product]}${path}`,
        [await tokenHeader(product)],
        ["-X", method, "--fail-with-body"],
      );
      expect(result.exitCode, `${method} ${path}: ${result.stdout}${result.stderr}`).toBe(0);
    },
    ssh: (address: string, command: string) =>
      $({
        quiet: true,
        nothrow: true,
      })`ssh -i ${join(state().root, "ssh", "id_ed25519")} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR root@${address} ${command}`,
    consul: async <T>(address: string, path: string) =>
      json<T>(`https://${address}:8501${path}`, [`X-Consul-Token: ${await secret("consul-bootstrap-token")}`]),
    nomad: async <T>(address: string, path: string) =>
      json<T>(`https://${address}:4646${path}`, [`X-Nomad-Token: ${await secret("nomad-bootstrap-token")}`]),
    vault: async <T>(address: string, path: string) =>
      json<T>(`https://${address}:8200${path}`, [`X-Vault-Token: ${await secret("vault-root-token")}`]),
    /** the CLI, as an operator runs it */
    bootstrap: (configFile: string, args: string[]) =>
      $({
        quiet: true,
        nothrow: true,
        env: { ...process.env, CI: "true" },
      })`npx --no-install tsx scripts/bootstrap.ts --config ${configFile} ${args}`,
    /** poll both products' leaders on these servers while `during` runs */
    async whilePolling<T>(addresses: string[], during: () => Promise<T>) {
      const consulToken = await secret("consul-bootstrap-token");
      const nomadToken = await secret("nomad-bootstrap-token");
      const tls = operatorTls(state().tls);
      const consul = pollLeaders(addresses, probes.consul(tls, consulToken));
      const nomad = pollLeaders(addresses, probes.nomad(tls, nomadToken));
      try {
        return { result: await during(), consul: consul.polls, nomad: nomad.polls };
      } finally {
        await Promise.all([consul.stop(), nomad.stop()]);
      }
    },
  };
}

/** Until `check` holds (polling every 2 s), or the last value at the deadline. */
async function eventually<T>(read: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!check(value) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 2000));
    value = await read();
  }
  return value;
}

const voters = (servers: { Node?: string; node_id?: string; Voter?: boolean; voter?: boolean }[] | undefined) =>
  (servers ?? [])
    .filter((s) => s.Voter ?? s.voter)
    .map((s) => (s.Node ?? s.node_id ?? "").replace(/\.global$/, ""))
    .sort();

describe("--replace server-2 on 3 servers and 1 client", () => {
  let isolated: IsolatedCluster;
  const tools = clusterTools(() => isolated.context);
  let configFile: string;

  beforeAll(async () => {
    isolated = await isolatedLocalCluster("replace", {
      name: "replace",
      topology: { servers: 3, clients: 1 },
      provider: { local: { cidr } },
      jobs: noJobs,
    });
    configFile = join(isolated.dir, "cluster.yaml");
    await writeFile(configFile, stringify(isolated.context.config));
    const inventory = await localProvider.up(isolated.context);
    await withDetails(runStages(isolated.context, inventory));
  }, 1_200_000);

  afterAll(async () => isolated?.dispose());

  it("the dry run lists the steps and changes nothing (exit 5)", async () => {
    const dry = await tools.bootstrap(configFile, ["--replace", "server-2", "--dry-run"]);
    expect(dry.exitCode, dry.stderr).toBe(5);
    expect(dry.stdout + dry.stderr).toContain("--replace server-2: it leaves the cluster, its provider destroys it");
    expect(dry.stdout + dry.stderr).toContain("server-2: Vault: the active node steps down if it is this one");
    const members = await tools.consul<{ Name: string; Status: number }[]>(server(1), "/v1/agent/members");
    expect(members?.find((m) => m.Name === "server-2")?.Status).toBe(1);
  }, 120_000);

  it("replaces server-2 with a leader at every poll, then has 3 healthy raft peers in Consul, Nomad and Vault", async () => {
    const machineId = async () => (await tools.ssh(server(2), "cat /etc/machine-id")).stdout.trim();
    const before = await machineId();
    expect(before).toMatch(/^[0-9a-f]{32}$/);
    const oldConsulId = (
      await tools.consul<{ Servers: RaftServer[] }>(server(1), "/v1/operator/raft/configuration")
    )?.Servers.find((s) => s.Node === "server-2")?.ID;
    expect(oldConsulId).toBeTruthy();

    // server-2 leads Consul and Nomad when the replace starts (and Vault, if a few step-downs get it there):
    // the leaving leader must hand over first
    for (const [product, path, method] of [
      ["consul", "/v1/operator/raft/transfer-leader", "POST"],
      ["nomad", "/v1/operator/raft/transfer-leadership", "PUT"],
    ] as const) {
      const raft = await (product === "consul" ? tools.consul : tools.nomad)<{ Servers: RaftServer[] }>(
        server(1),
        "/v1/operator/raft/configuration",
      );
      const target = raft?.Servers.find((s) => s.Address.startsWith(`${server(2)}:`));
      if (!target?.Leader) await tools.write(product, server(1), method, `${path}?id=${target?.ID}`);
      const leader = await eventually(
        () => (product === "consul" ? tools.consul : tools.nomad)<string>(server(3), "/v1/status/leader"),
        (l) => l?.startsWith(`${server(2)}:`) === true,
        30_000,
      );
      expect(leader, product).toMatch(new RegExp(`^${server(2).replace(/\./g, "\\.")}:`));
    }
    const vaultActive = async () => {
      for (const n of [1, 2, 3]) {
        const health = await tools.vault<{ standby: boolean; sealed: boolean }>(server(n), "/v1/sys/health?standbyok=true");
        if (health && !health.standby && !health.sealed) return n;
      }
      return undefined;
    };
    for (let i = 0; i < 6 && (await vaultActive()) !== 2; i++) {
      const active = await eventually(vaultActive, (n) => n !== undefined, 60_000);
      await tools.write("vault", server(active ?? 1), "PUT", "/v1/sys/step-down");
      await new Promise((r) => setTimeout(r, 3000));
      await eventually(vaultActive, (n) => n !== undefined && n !== active, 60_000);
    }
    const vaultLeader = await vaultActive();
    console.info(`before the replace: server-${vaultLeader} is the active Vault`);

    const started = Date.now();
    const { result, consul, nomad } = await tools.whilePolling([server(1), server(3)], () =>
      tools.bootstrap(configFile, ["--replace", "server-2", "--yes"]),
    );
    const seconds = (Date.now() - started) / 1000;
    const output = `${result.stdout}\n${result.stderr}`;
    expect(result.exitCode, output).toBe(0);
    console.info(
      `--replace server-2: ${seconds}s; Consul ${consul.length} polls, ${leaderlessPolls(consul)} without a leader, longest ${longestLeaderless(consul)} ms; Nomad ${nomad.length} polls, ${leaderlessPolls(nomad)} without a leader, longest ${longestLeaderless(nomad)} ms`,
    );
    console.info(
      output
        .split("\n")
        .filter((l) => /replace: /.test(l))
        .join("\n"),
    );
    expect(output).toMatch(/replace: Consul leadership handed from server-2 to server-[13]/);
    expect(output).toMatch(/replace: Nomad leadership handed from server-2 to server-[13]/);
    if (vaultLeader === 2) expect(output).toMatch(/replace: Vault leadership handed from server-2 to server-[13]/);
    expect(output).toMatch(/replace: Vault raft peer server-2 removed/);
    expect(output).toMatch(/replace: Nomad raft peer server-2 removed/);
    expect(output).toMatch(/replace: Consul (server server-2 left raft|raft peer server-2 removed)/);
    expect(output).toMatch(/replace: .*node server-2/);
    // both products kept a leader throughout: never longer without one than an election timeout (1 s)
    for (const [product, polls] of [
      ["Consul", consul],
      ["Nomad", nomad],
    ] as const) {
      expect(polls.length, product).toBeGreaterThan(100);
      expect(longestLeaderless(polls), product).toBeLessThan(1000);
    }

    expect(await machineId()).not.toBe(before);

    // the new server-2 is promoted to voter once autopilot calls it stable
    const allThree = ["server-1", "server-2", "server-3"];
    const consulRaft = await eventually(
      () => tools.consul<{ Servers: RaftServer[] }>(server(1), "/v1/operator/raft/configuration"),
      (r) => voters(r?.Servers).join() === allThree.join(),
    );
    expect(voters(consulRaft?.Servers)).toEqual(allThree);
    expect(consulRaft?.Servers.find((s) => s.Node === "server-2")?.ID).not.toBe(oldConsulId);
    const consulHealth = await eventually(
      () => tools.consul<{ Healthy: boolean; Servers: unknown[] }>(server(3), "/v1/operator/autopilot/health"),
      (h) => h?.Healthy === true,
    );
    expect(consulHealth).toMatchObject({ Healthy: true });
    expect(consulHealth?.Servers).toHaveLength(3);
    const members = await tools.consul<{ Name: string; Status: number }[]>(server(1), "/v1/agent/members");
    expect(members?.filter((m) => m.Name === "server-2").map((m) => m.Status)).toEqual([1]);

    const nomadRaft = await eventually(
      () => tools.nomad<{ Servers: RaftServer[] }>(server(1), "/v1/operator/raft/configuration"),
      (r) => voters(r?.Servers).join() === allThree.join(),
    );
    expect(voters(nomadRaft?.Servers)).toEqual(allThree);
    const nomadHealth = await eventually(
      () => tools.nomad<{ Healthy: boolean; Servers: unknown[] }>(server(3), "/v1/operator/autopilot/health"),
      (h) => h?.Healthy === true,
    );
    expect(nomadHealth).toMatchObject({ Healthy: true });
    expect(nomadHealth?.Servers).toHaveLength(3);
    const nomadMembers = await tools.nomad<{ Members: { Name: string; Status: string }[] }>(server(1), "/v1/agent/members");
    expect(nomadMembers?.Members.map((m) => `${m.Name} ${m.Status}`).sort()).toEqual([
      "server-1.global alive",
      "server-2.global alive",
      "server-3.global alive",
    ]);
    const nodes = await tools.nomad<{ Name: string; Status: string }[]>(server(1), "/v1/nodes");
    expect(nodes?.map((n) => `${n.Name} ${n.Status}`)).toEqual(["client-1 ready"]);

    type VaultServer = { node_id: string; voter: boolean };
    const vaultRaft = await eventually(
      () => tools.vault<{ data: { config: { servers: VaultServer[] } } }>(server(1), "/v1/sys/storage/raft/configuration"),
      (r) => voters(r?.data.config.servers).join() === allThree.join(),
    );
    expect(voters(vaultRaft?.data.config.servers)).toEqual(allThree);
    const vaultHealth = await tools.vault<{ initialized: boolean; sealed: boolean }>(server(2), "/v1/sys/health?standbyok=true");
    expect(vaultHealth).toMatchObject({ initialized: true, sealed: false });
    const autopilot = await eventually(
      () => tools.vault<{ data: { healthy: boolean } }>(server(1), "/v1/sys/storage/raft/autopilot/state"),
      (s) => s?.data.healthy === true,
    );
    expect(autopilot?.data.healthy).toBe(true);
    // its Vault serves a certificate from the cluster's PKI again (not the bootstrap one)
    const tls = await $({
      quiet: true,
      nothrow: true,
      input: "",
    })`openssl s_client -connect ${server(2)}:8200 -CAfile ${join(isolated.context.state.tls, "ca.pem")} -verify_return_error -verify_ip ${server(2)}`;
    expect(tls.stdout).toContain("Verify return code: 0 (ok)");
  }, 1_200_000);
});

describe("topology.servers 5 → 3", () => {
  let isolated: IsolatedCluster;
  const tools = clusterTools(() => isolated.context);
  let configFile: string;

  beforeAll(async () => {
    isolated = await isolatedLocalCluster("scale-servers", {
      name: "scalesrv",
      topology: { servers: 5, clients: 0 },
      provider: { local: { cidr } },
      jobs: noJobs,
    });
    configFile = join(isolated.dir, "cluster.yaml");
    const inventory = await localProvider.up(isolated.context);
    await withDetails(runStages(isolated.context, inventory));
  }, 1_500_000);

  afterAll(async () => isolated?.dispose());

  it("server-5 and then server-4 leave one at a time with a leader at every poll; 3 healthy peers remain", async () => {
    const config = isolated.context.config;
    await writeFile(configFile, stringify({ ...config, topology: { ...config.topology, servers: 3 } }));
    const started = Date.now();
    const { result, consul, nomad } = await tools.whilePolling([server(1), server(2), server(3)], () =>
      tools.bootstrap(configFile, ["--yes"]),
    );
    const seconds = (Date.now() - started) / 1000;
    const output = `${result.stdout}\n${result.stderr}`;
    expect(result.exitCode, output).toBe(0);
    console.info(
      `servers 5 → 3: ${seconds}s; Consul ${consul.length} polls, ${leaderlessPolls(consul)} without a leader, longest ${longestLeaderless(consul)} ms; Nomad ${nomad.length} polls, ${leaderlessPolls(nomad)} without a leader, longest ${longestLeaderless(nomad)} ms`,
    );
    // server-5 went (raft and node) before server-4 started to leave
    const order = [
      "scale in: Nomad raft peer server-5 removed",
      "node server-5",
      "scale in: Nomad raft peer server-4 removed",
      "node server-4",
    ];
    const at = order.map((line) => output.indexOf(line));
    expect(
      at.every((i) => i >= 0),
      output,
    ).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    for (const [product, polls] of [
      ["Consul", consul],
      ["Nomad", nomad],
    ] as const) {
      expect(polls.length, product).toBeGreaterThan(100);
      expect(longestLeaderless(polls), product).toBeLessThan(1000);
    }
    const three = ["server-1", "server-2", "server-3"];
    const consulRaft = await tools.consul<{ Servers: RaftServer[] }>(server(1), "/v1/operator/raft/configuration");
    expect(voters(consulRaft?.Servers)).toEqual(three);
    expect(
      await eventually(
        () => tools.consul<{ Healthy: boolean }>(server(1), "/v1/operator/autopilot/health"),
        (h) => h?.Healthy === true,
      ),
    ).toMatchObject({ Healthy: true });
    const members = await tools.consul<{ Name: string }[]>(server(1), "/v1/agent/members");
    expect(members?.map((m) => m.Name).sort()).toEqual(three);
    const nomadRaft = await tools.nomad<{ Servers: RaftServer[] }>(server(1), "/v1/operator/raft/configuration");
    expect(voters(nomadRaft?.Servers)).toEqual(three);
    const nomadMembers = await tools.nomad<{ Members: { Name: string }[] }>(server(1), "/v1/agent/members");
    expect(nomadMembers?.Members.map((m) => m.Name).sort()).toEqual(three.map((n) => `${n}.global`));
    const inventory = await loadInventory(isolated.context.state.inventoryCopy);
    expect(inventory.hosts.map((h) => h.name)).toEqual(three);
    expect(existsSync(join(isolated.context.state.root, "nodes", "server-4"))).toBe(false);
    expect(existsSync(join(isolated.context.state.root, "nodes", "server-5"))).toBe(false);
    // the survivors' configs name only the three (retry_join, bootstrap_expect)
    const consulConfig = (await tools.ssh(server(1), "cat /etc/consul.d/consul.hcl")).stdout;
    expect(consulConfig).toContain("bootstrap_expect = 3");
    expect(consulConfig).not.toContain(server(4));
  }, 1_200_000);
});
