/**
 * The Nomad JWKS proxy (templates/jwks-proxy): on every Consul server and Vault node
 * it serves Nomad's public workload identity keys on loopback, so Consul's and Vault's
 * JWT auth methods fetch the current and next keys themselves. Shared by the
 * workload-identity stage (installs it) and the health checks (asks it).
 */
import { OperationError } from "../errors.ts";
import { hostsWithRole, type Inventory, type InventoryHost } from "../inventory/schema.ts";
import { sh } from "../remote/command.ts";
import type { Remote } from "../remote/remote.ts";
import { nodeLayout, ports } from "../render/layout.ts";

/** Consul's JWT auth method and Vault's JWT mount for Nomad's workload identities. */
export const consulAuthMethod = "nomad-workloads";
export const vaultJwtMount = "jwt-nomad";

/** Consul and Vault resolve this on the node that checks a token: its own proxy. */
export const jwksProxyUrl = `https://127.0.0.1:${ports.nomadJwksProxy}/.well-known/jwks.json`;

/** Consul servers validate Consul logins; Vault nodes validate Vault logins. */
export function jwksProxyHosts(inventory: Inventory): InventoryHost[] {
  const names = new Set([...hostsWithRole(inventory, "server"), ...hostsWithRole(inventory, "vault")].map((h) => h.name));
  return inventory.hosts.filter((h) => names.has(h.name));
}

/** The key ids the proxy on this node serves, checked against the cluster CA as Consul and Vault check them. */
export async function proxyKeyIds(remote: Remote, host: InventoryHost): Promise<string[]> {
  const result = await remote.runAsRoot(sh`curl -sS --fail --max-time 8 --cacert ${nodeLayout().nomad.caFile} ${jwksProxyUrl}`, {
    allowFailure: true,
    timeoutMs: 15_000,
  });
  if (result.code !== 0) {
    throw new OperationError(
      `${host.name}: the Nomad JWKS proxy did not answer (${result.stderr.trim() || `exit ${result.code}`}).`,
      {
        hint: `Check 'systemctl status nomad-jwks-proxy' and 'journalctl -u nomad-jwks-proxy' on ${host.name}.`,
      },
    );
  }
  const parsed = JSON.parse(result.stdout) as { keys?: { kid?: string }[] };
  return (parsed.keys ?? []).map((k) => k.kid ?? "").filter(Boolean);
}
