/**
 * Nomad's namespaces, the CI policy and the client tokens bootstrap keeps in the
 * state: shared by the nomad and platform stages and the tests.
 */
import { NomadClient, type NomadNamespace } from "../clients/nomad.ts";
import type { SecretStore } from "../state/secrets.ts";

export const ciNamespaces = ["dev", "prod"];
export const platformNamespace = "platform";

/**
 * raw_exec has no isolation; the exec profile runs the platform jobs with it, so
 * it is allowed only in the platform namespace, which the CI token cannot reach.
 */
export function clusterNamespaces(): NomadNamespace[] {
  const noRawExec = { DisabledTaskDrivers: ["raw_exec"] };
  return [
    { Name: "default", Description: "Default shared namespace", Capabilities: noRawExec },
    ...ciNamespaces.map((name) => ({ Name: name, Description: `${name} workloads (seed 003)`, Capabilities: noRawExec })),
    { Name: platformNamespace, Description: "Platform jobs managed by hashistack bootstrap" },
  ];
}

export const ciDeployPolicy = ciNamespaces
  .map(
    (ns) =>
      `namespace "${ns}" {\n  capabilities = ["submit-job", "read-job", "list-jobs", "parse-job", "read-logs", "read-fs", "dispatch-job"]\n}\n`,
  )
  .join("");

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
