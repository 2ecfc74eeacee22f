/**
 * workload-identity: Consul and Vault trust the identities Nomad signs for its
 * workloads (required since Nomad 1.10). Both get a JWT auth method that reads
 * Nomad's JWKS from the JWKS proxy on their own node (cluster/jwks-proxy.ts):
 * Nomad's endpoint sits behind the same mTLS as the rest of its API, which
 * neither can present. They fetch the keys again whenever a token names a key
 * they have not seen, so Nomad's rotations (immediate or prepublished) need no
 * operator run.
 */
import { readFile } from "node:fs/promises";
import type { ConsulBindingRule } from "../clients/consul.ts";
import { withConsul, withVault } from "../cluster/access.ts";
import { consulAuthMethod, jwksProxyHosts, jwksProxyUrl, proxyKeyIds, vaultJwtMount } from "../cluster/jwks-proxy.ts";
import { unlessMissing } from "../clients/http.ts";
import type { VaultClient } from "../clients/vault.ts";
import { OperationError } from "../errors.ts";
import { hostsWithRole, type InventoryHost } from "../inventory/schema.ts";
import {
  platformNamespace,
  platformServices,
  type TenantNamespace,
  tenantNamespaces,
  tenantServicePrefix,
} from "../security/tenancy.ts";
import type { ClusterRun } from "./run-context.ts";
import type { Stage } from "./stage.ts";
import { nodeLayout } from "../render/layout.ts";
import { pki } from "../render/pki.ts";
import { onEachHost, requireAllSucceeded } from "../remote/fanout.ts";
import { sh } from "../remote/command.ts";
import { installAgents, touched } from "./install.ts";
import { retryWhile } from "../util/retry.ts";
import { platformPkiRole } from "./vault-pki.ts";
import { vaultRootToken } from "./vault-unseal.ts";

export const authMethodName = consulAuthMethod;
export const vaultJwtPath = vaultJwtMount;
export const vaultRole = "nomad-workloads";
export const kvMount = "secret";

const claimMappings = {
  nomad_namespace: "nomad_namespace",
  nomad_job_id: "nomad_job_id",
  nomad_task: "nomad_task",
  nomad_service: "nomad_service",
};

/**
 * Platform jobs that get Vault tokens through the `platform` JWT role; the
 * energy exporter in docker takes its client certificate for the local Nomad
 * agent from Vault's PKI instead of the agent's own key.
 */
export const platformVaultJobs = ["prometheus", "fabio", "energy-exporter"];

const inPlatform = `value.nomad_namespace == "${platformNamespace}"`;
const platformJob = (job: string) => `${inPlatform} and value.nomad_job_id == "${job}"`;

/**
 * Who may register which Consul service, and which role a task's token gets. The
 * service name is what Consul's ACLs enforce (tags are free-form), so:
 * - the platform namespace registers its services under their own names;
 * - a tenant namespace registers only names with its prefix (`dev-web`): a login
 *   for any other name matches no rule and Nomad refuses to start the task;
 * - tenant tasks read only their own namespace's services.
 * `default` belongs to the operators (management token) and keeps plain names.
 */
export const consulBindingRules: ConsulBindingRule[] = [
  {
    Description: "Platform and default-namespace services register under their own name",
    BindType: "service",
    BindName: "${value.nomad_service}",
    Selector: `"nomad_service" in value and (${inPlatform} or value.nomad_namespace == "default")`,
  },
  ...tenantNamespaces.map((ns) => ({
    Description: `${ns} services register only names starting with ${tenantServicePrefix(ns)}`,
    BindType: "service" as const,
    BindName: "${value.nomad_service}",
    Selector: `"nomad_service" in value and value.nomad_namespace == "${ns}" and value.nomad_service matches "^${tenantServicePrefix(ns)}[a-z0-9]"`,
  })),
  {
    Description: "Platform and default-namespace tasks discover every service",
    BindType: "role",
    BindName: "nomad-tasks",
    Selector: `"nomad_service" not in value and (${inPlatform} or value.nomad_namespace == "default")`,
  },
  ...tenantNamespaces.map((ns) => ({
    Description: `${ns} tasks discover ${ns} services only`,
    BindType: "role" as const,
    BindName: tenantTasksRole(ns),
    Selector: `"nomad_service" not in value and value.nomad_namespace == "${ns}"`,
  })),
  {
    Description: "Platform Prometheus also reads the agents (metrics, datacenter)",
    BindType: "role",
    BindName: "platform-observer",
    Selector: `"nomad_service" not in value and ${platformJob("prometheus")}`,
  },
  {
    Description: "Platform Fabio routes only the platform's services",
    BindType: "role",
    BindName: "platform-router",
    Selector: `"nomad_service" not in value and ${platformJob("fabio")}`,
  },
];

