/**
 * Vault HA: three Vault servers on integrated raft storage (the default with three
 * servers). Followers join the leader with a shared bootstrap CA, are unsealed after
 * they join, get their own PKI certificates, and a re-run changes nothing. With the
 * active Vault stopped, a standby node still renews its certificates, and
 * `npm run unseal` opens the restarted one; with the first Vault node stopped, a client
 * (no Vault of its own) renews through vault.service.consul. Needs root.
 */
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import type { Inventory } from "../../scripts/lib/inventory/schema.ts";
import { localProvider } from "../../scripts/lib/providers/local/provider.ts";
import { runStages, stageNames } from "../../scripts/lib/stages/pipeline.ts";
import { type IsolatedCluster, isolatedLocalCluster, withDetails } from "../helpers/local-cluster.ts";

let isolated: IsolatedCluster;
let inventory: Inventory;
let first: Awaited<ReturnType<typeof runStages>>;

const vaultApi = async (address: string, path: string) => {
  const tls = isolated.context.state.tls;
  const token = (await $({ quiet: true })`cat ${join(isolated.context.state.secrets, "vault-root-token")}`).stdout.trim();
  const result = await $({
    quiet: true,
  })`curl -sS --max-time 10 --cacert ${join(tls, "ca.pem")} -H ${`X-Vault-Token: ${token}`} https://${address}:8200${path}`;
  return JSON.parse(result.stdout);
};

beforeAll(async () => {
  isolated = await isolatedLocalCluster("vault-ha", {
    name: "vaultha",
    topology: { servers: 3, clients: 1 },
    provider: { local: { cidr: "10.91.0.0/24" } },
  });
  inventory = await localProvider.up(isolated.context);
  // the platform jobs are not what this file checks: the client is only a node without Vault
  first = await withDetails(
    runStages(
      isolated.context,
      inventory,
      stageNames.filter((s) => s !== "images" && s !== "platform"),
    ),
  );
}, 900_000);

afterAll(async () => isolated?.dispose());

