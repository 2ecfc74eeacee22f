#!/usr/bin/env -S npx tsx
// The energy and CO2 exporter (a Nomad system job). Bundled into one file by
// `npm run build:exporter` so it runs with a bare `node` on the nodes.
import { readFileSync } from "node:fs";
import { runCommand } from "./lib/cli/command.ts";
import { resolveExporterConfig } from "./lib/energy/config.ts";
import { startExporter } from "./lib/energy/run.ts";
import { InputError } from "./lib/errors.ts";

interface Flags {
  config?: string;
  listen?: string;
  interval?: string;
  source?: string;
  node?: string;
  "host.sysfs"?: string;
  "host.procfs"?: string;
  "host.cgroup"?: string;
}

await runCommand<Flags>({
  name: "energy-exporter",
  summary: "export node and per-Nomad-task energy and CO2e to Prometheus",
  usage: "node energy-exporter.mjs [options]   (from the repo: npm run energy-exporter -- [options])",
  options: {
    config: { type: "string", description: "YAML config file (HASHISTACK_ENERGY_CONFIG)", valueName: "FILE" },
    listen: { type: "string", description: "HOST:PORT to serve on (default 0.0.0.0:9875)", valueName: "ADDR" },
    interval: { type: "string", description: "seconds between samples (default 5)", valueName: "SECONDS" },
    source: { type: "string", description: "auto, rapl or model (default auto)", valueName: "SOURCE" },
    node: { type: "string", description: "node label on every series (default: host name)", valueName: "NAME" },
    "host.sysfs": { type: "string", description: "sysfs root (default /sys)", valueName: "DIR" },
    "host.procfs": { type: "string", description: "procfs root (default /proc)", valueName: "DIR" },
    "host.cgroup": { type: "string", description: "cgroup root (default /sys/fs/cgroup)", valueName: "DIR" },
  },
  examples: [
    "node energy-exporter.mjs --config /local/energy.yaml",
    "npm run energy-exporter -- --source model --listen 127.0.0.1:9875",
  ],
  async run({ flags, reporter }) {
    const file = flags.config ?? process.env.HASHISTACK_ENERGY_CONFIG;
    let text: string | undefined;
    if (file) {
      try {
        text = readFileSync(file, "utf8");
      } catch (error) {
        throw new InputError(`Cannot read the exporter config ${file}: ${(error as Error).message}`, {
          hint: "Check the path given with --config or HASHISTACK_ENERGY_CONFIG.",
        });
      }
    }
    const overrides: Record<string, unknown> = {};
    if (flags.listen) overrides.listen = flags.listen;
    if (flags.interval) {
      const interval = Number(flags.interval);
      if (!Number.isFinite(interval)) throw new InputError(`--interval must be a number of seconds, not '${flags.interval}'.`);
      overrides.interval = interval;
    }
    if (flags.source) overrides.source = flags.source;
    if (flags.node) overrides.node = flags.node;
    const host: Record<string, string> = {};
    if (flags["host.sysfs"]) host.sysfs = flags["host.sysfs"];
    if (flags["host.procfs"]) host.procfs = flags["host.procfs"];
    if (flags["host.cgroup"]) host.cgroup = flags["host.cgroup"];
    if (Object.keys(host).length) overrides.host = host;
    const config = resolveExporterConfig(text, file ?? "(no file)", process.env, overrides);

    const running = await startExporter(config, reporter, { token: process.env.NOMAD_TOKEN || undefined });
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once("SIGTERM", () => resolve("SIGTERM"));
      process.once("SIGINT", () => resolve("SIGINT"));
    });
    reporter.info(`${signal}: stopping`);
    await running.stop();
    return 0;
  },
});
