/**
 * workload-identity: Consul and Vault trust the identities Nomad signs for its
 * workloads (required since Nomad 1.10). Both get a JWT auth method with
 * Nomad's public signing keys. Nomad's JWKS endpoint sits behind the same mTLS
 * as the rest of its API, which neither Consul nor Vault can present, so the
 * keys are fetched here and configured statically; every bootstrap run refreshes
 * them (Nomad keeps retired keys for verification while it rotates).
 */
import { createPublicKey, type JsonWebKey } from "node:crypto";
import type { ConsulBindingRule } from "../clients/consul.ts";
import { OperationError } from "../errors.ts";
import { hostsWithRole, type InventoryHost } from "../inventory/schema.ts";
import { consulThroughTunnel } from "./consul.ts";
import { nomadThroughTunnel, platformNamespace } from "./nomad.ts";
import type { ClusterRun } from "./run-context.ts";
import { pki } from "../render/pki.ts";
import { retryWhile } from "../util/retry.ts";
import { platformPkiRole } from "./vault-pki.ts";
import { vaultThroughTunnel } from "./vault.ts";
import { vaultRootToken } from "./vault-unseal.ts";

export const authMethodName = "nomad-workloads";
export const vaultJwtPath = "jwt-nomad";
export const vaultRole = "nomad-workloads";
export const kvMount = "secret";

const claimMappings = {
  nomad_namespace: "nomad_namespace",
  nomad_job_id: "nomad_job_id",
  nomad_task: "nomad_task",
  nomad_service: "nomad_service",
};

/** Platform jobs that read Consul's catalog and agent metrics (agent:read in Consul). */
const platformConsulObserverJobs = ["prometheus", "fabio"];

/**
 * Platform jobs that get Vault tokens through the `platform` JWT role: the
 * observers, and the energy exporter in docker, whose client certificate for the
 * local Nomad agent comes from Vault's PKI instead of the agent's own key.
 */
export const platformVaultJobs = [...platformConsulObserverJobs, "energy-exporter"];

function platformObserverJobs(): string[] {
  return platformConsulObserverJobs.map((job) => `value.nomad_job_id == "${job}"`);
}

export const consulBindingRules: ConsulBindingRule[] = [
  {
    Description: "Nomad services register themselves under their own name",
    BindType: "service",
    BindName: "${value.nomad_service}",
    Selector: '"nomad_service" in value',
  },
  {
    Description: "Nomad tasks get the nomad-tasks role",
    BindType: "role",
    BindName: "nomad-tasks",
    Selector: '"nomad_service" not in value',
  },
  {
    Description: "Platform Prometheus and Fabio also read the agents (metrics, datacenter)",
    BindType: "role",
    BindName: "platform-observer",
    Selector: `"nomad_service" not in value and value.nomad_namespace == "${platformNamespace}" and (${platformObserverJobs().join(" or ")})`,
  },
];

export const platformVaultRole = "platform";

const observerPolicy = `agent_prefix "" {\n  policy = "read"\n}\nnode_prefix "" {\n  policy = "read"\n}\nservice_prefix "" {\n  policy = "read"\n}\n`;

/** Platform jobs: a client certificate from their own PKI role, the root CA, and Vault's metrics. */
export function vaultPlatformPolicy(): string {
  return [
    `path "${pki.intermediates.nomad}/issue/${platformPkiRole}" {\n  capabilities = ["update"]\n}`,
    `path "${pki.rootMount}/cert/ca" {\n  capabilities = ["read"]\n}`,
    `path "sys/metrics" {\n  capabilities = ["read"]\n}`,
  ].join("\n");
}

const tasksPolicy = `service_prefix "" {\n  policy = "read"\n}\nnode_prefix "" {\n  policy = "read"\n}\n`;

/** A task may read the KV secrets of its own namespace and job, nothing else. */
export function vaultWorkloadPolicy(accessor: string): string {
  const meta = (key: string) => `{{identity.entity.aliases.${accessor}.metadata.${key}}}`;
  const prefix = `${kvMount}/data/${meta("nomad_namespace")}/${meta("nomad_job_id")}`;
  return [
    `path "${prefix}" {\n  capabilities = ["read"]\n}`,
    `path "${prefix}/*" {\n  capabilities = ["read"]\n}`,
    `path "${kvMount}/metadata/${meta("nomad_namespace")}/*" {\n  capabilities = ["list"]\n}`,
  ].join("\n");
}

class NoSigningKeyYet extends Error {}

