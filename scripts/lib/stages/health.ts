/**
 * Cluster health as seen through the servers' APIs (over SSH tunnels): Consul
 * members and raft, Nomad servers and clients, Vault seal state and each node's
 * certificate expiry. Every section is gathered independently, so one broken
 * part is reported next to the healthy ones instead of hiding them.
 */
import { ciTokenSecret, tenantNamespaces } from "../security/tenancy.ts";
import { X509Certificate } from "node:crypto";
import { existsSync } from "node:fs";
import { memberStatus } from "../clients/consul.ts";
import { withConsul, withNomad, withVault } from "../cluster/access.ts";
import { platformNamespace } from "../cluster/nomad-acl.ts";
import type { NomadNodeStub } from "../clients/nomad.ts";
import { type RuntimeProfile, runtimeProfile } from "../config/schema.ts";
import { hostsWithRole, type InventoryHost } from "../inventory/schema.ts";
import { onEachHost } from "../remote/fanout.ts";
import { sh } from "../remote/command.ts";
import { nodeLayout } from "../render/layout.ts";
import { consulAuthMethod, jwksProxyHosts, jwksProxyUrl, proxyKeyIds, vaultJwtMount } from "../cluster/jwks-proxy.ts";
import type { ClusterRun } from "./run-context.ts";
import { encryptedRootTokenSecret, rootTokenSecret } from "./vault-unseal.ts";

export interface ClusterHealth {
  consul: { leader?: string; peers: number; members: { name: string; address: string; status: string }[]; error?: string };
  nomad: {
    leader?: string;
    peers: number;
    nodes: { name: string; address: string; status: string; drivers?: NomadNodeStub["Drivers"] }[];
    /** the platform namespace's jobs: status and running allocations per job */
    jobs: { id: string; status: string; running: number; failed: number }[];
    error?: string;
  };
  vault: { host: string; initialized?: boolean; sealed?: boolean; version?: string; error?: string }[];
  certificates: {
    host: string;
    file: string;
    expires?: string;
    hoursLeft?: number;
    secondsLeft?: number;
    /** the share of the certificate's own lifetime that is left (0..1) */
    lifetimeLeft?: number;
    error?: string;
  }[];
  /** Nomad's signing keys and whether Consul and Vault can fetch them (the JWKS proxy on each of their nodes) */
  identity: {
    nomadKeys: string[];
    proxies: { host: string; keys?: string[]; error?: string }[];
    consulUsesProxy?: boolean;
    vaultUsesProxy?: boolean;
    error?: string;
  };
  problems: string[];
}

const layout = nodeLayout();

