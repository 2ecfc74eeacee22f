/**
 * The cluster PKI in Vault (seed 003 §5.2.2): one root CA, one intermediate per
 * product, roles that only issue the names each agent needs, and the policies
 * the certificate-renewal agents use. Every step checks before it writes.
 */
import type { VaultClient } from "../clients/vault.ts";
import type { ClusterConfig } from "../config/schema.ts";
import type { InventoryHost } from "../inventory/schema.ts";
import { certificateNames, issuePath, pki, type PkiProduct } from "../render/pki.ts";
import { durationSeconds } from "../util/duration.ts";

const keyParams = { key_type: "ec", key_bits: 256 };

async function caCertificate(vault: VaultClient, mount: string): Promise<string | undefined> {
  try {
    const response = await vault.read<{ certificate: string }>(`${mount}/cert/ca`);
    return response.data.certificate?.trim() || undefined;
  } catch {
    return undefined; // no issuer yet
  }
}

export async function ensureRootCa(vault: VaultClient, config: ClusterConfig): Promise<{ pem: string; created: boolean }> {
  await vault.ensureMount(pki.rootMount, "pki", { max_lease_ttl: config.tls.rootTtl });
  const existing = await caCertificate(vault, pki.rootMount);
  if (existing) return { pem: existing, created: false };
  const generated = await vault.write<{ certificate: string }>(`${pki.rootMount}/root/generate/internal`, {
    common_name: `${config.name} root CA`,
    issuer_name: "root",
    ttl: config.tls.rootTtl,
    ...keyParams,
  });
  return { pem: generated?.data.certificate ?? "", created: true };
}

export async function ensureIntermediate(vault: VaultClient, config: ClusterConfig, product: PkiProduct): Promise<boolean> {
  const mount = pki.intermediates[product];
  await vault.ensureMount(mount, "pki", { max_lease_ttl: config.tls.intermediateTtl });
  if (await caCertificate(vault, mount)) return false;
  const csr = await vault.write<{ csr: string }>(`${mount}/intermediate/generate/internal`, {
    common_name: `${config.name} ${product} intermediate CA`,
    ...keyParams,
  });
  const signed = await vault.write<{ certificate: string; issuing_ca: string }>(`${pki.rootMount}/root/sign-intermediate`, {
    csr: csr?.data.csr,
    format: "pem_bundle",
    ttl: config.tls.intermediateTtl,
  });
  await vault.write(`${mount}/intermediate/set-signed`, { certificate: signed?.data.certificate });
  return true;
}

/** 24 h, or the intermediate's lifetime if that is shorter. */
export function operatorCertificateTtl(config: ClusterConfig): string {
  return durationSeconds(config.tls.intermediateTtl) < 86_400 ? config.tls.intermediateTtl : "24h";
}

/**
 * The renewal tokens' period: a Vault outage shorter than this leaves every node's
 * token renewable. Twice the leaf TTL (at least a day), so the tokens outlive the
 * certificates they renew: while any certificate is still valid, its renewal works
 * again as soon as Vault is back.
 */
export function renewalTokenPeriodSeconds(config: ClusterConfig): number {
  return Math.max(2 * durationSeconds(config.tls.leafTtl), 86_400);
}

export const platformPkiRole = "platform";
export const platformCertificateName = (region: string) => `platform.${region}.nomad`;

/** Roles: each issues only the names verify_server_hostname expects for its kind of agent. */
export function pkiRoles(config: ClusterConfig, vaultHosts: InventoryHost[]) {
  const names = certificateNames(config);
  const common = {
    allow_bare_domains: true,
    allow_subdomains: true,
    allow_glob_domains: false,
    allow_localhost: true,
    allow_ip_sans: true,
    server_flag: true,
    client_flag: true,
    max_ttl: config.tls.leafTtl,
    ttl: config.tls.leafTtl,
    ...keyParams,
  };
  const nodeDomain = `node.${config.datacenter}.consul`;
  const serviceDomain = `service.${config.datacenter}.consul`;
  return [
    {
      path: `${pki.intermediates.consul}/roles/server`,
      body: { ...common, allowed_domains: [names.consulServer, nodeDomain, "localhost"] },
    },
    {
      path: `${pki.intermediates.consul}/roles/client`,
      body: { ...common, allowed_domains: [names.consulClient, nodeDomain, "localhost"] },
    },
    {
      path: `${pki.intermediates.nomad}/roles/server`,
      body: { ...common, allowed_domains: [names.nomadServer, serviceDomain, "localhost"] },
    },
    {
      path: `${pki.intermediates.nomad}/roles/client`,
      body: { ...common, allowed_domains: [names.nomadClient, serviceDomain, "localhost"] },
    },
    // operators' CLI certificates: accepted by Consul and Nomad, which only check the chain
    {
      path: `${pki.intermediates.nomad}/roles/operator`,
      body: {
        ...common,
        server_flag: false,
        allow_subdomains: false,
        allow_ip_sans: false,
        allowed_domains: [`cli.${config.region}.nomad`],
        // the operator's certificate outlives short agent leaves (each bootstrap run renews it)
        max_ttl: config.tls.intermediateTtl,
        ttl: operatorCertificateTtl(config),
      },
    },
    // platform jobs (Prometheus, Fabio) reading Nomad, Consul and Vault APIs: client-only, one name
    {
      path: `${pki.intermediates.nomad}/roles/${platformPkiRole}`,
      body: {
        ...common,
        server_flag: false,
        allow_subdomains: false,
        allow_ip_sans: false,
        allow_localhost: false,
        allowed_domains: [platformCertificateName(config.region)],
        max_ttl: "72h",
        ttl: "24h",
      },
    },
    {
      path: `${pki.intermediates.vault}/roles/server`,
      body: { ...common, allowed_domains: [names.vaultServer, "localhost", ...vaultHosts.map((h) => h.name)] },
    },
  ];
}

export async function ensureRoles(vault: VaultClient, roles: ReturnType<typeof pkiRoles>): Promise<void> {
  // writing a role with the same body changes nothing in Vault; it is a cheap upsert
  for (const role of roles) await vault.write(role.path, role.body);
}

/** Renewal policies: a node may only issue certificates of its own kind. */
export function renewalPolicies(): Record<string, string> {
  const issue = (product: PkiProduct, role: "server" | "client") =>
    `path "${issuePath(product, role)}" {\n  capabilities = ["update"]\n}\n`;
  return {
    "cert-renewal-server": issue("consul", "server") + issue("nomad", "server"),
    "cert-renewal-client": issue("consul", "client") + issue("nomad", "client"),
    "cert-renewal-vault": issue("vault", "server"),
  };
}

export function renewalPoliciesFor(host: InventoryHost): string[] {
  return [
    host.roles.includes("server") ? "cert-renewal-server" : "cert-renewal-client",
    ...(host.roles.includes("vault") ? ["cert-renewal-vault"] : []),
  ];
}
