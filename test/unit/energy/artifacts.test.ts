/**
 * The dashboard and the alert rules only use metrics and labels the exporter
 * really exports (checked against a rendered scrape), and the dashboard marks
 * estimated series. promtool checks the rules for real in the integration suite.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { TaskCpuReader } from "../../../scripts/lib/energy/cgroups.ts";
import { exporterConfigSchema } from "../../../scripts/lib/energy/config.ts";
import { ContainerDirectory } from "../../../scripts/lib/energy/docker.ts";
import { EnergyExporter } from "../../../scripts/lib/energy/exporter.ts";
import { fsHostReader } from "../../../scripts/lib/energy/host.ts";
import { exporterNodeFlags } from "../../../scripts/lib/energy/node-flags.ts";
import { choosePowerSource } from "../../../scripts/lib/energy/power.ts";
import { allocA, FakeHost } from "../../helpers/energy-trees.ts";
import { tempDir } from "../../helpers/fixtures.ts";

const dashboard = JSON.parse(readFileSync("jobs/files/grafana/dashboards/energy.json", "utf8")) as {
  panels: { title: string; targets?: { expr: string }[]; fieldConfig?: { overrides: unknown[] } }[];
  templating: { list: { definition?: string }[] };
};
const rules = parse(readFileSync("jobs/files/prometheus/rules/energy.rules.yml", "utf8")) as {
  groups: { rules: { expr: string; record?: string; alert?: string }[] }[];
};

let dir: Awaited<ReturnType<typeof tempDir>>;
const exported = new Map<string, Set<string>>();

beforeAll(async () => {
  dir = await tempDir("artifacts");
  const host = new FakeHost(dir.path).machine().stat({ user: 0, idle: 0 }).v2Task(allocA, "web", 0);
  // a PSYS zone that never advances, so the stuck-zone warning is exported too
  host
    .zone({ id: "intel-rapl:0", name: "package-0", maxRangeUj: 1e12, energyUj: 0 })
    .zone({ id: "intel-rapl:1", name: "psys", maxRangeUj: 1e12, energyUj: 5 });
  let now = 0;
  const config = exporterConfigSchema.parse({ host: { sysfs: host.sysfs, procfs: host.procfs, cgroup: host.cgroup } });
  const exporter = new EnergyExporter({
    reader: fsHostReader,
    procfs: host.procfs,
    node: "n",
    power: choosePowerSource(config, fsHostReader, now),
    tasks: new TaskCpuReader(fsHostReader, { cgroup: host.cgroup, procfs: host.procfs }),
    metadata: { errors: 0, lookup: async () => new Map([[allocA, { namespace: "dev", job: "web", group: "g" }]]) },
    // the Engine API's answer for a node without docker containers (docker.test.ts talks to a socket)
    containers: new ContainerDirectory({ list: async () => [] }),
    intensity: () => ({ gramsPerKwh: 1, source: "static", provider: "static" }),
    intensityErrors: () => 0,
    pue: 1,
    version: "t",
    now: () => now,
  });
  await exporter.sample();
  now = 5000;
  host.setEnergy("intel-rapl:0", 1e6).stat({ user: 100, idle: 100 }).v2Task(allocA, "web", 1e5);
  await exporter.sample();
  for (const line of exporter.render().split("\n")) {
    const m = /^([a-z0-9_]+)\{(.*)\} /.exec(line);
    if (!m) continue;
    const labels = exported.get(m[1] as string) ?? new Set<string>();
    for (const l of (m[2] as string).matchAll(/([a-z0-9_]+)="/g)) labels.add(l[1] as string);
    exported.set(m[1] as string, labels);
  }
});
afterAll(() => dir.remove());

function checkExpr(expr: string, where: string) {
  const names = [...expr.matchAll(/\b(hashistack_energy_[a-z0-9_]+)/g)].map((m) => m[1] as string);
  const allLabels = new Set([...exported.values()].flatMap((s) => [...s]));
  for (const name of names) expect(exported.has(name), `${where}: ${name} is not exported`).toBe(true);
  for (const by of expr.matchAll(/by \(([^)]*)\)/g)) {
    for (const label of (by[1] as string).split(",").map((s) => s.trim())) {
      expect(allLabels.has(label), `${where}: label ${label} is not exported`).toBe(true);
    }
  }
  return names.length;
}

describe("the Nomad job", () => {
  it("sets only environment variables the exporter reads", () => {
    const hcl = readFileSync("jobs/energy-exporter.nomad.hcl", "utf8");
    const names = [...hcl.matchAll(/^\s+([A-Z_]+)\s+= /gm)].map((m) => m[1] as string);
    expect(names.length).toBeGreaterThan(10);
    const source = readFileSync("scripts/lib/energy/config.ts", "utf8");
    for (const name of new Set(names)) expect(source, `${name} is set by the job but never read`).toContain(`env.${name}`);
    expect(hcl).toContain("NOMAD_TOKEN={{ .token }}"); // read by scripts/energy-exporter.ts
  });

  it("passes the idle power, retention and cgroup parents, and runs node with the flags the bench measured", () => {
    const hcl = readFileSync("jobs/energy-exporter.nomad.hcl", "utf8");
    const config = /config = <<-EOT\n([\s\S]*?)\n\s*EOT/.exec(hcl)?.[1] ?? "";
    for (const key of ["rapl:", "idle: ${var.rapl_idle}", "retentionSeconds:", "cgroupParents:", "cgroupParent:"]) {
      expect(config).toContain(key);
    }
    expect(hcl).toMatch(/variable "rapl_idle" \{\s*type\s*= string\s*default\s*= "model"/);
    const flags = /node_flags\s*= (\[[^\]]*\])/.exec(hcl)?.[1];
    expect(JSON.parse(flags ?? "null")).toEqual(exporterNodeFlags);
    expect(hcl).toContain("concat(local.node_flags, [var.exporter_js");
    expect(hcl).toContain('concat(["node"], local.node_flags, ["/app/energy-exporter.mjs"])');
  });
});

describe("dashboard and rules", () => {
  it("the exporter exports the families they rely on", () => {
    expect([...exported.keys()]).toEqual(
      expect.arrayContaining([
        "hashistack_energy_task_joules_total",
        "hashistack_energy_node_watts",
        "hashistack_energy_rapl_rejected_total",
      ]),
    );
  });

  it("the dashboard queries only exported metrics and labels, and marks estimated series", () => {
    let count = 0;
    for (const p of dashboard.panels) for (const t of p.targets ?? []) count += checkExpr(t.expr, `panel '${p.title}'`);
    for (const v of dashboard.templating.list) if (v.definition) count += checkExpr(v.definition, "variable");
    expect(count).toBeGreaterThan(10);
    const titles = dashboard.panels.map((p) => p.title);
    expect(titles).toEqual(expect.arrayContaining(["Power per namespace", "Power per job", "CO2e per day per namespace"]));
    const node = dashboard.panels.find((p) => p.title.startsWith("Node power"));
    const estimated = node?.targets?.find((t) => t.expr.includes('estimated="true"')) as { legendFormat?: string } | undefined;
    expect(estimated?.legendFormat).toMatch(/estimated/);
    expect(JSON.stringify(node?.fieldConfig?.overrides)).toContain("dash");
  });

  it("the rules query only exported metrics and labels", () => {
    const all = rules.groups.flatMap((g) => g.rules);
    for (const r of all) checkExpr(r.expr, r.alert ?? r.record ?? "rule");
    expect(all.map((r) => r.alert).filter(Boolean)).toContain("EnergyNamespaceCo2eBudgetExceeded");
  });
});
