/**
 * vault: install and start Vault, initialise it once (unseal keys and root
 * token only in the local state, 0600 — PGP-encrypted to the operators' keys
 * when the config names them, see vault-unseal.ts), unseal, enable the audit log, build the
 * PKI, and mint the renewal tokens. Vault's own TLS is bootstrapped with a
 * throwaway certificate made locally, then replaced by one from its own PKI —
 * its API is never served over plain HTTP.
 */
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { $ } from "zx";
import { binaryPath } from "../binaries/build.ts";
import { tools } from "../binaries/catalog.ts";
import { ApiError } from "../clients/http.ts";
import type { VaultClient } from "../clients/vault.ts";
import { withVault } from "../cluster/access.ts";
import { readVaultPgpKeys } from "../config/pgp-keys.ts";
import { OperationError } from "../errors.ts";
import { hostsWithRole, type InventoryHost } from "../inventory/schema.ts";
import { sh } from "../remote/command.ts";
import { onEachHost, requireAllSucceeded } from "../remote/fanout.ts";
import { nodeLayout } from "../render/layout.ts";
import { pki } from "../render/pki.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { applyServiceAction, filesUnder, installFiles, type ServiceAction, serviceAction } from "./install.ts";
import { resumableRollout } from "./resume.ts";
import type { ClusterRun } from "./run-context.ts";
import type { Stage } from "./stage.ts";
import { planVault, vaultServerGate } from "./vault-roll.ts";
import { initialiseVault, initSecret, readInitRecord, unsealIfSealed, vaultRootToken } from "./vault-unseal.ts";
import {
  ensureIntermediate,
  ensureRoles,
  ensureRootCa,
  operatorCertificateTtl,
  pkiRoles,
  renewalPolicies,
  renewalPoliciesFor,
  renewalTokenPeriodSeconds,
} from "./vault-pki.ts";

/**
 * A throwaway CA and one server certificate per Vault host, made with the cached
 * consul binary's `tls` commands. One CA for all hosts, so raft peers can verify
 * each other while they join (leader_ca_cert_file).
 */
