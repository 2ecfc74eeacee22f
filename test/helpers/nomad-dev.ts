/**
 * A real `nomad agent -dev` with ACLs on and raw_exec enabled, on its own
 * loopback address, for the energy exporter's tests.
 */
import { writeFile } from "node:fs/promises";
import { NomadClient } from "../../scripts/lib/clients/nomad.ts";
import { requireBinary } from "./binaries.ts";
import { type Agent, startAgent, untilReady } from "./processes.ts";

export interface NomadDev {
  agent: Agent;
  address: string;
  management: NomadClient;
  nodeId: string;
}

export async function startNomadDev(dir: string, ip: string, secret: string): Promise<NomadDev> {
  await writeFile(
    `${dir}/dev.hcl`,
    `
bind_addr = "${ip}"
data_dir  = "${dir}/data"
ports {
  http = 4760
  rpc  = 4761
  serf = 4762
}
acl {
  enabled = true
}
client {
  options = {
    # the cloud fingerprinters wait for metadata services that do not exist here
    "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean"
  }
}
plugin "raw_exec" {
  config {
    enabled = true
  }
}
`,
  );
  const address = `http://${ip}:4760`;
  const agent = startAgent("nomad -dev", requireBinary("nomad"), ["agent", "-dev", `-config=${dir}/dev.hcl`], `${dir}/nomad.log`);
  const management = new NomadClient({ address, token: secret, timeoutMs: 10_000 });
  await untilReady(agent, () => management.bootstrapAcl(secret), 90_000);
  const nodeId = await management.api.waitFor<{ ID: string; Status: string }[], string>(
    "/v1/nodes",
    (nodes) => nodes.find((n) => n.Status === "ready")?.ID,
    { timeoutMs: 60_000, what: "the dev client to be ready" },
  );
  return { agent, address, management, nodeId };
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

export async function purgeJob(nomad: NomadDev | undefined, id: string, namespace: string): Promise<void> {
  await nomad?.management.api.delete(`/v1/job/${id}`, { namespace, purge: true }).catch(() => undefined);
}