function tenantTasksRole(ns: TenantNamespace): string {
  return `nomad-tasks-${ns}`;
}

export const platformVaultRole = "platform";

/**
 * Platform Prometheus: `consul_sd_configs` reads the catalog and health of every service
 * (any one may carry the `prometheus` tag) and their nodes; the agents' metrics need
 * agent read. Read only, nothing else (docs/security.md).
 */
export const observerPolicy = `agent_prefix "" {\n  policy = "read"\n}\nnode_prefix "" {\n  policy = "read"\n}\nservice_prefix "" {\n  policy = "read"\n}\n`;

/**
 * Fabio sees only the platform's services, so only their `urlprefix-` tags become
 * routes: a tenant service cannot take /prometheus or any other path on it.
 */
export function routerPolicy(): string {
  const services = platformServices.map((name) => `service "${name}" {\n  policy = "read"\n}\n`).join("");
  return `agent_prefix "" {\n  policy = "read"\n}\nnode_prefix "" {\n  policy = "read"\n}\n${services}`;
}

export function tenantTasksPolicy(ns: TenantNamespace): string {
  return `service_prefix "${tenantServicePrefix(ns)}" {\n  policy = "read"\n}\nnode_prefix "" {\n  policy = "read"\n}\n`;
}

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

interface VaultJwtConfig {
  jwks_url?: string;
  jwks_ca_pem?: string;
  jwt_validation_pubkeys?: string[];
  default_role?: string;
}

/** Vault reads its keys from the proxy, and nothing static is left beside it. */
export function vaultTrustsProxy(config: VaultJwtConfig | undefined, caPem?: string): boolean {
  return (
    config?.jwks_url === jwksProxyUrl &&
    !config.jwt_validation_pubkeys?.length &&
    (caPem === undefined || config.jwks_ca_pem?.trim() === caPem.trim())
  );
}

const layout = nodeLayout();

/**
 * The proxy on every Consul server and Vault node; then wait until each one serves
 * at least one key (a new leader creates its first signing key a moment after
 * election). Returns how many proxies were started or restarted.
 */