describe("Vault HA on raft", () => {
  it("has three voters, one active node and two unsealed standbys", async () => {
    expect(first.vault?.summary).toContain("unsealed server-3");
    // joined followers start as non-voters; autopilot promotes them once they are stable
    type Peer = { node_id: string; voter: boolean; leader: boolean };
    let servers: Peer[] = [];
    for (let i = 0; i < 60; i++) {
      servers = (await vaultApi("10.91.0.11", "/v1/sys/storage/raft/configuration")).data.config.servers;
      if (servers.length === 3 && servers.every((s) => s.voter)) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(servers.map((s) => [s.node_id, s.voter]).sort()).toEqual([
      ["server-1", true],
      ["server-2", true],
      ["server-3", true],
    ]);
    expect(servers.filter((s) => s.leader)).toHaveLength(1);
    for (const address of ["10.91.0.12", "10.91.0.13"]) {
      const health = await vaultApi(address, "/v1/sys/health?standbyok=true");
      expect(health, address).toMatchObject({ initialized: true, sealed: false, standby: true });
    }
  });

  it("serves each node's own PKI certificate, verified against the cluster root", async () => {
    const ca = join(isolated.context.state.tls, "ca.pem");
    for (const address of ["10.91.0.11", "10.91.0.12", "10.91.0.13"]) {
      const result = await $({
        quiet: true,
        nothrow: true,
        input: "",
      })`openssl s_client -connect ${address}:8200 -CAfile ${ca} -verify_return_error -verify_ip ${address}`;
      expect(result.stdout, address).toContain("Verify return code: 0 (ok)");
    }
  });

  it("a re-run changes nothing", async () => {
    const again = await runStages(isolated.context, inventory, ["vault"]);
    expect(again.vault?.summary).toBe("no changes");
  });

  const ssh = (address: string, command: string) =>
    $({
      quiet: true,
      nothrow: true,
    })`ssh -i ${join(isolated.context.state.root, "ssh", "id_ed25519")} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR root@${address} ${command}`;
  const addresses = ["10.91.0.11", "10.91.0.12", "10.91.0.13"];
  const serial = async (address: string) =>
    (await ssh(address, "openssl x509 -noout -serial -in /etc/consul.d/tls/agent.pem")).stdout.trim();
  /** the addresses of the Vault nodes passing their health check in Consul (vault.service.consul) */
  const passing = async (through = "10.91.0.13") => {
    const tls = isolated.context.state.tls;
    const token = (await $({ quiet: true })`cat ${join(isolated.context.state.secrets, "consul-bootstrap-token")}`).stdout.trim();
    const result = await $({
      quiet: true,
      nothrow: true,
    })`curl -sS --max-time 10 --cacert ${join(tls, "ca.pem")} --cert ${join(tls, "operator.pem")} --key ${join(tls, "operator-key.pem")} -H ${`X-Consul-Token: ${token}`} https://${through}:8501/v1/health/service/vault?passing=true`;
    return (JSON.parse(result.stdout || "[]") as { Service: { Address: string } }[]).map((e) => e.Service.Address).sort();
  };
  const clusterConfig = async () => {
    const config = join(isolated.context.state.root, "..", "cluster.yaml");
    await writeFile(
      config,
      "name: vaultha\ntopology:\n  servers: 3\n  clients: 1\nprovider:\n  local:\n    cidr: 10.91.0.0/24\n",
    );
    return config;
  };

  it("with the active Vault stopped, a standby node renews its certificate; npm run unseal opens the restarted Vault", async () => {
    const active = [];
    for (const address of addresses) {
      const health = await vaultApi(address, "/v1/sys/health?standbyok=true");
      if (!health.standby) active.push(address);
    }
    expect(active).toHaveLength(1);
    const stopped = active[0] as string;
    expect((await ssh(stopped, "systemctl stop vault")).exitCode).toBe(0);
    const other = addresses.find((a) => a !== stopped) as string;
    // the two left elect a new active node
    await expect
      .poll(async () => (await vaultApi(other, "/v1/sys/health?standbyok=true").catch(() => ({}))).initialized, {
        timeout: 60_000,
      })
      .toBe(true);
    // vault.service.consul (Nomad clients' address) drops the stopped node
    await expect.poll(() => passing(other), { timeout: 60_000, interval: 2000 }).toEqual(addresses.filter((a) => a !== stopped));
    const before = await serial(other);
    // a forced renewal: without the bundle, consul-template issues a new certificate at once
    const forced = await ssh(other, "rm -f /etc/consul.d/tls/agent-bundle.pem && systemctl restart consul-template");
    expect(forced.exitCode, forced.stderr).toBe(0);
    await expect.poll(async () => serial(other), { timeout: 90_000, interval: 2000 }).not.toBe(before);

    expect((await ssh(stopped, "systemctl start vault")).exitCode).toBe(0);
    await expect
      .poll(
        async () =>
          (await ssh(stopped, "curl -s --cacert /etc/vault.d/tls/ca.pem https://127.0.0.1:8200/v1/sys/seal-status")).stdout,
        {
          timeout: 30_000,
        },
      )
      .toContain('"sealed":true');
    const config = await clusterConfig();
    const unseal = await $({ quiet: true, nothrow: true })`npx tsx scripts/unseal.ts --config ${config}`;
    expect(unseal.exitCode, `${unseal.stdout}\n${unseal.stderr}`).toBe(0);
    expect(unseal.stdout + unseal.stderr).toMatch(/server-\d: unsealed/);
    const health = await vaultApi(stopped, "/v1/sys/health?standbyok=true");
    expect(health).toMatchObject({ initialized: true, sealed: false });
    await expect.poll(() => passing(other), { timeout: 60_000, interval: 2000 }).toEqual(addresses);
    // a second run finds nothing to do
    const again = await $({ quiet: true, nothrow: true })`npx tsx scripts/unseal.ts --config ${config}`;
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout + again.stderr).not.toMatch(/: unsealed/);
  });

  it("with the first Vault node stopped, a client renews its certificate through vault.service.consul", async () => {
    const client = inventory.hosts.find((h) => !h.roles.includes("server"))?.privateIp as string;
    const firstVault = addresses[0] as string;
    const renewal = await ssh(client, "grep -E '^ *address' /etc/consul-template.d/consul-template.hcl");
    expect(renewal.stdout).toContain('"https://vault.service.consul:8200"');
    expect((await ssh(firstVault, "systemctl stop vault")).exitCode).toBe(0);
    await expect.poll(() => passing(), { timeout: 60_000, interval: 2000 }).toEqual(addresses.slice(1));
    const before = await serial(client);
    const forced = await ssh(client, "rm -f /etc/consul.d/tls/agent-bundle.pem && systemctl restart consul-template");
    expect(forced.exitCode, forced.stderr).toBe(0);
    await expect.poll(async () => serial(client), { timeout: 90_000, interval: 2000 }).not.toBe(before);
    expect((await ssh(firstVault, "systemctl start vault")).exitCode).toBe(0);
    const sealStatus = `curl -s --cacert /etc/vault.d/tls/ca.pem https://127.0.0.1:8200/v1/sys/seal-status`;
    await expect.poll(async () => (await ssh(firstVault, sealStatus)).stdout, { timeout: 30_000 }).toContain('"sealed":true');
    const unseal = await $({ quiet: true, nothrow: true })`npx tsx scripts/unseal.ts --config ${await clusterConfig()}`;
    expect(unseal.exitCode, `${unseal.stdout}\n${unseal.stderr}`).toBe(0);
    await expect.poll(() => passing(), { timeout: 60_000, interval: 2000 }).toEqual(addresses);
  });

  it("npm run snapshot writes the three raft snapshots and the state, 0600 in a 0700 dated folder", async () => {
    const config = join(isolated.context.state.root, "..", "cluster.yaml");
    const taken = await $({ quiet: true, nothrow: true })`npx tsx scripts/snapshot.ts --config ${config} --output json`;
    expect(taken.exitCode, taken.stderr).toBe(0);
    const result = JSON.parse(taken.stdout) as { dir: string; files: { name: string; bytes: number }[] };
    expect(result.files.map((f) => f.name)).toEqual(["consul.snap", "nomad.snap", "vault.snap", "state.tar.gz"]);
    expect((await stat(result.dir)).mode & 0o777).toBe(0o700);
    for (const file of result.files) {
      expect(file.bytes, file.name).toBeGreaterThan(100);
      expect((await stat(join(result.dir, file.name))).mode & 0o777, file.name).toBe(0o600);
    }
    // Consul's and Vault's snapshots are gzipped archives; the state copy holds the unseal keys
    for (const name of ["consul.snap", "vault.snap"]) {
      const head = (await readFile(join(result.dir, name))).subarray(0, 2);
      expect([...head], name).toEqual([0x1f, 0x8b]);
    }
    const listing = await $({ quiet: true })`tar -tzf ${join(result.dir, "state.tar.gz")}`;
    expect(listing.stdout).toContain("secrets/vault-init.json");
  });
});
