/**
 * The whole chain with real programs: the bundled exporter (built here, run
 * with plain `node`, no node_modules) reads generated host trees whose
 * counters this test advances at known rates, names the tasks through a real
 * `nomad agent -dev`, is scraped by a real Prometheus (Debian's package, on
 * loopback) that also loads the alert rules, and `energy-report` asks that
 * Prometheus how much a job used.
 */
import { writeFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import { buildExporterBundle } from "../../../scripts/lib/build/exporter-bundle.ts";
import { minimalPolicy } from "../../../scripts/lib/energy/acl.ts";
import { energyReport } from "../../../scripts/lib/energy/report.ts";
import { FakeHost } from "../../helpers/energy-trees.ts";
import { tempDir } from "../../helpers/fixtures.ts";
import { type EnergyNomadDev, purgeJob, runRawExecJob, startEnergyNomadDev } from "../../helpers/energy-nomad.ts";
import { type Agent, startAgent, untilReady } from "../../helpers/processes.ts";

const nomadIp = "127.0.0.60";
const ip = "127.0.0.61";
const secret = "61616161-0000-4000-8000-000000000061";
const prometheusUrl = `http://${ip}:9090`;
const rulesFile = join(process.cwd(), "jobs/files/prometheus/rules/energy.rules.yml");

// rates the fake host runs at: 50 W of which 20 W idle; the node is 1 CPU-s/s busy,
// task "build" 0.6 of it and "test" 0.1 → build 18 W, test 3 W, system 9 W, unattributed 20 W
const rates = { watts: 50, idleWatts: 20, build: 0.6, test: 0.1 };
const pue = 1.5;
const intensity = 200;

let dir: Awaited<ReturnType<typeof tempDir>>;
let hostDir: Awaited<ReturnType<typeof tempDir>> | undefined;
let nomad: EnergyNomadDev | undefined;
let exporter: Agent | undefined;
let prometheus: Agent | undefined;
let ticker: NodeJS.Timeout | undefined;
let allocId: string;
let bundle: string;

async function query(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const response = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await response.json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  return body.data.result;
}

beforeAll(async () => {
  dir = await tempDir("energy-prometheus");
  const built = await buildExporterBundle(join(dir.path, "energy-exporter.mjs"));
  bundle = built.file;

  nomad = await startEnergyNomadDev(nomadIp, secret);
  await nomad.management.upsertNamespace({ Name: "ci", Description: "energy report test" });
  await nomad.management.upsertPolicy("energy-exporter", "energy exporter: read allocations", minimalPolicy);
  const token = (await nomad.management.createToken({ Name: "energy-exporter", Type: "client", Policies: ["energy-exporter"] }))
    .SecretID;
  allocId = await runRawExecJob(nomad, {
    id: "pipeline",
    namespace: "ci",
    group: "stages",
    tasks: [
      { name: "build", command: "/bin/sleep", args: ["3600"] },
      { name: "test", command: "/bin/sleep", args: ["3600"] },
    ],
  });

  // the fake host: its counters follow wall time at the rates above
  // on tmpfs: rewritten ten times a second, and writeback on a busy disk stalled the writes
  // for seconds in CI (a +30 % window), lumpy counters the exporter never sees on a real host
  hostDir = await tempDir("energy-host", "/dev/shm");
  const host = new FakeHost(hostDir.path).machine();
  host.zone({ id: "intel-rapl:0", name: "package-0", maxRangeUj: 262_143_328_850, energyUj: 0 });
  const started = Date.now();
  const advance = () => {
    const t = (Date.now() - started) / 1000;
    host
      .setEnergy("intel-rapl:0", Math.round(rates.watts * t * 1e6))
      .stat({ user: Math.round(100 * t), idle: Math.round(100 * t), vcpus: 2 })
      .v2Task(allocId, "build", Math.round(rates.build * t * 1e6))
      .v2Task(allocId, "test", Math.round(rates.test * t * 1e6));
  };
  advance();
  ticker = setInterval(advance, 100);

  const config = join(dir.path, "energy.yaml");
  await writeFile(
    config,
    [
      `listen: "${ip}:9875"`,
      "interval: 1",
      "node: fake-node",
      "source: rapl",
      `host: { sysfs: "${host.sysfs}", procfs: "${host.procfs}", cgroup: "${host.cgroup}" }`,
      `rapl: { idleWatts: ${rates.idleWatts} }`,
      `nomad: { nodeId: "${nomad.nodeId}" }`,
      `carbon: { pue: ${pue}, intensity: ${intensity} }`,
    ].join("\n"),
  );
  exporter = startAgent(
    "energy exporter (bundle)",
    process.execPath,
    [bundle, "--config", config],
    join(dir.path, "exporter.log"),
    {
      NOMAD_ADDR: nomad.address,
      NOMAD_TOKEN: token,
    },
  );
  await untilReady(exporter, async () => {
    const r = await fetch(`http://${ip}:9875/healthz`);
    if (r.status !== 200) throw new Error(`healthz ${r.status}`);
  });

  writeFileSync(
    join(dir.path, "prometheus.yml"),
    [
      "global: { scrape_interval: 1s, evaluation_interval: 1s }",
      `rule_files: ["${rulesFile}"]`,
      "scrape_configs:",
      "  - job_name: energy-exporter",
      `    static_configs: [{ targets: ["${ip}:9875"] }]`,
    ].join("\n"),
  );
  prometheus = startAgent(
    "prometheus",
    "/usr/bin/prometheus",
    [
      `--config.file=${join(dir.path, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir.path, "tsdb")}`,
      `--web.listen-address=${ip}:9090`,
    ],
    join(dir.path, "prometheus.log"),
  );
  await untilReady(prometheus, async () => {
    const series = await query(`hashistack_energy_task_joules_total{nomad_job="pipeline"}`);
    if (series.length < 2) throw new Error("no task series yet");
  });
}, 180_000);

afterAll(async () => {
  if (ticker) clearInterval(ticker);
  await prometheus?.stop();
  await exporter?.stop();
  await purgeJob(nomad, "pipeline", "ci");
  await sleep(1000);
  await nomad?.stop();
  await dir?.remove();
  await hostDir?.remove();
});

describe("energy report against a real Prometheus scraping the bundled exporter", () => {
  it("the bundle is reproducible", async () => {
    const again = await buildExporterBundle(join(dir.path, "again.mjs"));
    const first = (await $({ quiet: true })`sha256sum ${bundle}`).stdout.split(" ")[0];
    expect(again.sha256).toBe(first);
  });

  it("Prometheus loaded the alert rules", async () => {
    const response = await fetch(`${prometheusUrl}/api/v1/rules`);
    const body = (await response.json()) as { data: { groups: { name: string; rules: { name: string; health: string }[] }[] } };
    const rules = body.data.groups.flatMap((g) => g.rules);
    expect(rules.map((r) => r.name)).toContain("EnergyNamespaceCo2eBudgetExceeded");
  });

  it("reports the job's energy and CO2e over a window, per task", async () => {
    const from = new Date();
    await sleep(12_000);
    const to = new Date();
    const seconds = (to.getTime() - from.getTime()) / 1000;
    const report = await energyReport({ prometheus: prometheusUrl, job: "pipeline", namespace: "ci", from, to });
    const build = report.tasks.find((t) => t.task === "build");
    const test = report.tasks.find((t) => t.task === "test");
    expect(build).toMatchObject({ namespace: "ci", job: "pipeline", group: "stages", estimated: false });
    expect(report.joules).toBeCloseTo((build?.joules ?? 0) + (test?.joules ?? 0), 6);
    expect(report.co2eGrams).toBeCloseTo((report.joules / 3.6e6) * pue * intensity, 3);
    expect(report.kilowattHours).toBeCloseTo(report.joules / 3.6e6, 12);
    expect(report.estimated).toBe(false);
    // the whole node beside the job: system 9 W, unattributed 20 W, no other tasks; the parts add up to the node
    expect(report.nodes.names).toEqual(["fake-node"]);
    const share = (part: string) => report.nodes.shares.find((p) => p.part === part)?.joules ?? NaN;
    expect(share("subject")).toBeCloseTo(report.joules, 6);
    // the split of the node's energy, exact up to sampling (runs under load: within 0.5 %)
    const ofNode = (joules: number | undefined) => (joules ?? NaN) / report.nodes.joules;
    expect(Math.abs(ofNode(build?.joules) / (18 / 50) - 1)).toBeLessThan(0.05);
    expect(Math.abs(ofNode(test?.joules) / (3 / 50) - 1)).toBeLessThan(0.05);
    expect(Math.abs(ofNode(share("system")) / (9 / 50) - 1)).toBeLessThan(0.05);
    expect(Math.abs(ofNode(share("unattributed")) / (20 / 50) - 1)).toBeLessThan(0.05);
    expect(share("other tasks")).toBeLessThan(0.02 * report.nodes.joules);
    // the window: the node drew 50 W over it; increase() extrapolates at the edges and
    // samples land up to a second apart: ±20 %
    expect(report.nodes.joules).toBeGreaterThan(0.8 * 50 * seconds);
    expect(report.nodes.joules).toBeLessThan(1.2 * 50 * seconds);
    expect(report.nodes.shares.reduce((sum, p) => sum + p.joules, 0)).toBeCloseTo(report.nodes.joules, 3);

    // node-level conservation as Prometheus sees it: tasks + buckets = node
    const node = Number((await query(`hashistack_energy_node_joules_total{node="fake-node"}`))[0]?.value[1]);
    const parts = Number(
      (
        await query(
          `sum(hashistack_energy_task_joules_total{node="fake-node"}) + sum(hashistack_energy_bucket_joules_total{node="fake-node"})`,
        )
      )[0]?.value[1],
    );
    expect(parts).toBeCloseTo(node, 3);
  });

  it("the command prints JSON and Markdown, and refuses bad input with exit 2", async () => {
    const to = new Date();
    const from = new Date(to.getTime() - 8000);
    const args = [
      "--job",
      "pipeline",
      "--namespace",
      "ci",
      "--from",
      from.toISOString(),
      "--to",
      to.toISOString(),
      "--prometheus",
      prometheusUrl,
    ];
    const json = await $({ quiet: true, nothrow: true })`npx tsx scripts/energy-report.ts ${args} --output json`;
    expect(json.exitCode, json.stderr).toBe(0);
    const parsed = JSON.parse(json.stdout) as { joules: number; tasks: unknown[] };
    expect(parsed.joules).toBeGreaterThan(0);
    expect(parsed.tasks).toHaveLength(2);
    const markdown = await $({ quiet: true, nothrow: true })`npx tsx scripts/energy-report.ts ${args} -o markdown`;
    expect(markdown.exitCode, markdown.stderr).toBe(0);
    expect(markdown.stdout).toMatch(/^## Energy report: namespace `ci`, job `pipeline`/);
    expect(markdown.stdout).toMatch(/\| ci \| pipeline \| stages \| build \| [\d.]+ \| [\d.]+ \| no \|/);
    expect(markdown.stdout).toMatch(/\| system \(host processes\) \| [\d.]+ \| [\d.]+ % \|/);
    expect(markdown.stdout).toMatch(/\| unattributed \(idle power\) \| [\d.]+ \| [\d.]+ % \|/);
    expect(markdown.stdout).toMatch(/\| \*\*node total\*\* \| [\d.]+ \| 100 % \|/);
    const bad = await $({
      quiet: true,
      nothrow: true,
    })`npx tsx scripts/energy-report.ts --job x --from yesterday --prometheus ${prometheusUrl}`;
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/--from 'yesterday' is not a time/);
    const down = await $({
      quiet: true,
      nothrow: true,
    })`npx tsx scripts/energy-report.ts --job x --from=-1h --prometheus http://127.0.0.61:9`;
    expect(down.exitCode).toBe(3);
    expect(down.stderr).toMatch(/did not answer/);
  });
});
