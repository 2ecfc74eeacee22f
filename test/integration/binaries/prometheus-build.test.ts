/**
 * Prometheus 3 and Alertmanager built from the Go module proxy (test prerequisites):
 * the versions and build tags they report, and Prometheus running the platform job's
 * own configuration (the `secrets/prometheus.yml` template of jobs/prometheus.nomad.hcl,
 * with the values Nomad's template runner fills in) against a real Consul agent started
 * from the rendered config (HTTPS only, client certificates required, ACL default deny)
 * with a token of the `platform-observer` policy only. consul_sd_configs over mTLS
 * discovers the services as seed 003's listing 5.5 does (the `prometheus` tag kept,
 * sidecar proxies dropped, labelled by service, metrics path from the service's meta),
 * the agent's own metrics are scraped at its HTTPS port with that token, and the token
 * shows as <secret> in the config API. The build carries only file, HTTP and Consul
 * discovery: a Kubernetes scrape config is refused.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { parse as parseHcl } from "@cdktf/hcl2json";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import { ConsulClient } from "../../../scripts/lib/clients/consul.ts";
import { jobFile } from "../../../scripts/lib/platform/jobs.ts";
import { observerPolicy } from "../../../scripts/lib/stages/workload-identity.ts";
import { requireBinary } from "../../helpers/binaries.ts";
import { tempDir } from "../../helpers/fixtures.ts";
import { type LoopbackNode, renderLoopbackServer } from "../../helpers/loopback-node.ts";
import { type Agent, startAgent, stopProcess, untilReady } from "../../helpers/processes.ts";

const ip = "127.0.0.72";
const bootstrapSecret = "72727272-0000-4000-8000-000000000072";
const observerSecret = randomUUID();
let dir: Awaited<ReturnType<typeof tempDir>>;
let node: LoopbackNode;
let consul: Agent;
let prometheus: Agent;
let app: Server;
const started: ChildProcess[] = [];

async function ready(url: string, deadlineMs = 30_000): Promise<string> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      const response = await fetch(url);
      if (response.ok) return await response.text();
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} was not ready within ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * The job's config template with what Nomad's template runner puts in: `env` values
 * (`| toJSON` quoted) and the Vault targets from the job's Nomad variable.
 */
