/**
 * nomad: servers and clients with mTLS (HTTP and RPC), gossip encryption and
 * ACLs; the management token comes from a locally generated bootstrap secret;
 * namespaces dev and prod, each with its own CI token that may only submit and read
 * jobs there.
 */
import { ApiError } from "../clients/http.ts";
import { NomadClient, type NomadNamespace } from "../clients/nomad.ts";
import { type RuntimeProfile, runtimeProfile } from "../config/schema.ts";
import { OperationError } from "../errors.ts";
import {
  ciPolicyName,
  ciTokenSecret,
  platformNamespace,
  type TenantNamespace,
  tenantNamespaces,
  tenantTaskDrivers,
} from "../security/tenancy.ts";
import { retryWhile } from "../util/retry.ts";
import { hostsWithRole, type InventoryHost } from "../inventory/schema.ts";
import { onEachHost, requireAllSucceeded } from "../remote/fanout.ts";
import { openTunnel } from "../remote/tunnel.ts";
import { nodeLayout, ports } from "../render/layout.ts";
import { ensureService, filesUnder, installFiles } from "./install.ts";
import type { ClusterRun } from "./run-context.ts";
import { tlsFiles } from "./vault.ts";

const layout = nodeLayout();

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
const legacyCiToken = { secret: "nomad-ci-token", policy: "ci-deploy" };

/**
 * A client token kept in the state: reused while Nomad still accepts it, created
 * again (and stored 0600) when it is missing or was revoked.
 */
export async function ensureClientToken(
  run: Pick<ClusterRun, "secrets">,
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

/** A Nomad client for a server's HTTPS API through an SSH tunnel, with the operator certificate. */
export async function nomadThroughTunnel(run: ClusterRun, host: InventoryHost, token?: string) {
  const files = tlsFiles(run);
  const tunnel = await openTunnel(run.remote(host), host.privateIp, ports.nomadHttp);
  const nomad = new NomadClient({
    address: `https://${tunnel.address}`,
    caFile: files.rootCa,
    certFile: files.operatorCert,
    keyFile: files.operatorKey,
    token,
  });
  return { nomad, tunnel };
}

export async function nomadStage(run: ClusterRun): Promise<string> {
  const summary: string[] = [];
  const servers = hostsWithRole(run.inventory, "server");
  const clients = hostsWithRole(run.inventory, "client");
  const install = async (hosts: InventoryHost[]) => {
    const outcomes = await onEachHost(
      hosts,
      async (host) => {
        const remote = run.remote(host);
        const changed = await installFiles(
          remote,
          filesUnder(run.plans.get(host.name)?.files ?? [], layout.nomad.configDir, layout.nomad.unit),
        );
        return ensureService(remote, "nomad", {
          changed: changed.length > 0,
          unitFileChanged: changed.includes(layout.nomad.unit),
        });
      },
      { concurrency: run.config.concurrency },
    );
    const changed = requireAllSucceeded("installing Nomad", outcomes).filter((o) => o !== "unchanged").length;
    if (changed) summary.push(`${changed} agents started or restarted`);
  };
  await install(servers);
  await install(clients);

  const bootstrapSecret = (await run.secrets.ensure("nomad-bootstrap-token", "uuid")).value;
  const { nomad, tunnel } = await nomadThroughTunnel(run, servers[0] as InventoryHost, bootstrapSecret);
  try {
    await nomad.api.waitFor<string, string>("/v1/status/leader", (leader) => leader || undefined, {
      timeoutMs: 120_000,
      what: "a Nomad leader",
    });
    const bootstrapped = await retryWhile(
      () => nomad.bootstrapAcl(bootstrapSecret),
      (e) => e instanceof ApiError && (e.status ?? 500) >= 500,
      {
        timeoutMs: 60_000,
      },
    );
    if (bootstrapped) summary.push("ACLs bootstrapped");
    else await nomad.selfToken();
    for (const namespace of clusterNamespaces(runtimeProfile(run.config))) {
      if (await nomad.upsertNamespace(namespace)) summary.push(`namespace ${namespace.Name}`);
    }
    for (const namespace of tenantNamespaces) {
      const policy = ciPolicyName(namespace);
      if (await nomad.upsertPolicy(policy, `CI deploys: submit and read jobs in ${namespace}`, ciDeployPolicy(namespace)))
        summary.push(`${policy} policy`);
      if ((await ensureClientToken(run, nomad, ciTokenSecret(namespace), policy, [policy])).created)
        summary.push(`CI token for ${namespace}`);
    }
    if (await revokeLegacyCiToken(run, nomad)) summary.push("revoked the old two-namespace CI token");
    if (clients.length) await waitForClients(run, nomad, clients);
  } finally {
    await tunnel.close();
  }
  return summary.length ? summary.join(", ") : "no changes";
}

/**
 * Clusters bootstrapped before one token per environment hold a token for both
 * namespaces: revoke it and its policy, and drop it from the state.
 */
async function revokeLegacyCiToken(run: ClusterRun, nomad: NomadClient): Promise<boolean> {
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

/** Wait for every client to be ready; if some never are, name them with the tail of their Nomad log. */
async function waitForClients(run: ClusterRun, nomad: NomadClient, clients: InventoryHost[]): Promise<void> {
  try {
    await nomad.waitForReadyNodes(clients.length, 120_000);
  } catch (error) {
    if (!(error instanceof OperationError)) throw error;
    const nodes = await nomad.nodes().catch(() => []);
    const ready = new Set(nodes.filter((n) => n.Status === "ready").map((n) => n.Name));
    const missing = clients.filter((c) => !ready.has(c.name));
    const details: string[] = [];
    for (const host of missing) {
      const status = nodes.find((n) => n.Name === host.name)?.Status ?? "not registered";
      const log = await run
        .remote(host)
        .runAsRoot("journalctl -u nomad -n 12 --no-pager -o cat", { allowFailure: true })
        .then((r) => r.stdout.trim().split("\n"))
        .catch((e: unknown) => [`(could not read its log: ${(e as Error).message})`]);
      details.push(`${host.name}: ${status}; last lines of its Nomad log:`, ...log.map((line) => `  ${line}`));
    }
    throw new OperationError(`Nomad client(s) ${missing.map((h) => h.name).join(", ") || "(unknown)"} not ready after 120s.`, {
      details: details.length ? details : error.details,
      hint: "Check on the named nodes that Nomad can reach the servers on 4647 and that its certificate is valid (journalctl -u nomad).",
    });
  }
}