async function installJwksProxies(run: ClusterRun): Promise<number> {
  const hosts = jwksProxyHosts(run.inventory);
  requireAllSucceeded(
    "checking Node.js for the JWKS proxy",
    await onEachHost(
      hosts,
      async (host) => {
        const probe = await run.remote(host).run(sh`test -x /usr/bin/node`, { allowFailure: true });
        if (probe.code !== 0) {
          throw new OperationError(`${host.name}: /usr/bin/node is missing; the Nomad JWKS proxy runs on it.`, {
            hint: "Install Debian's nodejs package on the servers and Vault nodes (local nodes and DigitalOcean droplets have it).",
          });
        }
      },
      { concurrency: run.config.concurrency },
    ),
  );
  const servingKeys = async (batch: InventoryHost[]) => {
    const outcomes = await onEachHost(
      batch,
      (host) =>
        retryWhile(
          async () => {
            const kids = await proxyKeyIds(run.remote(host), host).catch((error: unknown) => {
              throw new NoSigningKeyYet(error instanceof Error ? error.message : String(error));
            });
            if (!kids.length) throw new NoSigningKeyYet(`${host.name}: Nomad published no signing key yet`);
            return kids;
          },
          (error) => error instanceof NoSigningKeyYet,
          { timeoutMs: 60_000 },
        ).catch(async (error: unknown) => {
          if (!(error instanceof NoSigningKeyYet)) throw error;
          const journal = await run
            .remote(host)
            .runAsRoot("journalctl -u nomad-jwks-proxy -n 10 --no-pager", { allowFailure: true });
          throw new OperationError(`${host.name}: the Nomad JWKS proxy served no signing key within 60s (${error.message}).`, {
            details: journal.stdout.trim().split("\n"),
            hint: `Check 'journalctl -u nomad-jwks-proxy' on ${host.name} and the Nomad servers' logs for keyring errors.`,
          });
        }),
      { concurrency: run.config.concurrency },
    );
    requireAllSucceeded("waiting for the Nomad JWKS proxy", outcomes);
  };
  // one proxy at a time, each serving keys again before the next: Consul and Vault keep a proxy to ask
  const rollout = await installAgents(
    run,
    hosts,
    {
      service: "nomad-jwks-proxy",
      what: "installing the Nomad JWKS proxy",
      paths: [layout.jwksProxy.script, layout.jwksProxy.unit],
      unitFile: layout.jwksProxy.unit,
    },
    { kind: "clients", batchSize: 1, gate: { waitHealthy: servingKeys } },
  );
  // a new proxy (and one that restarted) is waited for before its keys are configured
  await servingKeys(hosts);
  return touched(rollout);
}

/**
 * Clusters bootstrapped before the roles keyed entities by Nomad's subject have
 * entities keyed by job ID alone, shared by same-named jobs of every namespace.
 * Deleting them leaves tokens issued for them without their templated paths, so
 * running tasks lose access to another namespace's secrets at once; Nomad logs
 * them in again and they get per-task entities.
 */
async function removeEntitiesKeyedByJob(vault: VaultClient, accessor: string): Promise<number> {
  // Vault answers a LIST of nothing with 404
  const aliases = (await unlessMissing(
    vault.api.get<{ data: { key_info: Record<string, { mount_accessor: string; name: string; canonical_id: string }> } }>(
      "/v1/identity/entity-alias/id",
      { list: true },
    ),
  )) ?? { data: { key_info: {} } };
  const stale = Object.values(aliases.data.key_info).filter((a) => a.mount_accessor === accessor && !a.name.includes(":"));
  for (const alias of stale) await vault.api.delete(`/v1/identity/entity/id/${encodeURIComponent(alias.canonical_id)}`);
  return stale.length;
}

export const workloadIdentityStage: Stage = {
  name: "workload-identity",
  description: "Nomad workload identities trusted by Consul and Vault",
  run: runWorkloadIdentity,
};

