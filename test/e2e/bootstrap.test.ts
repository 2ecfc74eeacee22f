/**
 * A real 5-node cluster (3 servers, 2 clients, Vault on server-1) on the local
 * provider, bootstrapped by the stages and checked with independent clients
 * (curl and openssl): mTLS enforced, ACLs default deny, quorum, idempotence,
 * losing a server, and bad state. Needs root.
 */
import { existsSync } from "node:fs";
import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import { nomadAgentLog } from "../../scripts/lib/cluster/agent-log.ts";
import type { Inventory } from "../../scripts/lib/inventory/schema.ts";
import { localProvider } from "../../scripts/lib/providers/local/provider.ts";
import type { ProviderContext } from "../../scripts/lib/providers/types.ts";
import { scaleIn } from "../../scripts/lib/cluster/scale-in.ts";
import { clusterHealth } from "../../scripts/lib/stages/health.ts";
import { planStagesOn, runStages } from "../../scripts/lib/stages/pipeline.ts";
import { openClusterRun } from "../../scripts/lib/stages/run-context.ts";
import { burnVersusIdle } from "../helpers/energy-e2e.ts";
import { longestLeaderless, mostDownAtOnce, operatorTls, pollLeaders, probes } from "../helpers/leader-polls.ts";
import { type IsolatedCluster, isolatedLocalCluster, withDetails } from "../helpers/local-cluster.ts";

const cluster = "e2e";
let isolated: IsolatedCluster;
let context: ProviderContext;
let inventory: Inventory;
const ip = { server1: "10.94.0.11", server3: "10.94.0.13", client1: "10.94.0.101" };

const tls = () => join(context.state.tls);
const secret = (name: string) => $({ quiet: true })`cat ${join(context.state.secrets, name)}`.then((r) => r.stdout.trim());
/** curl with the cluster CA and the operator's client certificate */
const curl = (url: string, headers: string[] = [], extra: string[] = []) =>
  $({
    quiet: true,
    nothrow: true,
  })`curl -sS --max-time 10 --cacert ${join(tls(), "ca.pem")} --cert ${join(tls(), "operator.pem")} --key ${join(tls(), "operator-key.pem")} ${headers.flatMap((h) => ["-H", h])} ${extra} ${url}`;
const ssh = (address: string, command: string) =>
  $({
    quiet: true,
    nothrow: true,
  })`ssh -i ${join(context.state.root, "ssh", "id_ed25519")} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR root@${address} ${command}`;
const unitPids = async () => {
  const pids: Record<string, string> = {};
  for (const host of inventory.hosts) {
    pids[host.name] = (
      await ssh(
        host.privateIp,
        "for u in vault consul nomad consul-template; do systemctl show -p MainPID,NRestarts --value $u | tr '\\n' ' '; done",
      )
    ).stdout.trim();
  }
  return pids;
};

interface PrometheusTarget {
  job: string;
  health: string;
  scrapeUrl: string;
}

/** Prometheus's HTTP API through Fabio on client-1 (which also proves the route). */
const prometheusApi = (path: string) =>
  $({ quiet: true, nothrow: true })`curl -sS --max-time 10 http://${ip.client1}:9999/prometheus${path}`;

async function prometheusTargets(): Promise<PrometheusTarget[]> {
  const answer = await prometheusApi("/api/v1/targets");
  if (answer.exitCode !== 0) return [];
  const parsed = JSON.parse(answer.stdout) as {
    data: { activeTargets: { labels: Record<string, string>; health: string; scrapeUrl: string }[] };
  };
  return parsed.data.activeTargets.map((t) => ({ job: t.labels.job ?? "", health: t.health, scrapeUrl: t.scrapeUrl }));
}

/** the cluster's context with another agents.logLevel (one line of the Consul and Nomad agent config) */
const withLogLevel = (logLevel: "info" | "debug"): ProviderContext => ({
  ...context,
  config: { ...context.config, agents: { ...context.config.agents, logLevel } },
});

