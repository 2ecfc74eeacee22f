#!/usr/bin/env -S npx tsx
import { runCommand } from "./lib/cli/command.ts";
import { clusterContext } from "./lib/cli/cluster-context.ts";
import { printJson } from "./lib/cli/output.ts";
import { takeSnapshot } from "./lib/backup/snapshot.ts";
import { bootstrappedInventory, openClusterRun } from "./lib/stages/run-context.ts";

await runCommand({
  name: "snapshot",
  summary:
    "Consul, Nomad and Vault raft snapshots and the state dir into a dated folder (files 0600, encrypted to the operators' PGP keys when the config names them)",
  common: { cluster: true, config: true, output: true },
  examples: ["npm run snapshot"],
  async run({ flags, reporter }) {
    const context = await clusterContext(flags, reporter);
    const run = await openClusterRun(context, await bootstrappedInventory(context), { tolerateUnreachable: true });
    try {
      const step = reporter.step(`snapshot of '${context.config.name}'`);
      const taken = await takeSnapshot(run);
      step.done(taken.dir);
      if (flags.output === "json") printJson(taken);
      else for (const f of taken.files) reporter.info(`${f.name}: ${f.bytes} bytes${f.host ? ` (through ${f.host})` : ""}`);
      if (taken.encryptedTo)
        reporter.info(`every file is encrypted to ${taken.encryptedTo.join(", ")}; manifest.json lists their sha256`);
      else reporter.warn("the folder holds the unseal keys and root token (state.tar.gz): store it as you store the state");
      return 0;
    } finally {
      run.close();
    }
  },
});
