#!/usr/bin/env -S npx tsx
import { runCommand } from "./lib/cli/command.ts";
import { clusterContext } from "./lib/cli/cluster-context.ts";
import { printJson } from "./lib/cli/output.ts";
import { ExitCode } from "./lib/errors.ts";
import { providerFor } from "./lib/providers/index.ts";
import { runStages, stages } from "./lib/stages/pipeline.ts";

await runCommand<{ provider?: string; stages?: string }>({
  name: "bootstrap",
  summary: "provision nodes and bootstrap a secure Consul/Nomad/Vault cluster",
  common: { cluster: true, config: true, yes: true, output: true },
  options: {
    provider: {
      type: "string",
      description: "local (default), static, vagrant or digitalocean; overrides the config",
      valueName: "NAME",
    },
  },
  examples: ["npm run bootstrap", "npm run bootstrap -- --provider static --config cluster.yaml"],
  async run({ flags, reporter }) {
    const context = await clusterContext(flags, reporter);
    const provider = providerFor(context.config.provider.type);
    reporter.info(`cluster '${context.config.name}' on the ${provider.name} provider`);
    const inventory = await provider.up(context);
    for (const host of inventory.hosts) reporter.info(`${host.name} (${host.roles.join(", ")}) ${host.privateIp}`);
    const records = await runStages(context, inventory, flags.stages?.split(","));
    if (flags.output === "json") printJson({ cluster: context.config.name, provider: provider.name, inventory, stages: records });
    const ran = flags.stages ? flags.stages.split(",") : stages.map((s) => s.name);
    reporter.success(`Done: ${ran.join(", ")}. 'npm run status' shows the cluster; 'npm run env' points the CLIs at it.`);
    return ExitCode.ok;
  },
});
