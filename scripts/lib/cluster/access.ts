/**
 * The one way to reach a cluster's APIs: an SSH tunnel to a node and a client
 * authenticated with the files in the state (the cluster CA and the operator's
 * certificate). `with*` opens, hands the client to `fn` and always closes;
 * `open*` is for callers that keep the connection (deploy).
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { ConsulClient } from "../clients/consul.ts";
import { NomadClient } from "../clients/nomad.ts";
import { VaultClient } from "../clients/vault.ts";
import type { InventoryHost } from "../inventory/schema.ts";
import type { Remote } from "../remote/remote.ts";
import { openTunnel, type Tunnel } from "../remote/tunnel.ts";
import { ports } from "../render/layout.ts";
import type { StatePaths } from "../state/paths.ts";
import { writeFileAtomic } from "../util/fs.ts";

/** What reaching a node's API needs: an SSH connection to it and the cluster's state. */
export interface ClusterAccess {
  state: StatePaths;
  remote(host: InventoryHost | string): Remote;
}

export interface Connection<Client> {
  client: Client;
  close(): Promise<void>;
}

export interface AccessOptions {
  /** the ACL token the client sends (none: unauthenticated calls only) */
  token?: string;
}

async function connect<Client>(tunnel: Promise<Tunnel>, make: (address: string) => Client): Promise<Connection<Client>> {
  const open = await tunnel;
  try {
    return { client: make(`https://${open.address}`), close: () => open.close() };
  } catch (error) {
    await open.close();
    throw error;
  }
}

async function using<Client, T>(connection: Promise<Connection<Client>>, fn: (client: Client) => Promise<T>): Promise<T> {
  const { client, close } = await connection;
  try {
    return await fn(client);
  } finally {
    await close();
  }
}

/** Consul's HTTPS API on a server's loopback, with the operator certificate (mTLS). */
export function openConsul(run: ClusterAccess, host: InventoryHost, options: AccessOptions = {}) {
  const files = run.state.tlsFiles;
  return connect(openTunnel(run.remote(host), "127.0.0.1", ports.consulHttps), (address) => {
    return new ConsulClient({
      address,
      caFile: files.rootCa,
      certFile: files.operatorCert,
      keyFile: files.operatorKey,
      token: options.token,
    });
  });
}

/** Nomad's HTTPS API on a server's private address (it listens there only), with the operator certificate. */
export function openNomad(run: ClusterAccess, host: InventoryHost, options: AccessOptions = {}) {
  const files = run.state.tlsFiles;
  return connect(openTunnel(run.remote(host), host.privateIp, ports.nomadHttp), (address) => {
    return new NomadClient({
      address,
      caFile: files.rootCa,
      certFile: files.operatorCert,
      keyFile: files.operatorKey,
      token: options.token,
    });
  });
}

/**
 * Vault's API on a vault host's loopback. It is trusted through a bundle of the
 * cluster CA and, while Vault still serves its throwaway bootstrap certificate,
 * the bootstrap CA (see stages/vault.ts).
 */
export async function openVault(run: ClusterAccess, host: InventoryHost, options: AccessOptions = {}) {
  const files = run.state.tlsFiles;
  const bundle = [files.rootCa, files.bootstrapCa].filter(existsSync);
  await writeFileAtomic(files.trustBundle, (await Promise.all(bundle.map((f) => readFile(f, "utf8")))).join("\n"), 0o644);
  return connect(openTunnel(run.remote(host), "127.0.0.1", ports.vaultApi), (address) => {
    return new VaultClient({ address, caFile: files.trustBundle, token: options.token });
  });
}

export const withConsul = <T>(
  run: ClusterAccess,
  host: InventoryHost,
  fn: (consul: ConsulClient) => Promise<T>,
  options?: AccessOptions,
) => using(openConsul(run, host, options), fn);

export const withNomad = <T>(
  run: ClusterAccess,
  host: InventoryHost,
  fn: (nomad: NomadClient) => Promise<T>,
  options?: AccessOptions,
) => using(openNomad(run, host, options), fn);

export const withVault = <T>(
  run: ClusterAccess,
  host: InventoryHost,
  fn: (vault: VaultClient) => Promise<T>,
  options?: AccessOptions,
) => using(openVault(run, host, options), fn);
