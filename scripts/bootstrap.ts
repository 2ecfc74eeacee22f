#!/usr/bin/env -S npx tsx
import { runCommand } from "./lib/cli/command.ts";
import { clusterContext } from "./lib/cli/cluster-context.ts";
import { printJson } from "./lib/cli/output.ts";
import { ExitCode } from "./lib/errors.ts";
import { providerFor } from "./lib/providers/index.ts";
import { providerOptionHelp } from "./lib/providers/registry.ts";
import { runStages, stageNames, stages } from "./lib/stages/pipeline.ts";
import { selectStages } from "./lib/stages/runner.ts";

await runCommand<{ provider?: string; stages?: string }>({
  name: "bootstrap",
  summary: "provision nodes and bootstrap a secure Consul/Nomad/Vault cluster",
  common: { cluster: true, config: true, yes: true, output: true },
  options: {
    provider: {
      type: "string",
      description: providerOptionHelp("overrides the config"),
      valueName: "NAME",
    },
    stages: {
      type: "string",
      description: `run only these stages (comma-separated, in pipeline order): ${stageNames.join(", ")}`,
      valueName: "LIST",
    },
  },
  examples: [
    "npm run bootstrap",
    "npm run bootstrap -- --provider static --config cluster.yaml",
    "npm run bootstrap -- --stages platform,verify",
  ],
  async run({ flags, reporter }) {
    // checked before anything is provisioned: an unknown name is a usage error listing the stages
    const selected = selectStages(stages, flags.stages?.split(","));
    const context = await clusterContext(flags, reporter);
    const provider = providerFor(context.config.provider.type);
    reporter.info(`cluster '${context.config.name}' on the ${provider.name} provider`);
    const inventory = await provider.up(context);
    for (const host of inventory.hosts) reporter.info(`${host.name} (${host.roles.join(", ")}) ${host.privateIp}`);
    const records = await runStages(
      context,
      inventory,
      selected.map((s) => s.name),
    );
    if (flags.output === "json") printJson({ cluster: context.config.name, provider: provider.name, inventory, stages: records });
    reporter.success(
      `Done: ${selected.map((s) => s.name).join(", ")}. 'npm run status' shows the cluster; 'npm run env' points the CLIs at it.`,
    );
    return ExitCode.ok;
  },
});
