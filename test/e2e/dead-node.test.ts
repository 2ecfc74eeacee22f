/**
 * A client that dies on a running cluster (1 server, 2 clients, Fabio and the
 * energy exporter as system jobs). The local provider boots a stopped node
 * again on `bootstrap`, so the test cuts client-2 off the network instead (policy
 * rules in its network namespace, which the provider does not touch):
 * to the CLI and to the cluster that is a dead machine. Then, through the real
 * CLI: `status` names it and exits 3; `deploy` with the dev CI token works;
 * `bootstrap` names and skips it, runs every stage on the other hosts and exits 6.
 * With the node back, `bootstrap` exits 0. Needs root.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { $ } from "zx";
import type { Inventory } from "../../scripts/lib/inventory/schema.ts";
import { type LocalNames, localNamesFor } from "../../scripts/lib/providers/local/names.ts";
import { localProvider } from "../../scripts/lib/providers/local/provider.ts";
import type { ProviderContext } from "../../scripts/lib/providers/types.ts";
import { clusterHealth } from "../../scripts/lib/stages/health.ts";
import { readStageRecords, runStages } from "../../scripts/lib/stages/pipeline.ts";
import { openClusterRun } from "../../scripts/lib/stages/run-context.ts";
import { type IsolatedCluster, isolatedLocalCluster, withDetails } from "../helpers/local-cluster.ts";

const cidr = "10.87.0.0/24";
const ip = { server: "10.87.0.11", client1: "10.87.0.101", client2: "10.87.0.102" };
/**
 * The rules that cut client-2 off: no TCP, UDP or ICMP it sends reaches the cluster network (nor
 * the host on its bridge). Per protocol, because a rule for all traffic would also fail the
 * provider's own `ip route replace default via <gateway>` (its gateway check has no protocol).
 */
const cutRules = [
  ["tcp", "90"],
  ["udp", "91"],
  ["icmp", "92"],
] as const;
let isolated: IsolatedCluster;
let context: ProviderContext;
let inventory: Inventory;
let names: LocalNames;
let configFile: string;
let cut = false;

const cli = (script: string, args: string[]) =>
  $({ quiet: true, nothrow: true, env: { ...process.env, CI: "true" } })`npx --no-install tsx scripts/${script}.ts ${[
    "--config",
    configFile,
    ...args,
  ]}`;
const output = (result: { stdout: string; stderr: string }) => `${result.stdout}\n${result.stderr}`;

const tls = (file: string) => join(context.state.tls, file);
const managementToken = () =>
  $({ quiet: true })`cat ${join(context.state.secrets, "nomad-bootstrap-token")}`.then((r) => r.stdout.trim());
async function nomadApi<T>(path: string): Promise<T> {
  const token = await managementToken();
  const result = await $({
    quiet: true,
  })`curl -sS --max-time 10 --cacert ${tls("ca.pem")} --cert ${tls("operator.pem")} --key ${tls("operator-key.pem")} -H ${`X-Nomad-Token: ${token}`} https://${ip.server}:4646${path}`;
  return JSON.parse(result.stdout) as T;
}
const nomadNodeStatus = async (name: string) =>
  (await nomadApi<{ Name: string; Status: string }[]>("/v1/nodes")).find((n) => n.Name === name)?.Status;

/** What status would list, seen from a fresh connection to every host. */
async function healthProblems(): Promise<string[]> {
  const run = await openClusterRun(context, inventory, { tolerateUnreachable: true });
  try {
    return (await clusterHealth(run)).problems;
  } finally {
    run.close();
  }
}

async function setCut(on: boolean): Promise<void> {
  const netns = names.netns("client-2");
  for (const [protocol, priority] of cutRules) {
    if (on) await $({ quiet: true })`ip -n ${netns} rule add priority ${priority} to ${cidr} ipproto ${protocol} prohibit`;
    else await $({ quiet: true, nothrow: true })`ip -n ${netns} rule del priority ${priority}`;
  }
  cut = on;
}

