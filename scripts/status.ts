#!/usr/bin/env -S npx tsx
import { runCommand } from "./lib/cli/command.ts";
import { NotImplementedError } from "./lib/errors.ts";

await runCommand({
  name: "status",
  summary: "show cluster health",
  common: { cluster: true, config: true, yes: true, dryRun: true, output: true },
  allowPositionals: true,
  async run() {
    throw new NotImplementedError(
      "'npm run status'",
      " members, leaders, nodes, Vault seal, certificates:issue 'Bootstrap a secure Consul/Nomad/Vault cluster end to end'",
    );
  },
});
