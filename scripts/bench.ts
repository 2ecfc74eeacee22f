#!/usr/bin/env -S npx tsx
// Benchmarks with figures written to bench/results.json (committed when they change).
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { runCommand } from "./lib/cli/command.ts";
import { printJson } from "./lib/cli/output.ts";
import { type BootstrapFigures, benchBootstrap } from "./lib/bench/bootstrap.ts";
import { benchEnergyExporter } from "./lib/bench/energy-exporter.ts";
import { benchImages, type ImageFigures } from "./lib/bench/images.ts";
import { benchLocalProvider } from "./lib/bench/local-provider.ts";
import { type BenchPart, benchParts, selectedParts } from "./lib/bench/parts.ts";
import { rssMb, time, type Timing } from "./lib/bench/measure.ts";
import { readBuildRecord } from "./lib/binaries/build.ts";
import { toolNames, tools } from "./lib/binaries/catalog.ts";
import { clusterConfigSchema } from "./lib/config/schema.ts";
import { planCluster } from "./lib/render/plan.ts";
import { plannedInventory } from "./lib/topology.ts";
import { parseYamlText } from "./lib/util/validated-yaml.ts";
import { writeFileAtomic } from "./lib/util/fs.ts";
import type { RenderSecrets } from "./lib/state/secrets.ts";