export async function workloadIdentityStage(run: ClusterRun): Promise<string> {
  const summary: string[] = [];
  const server = hostsWithRole(run.inventory, "server")[0] as InventoryHost;
  const { nomad, tunnel } = await nomadThroughTunnel(run, server);
  let keys: string[];
  try {
    // a new leader creates its first signing key a moment after election: an empty set is "not yet"
    const jwks = await retryWhile(
      async () => {
        const answer = await nomad.api.get<{ keys: (JsonWebKey & { kid: string })[] }>("/.well-known/jwks.json");
        if (!answer.keys.length) throw new NoSigningKeyYet();
        return answer;
      },
      (error) => error instanceof NoSigningKeyYet,
      { timeoutMs: 60_000 },
    ).catch((error: unknown) => {
      if (!(error instanceof NoSigningKeyYet)) throw error;
      throw new OperationError("Nomad published no workload identity signing key within 60s.", {
        hint: "Check the Nomad servers' logs for keyring errors (journalctl -u nomad on a server).",
      });
    });
    keys = jwks.keys.map((jwk) =>
      createPublicKey({ key: jwk, format: "jwk" }).export({ type: "spki", format: "pem" }).toString().trim(),
    );
  } finally {
    await tunnel.close();
  }

  const consulToken = await run.secrets.read("consul-bootstrap-token");
  const consulSide = await consulThroughTunnel(run, server, consulToken);
  try {
    const { consul } = consulSide;
    const changed = await consul.upsertAuthMethod({
      Name: authMethodName,
      Type: "jwt",
      DisplayName: "Nomad workload identities",
      Description: "JWTs signed by Nomad for services and tasks",
      Config: {
        JWTValidationPubKeys: keys,
        JWTSupportedAlgs: ["RS256"],
        BoundAudiences: ["consul.io"],
        ClaimMappings: claimMappings,
      },
    });
    if (changed) summary.push("Consul auth method");
    await consul.upsertPolicy({ Name: "nomad-tasks", Description: "Nomad tasks: discovery", Rules: tasksPolicy });
    if (await consul.ensureRole("nomad-tasks", "Nomad tasks", ["nomad-tasks"])) summary.push("Consul nomad-tasks role");
    await consul.upsertPolicy({
      Name: "platform-observer",
      Description: "Platform Prometheus and Fabio: discovery and agent reads",
      Rules: observerPolicy,
    });
    if (await consul.ensureRole("platform-observer", "Platform Prometheus and Fabio", ["platform-observer"]))
      summary.push("Consul platform-observer role");
    if (await consul.syncBindingRules(authMethodName, consulBindingRules)) summary.push("Consul binding rules");
  } finally {
    await consulSide.tunnel.close();
  }

  const rootToken = await vaultRootToken(run.secrets);
  const vaultSide = await vaultThroughTunnel(run, hostsWithRole(run.inventory, "vault")[0] as InventoryHost, rootToken);
  try {
    const { vault } = vaultSide;
    if (await vault.ensureMount(kvMount, "kv", {}, { version: "2" })) summary.push("Vault KV secret/");
    const auth = await vault.ensureAuth(vaultJwtPath, "jwt");
    if (auth.created) summary.push("Vault JWT auth");
    const config = { jwt_validation_pubkeys: keys, jwt_supported_algs: ["RS256"], default_role: vaultRole };
    const current = await vault
      .read<{ jwt_validation_pubkeys?: string[]; default_role?: string }>(`auth/${vaultJwtPath}/config`)
      .catch(() => undefined);
    const sameKeys = JSON.stringify(current?.data.jwt_validation_pubkeys?.map((k) => k.trim())) === JSON.stringify(keys);
    if (!sameKeys || current?.data.default_role !== vaultRole) {
      await vault.write(`auth/${vaultJwtPath}/config`, config);
      summary.push("Vault JWT keys");
    }
    await vault.putPolicy("nomad-workloads", vaultWorkloadPolicy(auth.accessor));
    await vault.write(`auth/${vaultJwtPath}/role/${vaultRole}`, {
      role_type: "jwt",
      bound_audiences: ["vault.io"],
      user_claim: "/nomad_job_id",
      user_claim_json_pointer: true,
      claim_mappings: { nomad_namespace: "nomad_namespace", nomad_job_id: "nomad_job_id", nomad_task: "nomad_task" },
      token_type: "service",
      token_policies: ["nomad-workloads"],
      token_period: "30m",
      token_explicit_max_ttl: 0,
    });
    await vault.putPolicy("platform", vaultPlatformPolicy());
    await vault.write(`auth/${vaultJwtPath}/role/${platformVaultRole}`, {
      role_type: "jwt",
      bound_audiences: ["vault.io"],
      bound_claims: { nomad_namespace: platformNamespace, nomad_job_id: platformVaultJobs },
      user_claim: "/nomad_job_id",
      user_claim_json_pointer: true,
      claim_mappings: { nomad_namespace: "nomad_namespace", nomad_job_id: "nomad_job_id", nomad_task: "nomad_task" },
      token_type: "service",
      token_policies: ["platform"],
      token_period: "30m",
      token_explicit_max_ttl: 0,
    });
  } finally {
    await vaultSide.tunnel.close();
  }
  return summary.length ? summary.join(", ") : "no changes";
}