async function jobConfig(env: Record<string, string>, vaultTargets: string): Promise<string> {
  const file = jobFile("prometheus");
  type Blocks<T> = Record<string, T[]>;
  type Task = { template: { destination: string; data: string }[] };
  const hcl = (await parseHcl(file, await readFile(file, "utf8"))) as { job: Blocks<{ group: Blocks<{ task: Blocks<Task> }> }> };
  const task = hcl.job.prometheus?.[0]?.group.prometheus?.[0]?.task.prometheus?.[0];
  const template = task?.template.find((t) => t.destination === "secrets/prometheus.yml")?.data;
  if (!template) throw new Error(`${file} has no secrets/prometheus.yml template`);
  const rendered = template
    .replace(/\{\{ env "(\w+)"( \| toJSON)? \}\}/g, (_, name: string, json?: string) => {
      const value = env[name];
      if (value === undefined) throw new Error(`the template reads ${name}, which this test does not set`);
      return json ? JSON.stringify(value) : value;
    })
    .replace('{{ with nomadVar "nomad/jobs/prometheus" }}{{ .vault_targets }}{{ end }}', vaultTargets);
  const left = /.*\{\{.*/.exec(rendered);
  if (left) throw new Error(`unrendered template expression: ${left[0]}`);
  return rendered;
}

interface Target {
  labels: Record<string, string>;
  health: string;
  scrapeUrl: string;
  lastError: string;
}

async function targets(): Promise<{ active: Target[]; dropped: { discoveredLabels: Record<string, string> }[] }> {
  const answer = (await (await fetch(`http://${ip}:19090/api/v1/targets`)).json()) as {
    data: { activeTargets: Target[]; droppedTargets: { discoveredLabels: Record<string, string> }[] };
  };
  return { active: answer.data.activeTargets, dropped: answer.data.droppedTargets };
}

beforeAll(async () => {
  dir = await tempDir("prometheus-build");
  node = await renderLoopbackServer(dir.path, ip);
  consul = startAgent(
    "consul",
    requireBinary("consul"),
    ["agent", `-config-dir=${node.layout.consul.configDir}`],
    join(dir.path, "consul.log"),
  );
  const tls = { caFile: node.ca.caFile, certFile: node.operator.certFile, keyFile: node.operator.keyFile };
  const operator = new ConsulClient({ address: `https://${ip}:8501`, token: bootstrapSecret, ...tls });
  await untilReady(consul, () => new ConsulClient({ address: `https://${ip}:8501`, ...tls }).waitForLeader(5_000));
  await operator.bootstrapAcl(bootstrapSecret);
  await operator.upsertPolicy({ Name: "platform-observer", Description: "test", Rules: observerPolicy });
  await operator.ensureToken({ SecretID: observerSecret, Description: "prometheus", Policies: [{ Name: "platform-observer" }] });

  // an application answering on a custom metrics path, without a Content-Type
  app = createServer((request, response) => {
    response.statusCode = request.url === "/custom/metrics" ? 200 : 404;
    response.end("test_app_up 1\n");
  });
  await new Promise<void>((resolve) => app.listen(19555, ip, resolve));
  // a node without an agent: the agent's anti-entropy leaves another node's services alone
  const register = (service: Record<string, unknown>) =>
    operator.api.put("/v1/catalog/register", { Node: "node-a", Address: ip, Service: service });
  await register({ Service: "web", Port: 19555, Tags: ["prometheus"], Meta: { metrics_path: "/custom/metrics" } });
  await register({ Service: "web-sidecar-proxy", Port: 19556, Tags: ["prometheus"] });
  await register({ Service: "quiet", Port: 19557 });
  // what a Nomad client registers: its agent's node is where a Consul agent answers on 8501
  await register({ Service: "nomad-client", Port: 14646, Tags: ["http"] });

  const secrets = join(dir.path, "secrets");
  await $({ quiet: true })`mkdir -p ${join(secrets, "tls")} ${join(dir.path, "local", "rules")}`;
  // certificate, issuer and key in one file, as the job's pkiCert template writes it
  const bundle = [node.operator.certFile, node.ca.caFile, node.operator.keyFile].map((f) => readFile(f, "utf8"));
  await writeFile(join(secrets, "tls", "bundle.pem"), (await Promise.all(bundle)).join(""));
  await writeFile(join(secrets, "tls", "ca.pem"), await readFile(node.ca.caFile));
  const config = join(secrets, "prometheus.yml");
  await writeFile(
    config,
    await jobConfig(
      {
        NOMAD_IP_http: ip,
        NOMAD_DC: "dc1",
        NOMAD_TASK_DIR: join(dir.path, "local"),
        NOMAD_SECRETS_DIR: secrets,
        CONSUL_TOKEN: observerSecret,
        VAULT_TOKEN: "no-vault-here",
      },
      `"${ip}:18200"`,
    ),
  );
  prometheus = startAgent(
    "prometheus",
    requireBinary("prometheus"),
    [`--config.file=${config}`, `--storage.tsdb.path=${join(dir.path, "data")}`, `--web.listen-address=${ip}:19090`],
    join(dir.path, "prometheus.log"),
  );
  await untilReady(prometheus, () => ready(`http://${ip}:19090/-/ready`, 1_000));
}, 120_000);

afterAll(async () => {
  for (const child of started) await stopProcess(child);
  await prometheus?.stop();
  await consul?.stop();
  await new Promise((resolve) => (app ? app.close(resolve) : resolve(undefined)));
  await dir?.remove();
});

describe("Prometheus 3 and Alertmanager from the Go module proxy", () => {
  it("Prometheus reports 3.16.0 and its discovery build tags", async () => {
    const version = (await $({ quiet: true })`${requireBinary("prometheus")} --version`).stdout;
    expect(version).toMatch(/^prometheus, version 3\.16\.0 /);
    expect(version).toMatch(/tags: +remove_all_sd,enable_consul_sd/);
  });

  it("discovers through Consul over mTLS with the observer token, relabelled as seed 003's listing 5.5", async () => {
    let found: Awaited<ReturnType<typeof targets>> = { active: [], dropped: [] };
    const up = (job: string) => found.active.find((t) => t.labels.job === job && t.health === "up");
    for (let i = 0; i < 60 && !(up("web") && up("consul")); i++) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      found = await targets();
    }
    const web = up("web");
    expect(web, JSON.stringify(found.active)).toBeDefined();
    expect(web?.labels).toMatchObject({ service: "web", node: "node-a" });
    expect(web?.scrapeUrl).toBe(`http://${ip}:19555/custom/metrics`);
    // the agent's own metrics: the node's address at Consul's HTTPS port, with the token
    expect(up("consul")?.scrapeUrl).toBe(`https://${ip}:8501/v1/agent/metrics?format=prometheus`);
    const jobs = found.active.map((t) => t.labels.job);
    expect(jobs).not.toContain("web-sidecar-proxy");
    expect(jobs).not.toContain("quiet");
    // the sidecar carries the tag, so it is discovered and dropped; the untagged service is never watched
    const droppedServices = found.dropped.map((t) => t.discoveredLabels.__meta_consul_service);
    expect(droppedServices).toContain("web-sidecar-proxy");
    expect(droppedServices).not.toContain("quiet");
    expect(found.active.find((t) => t.labels.job === "nomad-clients")?.scrapeUrl).toBe(
      `https://${ip}:14646/v1/metrics?format=prometheus`,
    );
  });

  it("has consul_sd_configs and no file_sd in its loaded config, the token shown as <secret>", async () => {
    const loaded = (await (await fetch(`http://${ip}:19090/api/v1/status/config`)).json()) as { data: { yaml: string } };
    expect(loaded.data.yaml).toContain("consul_sd_configs:");
    expect(loaded.data.yaml).not.toContain("file_sd_configs");
    expect(loaded.data.yaml).toContain("token: <secret>");
    expect(loaded.data.yaml).not.toContain(observerSecret);
  });

  it("refuses a Kubernetes scrape config: the build has no Kubernetes discovery", async () => {
    const config = join(dir.path, "kubernetes.yml");
    await writeFile(config, "scrape_configs:\n  - job_name: k\n    kubernetes_sd_configs:\n      - role: pod\n");
    const run = await $({
      quiet: true,
      nothrow: true,
    })`${requireBinary("prometheus")} --config.file=${config} --storage.tsdb.path=${join(dir.path, "data-k")} --web.listen-address=${ip}:19091`;
    expect(run.exitCode).not.toBe(0);
    expect(run.stderr).toContain("field kubernetes_sd_configs not found");
  });

  it("Alertmanager reports 0.35.0 and is ready", async () => {
    const path = requireBinary("alertmanager");
    expect((await $({ quiet: true })`${path} --version`).stdout).toMatch(/^alertmanager, version 0\.35\.0 /);
    const config = join(dir.path, "alertmanager.yml");
    await writeFile(config, "route:\n  receiver: none\nreceivers:\n  - name: none\n");
    const child = spawn(
      path,
      [
        `--config.file=${config}`,
        `--storage.path=${join(dir.path, "alertmanager")}`,
        `--web.listen-address=${ip}:19093`,
        `--cluster.listen-address=`,
      ],
      { stdio: "ignore" },
    );
    started.push(child);
    expect(await ready(`http://${ip}:19093/-/ready`)).toMatch(/ok/i);
  });
});
