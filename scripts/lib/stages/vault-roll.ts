/**
 * The health gate of Vault's rolling restarts (rolling.ts decides the order):
 * the active node leads, so standbys restart first, one at a time, each
 * unsealed from the state and back before the next; the active node last,
 * after `sys/step-down` handed its role to an unsealed standby.
 */
import type { VaultClient } from "../clients/vault.ts";
import { withVault } from "../cluster/access.ts";
import { OperationError } from "../errors.ts";
import { hostsWithRole, type InventoryHost } from "../inventory/schema.ts";
import { nodeLayout } from "../render/layout.ts";
import { describeAgentPlan, planAgents } from "./install.ts";
import type { ClusterRun } from "./run-context.ts";
import { pollUntil, type ServerGate } from "./rolling.ts";
import { initSecret, readInitRecord, unsealIfSealed, vaultRootToken } from "./vault-unseal.ts";

type GateRun = Pick<ClusterRun, "state" | "remote" | "secrets" | "reporter">;

const timeoutMs = 120_000;

/** Unseal a sealed, initialised Vault from the state's shares (nothing to do otherwise). */
export async function unsealFromState(run: GateRun, host: InventoryHost, vault: VaultClient): Promise<boolean> {
  const status = await vault.sealStatus();
  const record = await readInitRecord(run.secrets);
  if (!status.initialized || !record) return false;
  return unsealIfSealed(vault, record, { secretsFile: run.secrets.fileFor(initSecret), what: `Vault on ${host.name}` });
}

export function vaultServerGate(run: GateRun): ServerGate {
  const active = async (hosts: InventoryHost[]) => {
    for (const host of hosts) {
      try {
        const health = await withVault(run, host, (v) => v.health());
        if (health.initialized && !health.sealed && !health.standby) return host.name;
      } catch {
        // unreachable (restarting): not the active node
      }
    }
    return undefined;
  };
  return {
    leader: active,

    async transferLeadership(leader, hosts) {
      try {
        const token = await vaultRootToken(run.secrets);
        await withVault(run, leader, (v) => v.withToken(token).api.put("/v1/sys/step-down"));
      } catch (error) {
        run.reporter.warn(`Vault: sys/step-down on ${leader.name} failed (${(error as Error).message}); restarting it anyway`);
        return false;
      }
      await pollUntil(
        async () => {
          const now = await active(hosts);
          return now !== undefined && now !== leader.name;
        },
        { timeoutMs, fail: () => new OperationError(`Vault: no standby took over after ${leader.name} stepped down.`) },
      );
      return true;
    },

    async waitHealthy(host) {
      await withVault(run, host, async (vault) => {
        const health = await vault.waitUntil(() => true, { timeoutMs, what: `reachable on ${host.name} after its restart` });
        if (!health.initialized) return;
        await unsealFromState(run, host, vault);
        await vault.waitUntil((h) => !h.sealed, { timeoutMs, what: `unsealed on ${host.name} after its restart` });
      });
    },
  };
}

/** The vault stage's dry run: the Vault files that would change and the order Vault would restart in. */
export async function planVault(run: ClusterRun): Promise<string[]> {
  const layout = nodeLayout();
  const hosts = hostsWithRole(run.inventory, "vault");
  const agent = {
    service: "vault",
    what: "installing Vault",
    paths: [layout.vault.configDir, layout.vault.unit],
    unitFile: layout.vault.unit,
  };
  const plans = await planAgents(run, hosts, agent);
  const gate = vaultServerGate(run);
  const restarting = plans.some((p) => p.action === "restart" || p.action === "reload");
  const leader = restarting ? await gate.leader(hosts) : undefined;
  return describeAgentPlan("vault", plans, { kind: "servers", gate, servers: hosts }, leader);
}