await runCommand<{ write?: boolean; skipLocal?: boolean; skipEnergy?: boolean; only?: string }>({
  name: "bench",
  summary: "measure rendering and validation speed and record the binary build times",
  common: { output: true },
  options: {
    write: { type: "boolean", description: "write the figures to bench/results.json (default: only print)" },
    only: {
      type: "string",
      valueName: "PARTS",
      description: `run only these parts (comma-separated: ${benchParts.join(", ")}); the others keep their recorded figures`,
    },
    "skip-local": { type: "boolean", description: "skip the local provider, bootstrap and docker figures (they need root)" },
    "skip-energy": { type: "boolean", description: "skip the energy exporter overhead figures (about 3 min)" },
  },
  examples: ["npm run bench -- --only docker,bootstrap --write", "npm run bench -- --only energy"],
  async run({ flags, reporter }) {
    const parts = selectedParts(flags);
    const root = process.getuid?.() === 0;
    const skipped = (why = "not selected") => `skipped (${why})`;
    const file = resolve("bench/results.json");
    const previous = (await readFile(file, "utf8").then(JSON.parse, () => ({}))) as Record<string, unknown>;

    let timings: Timing[] | string = skipped();
    let renderPerHostMs: number | string = skipped();
    let renderScaling: string = skipped();
    if (parts.has("render")) {
      const exampleText = await readFile("cluster.example.yaml", "utf8");
      const measured: Timing[] = [];
      measured.push(
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
        measured.push(await time(`render ${servers + clients} hosts`, 20, () => planCluster(config, inventory, secrets)));
      }
      timings = measured;
      renderPerHostMs = Math.round(((measured[2]?.medianMs ?? 0) / 69) * 1000) / 1000;
      renderScaling = `69 hosts take ${((measured[2]?.medianMs ?? 0) / (measured[1]?.medianMs || 1)).toFixed(1)}× the time of 5 hosts (13.8× hosts)`;
    }
    const builds: { tool: string; version: string; seconds: number; sizeMb: number; go: string }[] = [];
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
    const needsRoot = (part: BenchPart) => (parts.has(part) ? (root ? undefined : skipped("needs root")) : skipped());
    let localProvider: Awaited<ReturnType<typeof benchLocalProvider>> | string = needsRoot("local") ?? [];
    if (Array.isArray(localProvider)) {
      const step = reporter.step("local provider: up/down for 1, 3, 5 and 8 nodes");
      localProvider = await benchLocalProvider([1, 3, 5, 8], (line) => step.update(line));
      step.done();
    }
    let bootstrap: BootstrapFigures | string = needsRoot("bootstrap") ?? "";
    if (bootstrap === "") {
      const boot = reporter.step("bootstrap of a 5-node cluster (exec profile), a no-op re-run, then adding a client");
      bootstrap = await benchBootstrap((line) => boot.update(line), "exec");
      boot.done();
    }
    let dockerProfile: DockerProfileFigures | string = needsRoot("docker") ?? "";
    if (dockerProfile === "") {
      const images = reporter.step("docker profile images: build and push, cold then cached");
      const imageFigures = await benchImages((line) => images.update(line));
      images.done();
      const boot = reporter.step("bootstrap of a 5-node cluster (docker profile, images built here), then a no-op re-run");
      const dockerBoot = await benchBootstrap((line) => boot.update(line), "docker");
      boot.done();
      // beside the exec figures of this run, else the recorded ones
      const exec = typeof bootstrap === "object" ? bootstrap : (previous.bootstrap as BootstrapFigures | undefined);
      dockerProfile = dockerFigures(
        dockerBoot,
        imageFigures,
        exec,
        typeof bootstrap === "object" ? "this run" : String(previous.recordedAt),
      );
    }
    const energyExporter: Awaited<ReturnType<typeof benchEnergyExporter>>[] | string = parts.has("energy") ? [] : skipped();
    if (Array.isArray(energyExporter)) {
      for (const tasks of [50, 500]) {
        const step = reporter.step(`energy exporter: ${tasks} tasks at a 1 s interval`);
        energyExporter.push(await benchEnergyExporter((line) => step.update(line), { tasks, intervalSeconds: 1 }));
        step.done();
      }
    }
    const results = {
      machine: { cpus: (await import("node:os")).cpus().length, node: process.version },
      timings,
      renderPerHostMs,
      renderScaling,
      rssMb: rssMb(),
      localProvider,
      bootstrap,
      dockerProfile,
      energyExporter,
      binaryBuilds: builds,
    };
    if (flags.output === "json") printJson(results);
    else {
      if (Array.isArray(timings))
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
      if (typeof bootstrap === "object") reportBootstrap(bootstrap, (line) => reporter.info(line));
      else reporter.info(`bootstrap: ${bootstrap}`);
      if (typeof dockerProfile === "object") {
        reportBootstrap(dockerProfile.bootstrap, (line) => reporter.info(line));
        const { cold, cached } = dockerProfile.images;
        reporter.info(
          `images: cold ${cold.totalSeconds}s (build ${cold.buildSeconds}s, ${cold.layersBuilt} layers; push ${cold.pushSeconds}s, ${cold.uploadedMb} MB), cached ${cached.totalSeconds}s (${dockerProfile.images.coldOverCached}× faster)`,
        );
        if (dockerProfile.ratios)
          reporter.info(
            `docker profile / exec profile (exec figures from ${dockerProfile.ratios.execFrom}): first run ${dockerProfile.ratios.bootstrap}×, no-op re-run ${dockerProfile.ratios.noopRerun}×, platform stage ${dockerProfile.ratios.platformStage}×`,
          );
      } else reporter.info(`docker profile: ${dockerProfile}`);
      if (Array.isArray(energyExporter)) {
        const ok = (value: number, target: number) => (value < target ? "within" : "OVER");
        for (const e of energyExporter) {
          reporter.info(
            `energy exporter, ${e.tasks} tasks, ${e.intervalSeconds} s interval: CPU ${e.cpuPercentOfOneCore} % of one core after a ${e.warmupSeconds} s warm-up (${ok(e.cpuPercentOfOneCore, e.targets.cpuPercent)} < ${e.targets.cpuPercent} %; start-up ${e.startupCpuSeconds} CPU-s once), RSS ${e.rssMb} MB, peak ${e.peakRssMb} MB (${ok(e.peakRssMb, e.targets.rssMb)} < ${e.targets.rssMb} MB), scrape median ${e.scrapeMs.median} ms (${ok(e.scrapeMs.median, e.targets.scrapeMedianMs)} < ${e.targets.scrapeMedianMs} ms), p95 ${e.scrapeMs.p95} ms, max ${e.scrapeMs.max} ms, ${Math.round(e.scrapeBytes / 1024)} KiB per scrape`,
          );
        }
      } else reporter.info(`energy exporter: ${energyExporter}`);
      for (const b of builds) reporter.info(`build ${b.tool} ${b.version}: ${b.seconds}s, ${b.sizeMb} MB (${b.go})`);
    }
    if (flags.write) {
      // a part skipped in this run keeps the figures recorded before, so a partial run adds, never erases
      // (read again now: another bench run may have written meanwhile)
      const latest = (await readFile(file, "utf8").then(JSON.parse, () => ({}))) as Record<string, unknown>;
      const merged: Record<string, unknown> = { ...results };
      for (const [key, value] of Object.entries(results)) {
        if (typeof value === "string" && value.startsWith("skipped") && latest[key] !== undefined) merged[key] = latest[key];
      }
      // a tool whose build record is not in this machine's cache keeps its recorded build
      const recorded = Array.isArray(latest.binaryBuilds) ? (latest.binaryBuilds as typeof builds) : [];
      merged.binaryBuilds = [...builds, ...recorded.filter((r) => !builds.some((b) => b.tool === r.tool))];
      await writeFileAtomic(file, `${JSON.stringify({ ...merged, recordedAt: new Date().toISOString() }, null, 2)}\n`);
      reporter.success(`figures written to ${file}`);
    }
    return 0;
  },
});

