#!/usr/bin/env -S npx tsx
// Shell exports that point the official consul, nomad and vault CLIs at the cluster.
import { runCommand } from "./lib/cli/command.ts";
import { clusterContext } from "./lib/cli/cluster-context.ts";
import { printJson } from "./lib/cli/output.ts";
import { OperationError } from "./lib/errors.ts";
import { hostsWithRole } from "./lib/inventory/schema.ts";
import { shellQuote } from "./lib/remote/quote.ts";
import { ports } from "./lib/render/layout.ts";
import { SecretStore } from "./lib/state/secrets.ts";
import { bootstrappedInventory } from "./lib/stages/run-context.ts";
import { vaultRootToken } from "./lib/stages/vault-unseal.ts";

await runCommand<{ withTokens?: boolean }>({
  name: "env",
  summary: "print shell exports for the official consul, nomad and vault CLIs (tokens only with --with-tokens)",
  common: { cluster: true, config: true, output: true },
  options: {
    "with-tokens": {
      type: "boolean",
      description: "also export the management tokens (they are secrets: mind your shell history)",
    },
  },
  examples: ['eval "$(npm run -s env)"', 'eval "$(npm run -s env -- --with-tokens)"'],
  async run({ flags, reporter }) {
    const context = await clusterContext(flags, reporter);
    const inventory = await bootstrappedInventory(context);
    const server = hostsWithRole(inventory, "server")[0];
    const vault = hostsWithRole(inventory, "vault")[0];
    const files = context.state.tlsFiles;
    const exports: Record<string, string> = {
      CONSUL_HTTP_ADDR: `https://${server?.privateIp}:${ports.consulHttps}`,
      CONSUL_CACERT: files.rootCa,
      CONSUL_CLIENT_CERT: files.operatorCert,
      CONSUL_CLIENT_KEY: files.operatorKey,
      NOMAD_ADDR: `https://${server?.privateIp}:${ports.nomadHttp}`,
      NOMAD_CACERT: files.rootCa,
      NOMAD_CLIENT_CERT: files.operatorCert,
      NOMAD_CLIENT_KEY: files.operatorKey,
      VAULT_ADDR: `https://${vault?.privateIp}:${ports.vaultApi}`,
      VAULT_CACERT: files.rootCa,
    };
    if (flags.withTokens) {
      const secrets = new SecretStore(context.state);
      const read = async (name: string) => {
        const value = await secrets.read(name);
        if (!value)
          throw new OperationError(`No ${name} in the state of cluster '${context.config.name}'.`, {
            hint: "Run 'npm run bootstrap'.",
          });
        return value;
      };
      exports.CONSUL_HTTP_TOKEN = await read("consul-bootstrap-token");
      exports.NOMAD_TOKEN = await read("nomad-bootstrap-token");
      // decrypted with the operator's gpg when it is stored PGP-encrypted (vault.rootTokenPgpKey)
      exports.VAULT_TOKEN = await vaultRootToken(secrets);
    }
    if (flags.output === "json") printJson(exports);
    else for (const [key, value] of Object.entries(exports)) process.stdout.write(`export ${key}=${shellQuote(value)}\n`);
    return 0;
  },
});
