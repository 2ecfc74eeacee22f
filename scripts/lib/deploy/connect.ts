/**
 * Where `deploy` finds Nomad: the standard NOMAD_* variables (CI), else the
 * cluster state (`--cluster`/`--config`) through an SSH tunnel to the first
 * server that answers (a down client or server does not stop a deploy) with
 * the CI token of one environment (`nomad-ci-token-dev` or `-prod`) — the
 * least-privileged tokens bootstrap creates (submit and read jobs in that one
 * namespace). The environment is the namespace asked for, `dev` by default.
 */
import { existsSync } from "node:fs";
import { clusterContext } from "../cli/cluster-context.ts";
import type { Reporter } from "../cli/output.ts";
import { NomadClient } from "../clients/nomad.ts";
import { openNomad } from "../cluster/access.ts";
import { errorMessage, InputError, OperationError } from "../errors.ts";
import { loadInventory } from "../inventory/load.ts";
import { hostsWithRole, type InventoryHost } from "../inventory/schema.ts";
import type { ProviderContext } from "../providers/types.ts";
import { KnownHosts } from "../remote/known-hosts.ts";
import { RemoteHost, sshTarget } from "../remote/ssh.ts";
import { SecretStore } from "../state/secrets.ts";
import { ciTokenSecret, isTenantNamespace, tenantNamespaces } from "../security/tenancy.ts";

export interface NomadConnection {
  nomad: NomadClient;
  /** human description for messages (never the token) */
  via: string;
  close(): Promise<void>;
}

export function nomadFromEnv(env: NodeJS.ProcessEnv = process.env): NomadConnection | undefined {
  const address = env.NOMAD_ADDR;
  if (!address) return undefined;
  if (!/^https?:\/\//.test(address)) throw new InputError(`NOMAD_ADDR must start with http:// or https://, not '${address}'.`);
  for (const name of ["NOMAD_CACERT", "NOMAD_CLIENT_CERT", "NOMAD_CLIENT_KEY"]) {
    const file = env[name];
    if (file && !existsSync(file)) throw new InputError(`${name} points to ${file}, which does not exist.`);
  }
  if (Boolean(env.NOMAD_CLIENT_CERT) !== Boolean(env.NOMAD_CLIENT_KEY)) {
    throw new InputError("Set both NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY, or neither.");
  }
  const nomad = new NomadClient({
    address,
    token: env.NOMAD_TOKEN || undefined,
    caFile: env.NOMAD_CACERT || undefined,
    certFile: env.NOMAD_CLIENT_CERT || undefined,
    keyFile: env.NOMAD_CLIENT_KEY || undefined,
    serverName: env.NOMAD_TLS_SERVER_NAME || undefined,
  });
  return { nomad, via: `NOMAD_ADDR ${address}`, close: async () => {} };
}

export async function nomadFromClusterState(
  flags: { config?: string; cluster?: string; namespace?: string },
  reporter: Reporter,
): Promise<NomadConnection> {
  const environment = flags.namespace ?? "dev";
  if (!isTenantNamespace(environment)) {
    throw new InputError(
      `Deploying from the cluster state uses the CI token of one environment (${tenantNamespaces.join(" or ")}), not namespace '${environment}'.`,
      {
        hint: "Pass --namespace dev or --namespace prod; for other namespaces set NOMAD_ADDR and NOMAD_TOKEN (e.g. from 'npm run env -- --with-tokens').",
      },
    );
  }
  const tokenSecret = ciTokenSecret(environment);
  const context = await clusterContext(flags, reporter);
  if (!existsSync(context.state.inventoryCopy)) {
    throw new OperationError(`NOMAD_ADDR is not set and cluster '${context.config.name}' has not been bootstrapped.`, {
      hint: "Set NOMAD_ADDR (and NOMAD_TOKEN, NOMAD_CACERT, …) or run 'npm run bootstrap' first.",
    });
  }
  const inventory = await loadInventory(context.state.inventoryCopy);
  const token = await new SecretStore(context.state).read(tokenSecret);
  if (!token) {
    throw new OperationError(`No ${tokenSecret} in the state of cluster '${context.config.name}'.`, {
      hint: "Run 'npm run bootstrap' (its nomad stage creates the CI token).",
    });
  }
  const { server, connection, close } = await firstAnsweringServer(context, hostsWithRole(inventory, "server"), token);
  return {
    nomad: connection.client,
    via: `cluster '${context.config.name}' (server ${server.name}, SSH tunnel, ${tokenSecret})`,
    close: async () => {
      await connection.close();
      close();
    },
  };
}

/**
 * The first Nomad server that answers over SSH and through the tunnel, in
 * inventory order: a deploy needs one server, not every host (a client or a
 * server may be down). Each server that does not answer is named if none does.
 */
async function firstAnsweringServer(context: ProviderContext, servers: InventoryHost[], token: string) {
  const knownHosts = new KnownHosts(context.state.knownHosts);
  const failures: string[] = [];
  for (const server of servers) {
    const remote = new RemoteHost(sshTarget(server));
    try {
      await remote.connect({ waitMs: 10_000, knownHosts });
      const access = { state: context.state, remote: () => remote };
      const connection = await openNomad(access, server, { token });
      try {
        await connection.client.leader();
      } catch (error) {
        await connection.close();
        throw error;
      }
      if (failures.length) context.reporter.warn(`deploying through ${server.name}: ${failures.join("; ")}`);
      return { server, connection, close: () => remote.dispose() };
    } catch (error) {
      remote.dispose();
      failures.push(`${server.name} (${server.privateIp}) did not answer: ${errorMessage(error)}`);
    }
  }
  throw new OperationError(`No Nomad server of cluster '${context.config.name}' answers.`, {
    details: failures,
    hint: "Check that the servers are up ('npm run status'), or set NOMAD_ADDR to a server you can reach.",
  });
}
