/**
 * A real `nomad agent -dev` (server + client) with ACLs on, on its own loopback
 * address and ports so it collides with no other test, raw_exec enabled so real
 * tasks run, and no cloud fingerprinting (slow, and fails offline).
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { NomadClient } from "../../scripts/lib/clients/nomad.ts";
import { requireBinary } from "./binaries.ts";
import { tempDir } from "./fixtures.ts";
import { type Agent, startAgent, untilReady } from "./processes.ts";

export interface NomadDev {
  address: string;
  dataDir: string;
  management: NomadClient;
  /** the agent's own log so far */
  log(): string;
  stop(): Promise<void>;
}

export async function startNomadDev(options: {
  ip: string;
  httpPort: number;
  bootstrapSecret: string;
  /** job validation needs Vault integration enabled for jobs with `vault` blocks; no Vault is contacted for them */
  vaultAddress?: string;
  /** host volumes the client offers (folders under the agent's temp dir) */
  hostVolumes?: string[];
}): Promise<NomadDev> {
  const dir = await tempDir("nomad-dev");
  const dataDir = join(dir.path, "data");
  const config = join(dir.path, "dev.hcl");
  await writeFile(
    config,
    `bind_addr = "${options.ip}"
data_dir  = "${dataDir}"
ports {
  http = ${options.httpPort}
  rpc  = ${options.httpPort + 1}
  serf = ${options.httpPort + 2}
}
acl {
  enabled = true
}
client {
  network_interface = "lo"
  options = { "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean" }
${(options.hostVolumes ?? []).map((v) => `  host_volume "${v}" {\n    path = "${join(dir.path, "volumes", v)}"\n  }\n`).join("")}}
plugin "raw_exec" {
  config {
    enabled = true
  }
}
${
  options.vaultAddress
    ? `vault {
  enabled = true
  address = "${options.vaultAddress}"
  default_identity {
    aud = ["vault.io"]
    ttl = "1h"
  }
}
`
    : ""
}`,
  );
  for (const volume of options.hostVolumes ?? []) await mkdir(join(dir.path, "volumes", volume), { recursive: true });
  let agent: Agent | undefined;
  try {
    agent = startAgent("nomad", requireBinary("nomad"), ["agent", "-dev", `-config=${config}`], join(dir.path, "nomad.log"));
    const address = `http://${options.ip}:${options.httpPort}`;
    const management = new NomadClient({ address, token: options.bootstrapSecret });
    const started = agent;
    await untilReady(started, () => management.bootstrapAcl(options.bootstrapSecret));
    await management.waitForReadyNodes(1, 60_000);
    return {
      address,
      dataDir,
      management,
      log: () => started.log(),
      async stop() {
        await started.stop();
        await dir.remove();
      },
    };
  } catch (error) {
    await agent?.stop();
    await dir.remove();
    throw error;
  }
}
