#!/usr/bin/env -S npx tsx
import { runCommand } from "./lib/cli/command.ts";
import { NotImplementedError } from "./lib/errors.ts";

await runCommand({
  name: "env",
  summary: "print shell exports that point consul/nomad/vault CLIs at the cluster",
  common: { cluster: true, config: true, yes: true, dryRun: true, output: true },
  allowPositionals: true,
  async run() {
    throw new NotImplementedError("'npm run env'", "issue 'Bootstrap a secure Consul/Nomad/Vault cluster end to end'");
  },
});