async function bootstrapCertificates(
  run: ClusterRun,
  hosts: InventoryHost[],
): Promise<{ ca: string; certs: Map<string, { cert: string; key: string }> }> {
  const consul = binaryPath({ ...tools.consul, version: run.config.versions.consul });
  const dir = await mkdtemp(join(tmpdir(), "hashistack-vault-bootstrap-"));
  try {
    await $({ cwd: dir, quiet: true })`${consul} tls ca create -days 7 -domain vault-bootstrap`;
    const caFiles = ["vault-bootstrap-agent-ca.pem", "vault-bootstrap-agent-ca-key.pem"];
    // consul numbers the files it creates in its directory (<dc>-server-vault-bootstrap-<n>.pem):
    // one directory per host with a copy of the CA, so the certificates are made at once
    const pairs = await Promise.all(
      hosts.map(async (host, index) => {
        const hostDir = join(dir, `host-${index}`);
        await mkdir(hostDir, { mode: 0o700 });
        for (const file of caFiles) await copyFile(join(dir, file), join(hostDir, file));
        await $({
          cwd: hostDir,
          quiet: true,
        })`${consul} tls cert create -server -days 7 -domain vault-bootstrap -dc ${run.config.datacenter} -additional-dnsname localhost -additional-dnsname ${host.name} -additional-ipaddress ${host.privateIp}`;
        const prefix = `${run.config.datacenter}-server-vault-bootstrap-0`;
        return {
          cert: await readFile(join(hostDir, `${prefix}.pem`), "utf8"),
          key: await readFile(join(hostDir, `${prefix}-key.pem`), "utf8"),
        };
      }),
    );
    const certs = new Map(hosts.map((host, i) => [host.name, pairs[i] as { cert: string; key: string }]));
    return { ca: await readFile(join(dir, "vault-bootstrap-agent-ca.pem"), "utf8"), certs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export const vaultStage: Stage = {
  name: "vault",
  description: "Vault installed, initialised once, unsealed, its PKI and the renewal tokens",
  run: runVault,
  plan: planVault,
};

async function runVault(run: ClusterRun): Promise<string> {
  const layout = nodeLayout();
  const vaultHosts = hostsWithRole(run.inventory, "vault");
  const files = run.state.tlsFiles;
  await mkdir(run.state.tls, { recursive: true, mode: 0o700 });
  const summary: string[] = [];

  // the per-host steps run on every Vault node at once (results in host order)
  const onVaultHosts = async <T>(hosts: InventoryHost[], what: string, action: (host: InventoryHost) => Promise<T>) =>
    requireAllSucceeded(what, await onEachHost(hosts, action, { concurrency: run.config.concurrency }));

  const hasCert = await onVaultHosts(vaultHosts, "checking Vault's certificate", async (host) => {
    const probe = await run.remote(host).runAsRoot(sh`test -s ${layout.vault.certFile}`, { allowFailure: true });
    return probe.code === 0;
  });
  const withoutCert = vaultHosts.filter((_, i) => !hasCert[i]);
  if (withoutCert.length) {
    const bootstrap = await bootstrapCertificates(run, withoutCert);
    await writeFileAtomic(files.bootstrapCa, bootstrap.ca, 0o644);
    // a node that joins a Vault serving its PKI certificates (a replaced node) trusts that root too:
    // raft's retry_join verifies the leader with this file (leader_ca_cert_file)
    const trusted = existsSync(files.rootCa)
      ? `${bootstrap.ca.trim()}\n${(await readFile(files.rootCa, "utf8")).trim()}\n`
      : bootstrap.ca;
    await onVaultHosts(withoutCert, "installing Vault's bootstrap TLS", async (host) => {
      const remote = run.remote(host);
      const pair = bootstrap.certs.get(host.name) as { cert: string; key: string };
      await remote.uploadContent(pair.key, layout.vault.keyFile, { mode: 0o600, owner: "vault", group: "vault" });
      await remote.uploadContent(pair.cert, layout.vault.certFile, { mode: 0o644 });
      await remote.uploadContent(trusted, layout.vault.caFile, { mode: 0o644 });
    });
    for (const host of withoutCert) summary.push(`bootstrap TLS on ${host.name}`);
  }
  // files everywhere first; stopped Vaults start now (together), running ones (and those a stopped run left,
  // see resume.ts) restart in order (standbys first, see vault-roll.ts)
  const resume = await resumableRollout(run.state, "vault", vaultHosts);
  const actions = await onVaultHosts(vaultHosts, "installing Vault", async (host) => {
    const remote = run.remote(host);
    const plan = run.plans.get(host.name);
    const files = filesUnder(plan?.files ?? [], layout.vault.configDir, layout.vault.unit);
    const changed = await installFiles(remote, files, () => resume.writing(host));
    const action = await serviceAction(remote, "vault", {
      changed: changed.length > 0 || resume.isLeft(host),
      unitFileChanged: changed.includes(layout.vault.unit),
    });
    if (action !== "start") return action;
    const started = `vault ${await applyServiceAction(remote, "vault", action)} on ${host.name}`;
    await resume.done([host]);
    return started;
  });
  const restarts = new Map<string, ServiceAction>();
  for (const [i, host] of vaultHosts.entries()) {
    const action = actions[i] as string;
    if (action.startsWith("vault ")) summary.push(action);
    else if (action !== "none") restarts.set(host.name, action as ServiceAction);
  }
  const restart = async (host: InventoryHost) => {
    await applyServiceAction(run.remote(host), "vault", restarts.get(host.name) as ServiceAction);
    summary.push(`vault restarted on ${host.name}`);
  };
  const gate = vaultServerGate(run);
  await resume.restart(
    vaultHosts.filter((h) => restarts.has(h.name)),
    restart,
    { kind: "servers", gate, servers: vaultHosts },
  );

  // the active node leads (a standby never becomes active on its own); a replaced node starts empty and joins
  const leader = (await initialisedVault(run, vaultHosts)) ?? (vaultHosts[0] as InventoryHost);
  const rootToken = await withVault(run, leader, async (vault) => {
    const health = await vault.waitUntil(() => true, { timeoutMs: 60_000, what: "reachable" });
    let init = await readInitRecord(run.secrets);
    if (!health.initialized) {
      if (init) {
        throw new OperationError(
          `Vault on ${leader.name} is uninitialized, but the state already holds unseal keys for this cluster.`,
          {
            hint: "The Vault data was wiped or this is another Vault. Move .hashistack/<cluster>/secrets/vault-init.json away only if you are sure the old data is gone.",
          },
        );
      }
      const { keyShares, keyThreshold } = run.config.vault;
      const keys = await readVaultPgpKeys(run.config, "cluster config", (line) => run.reporter.info(line));
      // the shares (and the root token) are written before anything else can fail: without them the Vault is lost
      ({ record: init } = await initialiseVault(vault, run.secrets, {
        shares: keyShares,
        threshold: keyThreshold,
        keys,
      }));
      summary.push(
        `initialised (${keyShares} key shares, threshold ${keyThreshold}${keys.unseal ? ", PGP-encrypted" : ""}${keys.rootToken ? ", root token PGP-encrypted" : ""})`,
      );
    } else if (init && !init.pgp_fingerprints && run.config.vault.unsealPgpKeys) {
      run.reporter.warn(
        "vault.unsealPgpKeys is set, but this Vault was initialised without it: the state keeps plaintext shares (rekey by hand with 'vault operator rekey -init -pgp-keys=…' and replace vault-init.json).",
      );
    }
    if (!init) {
      throw new OperationError(`Vault on ${leader.name} is initialised, but no unseal keys are in the state.`, {
        hint: "Restore .hashistack/<cluster>/secrets/vault-init.json and vault-root-token from your backup.",
      });
    }
    const record = init;
    // the leader first; raft followers join it through retry_join and are unsealed once they have (all at once)
    const unseal = (host: InventoryHost) => (target: VaultClient) =>
      unsealIfSealed(target, record, { secretsFile: run.secrets.fileFor(initSecret), what: `Vault on ${host.name}` });
    if (await unseal(leader)(vault)) summary.push(`unsealed ${leader.name}`);
    await vault.waitUntil((h) => !h.sealed && !h.standby, { timeoutMs: 60_000, what: "unsealed and active" });
    const followers = vaultHosts.filter((h) => h !== leader);
    // PGP-wrapped shares go through the operator's gpg (and maybe a pinentry): one follower at a time
    const unsealed = requireAllSucceeded(
      "unsealing Vault",
      await onEachHost(followers, (host) => withVault(run, host, unseal(host)), {
        concurrency: record.pgp_fingerprints ? 1 : run.config.concurrency,
      }),
    );
    for (const [i, host] of followers.entries()) if (unsealed[i]) summary.push(`unsealed ${host.name}`);
    const rootToken = await vaultRootToken(run.secrets);
    const root = vault.withToken(rootToken);

    await ensureAudit(root, layout.vault.auditLog);
    const rootCa = await ensureRootCa(root, run.config);
    if (rootCa.created) summary.push("root CA created");
    await writeFileAtomic(files.rootCa, `${rootCa.pem.trim()}\n`, 0o644);
    // the intermediates are independent of each other: made at once
    const products = ["consul", "nomad", "vault"] as const;
    const created = await Promise.all(products.map((product) => ensureIntermediate(root, run.config, product)));
    for (const [i, product] of products.entries()) if (created[i]) summary.push(`${product} intermediate created`);
    await ensureRoles(root, pkiRoles(run.config, vaultHosts));
    await Promise.all(Object.entries(renewalPolicies()).map(([name, policy]) => root.putPolicy(name, policy)));

    // Vault's own certificate from its PKI, replacing the bootstrap one (every node at once)
    const reissued = await onVaultHosts(vaultHosts, "installing Vault's PKI certificate", async (host) => {
      const remote = run.remote(host);
      const current = (await remote.runAsRoot(sh`cat ${layout.vault.caFile}`)).stdout.trim();
      if (current === rootCa.pem.trim()) return false;
      const issued = await root.issueCertificate(`${pki.intermediates.vault}/issue/server`, {
        common_name: "vault.service.consul",
        alt_names: ["localhost", "active.vault.service.consul", host.name].join(","),
        ip_sans: ["127.0.0.1", host.privateIp].join(","),
        ttl: run.config.tls.leafTtl,
      });
      await remote.uploadContent(issued.private_key, layout.vault.keyFile, { mode: 0o600, owner: "vault", group: "vault" });
      await remote.uploadContent(`${issued.certificate}\n${issued.issuing_ca}\n`, layout.vault.certFile, { mode: 0o644 });
      await remote.uploadContent(`${rootCa.pem.trim()}\n`, layout.vault.caFile, { mode: 0o644 });
      await remote.service("vault").reload();
      return true;
    });
    for (const [i, host] of vaultHosts.entries()) if (reissued[i]) summary.push(`PKI certificate on ${host.name}`);
    return rootToken;
  });
  // from here on only the cluster root is trusted
  await rm(files.bootstrapCa, { force: true });
  await withVault(
    run,
    leader,
    async (vault) => {
      await vault.waitUntil((h) => !h.sealed, { timeoutMs: 30_000, what: "serving its PKI certificate" });

      await ensureOperatorCertificate(run, vault);
      const renewal = await Promise.all(run.inventory.hosts.map((host) => ensureRenewalToken(run, vault, host)));
      const minted = renewal.filter(Boolean).length;
      if (minted) summary.push(`${minted} renewal tokens`);
    },
    { token: rootToken },
  );
  return summary.length ? summary.join(", ") : "no changes";
}

/**
 * On a Vault that was initialised (the state says so): the active node, else the
 * first initialised one. Undefined on a first bootstrap.
 */
async function initialisedVault(run: ClusterRun, hosts: InventoryHost[]): Promise<InventoryHost | undefined> {
  if (!(await readInitRecord(run.secrets))) return undefined;
  let initialised: InventoryHost | undefined;
  for (const host of hosts) {
    try {
      const health = await withVault(run, host, (v) => v.health());
      if (health.initialized && !health.sealed && !health.standby) return host;
      if (health.initialized) initialised ??= host;
    } catch {
      // not answering yet: ask the next
    }
  }
  return initialised;
}

async function ensureAudit(vault: VaultClient, path: string): Promise<void> {
  const devices = await vault.api.get<Record<string, unknown>>("/v1/sys/audit");
  if ("file/" in devices) return;
  await vault.api.put("/v1/sys/audit/file", { type: "file", options: { file_path: path } });
}

/** The operator's client certificate for the Consul and Nomad APIs (mTLS), kept 0600 in the state. */
async function ensureOperatorCertificate(run: ClusterRun, vault: VaultClient): Promise<void> {
  const files = run.state.tlsFiles;
  if (existsSync(files.operatorCert) && existsSync(files.operatorKey)) {
    const pem = await readFile(files.operatorCert, "utf8");
    const { X509Certificate } = await import("node:crypto");
    const leaf = new X509Certificate(pem);
    const remaining = new Date(leaf.validTo).getTime() - Date.now();
    if (remaining > 60 * 60 * 1000) return;
  }
  const issued = await vault.issueCertificate(`${pki.intermediates.nomad}/issue/operator`, {
    common_name: `cli.${run.config.region}.nomad`,
    ttl: operatorCertificateTtl(run.config),
  });
  await writeFileAtomic(files.operatorKey, issued.private_key, 0o600);
  await writeFileAtomic(files.operatorCert, `${issued.certificate}\n${issued.issuing_ca}\n`, 0o644);
}

/**
 * A periodic token per node for consul-template, kept in the state; a valid one
 * whose period still outlives the leaf TTL is kept, a shorter one is replaced
 * (and revoked once the new one is stored).
 */
async function ensureRenewalToken(run: ClusterRun, vault: VaultClient, host: InventoryHost): Promise<boolean> {
  const name = `vault-renewal-token.${host.name}`;
  const period = renewalTokenPeriodSeconds(run.config);
  const existing = await run.secrets.read(name);
  let replaced: string | undefined;
  if (existing) {
    try {
      const self = await vault.withToken(existing).api.get<{ data: { period?: number } }>("/v1/auth/token/lookup-self");
      if ((self.data.period ?? 0) >= period) return false;
      replaced = existing;
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 403)) throw error;
    }
  }
  const created = await vault.api.post<{ auth: { client_token: string } }>("/v1/auth/token/create-orphan", {
    policies: renewalPoliciesFor(host),
    period: `${period}s`,
    display_name: `cert-renewal-${host.name}`,
    no_default_policy: false,
    meta: { host: host.name },
  });
  await run.secrets.write(name, created.auth.client_token);
  if (replaced) await vault.api.post("/v1/auth/token/revoke", { token: replaced });
  return true;
}
