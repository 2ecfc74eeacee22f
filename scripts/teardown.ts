#!/usr/bin/env -S npx tsx
import { runCommand } from "./lib/cli/command.ts";
import { clusterContext } from "./lib/cli/cluster-context.ts";
import { printJson } from "./lib/cli/output.ts";
import { existsSync } from "node:fs";
import { confirmWith } from "./lib/providers/confirm.ts";
import { providerFor } from "./lib/providers/index.ts";
import { providerTypes } from "./lib/providers/registry.ts";

await runCommand<{ provider?: string; keepState?: boolean; deleteState?: boolean }>({
  name: "teardown",
  summary: "stop and remove a cluster's nodes, networks and state",
  common: { cluster: true, config: true, yes: true, dryRun: true, output: true },
  options: {
    provider: {
      type: "string",
      description: `provider to tear down (${providerTypes.join(", ")}; default: from the config)`,
      valueName: "NAME",
    },
    "keep-state": { type: "boolean", description: "keep .hashistack/<cluster>/ (keys, tokens, CA)" },
    "delete-state": {
      type: "boolean",
      description: "static provider: remove .hashistack/<cluster>/ too (kept by default: the hosts keep running Vault)",
    },
  },
  examples: ["npm run teardown -- --dry-run", "npm run teardown -- --yes"],
  async run({ flags, reporter }) {
    const context = await clusterContext(flags, reporter);
    const provider = providerFor(context.config.provider.type);
    const options = { keepState: Boolean(flags.keepState), deleteState: Boolean(flags.deleteState) };
    // static hosts keep running Vault: its unseal keys and root token are only in the state
    if (context.config.provider.type === "static" && !options.deleteState && existsSync(context.state.root))
      reporter.warn(
        `keeping the state ${context.state.root}: the static hosts keep running Vault, and its unseal keys, root token and the CA are only there (--delete-state removes it)`,
      );
    const existing = await provider.down(context, { dryRun: true, ...options });
    if (existing.length === 0) {
      reporter.info(`nothing to remove for cluster '${context.config.name}'`);
      if (flags.output === "json") printJson({ removed: [] });
      return 0;
    }
    if (flags.dryRun) {
      if (flags.output === "json") printJson({ wouldRemove: existing });
      else for (const item of existing) reporter.info(`would remove ${item}`);
      return 0;
    }
    for (const item of existing) reporter.info(item);
    if (!(await confirmWith(context, `Remove these ${existing.length} items of cluster '${context.config.name}'?`))) {
      reporter.warn("nothing removed");
      return 0;
    }
    const step = reporter.step(`tearing down '${context.config.name}'`);
    const removed = await provider.down(context, { dryRun: false, ...options });
    step.done(`${removed.length} items removed`);
    if (flags.output === "json") printJson({ removed });
    return 0;
  },
});
