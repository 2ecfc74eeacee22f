#!/usr/bin/env -S npx tsx
import { runCommand } from "./lib/cli/command.ts";
import { NotImplementedError } from "./lib/errors.ts";

await runCommand({
  name: "deploy",
  summary: "validate, plan, register and watch Nomad jobs (for CI)",
  common: { cluster: true, config: true, yes: true, dryRun: true, output: true },
  allowPositionals: true,
  async run() {
    throw new NotImplementedError("'npm run deploy'", "issue 'Platform jobs and the deploy command'");
  },
});