async function runWorkloadIdentity(run: ClusterRun): Promise<string> {
  const summary: string[] = [];
  const server = hostsWithRole(run.inventory, "server")[0] as InventoryHost;
  const proxies = await installJwksProxies(run);
  if (proxies) summary.push(`JWKS proxy on ${proxies} nodes`);
  const caPem = (await readFile(run.state.tlsFiles.rootCa, "utf8")).trim();

  const consulToken = await run.secrets.read("consul-bootstrap-token");
  const rootToken = await vaultRootToken(run.secrets);
  // Consul's and Vault's trust are independent of each other: configured at once
  const consulLines: string[] = [];
  const vaultLines: string[] = [];
  const consulSide = withConsul(
    run,
    server,
    async (consul) => {
      const changed = await consul.upsertAuthMethod({
        Name: authMethodName,
        Type: "jwt",
        DisplayName: "Nomad workload identities",
        Description: "JWTs signed by Nomad for services and tasks",
        Config: {
          JWKSURL: jwksProxyUrl,
          JWKSCACert: caPem,
          JWTSupportedAlgs: ["RS256"],
          BoundAudiences: ["consul.io"],
          ClaimMappings: claimMappings,
        },
      });
      if (changed) consulLines.push("Consul auth method");
      // each role after its policy; the roles themselves at once
      const roles = [
        { name: "nomad-tasks", policy: "Nomad tasks: discovery", role: "Nomad tasks", rules: tasksPolicy },
        {
          name: "platform-observer",
          policy: "Platform Prometheus: discovery and agent reads",
          role: "Platform Prometheus",
          rules: observerPolicy,
        },
        {
          name: "platform-router",
          policy: "Platform Fabio: the platform's services",
          role: "Platform Fabio",
          rules: routerPolicy(),
        },
        ...tenantNamespaces.map((ns) => ({
          name: tenantTasksRole(ns),
          policy: `${ns} tasks: ${ns} services`,
          role: `${ns} tasks`,
          rules: tenantTasksPolicy(ns),
        })),
      ];
      const created = await Promise.all(
        roles.map(async ({ name, policy, role, rules }) => {
          await consul.upsertPolicy({ Name: name, Description: policy, Rules: rules });
          return consul.ensureRole(name, role, [name]);
        }),
      );
      for (const [i, { name }] of roles.entries()) if (created[i]) consulLines.push(`Consul ${name} role`);
      if (await consul.syncBindingRules(authMethodName, consulBindingRules)) consulLines.push("Consul binding rules");
    },
    { token: consulToken },
  );

  const vaultSide = withVault(
    run,
    hostsWithRole(run.inventory, "vault")[0] as InventoryHost,
    async (vault) => {
      if (await vault.ensureMount(kvMount, "kv", {}, { version: "2" })) vaultLines.push("Vault KV secret/");
      const auth = await vault.ensureAuth(vaultJwtPath, "jwt");
      if (auth.created) vaultLines.push("Vault JWT auth");
      const config = {
        jwks_url: jwksProxyUrl,
        jwks_ca_pem: caPem,
        jwt_validation_pubkeys: [],
        jwt_supported_algs: ["RS256"],
        default_role: vaultRole,
      };
      const current = await vault.read<VaultJwtConfig>(`auth/${vaultJwtPath}/config`).catch(() => undefined);
      if (!vaultTrustsProxy(current?.data, caPem) || current?.data.default_role !== vaultRole) {
        // Vault fetches the URL once here to check it: the proxy on the active node answers
        await vault.write(`auth/${vaultJwtPath}/config`, config);
        vaultLines.push("Vault JWT keys from the JWKS proxy");
      }
      await vault.putPolicy("nomad-workloads", vaultWorkloadPolicy(auth.accessor));
      await vault.write(`auth/${vaultJwtPath}/role/${vaultRole}`, {
        role_type: "jwt",
        bound_audiences: ["vault.io"],
        // one entity per namespace, job, group and task (Nomad's subject), so the
        // policy's namespace/job templating can never take another namespace's values
        user_claim: "sub",
        claim_mappings: { nomad_namespace: "nomad_namespace", nomad_job_id: "nomad_job_id", nomad_task: "nomad_task" },
        token_type: "service",
        token_policies: ["nomad-workloads"],
        token_period: "30m",
        token_explicit_max_ttl: 0,
      });
      const stale = await removeEntitiesKeyedByJob(vault, auth.accessor);
      if (stale) vaultLines.push(`removed ${stale} Vault entities keyed by job only`);
      await vault.putPolicy("platform", vaultPlatformPolicy());
      await vault.write(`auth/${vaultJwtPath}/role/${platformVaultRole}`, {
        role_type: "jwt",
        bound_audiences: ["vault.io"],
        bound_claims: { nomad_namespace: platformNamespace, nomad_job_id: platformVaultJobs },
        user_claim: "sub",
        claim_mappings: { nomad_namespace: "nomad_namespace", nomad_job_id: "nomad_job_id", nomad_task: "nomad_task" },
        token_type: "service",
        token_policies: ["platform"],
        token_period: "30m",
        token_explicit_max_ttl: 0,
      });
    },
    { token: rootToken },
  );
  await Promise.all([consulSide, vaultSide]);
  summary.push(...consulLines, ...vaultLines);
  return summary.length ? summary.join(", ") : "no changes";
}
