/**
 * Nomad's namespaces, the per-environment CI policies and the client tokens
 * bootstrap keeps in the state: shared by the nomad and platform stages and the tests.
 */
import { NomadClient, type NomadNamespace } from "../clients/nomad.ts";
import type { RuntimeProfile } from "../config/schema.ts";
import { platformNamespace, type TenantNamespace, tenantNamespaces, tenantTaskDrivers } from "../security/tenancy.ts";
import type { SecretStore } from "../state/secrets.ts";

export { platformNamespace };

/**
 * Tenant namespaces may use only the isolating drivers of the cluster's profile
 * (exec; docker where Docker is installed). raw_exec has no isolation; the exec
 * profile runs the platform jobs with it, so only the platform namespace, which no
 * CI token reaches, may use it. `default` belongs to the operators.
 */
export function clusterNamespaces(runtime: RuntimeProfile): NomadNamespace[] {
  return [
    { Name: "default", Description: "Default shared namespace", Capabilities: { DisabledTaskDrivers: ["raw_exec"] } },
    ...tenantNamespaces.map((name) => ({
      Name: name,
      Description: `${name} workloads (seed 003)`,
      Capabilities: { EnabledTaskDrivers: tenantTaskDrivers(runtime) },
    })),
    { Name: platformNamespace, Description: "Platform jobs managed by hashistack bootstrap" },
  ];
}

/**
 * One environment's CI token: submit and read jobs, logs and files in its own
 * namespace. No host volumes, no alloc-exec, no variables, nothing elsewhere.
 */
export function ciDeployPolicy(namespace: TenantNamespace): string {
  return `namespace "${namespace}" {\n  capabilities = ["submit-job", "read-job", "list-jobs", "parse-job", "read-logs", "read-fs", "dispatch-job"]\n}\n`;
}

/** The token and policy of releases before one CI token per environment: both namespaces at once. */
export const legacyCiToken = { secret: "nomad-ci-token", policy: "ci-deploy" };

/**
 * A client token kept in the state: reused while Nomad still accepts it, created
 * again (and stored 0600) when it is missing or was revoked.
 */
export async function ensureClientToken(
  run: { secrets: SecretStore },
  nomad: NomadClient,
  secret: string,
  name: string,
  policies: string[],
): Promise<{ token: string; created: boolean }> {
  const existing = await run.secrets.read(secret);
  const valid = existing
    ? await new NomadClient({ ...nomad.api.options, token: existing }).selfToken().then(
        () => true,
        () => false,
      )
    : false;
  if (existing && valid) return { token: existing, created: false };
  const created = await nomad.createToken({ Name: name, Type: "client", Policies: policies });
  await run.secrets.write(secret, created.SecretID);
  return { token: created.SecretID, created: true };
}

/**
 * Clusters bootstrapped before one token per environment hold a token for both
 * namespaces: revoke it and its policy, and drop it from the state.
 */
export async function revokeLegacyCiToken(run: { secrets: SecretStore }, nomad: NomadClient): Promise<boolean> {
  let changed = false;
  const secret = await run.secrets.read(legacyCiToken.secret);
  if (secret) {
    const token = await new NomadClient({ ...nomad.api.options, token: secret }).selfToken().catch(() => undefined);
    if (token) changed = (await nomad.deleteToken(token.AccessorID)) || changed;
    await run.secrets.remove(legacyCiToken.secret);
    changed = true;
  }
  return (await nomad.deletePolicy(legacyCiToken.policy)) || changed;
}
