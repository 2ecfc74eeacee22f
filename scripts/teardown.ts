#!/usr/bin/env -S npx tsx
import { runCommand } from "./lib/cli/command.ts";
import { NotImplementedError } from "./lib/errors.ts";

await runCommand({
  name: "teardown",
  summary: "stop and remove a cluster's nodes and state",
  common: { cluster: true, config: true, yes: true, dryRun: true, output: true },
  allowPositionals: true,
  async run() {
    throw new NotImplementedError("'npm run teardown'", "issue 'Local provider and remote execution'");
  },
});
