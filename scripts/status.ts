#!/usr/bin/env -S npx tsx
import { runCommand } from "./lib/cli/command.ts";
import { clusterContext } from "./lib/cli/cluster-context.ts";
import { printJson } from "./lib/cli/output.ts";
import { ExitCode } from "./lib/errors.ts";
import { providerFor } from "./lib/providers/index.ts";

await runCommand<{ provider?: string }>({
  name: "status",
  summary: "show the cluster's nodes (cluster health arrives with the bootstrap stages)",
  common: { cluster: true, config: true, output: true },
  options: { provider: { type: "string", description: "provider (default: from the config)", valueName: "NAME" } },
  async run({ flags, reporter }) {
    const context = await clusterContext(flags, reporter);
    const status = await providerFor(context.config.provider.type).status(context);
    if (flags.output === "json") printJson({ cluster: context.config.name, ...status });
    else {
      reporter.info(`cluster '${context.config.name}' on the ${status.provider} provider`);
      for (const n of status.nodes) {
        const line = `${n.name.padEnd(10)} ${n.address.padEnd(15)} ${n.state}${n.detail ? ` (${n.detail})` : ""}`;
        if (n.state === "running") reporter.success(line);
        else reporter.warn(line);
      }
      for (const r of status.resources) reporter.info(r);
    }
    return status.nodes.every((n) => n.state === "running") ? ExitCode.ok : ExitCode.operation;
  },
});
