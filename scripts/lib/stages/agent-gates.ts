/**
 * The health gates of Consul's and Nomad's rolling restarts (rolling.ts decides
 * the order): who leads, how leadership is handed away, and when a restarted
 * agent is back. Servers are asked through another server than the one that
 * restarts; "healthy" is the product's own autopilot verdict (every server
 * healthy, a leader), falling back to leader and raft peers while no
 * management token works yet (before the ACL bootstrap).
 */
import { ApiError } from "../clients/http.ts";
import type { ConsulClient } from "../clients/consul.ts";
import type { NomadClient } from "../clients/nomad.ts";
import { withConsul, withNomad } from "../cluster/access.ts";
import type { RaftServer } from "../cluster/raft-members.ts";
import { OperationError } from "../errors.ts";
import type { InventoryHost } from "../inventory/schema.ts";
import type { ClusterRun } from "./run-context.ts";
import { type ClientGate, pollUntil, type ServerGate } from "./rolling.ts";

type GateRun = Pick<ClusterRun, "state" | "remote" | "secrets" | "reporter">;

interface AutopilotHealth {
  Healthy: boolean;
  Servers: { Address: string; Healthy: boolean; Leader: boolean; Voter: boolean }[];
}

/** What a gate needs from one product's API. */
interface Probe<Client> {
  product: string;
  with<T>(run: GateRun, host: InventoryHost, fn: (client: Client) => Promise<T>): Promise<T>;
  leader(client: Client): Promise<string>;
  autopilot(client: Client): Promise<AutopilotHealth>;
  peers(client: Client): Promise<string[]>;
  /** ask the leader to hand over to `target` (a raft peer) */
  transfer(client: Client, target: RaftServer): Promise<void>;
  raftServers(client: Client): Promise<RaftServer[]>;
}

const tokenOf = (run: GateRun, name: string) => run.secrets.read(name).then((t) => t ?? undefined);

const consulProbe: Probe<ConsulClient> = {
  product: "Consul",
  async with(run, host, fn) {
    return withConsul(run, host, fn, { token: await tokenOf(run, "consul-bootstrap-token") });
  },
  leader: (c) => c.leader(),
  autopilot: (c) => c.api.get<AutopilotHealth>("/v1/operator/autopilot/health"),
  peers: (c) => c.peers(),
  transfer: (c, target) => c.api.post("/v1/operator/raft/transfer-leader", undefined, { id: target.ID }),
  raftServers: (c) => c.api.get<{ Servers: RaftServer[] }>("/v1/operator/raft/configuration").then((r) => r.Servers),
};

const nomadProbe: Probe<NomadClient> = {
  product: "Nomad",
  async with(run, host, fn) {
    return withNomad(run, host, fn, { token: await tokenOf(run, "nomad-bootstrap-token") });
  },
  leader: (c) => c.leader(),
  autopilot: (c) => c.api.get<AutopilotHealth>("/v1/operator/autopilot/health"),
  peers: (c) => c.peers(),
  // Nomad ≥ 1.7
  transfer: (c, target) => c.api.put("/v1/operator/raft/transfer-leadership", undefined, { id: target.ID }),
  raftServers: (c) => c.api.get<{ Servers: RaftServer[] }>("/v1/operator/raft/configuration").then((r) => r.Servers),
};

const atHost = (address: string, host: InventoryHost) => address.startsWith(`${host.privateIp}:`);
/** a server to ask while `busy` restarts */
const another = (servers: InventoryHost[], busy?: InventoryHost) =>
  servers.find((h) => h.name !== busy?.name) ?? (servers[0] as InventoryHost);
/** not authorised (no working management token yet) */
const denied = (error: unknown) => error instanceof ApiError && (error.status === 403 || error.status === 401);
/** autopilot answers 429 while the cluster is unhealthy */
const unhealthy = (error: unknown) => error instanceof ApiError && error.status === 429;

