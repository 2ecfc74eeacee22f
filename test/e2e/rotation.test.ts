/**
 * A real 2-node cluster with a short leaf TTL. First the bootstrap is killed in
 * the middle (after Vault was initialised) and a second run must finish it; then
 * the renewal agents must replace every agent's certificate before it expires,
 * the agents reload and serve the new one, and the cluster stays healthy. Needs root.
 */
import { spawn } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { $ } from "zx";
import { inventoryPath, loadInventory } from "../../scripts/lib/inventory/load.ts";
import type { Inventory } from "../../scripts/lib/inventory/schema.ts";
import type { ProviderContext } from "../../scripts/lib/providers/types.ts";
import { runStages } from "../../scripts/lib/stages/pipeline.ts";
import { type IsolatedCluster, isolatedLocalCluster, withDetails } from "../helpers/local-cluster.ts";

// long enough that no renewal (and agent reload) falls inside the bootstrap itself, even on a loaded CI machine
const leafTtlSeconds = 150;
let isolated: IsolatedCluster;
let context: ProviderContext;
let inventory: Inventory;
let interrupted = "";
let resumed: Awaited<ReturnType<typeof runStages>>;

/** each agent's TLS listener and the certificate file it should serve (Vault only on vault hosts) */
const servingAgents = [
  { unit: "consul", port: 8501, file: "/etc/consul.d/tls/agent.pem" },
  { unit: "nomad", port: 4646, file: "/etc/nomad.d/tls/agent.pem" },
  { unit: "vault", port: 8200, file: "/etc/vault.d/tls/vault.pem" },
];
const ssh = (address: string, command: string) =>
  $({
    quiet: true,
  })`ssh -i ${join(context.state.root, "ssh", "id_ed25519")} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR root@${address} ${command}`;

const fileSerial = async (address: string, file: string) =>
  new X509Certificate((await ssh(address, `cat ${file}`)).stdout).serialNumber;

/** every agent certificate on every node, keyed "host:file" */
async function serials(): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  for (const host of inventory.hosts) {
    for (const { unit, file } of servingAgents) {
      if (unit !== "vault" || host.roles.includes("vault"))
        result[`${host.name}:${file}`] = await fileSerial(host.privateIp, file);
    }
  }
  return result;
}

/** The serial of the certificate a live agent serves (what a client sees after the reload). */
async function servedSerial(address: string, port: number): Promise<string> {
  const tls = context.state.tls;
  const out = await $({
    quiet: true,
    nothrow: true,
    input: "",
  })`openssl s_client -connect ${address}:${port} -CAfile ${join(tls, "ca.pem")} -cert ${join(tls, "operator.pem")} -key ${join(tls, "operator-key.pem")}`;
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(out.stdout)?.[0] ?? "";
  return new X509Certificate(pem).serialNumber;
}

function processGroupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  isolated = await isolatedLocalCluster("rotation", {
    name: "rot",
    topology: { servers: 1, clients: 1 },
    provider: { local: { cidr: "10.92.0.0/24" } },
    tls: { leafTtl: `${leafTtlSeconds}s` },
    // this test is about the agents' certificates; the platform jobs are the 5-node suite's
    jobs: {
      prometheus: { enabled: false },
      alertmanager: { enabled: false },
      grafana: { enabled: false },
      fabio: { enabled: false },
      energyExporter: { enabled: false },
    },
  });
  context = isolated.context;
  const config = context.config;
  // the real CLI, killed as soon as the certificates stage starts (Vault is initialised by then)
  const configFile = join(isolated.dir, "cluster.yaml");
  await writeFile(configFile, stringify(config));
  const child = spawn("npx", ["--no-install", "tsx", "scripts/bootstrap.ts", "--config", configFile], {
    env: { ...process.env, CI: "true" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own process group: npx → tsx → node all die together
  });
  let output = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`bootstrap never reached the certificates stage:\n${output}`)), 600_000);
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("→ certificates")) {
        clearTimeout(timer);
        process.kill(-(child.pid as number), "SIGKILL");
        resolve();
      }
    });
    child.on("exit", () => {
      clearTimeout(timer);
      resolve();
    });
  });
  interrupted = output;
  // SIGKILL is asynchronous: until every process of the group has died and been reaped, the
  // killed bootstrap still holds the cluster lock (a resume would rightly say "already running")
  const groupGone = Date.now() + 30_000;
  while (processGroupAlive(child.pid as number)) {
    if (Date.now() > groupGone) throw new Error("the killed bootstrap's processes did not exit within 30 s");
    await new Promise((r) => setTimeout(r, 100));
  }
  inventory = await loadInventory(inventoryPath(config.name));
  resumed = await withDetails(runStages(context, inventory));
}, 900_000);