interface DockerProfileFigures {
  bootstrap: BootstrapFigures;
  images: ImageFigures;
  /** docker-profile figure / exec-profile figure (same node count, both from empty nodes) */
  ratios?: { execFrom: string; bootstrap: number | null; noopRerun: number | null; platformStage: number | null };
}

function dockerFigures(
  docker: BootstrapFigures,
  images: ImageFigures,
  exec: BootstrapFigures | undefined,
  execFrom: string,
): DockerProfileFigures {
  if (!exec || exec.nodes !== docker.nodes) return { bootstrap: docker, images };
  const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b ? Math.round((a / b) * 100) / 100 : null);
  return {
    bootstrap: docker,
    images,
    ratios: {
      execFrom,
      bootstrap: ratio(docker.totalSeconds, exec.totalSeconds),
      noopRerun: ratio(docker.noopRerunSeconds, exec.noopRerunSeconds),
      platformStage: ratio(docker.stagesSeconds.platform, exec.stagesSeconds.platform),
    },
  };
}

function reportBootstrap(b: BootstrapFigures, info: (line: string) => void): void {
  const stages = Object.entries(b.stagesSeconds)
    .map(([name, s]) => `${name} ${s}s`)
    .join(", ");
  info(
    `bootstrap ${b.nodes} nodes, ${b.runtime} profile: ${b.totalSeconds}s in all (provision ${b.provisionSeconds}s; ${stages})`,
  );
  info(`no-op re-run: ${b.noopRerunSeconds}s (${(b.totalSeconds / b.noopRerunSeconds).toFixed(1)}× faster than the first run)`);
  const noop = Object.entries(b.noopStagesSeconds)
    .map(([name, s]) => `${name} ${s}s`)
    .join(", ");
  info(`no-op re-run by stage: ${noop}`);
  const added = Object.entries(b.addClient.stagesSeconds)
    .map(([name, s]) => `${name} ${s}s`)
    .join(", ");
  info(`adding a client (2 → 3): ${b.addClient.totalSeconds}s (provision ${b.addClient.provisionSeconds}s; ${added})`);
  const deployed = b.stagesSeconds.platform;
  const replanned = b.noopStagesSeconds.platform;
  if (deployed !== undefined && replanned !== undefined)
    info(
      `platform jobs: deployed to healthy in ${deployed}s; no-op re-deploy ${replanned}s (${(deployed / replanned).toFixed(1)}× faster)`,
    );
}