/** per host: when its consul and nomad units last started (monotonic µs) and the checksums of their configs */
async function agentState(): Promise<Record<string, Record<string, string>>> {
  const state: Record<string, Record<string, string>> = {};
  for (const host of inventory.hosts) {
    const [consul = "", nomad = "", ...sums] = (
      await ssh(
        host.privateIp,
        "for u in consul nomad; do systemctl show -p ActiveEnterTimestampMonotonic --value $u; done; sha256sum /etc/consul.d/consul.hcl /etc/nomad.d/nomad.hcl",
      )
    ).stdout
      .trim()
      .split("\n");
    state[host.name] = { consul, nomad, configs: sums.join(" ") };
  }
  return state;
}

beforeAll(async () => {
  isolated = await isolatedLocalCluster("e2e", {
    name: cluster,
    // one Vault, as before HA became the default with three servers: vault-ha.test.ts covers HA
    topology: { vaultHa: false },
    provider: { local: { cidr: "10.94.0.0/24" } },
  });
  context = isolated.context;
  inventory = await localProvider.up(context);
  await withDetails(runStages(context, inventory));
}, 900_000);

afterAll(async () => isolated?.dispose());

describe("a bootstrapped 5-node cluster", () => {
  it("refuses plain HTTP on Consul, Nomad and Vault", async () => {
    for (const url of [
      `http://${ip.server1}:8501/v1/status/leader`,
      `http://${ip.server1}:4646/v1/status/leader`,
      `http://${ip.server1}:8200/v1/sys/health`,
    ]) {
      const result = await $({ quiet: true, nothrow: true })`curl -sS --max-time 5 -o /dev/null -w %{http_code} ${url}`;
      expect(result.stdout, url).not.toMatch(/^2\d\d$/);
    }
  });

  it("refuses clients without a certificate where client certificates are required", async () => {
    for (const url of [`https://${ip.server1}:8501/v1/status/leader`, `https://${ip.server1}:4646/v1/status/leader`]) {
      const result = await $({ quiet: true, nothrow: true })`curl -sS --max-time 5 --cacert ${join(tls(), "ca.pem")} ${url}`;
      expect(result.exitCode, url).not.toBe(0);
    }
  });

  it("serves certificate chains that verify to the cluster root CA (openssl)", async () => {
    for (const port of [8501, 4646, 8200]) {
      const result = await $({
        quiet: true,
        nothrow: true,
        input: "",
      })`openssl s_client -connect ${ip.server1}:${port} -CAfile ${join(tls(), "ca.pem")} -verify_return_error -cert ${join(tls(), "operator.pem")} -key ${join(tls(), "operator-key.pem")}`;
      expect(result.stdout, `port ${port}`).toContain("Verify return code: 0 (ok)");
    }
  });

  it("denies anonymous requests by ACL in Consul and Nomad", async () => {
    expect((await curl(`https://${ip.server1}:8501/v1/acl/tokens`, [], ["-o", "/dev/null", "-w", "%{http_code}"])).stdout).toBe(
      "403",
    );
    expect((await curl(`https://${ip.server1}:4646/v1/jobs`, [], ["-o", "/dev/null", "-w", "%{http_code}"])).stdout).toBe("403");
  });

  it("lets the CI token plan in dev but not in default", async () => {
    const token = await secret("nomad-ci-token-dev");
    const job = (namespace: string) =>
      JSON.stringify({
        Job: {
          ID: "ci-probe",
          Name: "ci-probe",
          Namespace: namespace,
          Type: "batch",
          Datacenters: ["dc1"],
          TaskGroups: [{ Name: "g", Tasks: [{ Name: "t", Driver: "exec", Config: { command: "/bin/true" } }] }],
        },
      });
    const plan = (namespace: string) =>
      curl(
        `https://${ip.server1}:4646/v1/job/ci-probe/plan?namespace=${namespace}`,
        [`X-Nomad-Token: ${token}`],
        ["-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "--data", job(namespace)],
      );
    expect((await plan("dev")).stdout).toBe("200");
    expect((await plan("default")).stdout).toBe("403");
    // raw_exec (no isolation) is reserved for the platform namespace
    const rawExec = await curl(
      `https://${ip.server1}:4646/v1/job/ci-probe/plan?namespace=dev`,
      [`X-Nomad-Token: ${token}`],
      ["-X", "POST", "--data", job("dev").replace('"exec"', '"raw_exec"')],
    );
    expect(rawExec.stdout).toMatch(/raw_exec.*not allowed in namespace/);
  });

  it("gives workloads Consul and Vault access through workload identity only", async () => {
    const nomadToken = `X-Nomad-Token: ${await secret("nomad-bootstrap-token")}`;
    const consulToken = `X-Consul-Token: ${await secret("consul-bootstrap-token")}`;
    const vaultToken = `X-Vault-Token: ${await secret("vault-root-token")}`;
    const put = await curl(
      `https://${ip.server1}:8200/v1/secret/data/default/wi-probe/config`,
      [vaultToken],
      ["-X", "POST", "--data", JSON.stringify({ data: { value: "s3cret-probe" } }), "-o", "/dev/null", "-w", "%{http_code}"],
    );
    expect(put.stdout).toBe("200");
    const job = {
      Job: {
        ID: "wi-probe",
        Name: "wi-probe",
        Type: "service",
        Datacenters: ["dc1"],
        TaskGroups: [
          {
            Name: "probe",
            Services: [{ Name: "wi-probe", Provider: "consul" }],
            Tasks: [
              {
                Name: "app",
                Driver: "exec",
                Config: { command: "/bin/sleep", args: ["3600"] },
                Vault: { ChangeMode: "noop" },
                Templates: [
                  {
                    EmbeddedTmpl: '{{ with secret "secret/data/default/wi-probe/config" }}{{ .Data.data.value }}{{ end }}',
                    DestPath: "local/secret.txt",
                    ChangeMode: "noop",
                  },
                ],
              },
            ],
          },
        ],
      },
    };
    const register = await curl(
      `https://${ip.server1}:4646/v1/jobs`,
      [nomadToken],
      ["-X", "POST", "--data", JSON.stringify(job)],
    );
    expect(register.stdout).toContain("EvalID");
    let allocs: { ID: string; ClientStatus: string }[] = [];
    for (let i = 0; i < 60 && !allocs.some((a) => a.ClientStatus === "running"); i++) {
      await new Promise((r) => setTimeout(r, 1000));
      allocs = JSON.parse((await curl(`https://${ip.server1}:4646/v1/job/wi-probe/allocations`, [nomadToken])).stdout);
    }
    const running = allocs.find((a) => a.ClientStatus === "running");
    expect(running, JSON.stringify(allocs)).toBeDefined();
    const content = await curl(`https://${ip.server1}:4646/v1/client/fs/cat/${running?.ID}?path=app/local/secret.txt`, [
      nomadToken,
    ]);
    expect(content.stdout).toBe("s3cret-probe");
    let services: unknown[] = [];
    for (let i = 0; i < 30 && services.length === 0; i++) {
      services = JSON.parse((await curl(`https://${ip.server1}:8501/v1/catalog/service/wi-probe`, [consulToken])).stdout);
      if (services.length === 0) await new Promise((r) => setTimeout(r, 1000));
    }
    expect(services).toHaveLength(1);
    await curl(`https://${ip.server1}:4646/v1/job/wi-probe?purge=true`, [nomadToken], ["-X", "DELETE"]);
  });

  it("has 3 raft peers and a leader in Consul and Nomad, 5 Consul members, 2 ready Nomad clients, Vault unsealed", async () => {
    const consulToken = `X-Consul-Token: ${await secret("consul-bootstrap-token")}`;
    const nomadToken = `X-Nomad-Token: ${await secret("nomad-bootstrap-token")}`;
    expect(JSON.parse((await curl(`https://${ip.server1}:8501/v1/status/peers`)).stdout)).toHaveLength(3);
    expect(JSON.parse((await curl(`https://${ip.server1}:8501/v1/status/leader`)).stdout)).toMatch(/:8300$/);
    const members = JSON.parse((await curl(`https://${ip.server1}:8501/v1/agent/members`, [consulToken])).stdout) as {
      Status: number;
    }[];
    expect(members.filter((m) => m.Status === 1)).toHaveLength(5);
    expect(JSON.parse((await curl(`https://${ip.server1}:4646/v1/status/peers`, [nomadToken])).stdout)).toHaveLength(3);
    const nodes = JSON.parse((await curl(`https://${ip.server1}:4646/v1/nodes`, [nomadToken])).stdout) as { Status: string }[];
    expect(nodes.filter((n) => n.Status === "ready")).toHaveLength(2);
    const health = JSON.parse((await curl(`https://${ip.server1}:8200/v1/sys/health`)).stdout) as {
      sealed: boolean;
      initialized: boolean;
    };
    expect(health).toMatchObject({ initialized: true, sealed: false });
  });

  it("resolves .consul names on every node through the local agent", async () => {
    const result = await ssh(ip.client1, "resolvectl query consul.service.consul");
    expect(result.stdout).toMatch(/10\.94\.0\.1[123]/);
  });

  it("runs every enabled platform job, deployed and healthy", async () => {
    const nomadToken = `X-Nomad-Token: ${await secret("nomad-bootstrap-token")}`;
    const jobs = JSON.parse((await curl(`https://${ip.server1}:4646/v1/jobs?namespace=platform`, [nomadToken])).stdout) as {
      ID: string;
      Status: string;
      Meta?: Record<string, string>;
    }[];
    const ids = jobs.map((j) => j.ID).sort();
    expect(ids).toEqual(["alertmanager", "energy-exporter", "fabio", "prometheus"]);
    for (const job of jobs) expect(job.Status, job.ID).toBe("running");
    for (const id of ["alertmanager", "prometheus"]) {
      const deployment = JSON.parse(
        (await curl(`https://${ip.server1}:4646/v1/job/${id}/deployment?namespace=platform`, [nomadToken])).stdout,
      ) as { Status: string };
      expect(deployment.Status, id).toBe("successful");
    }
    // Fabio is a system job: one healthy allocation on each client
    const fabio = JSON.parse(
      (await curl(`https://${ip.server1}:4646/v1/job/fabio/allocations?namespace=platform`, [nomadToken])).stdout,
    ) as { ClientStatus: string; NodeName: string }[];
    expect(
      fabio
        .filter((a) => a.ClientStatus === "running")
        .map((a) => a.NodeName)
        .sort(),
    ).toEqual(["client-1", "client-2"]);
  });

  it("reads a client's Nomad journal for failure reports: the lines naming an allocation, over SSH as root", async () => {
    const nomadToken = `X-Nomad-Token: ${await secret("nomad-bootstrap-token")}`;
    const allocs = JSON.parse(
      (await curl(`https://${ip.server1}:4646/v1/job/fabio/allocations?namespace=platform`, [nomadToken])).stdout,
    ) as { ID: string; NodeName: string }[];
    const alloc = allocs.find((a) => a.NodeName === "client-1");
    expect(alloc).toBeDefined();
    const run = await openClusterRun(context, inventory);
    try {
      const log = await nomadAgentLog(run.remote("client-1"), alloc?.ID ?? "");
      expect(log.source).toMatch(/^nomad agent log on client-1 \(last \d+ lines naming the allocation\)$/);
      expect(log.lines.length).toBeGreaterThan(0);
      for (const line of log.lines) expect(line).toContain(alloc?.ID);
    } finally {
      run.close();
    }
  });

  it("has Prometheus scraping Nomad servers and clients, every Consul agent, Vault, the JWKS proxies, Fabio and itself", async () => {
    const expected = {
      "nomad-servers": 3,
      "nomad-clients": 2,
      consul: 5,
      vault: 1,
      prometheus: 1,
      fabio: 2,
      alertmanager: 1,
      "energy-exporter": 2,
      "nomad-jwks-proxy": 3,
    };
    let up: Record<string, number> = {};
    for (let i = 0; i < 40; i++) {
      up = {};
      for (const target of await prometheusTargets()) if (target.health === "up") up[target.job] = (up[target.job] ?? 0) + 1;
      if (Object.entries(expected).every(([job, count]) => (up[job] ?? 0) >= count)) break;
      await new Promise((r) => setTimeout(r, 3000));
    }
    expect(up).toMatchObject(expected);
  });

  it("runs Prometheus 3 (the build shipped to the clients) with consul_sd_configs in its loaded config, no token in it", async () => {
    const build = JSON.parse((await prometheusApi("/api/v1/status/buildinfo")).stdout) as { data: { version: string } };
    expect(build.data.version).toBe("3.16.0");
    const loaded = JSON.parse((await prometheusApi("/api/v1/status/config")).stdout) as { data: { yaml: string } };
    expect(loaded.data.yaml).toContain("consul_sd_configs:");
    expect(loaded.data.yaml).not.toContain("file_sd_configs");
    expect(loaded.data.yaml).not.toContain(await secret("consul-bootstrap-token"));
    expect(loaded.data.yaml).toMatch(/token: <secret>/);
  });

  it("routes /prometheus and /alertmanager through Fabio on every client", async () => {
    for (const client of ["10.94.0.101", "10.94.0.102"]) {
      const ready = await $({ quiet: true, nothrow: true })`curl -sS --max-time 10 http://${client}:9999/prometheus/-/ready`;
      expect(ready.stdout, client).toMatch(/Prometheus (Server )?is Ready/);
      const am = await $({
        quiet: true,
        nothrow: true,
      })`curl -sS --max-time 10 -o /dev/null -w %{http_code} http://${client}:9999/alertmanager/-/ready`;
      expect(am.stdout, client).toBe("200");
    }
  });

  it("fires InstanceDown when a scraped service stops, and Alertmanager receives it", async () => {
    const consulToken = `X-Consul-Token: ${await secret("consul-bootstrap-token")}`;
    // a real process serving metrics on client-1, registered in Consul with the "prometheus" tag
    const server = `require("http").createServer((q, s) => s.end("e2e_probe_up 1\\n")).listen(9555, "${ip.client1}")`;
    await ssh(ip.client1, `nohup node -e '${server}' >/dev/null 2>&1 & echo $! > /run/e2e-target.pid`);
    const registration = JSON.stringify({
      Name: "e2e-target",
      ID: "e2e-target",
      Port: 9555,
      Address: ip.client1,
      Tags: ["prometheus"],
    });
    await curl(`https://${ip.client1}:8501/v1/agent/service/register`, [consulToken], ["-X", "PUT", "--data", registration]);
    try {
      let target: PrometheusTarget | undefined;
      for (let i = 0; i < 40 && target?.health !== "up"; i++) {
        await new Promise((r) => setTimeout(r, 3000));
        target = (await prometheusTargets()).find((t) => t.job === "e2e-target");
      }
      expect(target?.health).toBe("up");
      await ssh(ip.client1, "kill $(cat /run/e2e-target.pid)");
      // `for: 1m` in the rule, a 15 s scrape and evaluation interval
      let firing = false;
      for (let i = 0; i < 50 && !firing; i++) {
        await new Promise((r) => setTimeout(r, 3000));
        const alerts = JSON.parse((await prometheusApi("/api/v1/alerts")).stdout) as {
          data: { alerts: { labels: Record<string, string>; state: string }[] };
        };
        firing = alerts.data.alerts.some(
          (a) => a.labels.alertname === "InstanceDown" && a.labels.job === "e2e-target" && a.state === "firing",
        );
      }
      expect(firing).toBe(true);
      let received = false;
      for (let i = 0; i < 20 && !received; i++) {
        const am = await $({
          quiet: true,
          nothrow: true,
        })`curl -sS --max-time 10 http://${ip.client1}:9999/alertmanager/api/v2/alerts`;
        received = (JSON.parse(am.stdout || "[]") as { labels: Record<string, string> }[]).some(
          (a) => a.labels.alertname === "InstanceDown" && a.labels.job === "e2e-target",
        );
        if (!received) await new Promise((r) => setTimeout(r, 3000));
      }
      expect(received).toBe(true);
    } finally {
      await curl(`https://${ip.client1}:8501/v1/agent/service/deregister/e2e-target`, [consulToken], ["-X", "PUT"]);
      await ssh(ip.client1, "kill $(cat /run/e2e-target.pid) 2>/dev/null; rm -f /run/e2e-target.pid");
    }
  }, 300_000);

  it("attributes clearly more energy to a CPU-burning task than to an idle one (model mode)", async () => {
    const nomadToken = `X-Nomad-Token: ${await secret("nomad-bootstrap-token")}`;
    const job = (id: string, script: string) => ({
      Job: {
        ID: id,
        Name: id,
        Namespace: "platform",
        Type: "service",
        Datacenters: ["dc1"],
        Constraints: [{ LTarget: "${node.unique.name}", RTarget: "client-1", Operand: "=" }],
        TaskGroups: [
          {
            Name: "g",
            Tasks: [
              {
                Name: "t",
                Driver: "raw_exec",
                User: "nobody",
                Config: { command: "/bin/sh", args: ["-c", script] },
                Resources: { CPU: 100, MemoryMB: 32 },
              },
            ],
          },
        ],
      },
    });
    const submit = (body: unknown) =>
      curl(`https://${ip.server1}:4646/v1/jobs?namespace=platform`, [nomadToken], ["-X", "POST", "--data", JSON.stringify(body)]);
    await submit(job("e2e-burn", "while :; do :; done"));
    await submit(job("e2e-idle", "exec sleep 3600"));
    try {
      const scrape = async () =>
        (await $({ quiet: true, nothrow: true })`curl -sS --max-time 5 http://${ip.client1}:9875/metrics`).stdout;
      const { burned, idled, idleSeries } = await burnVersusIdle(scrape, { burn: "e2e-burn", idle: "e2e-idle" });
      expect(idleSeries.length).toBeGreaterThan(0);
      expect(burned).toBeGreaterThan(0);
      expect(burned).toBeGreaterThan(10 * Math.max(idled, 0.001));
    } finally {
      for (const id of ["e2e-burn", "e2e-idle"])
        await curl(`https://${ip.server1}:4646/v1/job/${id}?namespace=platform&purge=true`, [nomadToken], ["-X", "DELETE"]);
    }
  }, 240_000);

  it("a second run changes nothing and restarts nothing", async () => {
    const before = await unitPids();
    const records = await withDetails(runStages(context, inventory));
    const { verify, ...changing } = records;
    expect(Object.values(changing).map((r) => r.summary)).toEqual([
      "binaries up to date",
      ...Array(5).fill("no changes"),
      "exec profile: no images",
      "no changes",
    ]);
    expect(verify?.summary).toMatch(
      /^5 Consul members, 3 raft peers; 2 Nomad clients ready, 3 servers; Vault unsealed; .*; 4 platform jobs running$/,
    );
    expect(await unitPids()).toEqual(before);
  });

  it("a dry run of a log-level change lists the rolling restarts in order and changes nothing", async () => {
    const before = await agentState();
    const plans = await planStagesOn(withLogLevel("debug"), inventory, ["consul", "nomad"]);
    for (const product of ["consul", "nomad"]) {
      const lines = (plans.find((p) => p.stage === product)?.changes ?? []).join("\n");
      for (const host of inventory.hosts) expect(lines).toContain(`${host.name}: /etc/${product}.d/${product}.hcl would change`);
      expect(lines).toMatch(
        new RegExp(`${product} would restart one at a time: server-\\d → server-\\d → server-\\d \\((server-\\d) leads: last`),
      );
      expect(lines).toContain(`${product} would restart in batches of 1: client-1 → client-2`);
    }
    expect(await agentState()).toEqual(before);
  });

  it("rolls a log-level change through Consul and Nomad one server at a time, with a leader at every poll", async () => {
    const before = await agentState();
    const servers = inventory.hosts.filter((h) => h.roles.includes("server")).map((h) => h.privateIp);
    const operator = operatorTls(tls());
    const consulPolls = pollLeaders(servers, probes.consul(operator));
    const nomadPolls = pollLeaders(servers, probes.nomad(operator, String(await secret("nomad-bootstrap-token"))));
    const started = Date.now();
    let records: Awaited<ReturnType<typeof runStages>>;
    try {
      records = await withDetails(runStages(withLogLevel("debug"), inventory, ["consul", "nomad"]));
    } finally {
      await Promise.all([consulPolls.stop(), nomadPolls.stop()]);
    }
    const seconds = (Date.now() - started) / 1000;
    const after = await agentState();
    const report: Record<string, unknown> = { seconds };
    for (const [product, polls] of [
      ["consul", consulPolls.polls],
      ["nomad", nomadPolls.polls],
    ] as const) {
      const summary = records[product]?.summary ?? "";
      const order = /3 restarted in order (server-\d), (server-\d), (server-\d) \(after a leadership transfer\)/.exec(summary);
      expect(order, summary).not.toBeNull();
      expect(summary).toContain("2 restarted in order client-1, client-2");
      // every agent restarted once, the servers in the summary's order (unit start times, monotonic µs)
      const starts = (order ?? []).slice(1).map((name) => Number(after[name]?.[product]));
      for (const host of inventory.hosts) expect(after[host.name]?.[product], host.name).not.toBe(before[host.name]?.[product]);
      expect([...starts].sort((a, b) => a - b)).toEqual(starts);
      const gap = longestLeaderless(polls);
      const down = mostDownAtOnce(polls);
      report[product] = { polls: polls.length, longestLeaderlessMs: gap, mostServersDownAtOnce: down, order: order?.slice(1) };
      // raft_multiplier 1: one election timeout is 1 s in both products
      expect(gap, `${product} was without a leader for ${gap} ms`).toBeLessThan(1000);
      expect(down, `${product}: servers down at the same time`).toBeLessThanOrEqual(1);
    }
    console.info(`rolling restart: ${JSON.stringify(report)}`);
    // the change is in place: a dry run finds nothing left to do
    const plans = await planStagesOn(withLogLevel("debug"), inventory, ["consul", "nomad"]);
    expect(plans.map((p) => p.changes)).toEqual([[], []]);
    // the later tests run with the changed config (no restarts back)
    context = withLogLevel("debug");
  }, 600_000);

  it("keeps a leader when one server stops, and status reports the missing member", async () => {
    await ssh(ip.server3, "systemctl stop nomad consul");
    try {
      await new Promise((r) => setTimeout(r, 3000));
      expect(JSON.parse((await curl(`https://${ip.server1}:8501/v1/status/leader`)).stdout)).toMatch(/:8300$/);
      const nomadToken = `X-Nomad-Token: ${await secret("nomad-bootstrap-token")}`;
      expect(JSON.parse((await curl(`https://${ip.server1}:4646/v1/status/leader`, [nomadToken])).stdout)).toMatch(/:4647$/);
      // status names the missing member once gossip has noticed; the rest stays healthy
      const run = await openClusterRun(context, inventory, { tolerateUnreachable: true });
      try {
        let health = await clusterHealth(run);
        // other problems name server-3 at once (its JWKS proxy serves no keys without its Nomad): wait for gossip's verdict
        const memberGone = /Consul member server-3 \(10\.94\.0\.13\) is (left|failed)/;
        for (let i = 0; i < 30 && !health.problems.some((p) => memberGone.test(p)); i++) {
          await new Promise((r) => setTimeout(r, 1000));
          health = await clusterHealth(run);
        }
        expect(health.consul.leader).toMatch(/:8300$/);
        expect(health.problems.join("\n")).toMatch(memberGone);
        expect(health.vault[0]).toMatchObject({ sealed: false });
      } finally {
        run.close();
      }
    } finally {
      await ssh(ip.server3, "systemctl start consul nomad");
    }
    // back in the cluster: the next run verifies a healthy cluster again
    await new Promise((r) => setTimeout(r, 5000));
    const records = await runStages(context, inventory, ["verify"]);
    expect(records.verify?.summary).toMatch(/^5 Consul members/);
  });

  it("a corrupted state file stops the run with its path, not its content", async () => {
    const file = join(context.state.secrets, "consul-gossip-key");
    const original = await secret("consul-gossip-key");
    await writeFile(file, "not-a-key\n", { mode: 0o600 });
    try {
      const error = (await runStages(context, inventory).catch((e: unknown) => e)) as Error;
      expect(error.message).toBe(`Secret file ${file} does not hold a valid gossip-key.`);
      expect(JSON.stringify(error)).not.toContain("not-a-key");
    } finally {
      await writeFile(file, `${original}\n`, { mode: 0o600 });
    }
  });

  it("scales in 3 → 2 clients: a service job stays healthy, client-3 is gone from Consul, Nomad and the provider", async () => {
    const withClients = (clients: number): ProviderContext => ({
      ...context,
      config: { ...context.config, topology: { ...context.config.topology, clients } },
    });
    const three = withClients(3);
    inventory = await localProvider.up(three);
    await withDetails(runStages(three, inventory));
    const nomadToken = `X-Nomad-Token: ${await secret("nomad-bootstrap-token")}`;
    const consulToken = `X-Consul-Token: ${await secret("consul-bootstrap-token")}`;
    const nomad = async <T>(path: string, extra: string[] = []) =>
      JSON.parse((await curl(`https://${ip.server1}:4646${path}`, [nomadToken], extra)).stdout) as T;
    // one allocation that prefers client-3 (a soft affinity: it may move when client-3 goes)
    const job = {
      Job: {
        ID: "scale-probe",
        Name: "scale-probe",
        Type: "service",
        Datacenters: ["dc1"],
        Affinities: [{ LTarget: "${node.unique.name}", RTarget: "client-3", Operand: "=", Weight: 100 }],
        TaskGroups: [
          {
            Name: "probe",
            Count: 1,
            Tasks: [
              {
                Name: "app",
                Driver: "exec",
                Config: { command: "/bin/sleep", args: ["3600"] },
                Resources: { CPU: 50, MemoryMB: 32 },
              },
            ],
          },
        ],
      },
    };
    await curl(`https://${ip.server1}:4646/v1/jobs`, [nomadToken], ["-X", "POST", "--data", JSON.stringify(job)]);
    type Alloc = { ClientStatus: string; NodeName: string; DesiredStatus: string };
    const running = async () =>
      (await nomad<Alloc[]>("/v1/job/scale-probe/allocations")).filter((a) => a.ClientStatus === "running");
    let allocs: Alloc[] = [];
    for (let i = 0; i < 60 && !allocs.length; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      allocs = await running();
    }
    expect(allocs.map((a) => a.NodeName)).toEqual(["client-3"]);
    try {
      const two = withClients(2);
      const started = Date.now();
      const removed = await withDetails(scaleIn(two, localProvider));
      inventory = await localProvider.up(two);
      const records = await withDetails(runStages(two, inventory));
      console.info(`scale in 3 → 2: ${(Date.now() - started) / 1000}s; ${removed.join("; ")}`);
      expect(removed).toEqual(
        expect.arrayContaining(["Nomad client client-3 drained", "Consul agent client-3 left", "Nomad node client-3 purged"]),
      );
      expect(removed.join("\n")).toMatch(/node client-3/);
      allocs = await running();
      expect(allocs).toHaveLength(1);
      expect(allocs[0]?.NodeName).not.toBe("client-3");
      expect((await nomad<{ Status: string }>("/v1/job/scale-probe")).Status).toBe("running");
      expect((await nomad<{ Name: string }[]>("/v1/nodes")).map((n) => n.Name).sort()).toEqual(["client-1", "client-2"]);
      const members = JSON.parse((await curl(`https://${ip.server1}:8501/v1/agent/members`, [consulToken])).stdout) as {
        Name: string;
      }[];
      expect(members.map((m) => m.Name)).not.toContain("client-3");
      expect((await localProvider.status(two)).nodes.map((n) => n.name)).not.toContain("client-3");
      expect(existsSync(join(context.state.root, "nodes", "client-3"))).toBe(false);
      expect(inventory.hosts.map((h) => h.name)).not.toContain("client-3");
      expect(records.verify?.summary).toMatch(/^5 Consul members, 3 raft peers; 2 Nomad clients ready/);
    } finally {
      await curl(`https://${ip.server1}:4646/v1/job/scale-probe?purge=true`, [nomadToken], ["-X", "DELETE"]);
    }
  }, 900_000);

  it("tears down without leaving its Nomad task cgroups in the host's shared hierarchy", async () => {
    const allocs = new Set<string>();
    for (const host of inventory.hosts) {
      const dir = join(context.state.root, "nodes", host.name, "upper", "opt", "nomad", "data", "alloc");
      if (existsSync(dir)) for (const id of await readdir(dir)) allocs.add(id);
    }
    expect(allocs.size).toBeGreaterThan(0);
    const removed = await localProvider.down(context, { dryRun: false, keepState: false });
    expect(removed.join("\n")).toMatch(/\d+ Nomad task cgroups/);
    const left: string[] = [];
    for (const controller of await readdir("/sys/fs/cgroup")) {
      const nomad = join("/sys/fs/cgroup", controller, "nomad");
      if (!existsSync(nomad)) continue;
      for (const entry of await readdir(nomad)) if (allocs.has(entry.split(".")[0] ?? "")) left.push(`${controller}/${entry}`);
    }
    expect(left).toEqual([]);
  });
});
