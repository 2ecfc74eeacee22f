#!/usr/bin/env -S npx tsx
import { runCommand } from "./lib/cli/command.ts";
import { NotImplementedError } from "./lib/errors.ts";

await runCommand({
  name: "bootstrap",
  summary: "provision nodes and bootstrap a secure Consul/Nomad/Vault cluster",
  common: { cluster: true, config: true, yes: true, dryRun: true, output: true },
  allowPositionals: true,
  async run() {
    throw new NotImplementedError(
      "'npm run bootstrap'",
      "issue 'Local provider and remote execution' and 'Bootstrap a secure Consul/Nomad/Vault cluster end to end'",
    );
  },
});