beforeAll(async () => {
  isolated = await isolatedLocalCluster("dead-node", {
    name: "deadnode",
    topology: { servers: 1, clients: 2 },
    provider: { local: { cidr } },
    jobs: {
      prometheus: { enabled: false },
      alertmanager: { enabled: false },
      grafana: { enabled: false },
      fabio: { enabled: true },
      energyExporter: { enabled: true },
    },
  });
  context = isolated.context;
  configFile = join(isolated.dir, "cluster.yaml");
  await writeFile(configFile, stringify(context.config));
  inventory = await localProvider.up(context);
  names = (await localNamesFor(context)) as LocalNames;
  await withDetails(runStages(context, inventory));
}, 900_000);

afterAll(async () => {
  try {
    if (cut && names) await setCut(false);
  } finally {
    await isolated?.dispose();
  }
});

describe("a client that stops answering", () => {
  it("is cut off: SSH to it fails and Nomad marks it down", async () => {
    await setCut(true);
    const probe = await $({
      quiet: true,
      nothrow: true,
    })`ssh -i ${join(context.state.root, "ssh", "id_ed25519")} -o ConnectTimeout=3 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR root@${ip.client2} true`;
    expect(probe.exitCode).not.toBe(0);
    // the scenario is a client the cluster has given up on: Nomad's heartbeat deadline passes
    await expect.poll(() => nomadNodeStatus("client-2"), { timeout: 120_000, interval: 2000 }).toBe("down");
    expect(await nomadNodeStatus("client-1")).toBe("ready");
  }, 180_000);

  it("npm run status names it and exits 3", async () => {
    const status = await cli("status", []);
    expect(status.exitCode, output(status)).toBe(3);
    expect(output(status)).toContain(`client-2 (${ip.client2}): unreachable over SSH`);
    expect(output(status)).toContain("Nomad client client-2 is down");
  }, 120_000);

  it("npm run deploy with the dev CI token still deploys into dev (through the server)", async () => {
    const job = join(isolated.dir, "hello.nomad.hcl");
    await writeFile(
      job,
      `job "hello" {
  type        = "service"
  datacenters = ["*"]
  group "web" {
    task "sleep" {
      driver = "exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }
      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
`,
    );
    const deploy = await cli("deploy", ["--namespace", "dev", "--timeout", "3m", job]);
    expect(deploy.exitCode, output(deploy)).toBe(0);
    const allocs = await nomadApi<{ NodeName: string; ClientStatus: string }[]>("/v1/job/hello/allocations?namespace=dev");
    expect(allocs.filter((a) => a.ClientStatus === "running").map((a) => a.NodeName)).toEqual(["client-1"]);
  }, 300_000);

  it("npm run bootstrap names and skips it, runs every stage on the other hosts and exits 6", async () => {
    const before = await readStageRecords(context);
    const bootstrap = await cli("bootstrap", ["--yes"]);
    const text = output(bootstrap);
    expect(bootstrap.exitCode, text).toBe(6);
    expect(text).toContain(`client-2 (${ip.client2}): unreachable over SSH — skipped`);
    expect(text).toMatch(/Skipped \(unreachable over SSH\): client-2\b/);
    const records = await readStageRecords(context);
    // every stage ran again (none failed, none was left out) and verify passed without client-2
    for (const stage of ["prepare", "vault", "certificates", "consul", "nomad", "workload-identity", "platform", "verify"]) {
      expect(records[stage]?.completedAt, stage).not.toBe(before[stage]?.completedAt);
    }
    expect(records.verify?.summary).toMatch(/; skipped \(unreachable\): client-2$/);
  }, 600_000);

  it("back on the network, it rejoins and npm run bootstrap exits 0", async () => {
    await setCut(false);
    // gossip and the Nomad heartbeat bring it back by themselves; bootstrap then finds a whole cluster
    await expect.poll(healthProblems, { timeout: 180_000, interval: 3000 }).toEqual([]);
    const bootstrap = await cli("bootstrap", ["--yes"]);
    const text = output(bootstrap);
    expect(bootstrap.exitCode, text).toBe(0);
    expect(text).not.toContain("unreachable over SSH");
    expect(await nomadNodeStatus("client-2")).toBe("ready");
  }, 600_000);
});
