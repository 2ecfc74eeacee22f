#!/usr/bin/env -S npx tsx
import { resolve } from "node:path";
import { runCommand } from "./lib/cli/command.ts";
import { printJson } from "./lib/cli/output.ts";
import { loadClusterConfig } from "./lib/config/load.ts";
import { resolveInventory } from "./lib/inventory/resolve.ts";
import { planCluster } from "./lib/render/plan.ts";
import { writeRenderedPlan } from "./lib/render/write.ts";
import { statePaths } from "./lib/state/paths.ts";
import { ensureRenderSecrets, SecretStore } from "./lib/state/secrets.ts";

await runCommand<{ inventory?: string; out?: string }>({
  name: "render",
  summary: "render every config file and unit for every host into a folder, to read before installing",
  common: { cluster: true, config: true, output: true },
  options: {
    inventory: {
      type: "string",
      description: "inventory file (default: inventories/<cluster>.yaml, else planned)",
      valueName: "FILE",
    },
    out: { type: "string", description: "output folder (default: rendered/<cluster>)", valueName: "DIR" },
  },
  examples: ["npm run render", "npm run render -- --config cluster.example.yaml --inventory inventories/example-static.yaml"],
  async run({ flags, reporter }) {
    const { config, file } = await loadClusterConfig({ file: flags.config, cluster: flags.cluster });
    reporter.debug(`config: ${file}`);
    const { inventory, source } = await resolveInventory(config, flags.inventory);
    reporter.info(`cluster '${config.name}': ${inventory.hosts.length} hosts (inventory: ${source})`);
    const store = new SecretStore(statePaths(config.name));
    const { secrets, created } = await ensureRenderSecrets(
      store,
      inventory.hosts.map((h) => h.name),
    );
    for (const path of created) reporter.info(`generated a new secret in ${path} (0600)`);
    const outDir = resolve(flags.out ?? `rendered/${config.name}`);
    const written = await writeRenderedPlan(planCluster(config, inventory, secrets), outDir);
    if (flags.output === "json") {
      printJson({ cluster: config.name, outDir, files: written });
    } else {
      for (const host of inventory.hosts) {
        const count = written.filter((w) => w.host === host.name).length;
        reporter.success(`${host.name} (${host.roles.join(", ")}): ${count} files in ${resolve(outDir, host.name)}`);
      }
      reporter.info("files holding secrets (gossip keys, ACL token IDs) are mode 0600; the folder is 0700");
    }
    return 0;
  },
});
