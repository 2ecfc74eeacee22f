#!/usr/bin/env -S npx tsx
import { InputError } from "./lib/errors.ts";
import { runCommand } from "./lib/cli/command.ts";
import { printJson } from "./lib/cli/output.ts";
import { type ToolName, toolNames, tools } from "./lib/binaries/catalog.ts";
import { cacheRoot, ensureBinary, readBuildRecord } from "./lib/binaries/build.ts";

await runCommand<{ tools?: string; force?: boolean }>({
  name: "binaries",
  summary:
    "build Consul, Nomad, Vault, consul-template, Fabio, Prometheus and Alertmanager from the Go module proxy into the local cache",
  common: { output: true },
  options: {
    tools: { type: "string", description: `comma-separated subset of: ${toolNames.join(", ")}`, valueName: "LIST" },
    force: { type: "boolean", description: "rebuild even when a cached binary exists" },
  },
  examples: ["npm run binaries", "npm run binaries -- --tools consul,nomad"],
  async run({ flags, reporter }) {
    const wanted = (flags.tools?.split(",").map((t) => t.trim()) ?? toolNames) as ToolName[];
    const unknown = wanted.filter((t) => !(t in tools));
    if (unknown.length)
      throw new InputError(`Unknown tool ${unknown.join(", ")}.`, { hint: `Choose from ${toolNames.join(", ")}.` });
    reporter.info(`cache: ${cacheRoot()}/bin`);
    const results = [];
    for (const name of wanted) {
      const tool = tools[name];
      const step = reporter.step(`${tool.name} ${tool.version}`);
      try {
        const result = await ensureBinary(tool, { force: flags.force, log: (line) => step.update(line) });
        const record = result.record ?? (await readBuildRecord(tool));
        step.done(result.built ? `built in ${result.record?.seconds}s → ${result.path}` : `cached → ${result.path}`);
        results.push({
          tool: tool.name,
          version: tool.version,
          path: result.path,
          built: result.built,
          seconds: record?.seconds,
        });
      } catch (error) {
        step.fail();
        throw error;
      }
    }
    if (flags.output === "json") printJson(results);
    return 0;
  },
});
