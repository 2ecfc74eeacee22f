/**
 * nomad: servers and clients with mTLS (HTTP and RPC), gossip encryption and
 * ACLs; the management token comes from a locally generated bootstrap secret;
 * namespaces dev and prod, each with its own CI token that may only submit and read
 * jobs there.
 */
import { ApiError } from "../clients/http.ts";
import type { NomadClient } from "../clients/nomad.ts";
import { withNomad } from "../cluster/access.ts";
import { ciDeployPolicy, clusterNamespaces, ensureClientToken, revokeLegacyCiToken } from "../cluster/nomad-acl.ts";
import { runtimeProfile } from "../config/schema.ts";
import { OperationError } from "../errors.ts";
import { ciPolicyName, ciTokenSecret, tenantNamespaces } from "../security/tenancy.ts";
import { retryWhile } from "../util/retry.ts";
import { hostsWithRole, type InventoryHost } from "../inventory/schema.ts";
import { nodeLayout } from "../render/layout.ts";
import { nomadClientGate, nomadServerGate } from "./agent-gates.ts";
import { type AgentInstall, agentRollouts, describeRollout, installAgents, planRollingAgents } from "./install.ts";
import type { Rollout } from "./rolling.ts";
import type { ClusterRun } from "./run-context.ts";
import type { Stage } from "./stage.ts";

const layout = nodeLayout();

export const nomadStage: Stage = {
  name: "nomad",
  description: "Nomad servers and clients with mTLS and ACLs, the namespaces and one CI token per environment",
  run: runNomad,
  plan: (run) => planRollingAgents(run, nomadAgent, nomadRollouts(run)),
};

const nomadAgent: AgentInstall = {
  service: "nomad",
  what: "installing Nomad",
  paths: [layout.nomad.configDir, layout.nomad.unit],
  unitFile: layout.nomad.unit,
};

/** Servers one at a time behind Nomad's autopilot health, clients in batches of `rollout.clientBatchSize`. */
export function nomadRollouts(run: Pick<ClusterRun, "inventory" | "config" | "state" | "remote" | "secrets" | "reporter">) {
  return agentRollouts(run, nomadServerGate(run), nomadClientGate(run));
}

/** Nomad's files and service on these hosts, restarts in the rollout's order. */
export function installNomadAgents(
  run: Pick<ClusterRun, "remote" | "plans" | "config" | "state">,
  hosts: InventoryHost[],
  rollout: Rollout,
) {
  return installAgents(run, hosts, nomadAgent, rollout);
}

async function runNomad(run: ClusterRun): Promise<string> {
  const summary: string[] = [];
  const servers = hostsWithRole(run.inventory, "server");
  const clients = hostsWithRole(run.inventory, "client");
  const rollouts = nomadRollouts(run);
  const serverLine = describeRollout(await installNomadAgents(run, servers, rollouts.servers));
  if (serverLine) summary.push(serverLine);

  const bootstrapSecret = (await run.secrets.ensure("nomad-bootstrap-token", "uuid")).value;
  await withNomad(
    run,
    servers[0] as InventoryHost,
    async (nomad) => {
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
      // Clients start once the servers have a leader: a client whose registration finds
      // none retries only after 15-30 s (registerRetryIntv in Nomad's client.go), which
      // cost 22 s of a first run once the clients no longer spent 8 s on cloud probes.
      // They start beside the namespaces and tokens, which do not need them.
      const [clientLine, tenancy] = await Promise.all([
        installNomadAgents(run, clients, rollouts.clients).then(describeRollout),
        ensureTenancy(run, nomad),
      ]);
      if (clientLine) summary.push(clientLine);
      summary.push(...tenancy);
      if (clients.length) await waitForClients(run, nomad, clients);
    },
    { token: bootstrapSecret },
  );
  return summary.length ? summary.join(", ") : "no changes";
}

/** The namespaces, then each environment's CI policy and token, one environment beside the other. */
async function ensureTenancy(run: ClusterRun, nomad: NomadClient): Promise<string[]> {
  const lines: string[] = [];
  const namespaces = clusterNamespaces(runtimeProfile(run.config));
  const upserted = await Promise.all(namespaces.map((namespace) => nomad.upsertNamespace(namespace)));
  for (const [i, namespace] of namespaces.entries()) if (upserted[i]) lines.push(`namespace ${namespace.Name}`);
  const ci = await Promise.all(
    tenantNamespaces.map(async (namespace) => {
      const policy = ciPolicyName(namespace);
      const made: string[] = [];
      if (await nomad.upsertPolicy(policy, `CI deploys: submit and read jobs in ${namespace}`, ciDeployPolicy(namespace)))
        made.push(`${policy} policy`);
      if ((await ensureClientToken(run, nomad, ciTokenSecret(namespace), policy, [policy])).created)
        made.push(`CI token for ${namespace}`);
      return made;
    }),
  );
  lines.push(...ci.flat());
  if (await revokeLegacyCiToken(run, nomad)) lines.push("revoked the old two-namespace CI token");
  return lines;
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
