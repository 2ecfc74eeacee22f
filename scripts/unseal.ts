#!/usr/bin/env -S npx tsx
import { runCommand } from "./lib/cli/command.ts";
import { clusterContext } from "./lib/cli/cluster-context.ts";
import { printJson } from "./lib/cli/output.ts";
import { ExitCode, isUserError } from "./lib/errors.ts";
import { bootstrappedInventory, openClusterRun } from "./lib/stages/run-context.ts";
import { unsealCluster } from "./lib/vault/unseal-cluster.ts";

await runCommand({
  name: "unseal",
  summary: "unseal every sealed Vault node from the state (plain or PGP-wrapped shares), without a bootstrap run",
  common: { cluster: true, config: true, output: true },
  examples: ["npm run unseal", "HASHISTACK_GNUPGHOME=~/.gnupg-ops npm run unseal"],
  async run({ flags, reporter }) {
    const context = await clusterContext(flags, reporter);
    const run = await openClusterRun(context, await bootstrappedInventory(context), { tolerateUnreachable: true });
    try {
      const outcomes = await unsealCluster(run);
      const failed = outcomes.filter((o) => o.state === "failed");
      if (flags.output === "json") {
        printJson({ vault: outcomes.map((o) => ({ host: o.host, state: o.state, error: o.error?.message })) });
      } else {
        for (const o of outcomes) {
          if (o.state === "failed") reporter.warn(`Vault on ${o.host}: not unsealed: ${o.error?.message}`);
          else reporter.success(`Vault on ${o.host}: ${o.state}`);
        }
        // the first failure's hint (e.g. which PGP keys are missing) once
        const hinted = failed.map((o) => o.error).find((e) => isUserError(e) && e.hint);
        if (hinted && isUserError(hinted)) {
          for (const line of hinted.details) reporter.info(line);
          reporter.info(hinted.hint ?? "");
        }
      }
      return failed.length ? ExitCode.operation : ExitCode.ok;
    } finally {
      run.close();
    }
  },
});
