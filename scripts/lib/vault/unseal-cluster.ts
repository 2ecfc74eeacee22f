/**
 * `npm run unseal`: every sealed Vault node of the cluster opened from the state's
 * shares (plaintext, or PGP-wrapped and decrypted in memory with the operator's gpg,
 * exactly as the vault stage does), without a bootstrap run. One unreachable or
 * failing node never stops the others; each outcome is reported.
 */
import { withVault } from "../cluster/access.ts";
import { errorMessage, OperationError } from "../errors.ts";
import { hostsWithRole } from "../inventory/schema.ts";
import type { ClusterRun } from "../stages/run-context.ts";
import { initSecret, readInitRecord, unsealIfSealed } from "../stages/vault-unseal.ts";

export interface UnsealOutcome {
  host: string;
  state: "unsealed" | "was unsealed" | "failed";
  error?: Error;
}

export async function unsealCluster(run: ClusterRun, options: { homedir?: string } = {}): Promise<UnsealOutcome[]> {
  const record = await readInitRecord(run.secrets);
  if (!record) {
    throw new OperationError(`No Vault unseal keys in the state (${run.secrets.fileFor(initSecret)}).`, {
      hint: "Restore vault-init.json from your backup of .hashistack/<cluster>/, or run 'npm run bootstrap' if this Vault was never initialised.",
    });
  }
  const outcomes: UnsealOutcome[] = [];
  // one at a time: raft followers join the leader once enough nodes are unsealed
  for (const host of hostsWithRole(run.inventory, "vault")) {
    try {
      const unsealed = await withVault(run, host, (vault) =>
        unsealIfSealed(vault, record, {
          secretsFile: run.secrets.fileFor(initSecret),
          what: `Vault on ${host.name}`,
          homedir: options.homedir,
        }),
      );
      outcomes.push({ host: host.name, state: unsealed ? "unsealed" : "was unsealed" });
    } catch (error) {
      outcomes.push({ host: host.name, state: "failed", error: error instanceof Error ? error : new Error(errorMessage(error)) });
    }
  }
  return outcomes;
}
