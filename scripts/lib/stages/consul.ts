/**
 * consul: agents with gossip encryption, mTLS and default-deny ACLs. ACLs are
 * bootstrapped with a secret generated locally (a re-run knows it), then every
 * agent gets its own token, and Nomad gets the token it registers services with.
 */
import { ApiError } from "../clients/http.ts";
import { withConsul } from "../cluster/access.ts";
import { jwksProxyHosts } from "../cluster/jwks-proxy.ts";
import { retryWhile } from "../util/retry.ts";
import { hostsWithRole, type InventoryHost } from "../inventory/schema.ts";
import { nodeLayout } from "../render/layout.ts";
import { consulClientGate, consulServerGate } from "./agent-gates.ts";
import { type AgentInstall, agentRollouts, describeRollout, installAgents, planRollingAgents } from "./install.ts";
import type { Rollout } from "./rolling.ts";
import type { ClusterRun } from "./run-context.ts";
import type { Stage } from "./stage.ts";

const layout = nodeLayout();

export const consulPolicies = {
  /** a Vault node's agent also registers the node's Vault as the service "vault", a server's or
   * Vault node's its JWKS proxy as "nomad-jwks-proxy" */
  agent: (host: string, registers: { vault?: boolean; jwksProxy?: boolean } = {}) =>
    `node "${host}" {\n  policy = "write"\n}\nnode_prefix "" {\n  policy = "read"\n}\nservice_prefix "" {\n  policy = "read"\n}\n` +
    (registers.vault ? `service "vault" {\n  policy = "write"\n}\n` : "") +
    (registers.jwksProxy ? `service "nomad-jwks-proxy" {\n  policy = "write"\n}\n` : ""),
  nomadAgent: `agent_prefix "" {\n  policy = "read"\n}\nnode_prefix "" {\n  policy = "read"\n}\nservice_prefix "" {\n  policy = "write"\n}\n`,
};

export const consulStage: Stage = {
  name: "consul",
  description: "Consul agents with gossip encryption, mTLS and default-deny ACLs, one token per agent",
  run: runConsul,
  plan: (run) => planRollingAgents(run, consulAgent, consulRollouts(run)),
};

export const consulAgent: AgentInstall = {
  service: "consul",
  what: "installing Consul",
  paths: [layout.consul.configDir, layout.consul.unit, layout.resolvedDropIn],
  unitFile: layout.consul.unit,
  notTheAgents: [layout.resolvedDropIn],
  async afterInstall(remote, changed) {
    if (changed.includes(layout.resolvedDropIn))
      await remote.runAsRoot("systemctl try-reload-or-restart systemd-resolved", { allowFailure: true });
  },
};

/** Servers one at a time behind Consul's autopilot health, clients in batches of `rollout.clientBatchSize`. */
export function consulRollouts(run: Pick<ClusterRun, "inventory" | "config" | "state" | "remote" | "secrets" | "reporter">) {
  return agentRollouts(run, consulServerGate(run), consulClientGate(run));
}

/** Consul's files and service on these hosts, restarts in the rollout's order. */
export function installConsulAgents(
  run: Pick<ClusterRun, "remote" | "plans" | "config" | "state">,
  hosts: InventoryHost[],
  rollout: Rollout,
) {
  return installAgents(run, hosts, consulAgent, rollout);
}

async function runConsul(run: ClusterRun): Promise<string> {
  const summary: string[] = [];
  const servers = hostsWithRole(run.inventory, "server");
  const rollouts = consulRollouts(run);
  const install = async (hosts: InventoryHost[], rollout: Rollout) => {
    const line = describeRollout(await installConsulAgents(run, hosts, rollout));
    if (line) summary.push(line);
  };
  await install(servers, rollouts.servers);

  const bootstrapSecret = (await run.secrets.ensure("consul-bootstrap-token", "uuid")).value;
  await withConsul(
    run,
    servers[0] as InventoryHost,
    async (consul) => {
      await consul.waitForLeader(120_000);
      // a freshly elected leader initialises its ACL system asynchronously: 500s until then
      const bootstrapped = await retryWhile(
        () => consul.bootstrapAcl(bootstrapSecret),
        (e) => e instanceof ApiError && e.status === 500,
        {
          timeoutMs: 60_000,
        },
      );
      if (bootstrapped) summary.push("ACLs bootstrapped");
      else await consul.selfToken(); // already bootstrapped: our secret must still be the management token
      // one policy and token per agent, and Nomad's: independent of each other, made at once
      const agentToken = async (host: InventoryHost) => {
        const policy = await consul.upsertPolicy({
          Name: `agent-${host.name}`,
          Description: `Consul agent on ${host.name}`,
          Rules: consulPolicies.agent(host.name, {
            vault: host.roles.includes("vault"),
            jwksProxy: jwksProxyHosts(run.inventory).some((h) => h.name === host.name),
          }),
        });
        const token = await consul.ensureToken({
          SecretID: run.renderSecrets.consulAgentTokens[host.name] as string,
          Description: `agent token for ${host.name}`,
          Policies: [{ Name: policy.policy.Name }],
        });
        return token.created;
      };
      const nomadAgentToken = async () => {
        const nomadPolicy = await consul.upsertPolicy({
          Name: "nomad-agent",
          Description: "Nomad agents",
          Rules: consulPolicies.nomadAgent,
        });
        const nomadToken = await consul.ensureToken({
          SecretID: run.renderSecrets.nomadConsulToken,
          Description: "Nomad agents",
          Policies: [{ Name: nomadPolicy.policy.Name }],
        });
        return nomadToken.created;
      };
      const [created, nomadCreated] = await Promise.all([Promise.all(run.inventory.hosts.map(agentToken)), nomadAgentToken()]);
      for (const [i, host] of run.inventory.hosts.entries()) if (created[i]) summary.push(`agent token for ${host.name}`);
      if (nomadCreated) summary.push("Nomad's Consul token");
    },
    { token: bootstrapSecret },
  );
  await install(hostsWithRole(run.inventory, "client"), rollouts.clients);
  return summary.length ? summary.join(", ") : "no changes";
}
