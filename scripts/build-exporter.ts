#!/usr/bin/env -S npx tsx
// Builds dist/energy-exporter.mjs, the self-contained exporter the nodes run.
import { runCommand } from "./lib/cli/command.ts";
import { printJson } from "./lib/cli/output.ts";
import { buildExporterBundle, exporterBundle } from "./lib/build/exporter-bundle.ts";

await runCommand<{ out?: string }>({
  name: "build:exporter",
  summary: "bundle the energy exporter into one JavaScript file for node ≥18",
  common: { output: true },
  options: { out: { type: "string", description: `output file (default ${exporterBundle})`, valueName: "FILE" } },
  async run({ flags, reporter }) {
    const result = await buildExporterBundle(flags.out);
    if (flags.output === "json") printJson(result);
    else reporter.success(`${result.file}: ${Math.round(result.bytes / 1024)} KiB, sha256 ${result.sha256}`);
    return 0;
  },
});
