#!/usr/bin/env -S npx tsx
import { runCommand } from "./lib/cli/command.ts";
import { clusterContext } from "./lib/cli/cluster-context.ts";
import { printJson } from "./lib/cli/output.ts";
import { openSnapshot, restoreSnapshot } from "./lib/backup/restore.ts";
import { ExitCode, InputError } from "./lib/errors.ts";
import { bootstrappedInventory } from "./lib/stages/run-context.ts";

await runCommand<{ force?: boolean }>({
  name: "restore",
  summary: "a snapshot folder of 'npm run snapshot' into a cluster of the same topology bootstrapped empty, then every stage",
  usage: "npm run restore -- <snapshot folder> [options]",
  common: { cluster: true, config: true, yes: true, output: true },
  allowPositionals: true,
  options: {
    force: { type: "boolean", description: "replace jobs and secrets the cluster already has of its own" },
  },
  examples: [
    "npm run restore -- .hashistack/snapshots/prod/20261202T130000Z",
    "HASHISTACK_GNUPGHOME=~/.gnupg-ops npm run restore -- <folder> --yes",
  ],
  async run({ flags, positionals, reporter }) {
    if (positionals.length !== 1) {
      throw new InputError("Give exactly one snapshot folder.", { hint: "npm run restore -- <snapshot folder> (see --help)" });
    }
    // the folder first: a damaged or undecryptable snapshot is found before the cluster is looked at
    const snapshot = await openSnapshot(positionals[0] as string);
    const context = await clusterContext(flags, reporter);
    const inventory = await bootstrappedInventory(context);
    const step = reporter.step(`restore into '${context.config.name}'`);
    const outcome = await restoreSnapshot(context, inventory, snapshot, {
      force: flags.force ?? false,
      confirm: context.confirm,
    });
    if (!outcome) {
      step.done("nothing changed");
      reporter.warn("not restored: nothing changed");
      return ExitCode.ok;
    }
    step.done(`the snapshot of '${outcome.cluster}' taken ${outcome.takenAt}`);
    if (flags.output === "json") printJson(outcome);
    else {
      for (const line of outcome.steps) reporter.info(line);
      for (const s of outcome.secrets.skipped) reporter.info(`kept the cluster's own ${s.name}: ${s.reason}`);
      reporter.success(`Restored; ${outcome.stages.verify?.summary ?? "verify did not run"}`);
    }
    return ExitCode.ok;
  },
});
