/**
 * A Nomad client out of the cluster before its node goes (scale in, replace):
 * drained with a deadline (its allocations migrate), a graceful Consul leave
 * and a prune from the member list, then purged from Nomad.
 */
import type { NomadClient } from "../clients/nomad.ts";
import { OperationError } from "../errors.ts";
import type { InventoryHost } from "../inventory/schema.ts";
import { pollUntil } from "../stages/rolling.ts";
import type { ClusterRun } from "../stages/run-context.ts";
import { durationSeconds } from "../util/duration.ts";
import { withConsul, withNomad } from "./access.ts";

/** Drain `host` (asking Nomad through `server`), let it leave Consul, purge it; one line per thing done. */
export async function drainAndLeave(run: ClusterRun, server: InventoryHost, host: InventoryHost): Promise<string[]> {
  const done: string[] = [];
  const nomadToken = (await run.secrets.read("nomad-bootstrap-token")) ?? undefined;
  const consulToken = (await run.secrets.read("consul-bootstrap-token")) ?? undefined;
  const deadlineSeconds = durationSeconds(run.config.rollout.drainDeadline);
  const nodeId = await withNomad(
    run,
    server,
    async (nomad) => {
      const node = (await nomad.nodes()).find((n) => n.Name === host.name);
      if (!node) return undefined;
      await drainNode(nomad, node.ID, host, deadlineSeconds);
      done.push(`Nomad client ${host.name} drained`);
      return node.ID;
    },
    { token: nomadToken },
  );
  // graceful leave from the node's own agent, then pruned from every member list
  await withConsul(run, host, (consul) => consul.api.put("/v1/agent/leave"), { token: consulToken }).catch((error: unknown) => {
    run.reporter.warn(`Consul on ${host.name} did not leave gracefully (${(error as Error).message}); pruning it`);
  });
  await withConsul(
    run,
    server,
    (consul) => consul.api.put(`/v1/agent/force-leave/${encodeURIComponent(host.name)}`, undefined, { prune: true }),
    {
      token: consulToken,
    },
  );
  done.push(`Consul agent ${host.name} left`);
  // a node that no longer answers (the reason to replace it) is gone from the cluster all the same
  await run
    .remote(host)
    .runAsRoot("systemctl stop nomad consul consul-template", { allowFailure: true })
    .catch(() => undefined);
  if (nodeId) {
    await withNomad(run, server, (nomad) => nomad.api.post(`/v1/node/${nodeId}/purge`), { token: nomadToken });
    done.push(`Nomad node ${host.name} purged`);
  }
  return done;
}

/** Drain with a deadline (system jobs too) and wait until nothing runs there any more. */
async function drainNode(nomad: NomadClient, nodeId: string, host: InventoryHost, deadlineSeconds: number): Promise<void> {
  await nomad.api.post(`/v1/node/${nodeId}/drain`, {
    DrainSpec: { Deadline: deadlineSeconds * 1e9, IgnoreSystemJobs: false },
    MarkEligible: false,
    Meta: { message: "scale in (hashistack-bootstrap)" },
  });
  await pollUntil(
    async () => {
      const node = await nomad.api.get<{ DrainStrategy: unknown }>(`/v1/node/${nodeId}`);
      if (node.DrainStrategy) return false;
      const allocs = await nomad.api.get<{ ClientStatus: string }[]>(`/v1/node/${nodeId}/allocations`);
      return !allocs.some((a) => a.ClientStatus === "running" || a.ClientStatus === "pending");
    },
    {
      timeoutMs: (deadlineSeconds + 120) * 1000,
      intervalMs: 1000,
      fail: (last) =>
        new OperationError(`Nomad client ${host.name} still runs allocations after its drain deadline.`, {
          details: last instanceof Error ? [last.message] : [],
          hint: `Check 'nomad node status ${host.name}'; the node was not removed, and a re-run tries again.`,
        }),
    },
  );
}