afterAll(async () => isolated?.dispose());

describe("an interrupted bootstrap", () => {
  it("was killed after Vault was initialised, and the next run completed it", () => {
    expect(interrupted).toContain("✔ vault: bootstrap TLS on server-1");
    expect(interrupted).not.toContain("✔ certificates");
    expect(resumed.vault?.summary).toBe("no changes"); // initialised once, never again
    expect(resumed.certificates?.summary).toMatch(/certificates issued/);
    expect(resumed.verify?.summary).toMatch(/^2 Consul members/);
  });
});

describe("certificate rotation", () => {
  it("renews every agent certificate before it expires, reloads the agents and stays healthy", async () => {
    const server = inventory.hosts.find((h) => h.roles.includes("server"))?.privateIp as string;
    const before = await serials();
    const servedBefore: Record<string, string> = {};
    for (const agent of servingAgents) {
      servedBefore[agent.unit] = await servedSerial(server, agent.port);
      expect(servedBefore[agent.unit], `${agent.unit} serves its certificate file`).toBe(before[`server-1:${agent.file}`]);
    }
    let after = before;
    const deadline = Date.now() + leafTtlSeconds * 1000 * 1.6;
    while (Date.now() < deadline && Object.keys(before).some((k) => after[k] === before[k])) {
      await new Promise((r) => setTimeout(r, 5000));
      after = await serials();
    }
    for (const key of Object.keys(before)) expect(after[key], `${key} was not renewed`).not.toBe(before[key]);
    // each agent serves what is on disk once its reload (run by consul-template after installing the files) is done
    for (const agent of servingAgents) {
      let onDisk = "";
      let served = "";
      for (let i = 0; i < 15; i++) {
        onDisk = await fileSerial(server, agent.file);
        served = await servedSerial(server, agent.port);
        if (served === onDisk) break;
        await new Promise((r) => setTimeout(r, 2000));
      }
      if (served !== onDisk) {
        // say why: did consul-template run the reload, and what did the agent log about it?
        const logs = await ssh(
          server,
          `journalctl --no-pager -o short-precise -u consul-template -n 40; journalctl --no-pager -o short-precise -u ${agent.unit} -n 300 | grep -i -E 'reload|tls|cert|signal|sighup' | tail -n 40`,
        ).catch((error: unknown) => ({ stdout: String(error) }));
        expect.fail(`${agent.unit} on ${server} serves ${served}, its certificate file holds ${onDisk}:\n${logs.stdout}`);
      }
      expect(served).not.toBe(servedBefore[agent.unit]);
    }
    // agents reloading their certificates may miss a heartbeat; healthy again within 60 s is the bar
    const settleDeadline = Date.now() + 60_000;
    let records: Awaited<ReturnType<typeof runStages>> | undefined;
    while (!records) {
      records = await withDetails(runStages(context, inventory, ["verify"])).catch(async (error: unknown) => {
        // withDetails keeps the problem list in the message, not just "1 problem"
        if (Date.now() > settleDeadline) throw error;
        await new Promise((r) => setTimeout(r, 5000));
        return undefined;
      });
    }
    expect(records.verify?.summary).toMatch(/^2 Consul members, 1 raft peers; 1 Nomad clients ready, 1 servers; Vault unsealed/);
  }, 600_000);
});