function serverGate<Client>(run: GateRun, probe: Probe<Client>, timeoutMs: number): ServerGate {
  const leaderVia = async (via: InventoryHost, servers: InventoryHost[]) => {
    const address = await probe.with(run, via, (c) => probe.leader(c));
    return servers.find((h) => address && atHost(address, h))?.name;
  };
  return {
    async leader(servers) {
      for (const host of servers) {
        try {
          return await leaderVia(host, servers);
        } catch {
          // this server does not answer: ask the next
        }
      }
      return undefined;
    },

    async transferLeadership(leader, servers) {
      const via = another(servers, leader);
      try {
        await probe.with(run, via, async (c) => {
          const target = (await probe.raftServers(c)).find((s) => s.Voter && !s.Leader && !atHost(s.Address, leader));
          if (!target) throw new OperationError("no other voter to hand leadership to");
          await probe.transfer(c, target);
        });
      } catch (error) {
        run.reporter.warn(
          `${probe.product}: could not hand leadership away from ${leader.name} (${(error as Error).message}); restarting it anyway`,
        );
        return false;
      }
      await pollUntil(
        async () => {
          const now = await leaderVia(via, servers);
          return now !== undefined && now !== leader.name;
        },
        {
          timeoutMs,
          fail: () => new OperationError(`${probe.product}: no new leader after handing it away from ${leader.name}.`),
        },
      );
      return true;
    },

    async waitHealthy(host, servers) {
      const via = servers.length > 1 ? another(servers, host) : host;
      await pollUntil(
        async () =>
          // the restarted server itself knows the leader again (it rejoined raft), and autopilot,
          // asked elsewhere, calls the whole cluster healthy: not a verdict from before the restart
          Boolean(await probe.with(run, host, (c) => probe.leader(c))) &&
          probe.with(run, via, async (c) => {
            if (!(await probe.leader(c))) return false;
            try {
              const health = await probe.autopilot(c);
              return health.Healthy && health.Servers.some((s) => atHost(s.Address, host) && s.Healthy);
            } catch (error) {
              if (unhealthy(error)) return false;
              if (!denied(error)) throw error;
              return (await probe.peers(c)).some((p) => atHost(p, host));
            }
          }),
        {
          timeoutMs,
          fail: (last) =>
            new OperationError(
              `${probe.product} on ${host.name} did not rejoin a healthy cluster within ${timeoutMs / 1000}s after its restart.`,
              {
                details: last instanceof Error ? [last.message] : [],
                hint: `The rollout stopped here: the servers not restarted yet still run the old config. Check 'journalctl -u ${probe.product.toLowerCase()}' on ${host.name}, then re-run bootstrap (it continues with what is left).`,
              },
            ),
        },
      );
    },
  };
}

/** A client batch is back when each of its agents answers and sees a leader through the servers. */
function clientGate<Client>(run: GateRun, probe: Probe<Client>, timeoutMs: number): ClientGate {
  return {
    async waitHealthy(batch) {
      for (const host of batch) {
        await pollUntil(async () => Boolean(await probe.with(run, host, (c) => probe.leader(c))), {
          timeoutMs,
          fail: (last) =>
            new OperationError(
              `${probe.product} on ${host.name} did not reach the servers within ${timeoutMs / 1000}s after its restart.`,
              {
                details: last instanceof Error ? [last.message] : [],
                hint: `The rollout stopped before the next batch of clients. Check 'journalctl -u ${probe.product.toLowerCase()}' on ${host.name}, then re-run bootstrap.`,
              },
            ),
        });
      }
    },
  };
}

const timeoutMs = 180_000;

export const consulServerGate = (run: GateRun) => serverGate(run, consulProbe, timeoutMs);
export const nomadServerGate = (run: GateRun) => serverGate(run, nomadProbe, timeoutMs);
export const consulClientGate = (run: GateRun) => clientGate(run, consulProbe, timeoutMs);
export const nomadClientGate = (run: GateRun) => clientGate(run, nomadProbe, timeoutMs);
