/**
 * Real Nomad pieces for the energy exporter's tests, on top of the shared
 * `nomad agent -dev` helper: the client's node ID, raw_exec jobs, clean-up.
 */
import { type NomadDev, startNomadDev } from "./nomad-dev.ts";

export interface EnergyNomadDev extends NomadDev {
  nodeId: string;
}

/** The shared dev agent on `ip` (HTTP 4760), plus the ID of its client node. */
export async function startEnergyNomadDev(ip: string, bootstrapSecret: string): Promise<EnergyNomadDev> {
  // Vault integration on: the docker variant of the exporter job has a vault block (validation only; nothing listens there)
  const nomad = await startNomadDev({ ip, httpPort: 4760, bootstrapSecret, vaultAddress: "http://127.0.0.61:18200" });
  const node = (await nomad.management.nodes()).find((n) => n.Status === "ready");
  if (!node) {
    await nomad.stop();
    throw new Error("the dev agent has no ready client node");
  }
  return { ...nomad, nodeId: node.ID };
}

/** A job of raw_exec tasks; returns the running allocation's ID. */
export async function runRawExecJob(
  nomad: NomadDev,
  spec: { id: string; namespace: string; group: string; tasks: { name: string; command: string; args: string[] }[] },
): Promise<string> {
  await nomad.management.api.post("/v1/jobs", {
    Job: {
      ID: spec.id,
      Name: spec.id,
      Namespace: spec.namespace,
      Type: "service",
      Datacenters: ["*"],
      TaskGroups: [
        {
          Name: spec.group,
          Count: 1,
          Tasks: spec.tasks.map((t) => ({
            Name: t.name,
            Driver: "raw_exec",
            Config: { command: t.command, args: t.args },
            Resources: { CPU: 100, MemoryMB: 32 },
          })),
        },
      ],
    },
  });
  return nomad.management.api.waitFor<{ ID: string; ClientStatus: string }[], string>(
    `/v1/job/${spec.id}/allocations`,
    (allocs) => allocs.find((a) => a.ClientStatus === "running")?.ID,
    { timeoutMs: 60_000, what: `the ${spec.id} allocation to run`, params: { namespace: spec.namespace } },
  );
}

/** Stop and purge a job so the agent leaves no task process behind. */
export async function purgeJob(nomad: NomadDev | undefined, id: string, namespace: string): Promise<void> {
  await nomad?.management.api.delete(`/v1/job/${id}`, { namespace, purge: true }).catch(() => undefined);
}
