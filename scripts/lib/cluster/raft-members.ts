/**
 * The raft memberships of Consul, Nomad and Vault through their APIs (over
 * the SSH tunnels of access.ts), for raft-removal.ts: the raft configuration
 * merged with autopilot's health per server, leadership transfer, leave, peer
 * removal and pruning from the gossip member list.
 */
import { ApiError, type HttpApi } from "../clients/http.ts";
import type { InventoryHost } from "../inventory/schema.ts";
import type { ClusterRun } from "../stages/run-context.ts";
import { vaultRootToken } from "../stages/vault-unseal.ts";
import { withConsul, withNomad, withVault } from "./access.ts";
import type { RaftMembership, RaftPeer, RaftView } from "./raft-removal.ts";

type MembershipRun = Pick<ClusterRun, "state" | "remote" | "secrets" | "inventory" | "config">;

/** One server of `GET /v1/operator/raft/configuration` (Consul and Nomad). */
export interface RaftServer {
  ID: string;
  Node: string;
  Address: string;
  Leader: boolean;
  Voter: boolean;
}

interface AutopilotHealth {
  Healthy: boolean;
  Servers: { ID: string; Address: string; Healthy: boolean }[] | null;
}

/** The inventory host at this raft address (host:port), else the raft node name. */
const hostAt = (run: MembershipRun, address: string, fallback: string) =>
  run.inventory.hosts.find((h) => address.startsWith(`${h.privateIp}:`))?.name ?? fallback;

/** Autopilot answers 429 (with the same body) while the cluster is unhealthy: both are a verdict. */
async function autopilotHealth(api: HttpApi): Promise<AutopilotHealth> {
  const path = "/v1/operator/autopilot/health";
  const response = await api.http.get<AutopilotHealth>(path);
  if (response.status !== 200 && response.status !== 429)
    throw new ApiError(api.product, "GET", path, response.status, JSON.stringify(response.data), api.options.address);
  return response.data;
}

async function consulStyleView(run: MembershipRun, api: HttpApi): Promise<RaftView> {
  const { Servers: servers } = await api.get<{ Servers: RaftServer[] }>("/v1/operator/raft/configuration");
  const health = await autopilotHealth(api);
  const healthy = new Map((health.Servers ?? []).map((s) => [s.ID, s.Healthy]));
  const peers: RaftPeer[] = servers.map((s) => ({
    id: s.ID,
    host: hostAt(run, s.Address, s.Node),
    address: s.Address,
    voter: s.Voter,
    healthy: healthy.get(s.ID) ?? false,
  }));
  const leader = servers.find((s) => s.Leader);
  return { leader: leader ? hostAt(run, leader.Address, leader.Node) : undefined, peers };
}

const token = (run: MembershipRun, name: string) => run.secrets.read(name).then((t) => t ?? undefined);

export function consulMembership(run: MembershipRun): RaftMembership {
  const consul = async <T>(host: InventoryHost, fn: Parameters<typeof withConsul<T>>[2]) =>
    withConsul(run, host, fn, { token: await token(run, "consul-bootstrap-token") });
  return {
    product: "Consul",
    view: (via) => consul(via, (c) => consulStyleView(run, c.api)),
    transferLeadership: (via, _from, to) =>
      consul(via, (c) => c.api.post("/v1/operator/raft/transfer-leader", undefined, { id: to.id })),
    async leave(host) {
      // the agent hands its raft seat back through the leader, then exits
      await consul(host, (c) => c.api.put("/v1/agent/leave"));
      await run.remote(host).runAsRoot("systemctl stop consul", { allowFailure: true });
    },
    leaveRemovesPeer: true,
    removePeer: (via, peer) => consul(via, (c) => c.api.delete("/v1/operator/raft/peer", { id: peer.id })),
    forget: (via, host) =>
      consul(via, (c) => c.api.put(`/v1/agent/force-leave/${encodeURIComponent(host.name)}`, undefined, { prune: true })),
  };
}

export function nomadMembership(run: MembershipRun): RaftMembership {
  const nomad = async <T>(host: InventoryHost, fn: Parameters<typeof withNomad<T>>[2]) =>
    withNomad(run, host, fn, { token: await token(run, "nomad-bootstrap-token") });
  return {
    product: "Nomad",
    view: (via) => nomad(via, (c) => consulStyleView(run, c.api)),
    // Nomad ≥ 1.7
    transferLeadership: (via, _from, to) =>
      nomad(via, (c) => c.api.put("/v1/operator/raft/transfer-leadership", undefined, { id: to.id })),
    // a Nomad server has no graceful leave over the API (servers here run no client: nothing to drain)
    async leave(host) {
      const result = await run.remote(host).runAsRoot("systemctl stop nomad");
      if (result.code !== 0) throw new Error(result.stderr.trim() || `systemctl stop nomad exited ${result.code}`);
    },
    leaveRemovesPeer: false,
    removePeer: (via, peer) => nomad(via, (c) => c.api.delete("/v1/operator/raft/peer", { id: peer.id })),
    forget: (via, host) =>
      nomad(via, (c) =>
        c.api.put("/v1/agent/force-leave", undefined, { node: `${host.name}.${run.config.region}`, prune: true }),
      ),
  };
}

interface VaultAutopilotState {
  data: {
    leader: string;
    servers: Record<string, { id: string; name: string; address: string; healthy: boolean; status: string }>;
  };
}

/** Vault's raft (integrated storage): the active node steps down instead of a targeted transfer. */
export function vaultMembership(run: MembershipRun): RaftMembership {
  const vault = async <T>(host: InventoryHost, fn: Parameters<typeof withVault<T>>[2]) =>
    withVault(run, host, fn, { token: await vaultRootToken(run.secrets) });
  return {
    product: "Vault",
    view: (via) =>
      vault(via, async (v) => {
        const state = await v.api.get<VaultAutopilotState>("/v1/sys/storage/raft/autopilot/state");
        const peers = Object.values(state.data.servers).map((s) => ({
          id: s.id,
          host: hostAt(run, s.address, s.name),
          address: s.address,
          voter: s.status === "leader" || s.status === "voter",
          healthy: s.healthy,
        }));
        const leader = state.data.servers[state.data.leader];
        return { leader: leader ? hostAt(run, leader.address, leader.name) : undefined, peers };
      }),
    transferLeadership: (_via, from) => vault(from, (v) => v.api.put("/v1/sys/step-down")),
    async leave(host) {
      const result = await run.remote(host).runAsRoot("systemctl stop vault");
      if (result.code !== 0) throw new Error(result.stderr.trim() || `systemctl stop vault exited ${result.code}`);
    },
    leaveRemovesPeer: false,
    removePeer: (via, peer) => vault(via, (v) => v.api.post("/v1/sys/storage/raft/remove-peer", { server_id: peer.id })),
  };
}