async function firstWorking<T>(hosts: InventoryHost[], attempt: (host: InventoryHost) => Promise<T>): Promise<T> {
  let lastError: unknown;
  for (const host of hosts) {
    try {
      return await attempt(host);
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

export async function clusterHealth(run: ClusterRun): Promise<ClusterHealth> {
  const servers = hostsWithRole(run.inventory, "server");
  const health: ClusterHealth = {
    consul: { peers: 0, members: [] },
    nomad: { peers: 0, nodes: [], jobs: [] },
    vault: [],
    certificates: [],
    identity: { nomadKeys: [], proxies: [] },
    problems: [],
  };
  const consulToken = await run.secrets.read("consul-bootstrap-token");
  const nomadToken = await run.secrets.read("nomad-bootstrap-token");

  try {
    await firstWorking(servers, (host) =>
      withConsul(
        run,
        host,
        async (consul) => {
          health.consul.leader = (await consul.leader()) || undefined;
          const method = await consul.authMethod(consulAuthMethod);
          health.identity.consulUsesProxy = method?.Config?.JWKSURL === jwksProxyUrl;
          health.consul.peers = (await consul.peers()).length;
          health.consul.members = (await consul.members()).map((m) => ({
            name: m.Name,
            address: m.Addr,
            status: memberStatus[m.Status] ?? String(m.Status),
          }));
        },
        { token: consulToken },
      ),
    );
  } catch (error) {
    health.consul.error = (error as Error).message;
  }
  try {
    await firstWorking(servers, (host) =>
      withNomad(
        run,
        host,
        async (nomad) => {
          health.nomad.leader = (await nomad.leader()) || undefined;
          const jwks = await nomad.api.get<{ keys: { kid: string }[] }>("/.well-known/jwks.json");
          health.identity.nomadKeys = jwks.keys.map((k) => k.kid);
          health.nomad.peers = (await nomad.peers()).length;
          health.nomad.nodes = (await nomad.nodes()).map((n) => ({
            name: n.Name,
            address: n.Address,
            status: n.Status,
            drivers: n.Drivers,
          }));
          health.nomad.jobs = (await nomad.jobs(platformNamespace)).map((job) => {
            const groups = Object.values(job.JobSummary?.Summary ?? {});
            return {
              id: job.ID,
              status: job.Stop ? "stopped" : job.Status,
              running: groups.reduce((sum, g) => sum + g.Running, 0),
              failed: groups.reduce((sum, g) => sum + g.Failed, 0),
            };
          });
        },
        { token: nomadToken },
      ),
    );
  } catch (error) {
    health.nomad.error = (error as Error).message;
  }
  // a plaintext root token reads Vault's JWT config; a PGP-encrypted one is not decrypted for a health check
  const vaultToken = await run.secrets.read(rootTokenSecret);
  for (const host of hostsWithRole(run.inventory, "vault")) {
    try {
      const status = await withVault(run, host, async (vault) => {
        const seal = await vault.sealStatus();
        if (!seal.sealed && vaultToken && health.identity.vaultUsesProxy === undefined) {
          const config = await vault
            .withToken(vaultToken)
            .read<{ jwks_url?: string }>(`auth/${vaultJwtMount}/config`)
            .catch(() => undefined);
          health.identity.vaultUsesProxy = config?.data.jwks_url === jwksProxyUrl;
        }
        return seal;
      });
      health.vault.push({ host: host.name, initialized: status.initialized, sealed: status.sealed, version: status.version });
    } catch (error) {
      health.vault.push({ host: host.name, error: (error as Error).message });
    }
  }
  const proxies = await onEachHost(jwksProxyHosts(run.inventory), (host) => proxyKeyIds(run.remote(host), host), {
    concurrency: run.config.concurrency,
  });
  health.identity.proxies = proxies.map((o) => ({ host: o.host, keys: o.value, error: o.error?.message }));
  // a host that did not answer is named once below, not once per certificate file
  const silent = new Set(run.unreachable.map((h) => h.name));
  const certs = await onEachHost(
    run.inventory.hosts.filter((h) => !silent.has(h.name)),
    async (host) => {
      const files = [
        layout.consul.certFile,
        layout.nomad.certFile,
        ...(host.roles.includes("vault") ? [layout.vault.certFile] : []),
      ];
      const results: ClusterHealth["certificates"] = [];
      for (const file of files) {
        try {
          const pem = (await run.remote(host).runAsRoot(sh`cat ${file}`, { timeoutMs: 10_000 })).stdout;
          const leaf = new X509Certificate(pem);
          const expires = new Date(leaf.validTo);
          const lifetime = expires.getTime() - new Date(leaf.validFrom).getTime();
          results.push({
            host: host.name,
            file,
            expires: expires.toISOString(),
            hoursLeft: Math.round((expires.getTime() - Date.now()) / 36e4) / 10,
            secondsLeft: Math.round((expires.getTime() - Date.now()) / 1000),
            lifetimeLeft: lifetime > 0 ? Math.max(0, (expires.getTime() - Date.now()) / lifetime) : 0,
          });
        } catch (error) {
          results.push({ host: host.name, file, error: (error as Error).message });
        }
      }
      return results;
    },
    { concurrency: run.config.concurrency },
  );
  for (const outcome of certs) {
    if (outcome.value) health.certificates.push(...outcome.value);
    else health.certificates.push({ host: outcome.host, file: "*", error: outcome.error?.message });
  }

  health.problems.push(
    ...clusterProblems(health, {
      hosts: run.inventory.hosts,
      skipped: run.skipped.map((h) => h.name),
      unreachable: run.unreachable,
      runtime: runtimeProfile(run.config),
      alertLifetimeLeft: run.config.tls.alertLifetimeLeft,
    }),
  );
  return health;
}

/**
 * Everything wrong in the gathered health. `hosts` are the hosts this run expects to
 * find; `skipped` are hosts the run already named as unreachable and left out (a
 * bootstrap with a down client): that they are down in Consul and Nomad is not news.
 * `unreachable` hosts stayed in the run (status) and are named.
 */
export function clusterProblems(
  health: Omit<ClusterHealth, "problems">,
  expected: {
    hosts: InventoryHost[];
    skipped: string[];
    /** hosts that did not answer over SSH (status): named first */
    unreachable?: InventoryHost[];
    runtime: RuntimeProfile;
    alertLifetimeLeft: number;
  },
): string[] {
  const skipped = new Set(expected.skipped);
  const expectedMembers = expected.hosts.length;
  const p: string[] = (expected.unreachable ?? []).map((h) => `${h.name} (${h.privateIp}): unreachable over SSH`);
  if (health.consul.error) p.push(`Consul API unreachable: ${health.consul.error}`);
  else {
    if (!health.consul.leader) p.push("Consul has no leader");
    for (const m of health.consul.members)
      if (m.status !== "alive" && !skipped.has(m.name)) p.push(`Consul member ${m.name} (${m.address}) is ${m.status}`);
    if (health.consul.members.length < expectedMembers)
      p.push(`Consul has ${health.consul.members.length} of ${expectedMembers} members`);
  }
  if (health.nomad.error) p.push(`Nomad API unreachable: ${health.nomad.error}`);
  else {
    if (!health.nomad.leader) p.push("Nomad has no leader");
    for (const n of health.nomad.nodes)
      if (n.status !== "ready" && !skipped.has(n.name)) p.push(`Nomad client ${n.name} is ${n.status}`);
    p.push(...driverProblems(health.nomad.nodes, expected.runtime));
    const clients = expected.hosts.filter((h) => h.roles.includes("client")).length;
    if (health.nomad.nodes.length < clients) p.push(`Nomad has ${health.nomad.nodes.length} of ${clients} clients`);
    for (const job of health.nomad.jobs) {
      if (job.status === "stopped") continue; // stopped on purpose
      if (job.status !== "running" || job.running === 0)
        p.push(
          `platform job ${job.id} is ${job.status} with ${job.running} running allocations (nomad job status -namespace ${platformNamespace} ${job.id})`,
        );
    }
  }
  for (const v of health.vault) {
    if (v.error) p.push(`Vault on ${v.host} unreachable: ${v.error}`);
    else if (v.sealed) p.push(`Vault on ${v.host} is sealed (npm run unseal)`);
  }
  p.push(...certificateProblems(health.certificates, expected.alertLifetimeLeft));
  p.push(...identityProblems(health.identity, !health.nomad.error));
  return p;
}

/**
 * Renewal happens with 10-15 % of a certificate's lifetime left, so less than
 * `alertLifetimeLeft` (default 7 %) means it is failing, while there is still time to fix it.
 */
export function certificateProblems(certificates: ClusterHealth["certificates"], alertLifetimeLeft: number): string[] {
  const problems: string[] = [];
  for (const c of certificates) {
    if (c.error) problems.push(`${c.host}: cannot read ${c.file}: ${c.error}`);
    else if ((c.lifetimeLeft ?? 0) < alertLifetimeLeft)
      problems.push(
        `${c.host}: ${c.file} has ${Math.round((c.lifetimeLeft ?? 0) * 1000) / 10} % of its lifetime left (expires ${c.expires}) and was not renewed: check 'journalctl -u consul-template' on ${c.host}`,
      );
  }
  return problems;
}

/** Every key Nomad signs with (or will) must be served to Consul and Vault by the proxy on their nodes. */
export function identityProblems(identity: ClusterHealth["identity"], nomadAnswered: boolean): string[] {
  const problems: string[] = [];
  const hint = "new workloads get no Consul or Vault token";
  if (identity.consulUsesProxy === false)
    problems.push(
      `Consul's auth method ${consulAuthMethod} does not read Nomad's keys from the JWKS proxy (${hint} after a key rotation): run bootstrap`,
    );
  if (identity.vaultUsesProxy === false)
    problems.push(
      `Vault's ${vaultJwtMount} auth does not read Nomad's keys from the JWKS proxy (${hint} after a key rotation): run bootstrap`,
    );
  for (const proxy of identity.proxies) {
    if (proxy.error) problems.push(`${proxy.error} (${hint} on ${proxy.host})`);
    else if (nomadAnswered) {
      const missing = identity.nomadKeys.filter((kid) => !proxy.keys?.includes(kid));
      if (missing.length)
        problems.push(`the JWKS proxy on ${proxy.host} does not serve Nomad's signing keys ${missing.join(", ")} (${hint})`);
    }
  }
  return problems;
}

/**
 * The docker profile's clients must have a healthy docker driver: a client
 * without one is ready for Nomad but places no platform job ("missing drivers").
 */
export function driverProblems(
  nodes: { name: string; status: string; drivers?: NomadNodeStub["Drivers"] }[],
  runtime: RuntimeProfile,
): string[] {
  if (runtime !== "docker") return [];
  const problems: string[] = [];
  for (const node of nodes) {
    if (node.status !== "ready") continue; // already named as not ready
    const docker = node.drivers?.docker;
    if (!docker?.Detected)
      problems.push(`Nomad client ${node.name}: docker driver not detected (is Docker Engine installed and running?)`);
    else if (!docker.Healthy)
      problems.push(`Nomad client ${node.name}: docker driver unhealthy: ${docker.HealthDescription || "no description"}`);
  }
  return problems;
}

/** Where the operator's credentials are: paths only, never the values. */
export function credentialPaths(run: Pick<ClusterRun, "state" | "secrets">) {
  const files = run.state.tlsFiles;
  return {
    caCertificate: files.rootCa,
    operatorCertificate: files.operatorCert,
    operatorKey: files.operatorKey,
    consulManagementToken: run.secrets.fileFor("consul-bootstrap-token"),
    nomadManagementToken: run.secrets.fileFor("nomad-bootstrap-token"),
    nomadCiTokens: Object.fromEntries(tenantNamespaces.map((ns) => [ns, run.secrets.fileFor(ciTokenSecret(ns))])),
    // PGP-encrypted when vault.rootTokenPgpKey was set at init
    vaultRootToken: existsSync(run.secrets.fileFor(encryptedRootTokenSecret))
      ? run.secrets.fileFor(encryptedRootTokenSecret)
      : run.secrets.fileFor(rootTokenSecret),
    vaultUnsealKeys: run.secrets.fileFor("vault-init.json"),
  };
}
