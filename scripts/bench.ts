#!/usr/bin/env -S npx tsx
// Benchmarks with figures written to bench/results.json (committed when they change).
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { runCommand } from "./lib/cli/command.ts";
import { printJson } from "./lib/cli/output.ts";
import { benchBootstrap } from "./lib/bench/bootstrap.ts";
import { benchEnergyExporter } from "./lib/bench/energy-exporter.ts";
import { benchLocalProvider } from "./lib/bench/local-provider.ts";
import { rssMb, time } from "./lib/bench/measure.ts";
import { readBuildRecord } from "./lib/binaries/build.ts";
import { toolNames, tools } from "./lib/binaries/catalog.ts";
import { clusterConfigSchema } from "./lib/config/schema.ts";
import { planCluster } from "./lib/render/plan.ts";
import { plannedInventory } from "./lib/topology.ts";
import { parseYamlText } from "./lib/util/validated-yaml.ts";
import { writeFileAtomic } from "./lib/util/fs.ts";
import type { RenderSecrets } from "./lib/state/secrets.ts";

await runCommand<{ write?: boolean; skipLocal?: boolean; skipProvider?: boolean; skipEnergy?: boolean }>({
  name: "bench",
  summary: "measure rendering and validation speed and record the binary build times",
  common: { output: true },
  options: {
    write: { type: "boolean", description: "write the figures to bench/results.json (default: only print)" },
    "skip-local": { type: "boolean", description: "skip the local provider figures (they need root)" },
    "skip-provider": { type: "boolean", description: "skip the local provider's up/down series, keep the bootstrap figures" },
    "skip-energy": { type: "boolean", description: "skip the energy exporter overhead figures (about 3 min)" },
  },
  async run({ flags, reporter }) {
    const exampleText = await readFile("cluster.example.yaml", "utf8");
    const timings = [];
    timings.push(
      await time("validate cluster.example.yaml", 50, () =>
        parseYamlText(exampleText, "x", clusterConfigSchema, "Cluster config"),
      ),
    );
    for (const [servers, clients] of [
      [3, 2],
      [5, 64],
    ] as const) {
      const config = clusterConfigSchema.parse({ name: "bench", topology: { servers, clients } });
      const inventory = plannedInventory(config, "10.99.0.0/24", { user: "root", port: 22 }, "local");
      const secrets: RenderSecrets = {
        consulGossipKey: "a".repeat(44),
        nomadGossipKey: "b".repeat(44),
        consulAgentTokens: Object.fromEntries(inventory.hosts.map((h) => [h.name, h.name])),
        nomadConsulToken: "t",
      };
      timings.push(await time(`render ${servers + clients} hosts`, 20, () => planCluster(config, inventory, secrets)));
    }
    const builds = [];
    for (const name of toolNames) {
      const record = await readBuildRecord(tools[name]);
      if (record)
        builds.push({
          tool: name,
          version: record.version,
          seconds: record.seconds,
          sizeMb: Math.round(record.sizeBytes / 1e5) / 10,
          go: record.goVersion,
        });
    }
    let localProvider: Awaited<ReturnType<typeof benchLocalProvider>> | string = "skipped (--skip-local or not root)";
    let bootstrap: Awaited<ReturnType<typeof benchBootstrap>> | string = "skipped (--skip-local or not root)";
    if (!flags.skipLocal && process.getuid?.() === 0) {
      if (flags.skipProvider) localProvider = "skipped (--skip-provider)";
      else {
        const step = reporter.step("local provider: up/down for 1, 3, 5 and 8 nodes");
        localProvider = await benchLocalProvider([1, 3, 5, 8], (line) => step.update(line));
        step.done();
      }
      const boot = reporter.step("bootstrap of a 5-node cluster, then a no-op re-run");
      bootstrap = await benchBootstrap((line) => boot.update(line));
      boot.done();
    }
    let energyExporter: Awaited<ReturnType<typeof benchEnergyExporter>>[] | string = "skipped (--skip-energy)";
    if (!flags.skipEnergy) {
      energyExporter = [];
      for (const tasks of [50, 500]) {
        const step = reporter.step(`energy exporter: ${tasks} tasks at a 1 s interval`);
        energyExporter.push(await benchEnergyExporter((line) => step.update(line), { tasks, intervalSeconds: 1 }));
        step.done();
      }
    }
    const perHost = (timings[2]?.medianMs ?? 0) / 69;
    const results = {
      machine: { cpus: (await import("node:os")).cpus().length, node: process.version },
      timings,
      renderPerHostMs: Math.round(perHost * 1000) / 1000,
      renderScaling: `69 hosts take ${((timings[2]?.medianMs ?? 0) / (timings[1]?.medianMs || 1)).toFixed(1)}× the time of 5 hosts (13.8× hosts)`,
      rssMb: rssMb(),
      localProvider,
      bootstrap,
      energyExporter,
      binaryBuilds: builds,
    };
    if (flags.output === "json") printJson(results);
    else {
      for (const t of timings)
        reporter.info(`${t.name.padEnd(34)} median ${t.medianMs} ms (min ${t.minMs}, max ${t.maxMs}, ${t.runs} runs)`);
      reporter.info(results.renderScaling);
      reporter.info(`RSS after the runs: ${results.rssMb} MB`);
      if (Array.isArray(localProvider)) {
        for (const f of localProvider) {
          reporter.info(
            `local ${String(f.nodes).padStart(2)} nodes: up ${f.upSeconds}s, idle ${f.idleRssMbPerNode} MB/node, fan-out first ${f.fanoutFirstMs} ms / warm ${f.fanoutWarmMs} ms, down ${f.downSeconds}s`,
          );
        }
        const one = localProvider[0]?.upSeconds ?? 0;
        const eight = localProvider[localProvider.length - 1]?.upSeconds ?? 0;
        reporter.info(`8 nodes take ${(eight / (one || 1)).toFixed(1)}× the time of 1 node to come up`);
      } else reporter.info(`local provider: ${localProvider}`);
      if (typeof bootstrap === "object") {
        const stages = Object.entries(bootstrap.stagesSeconds)
          .map(([name, s]) => `${name} ${s}s`)
          .join(", ");
        reporter.info(
          `bootstrap ${bootstrap.nodes} nodes: ${bootstrap.totalSeconds}s in all (provision ${bootstrap.provisionSeconds}s; ${stages})`,
        );
        reporter.info(
          `no-op re-run: ${bootstrap.noopRerunSeconds}s (${(bootstrap.totalSeconds / bootstrap.noopRerunSeconds).toFixed(1)}× faster than the first run)`,
        );
        const deployed = bootstrap.stagesSeconds.platform;
        const replanned = bootstrap.noopStagesSeconds.platform;
        if (deployed !== undefined && replanned !== undefined)
          reporter.info(
            `platform jobs: deployed to healthy in ${deployed}s; no-op re-deploy ${replanned}s (${(deployed / replanned).toFixed(1)}× faster)`,
          );
      }
      if (Array.isArray(energyExporter)) {
        const ok = (value: number, target: number) => (value < target ? "within" : "OVER");
        for (const e of energyExporter) {
          reporter.info(
            `energy exporter, ${e.tasks} tasks, ${e.intervalSeconds} s interval: CPU ${e.cpuPercentOfOneCore} % of one core (${ok(e.cpuPercentOfOneCore, e.targets.cpuPercent)} < ${e.targets.cpuPercent} %), RSS ${e.rssMb} MB, peak ${e.peakRssMb} MB (${ok(e.peakRssMb, e.targets.rssMb)} < ${e.targets.rssMb} MB), scrape median ${e.scrapeMs.median} ms (${ok(e.scrapeMs.median, e.targets.scrapeMedianMs)} < ${e.targets.scrapeMedianMs} ms), p95 ${e.scrapeMs.p95} ms, max ${e.scrapeMs.max} ms, ${Math.round(e.scrapeBytes / 1024)} KiB per scrape`,
          );
        }
      } else reporter.info(`energy exporter: ${energyExporter}`);
      for (const b of builds) reporter.info(`build ${b.tool} ${b.version}: ${b.seconds}s, ${b.sizeMb} MB (${b.go})`);
    }
    if (flags.write) {
      const file = resolve("bench/results.json");
      // a part skipped in this run keeps the figures recorded before, so a partial run adds, never erases
      const previous = (await readFile(file, "utf8").then(JSON.parse, () => ({}))) as Record<string, unknown>;
      const merged: Record<string, unknown> = { ...results };
      for (const [key, value] of Object.entries(results)) {
        if (typeof value === "string" && value.startsWith("skipped") && previous[key] !== undefined) merged[key] = previous[key];
      }
      await writeFileAtomic(file, `${JSON.stringify({ ...merged, recordedAt: new Date().toISOString() }, null, 2)}\n`);
      reporter.success(`figures written to ${file}`);
    }
    return 0;
  },
});
