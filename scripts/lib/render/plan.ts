/**
 * What gets installed on each host: the rendered files with their destination,
 * mode and owner. `render` writes this plan to disk for reading; the install
 * stages upload exactly the same plan.
 */
import { deniedFingerprinters } from "./nomad-fingerprints.ts";
import { taskIsolation } from "../security/tenancy.ts";
import { join } from "node:path";
import { type ClusterConfig, runtimeProfile } from "../config/schema.ts";
import { hostsWithRole, type Inventory, type InventoryHost } from "../inventory/schema.ts";
import type { RenderSecrets } from "../state/secrets.ts";
import { readFileSync } from "node:fs";
import { sharedEngine, templatesDir } from "./engine.ts";
import { type NodeLayout, nodeLayout, ports } from "./layout.ts";
import { certificateNames, issuePath, type PkiProduct } from "./pki.ts";

export interface PlannedFile {
  /** absolute path on the node */
  path: string;
  content: string;
  mode: number;
  owner: string;
  group: string;
  /** true when the content holds a secret (gossip key, token) */
  secret: boolean;
}

export interface HostPlan {
  host: InventoryHost;
  files: PlannedFile[];
}

interface CertificateSpec {
  product: PkiProduct;
  role: "server" | "client";
  owner: string;
  commonName: string;
  altNames: string[];
  certFile: string;
  keyFile: string;
  reloadUnit: string;
}

export interface PlanOptions {
  /** node paths; a function gives each host its own root (tests run several "nodes" on one machine) */
  layout?: NodeLayout | ((host: InventoryHost) => NodeLayout);
}

export function planCluster(
  config: ClusterConfig,
  inventory: Inventory,
  secrets: RenderSecrets,
  options: PlanOptions = {},
): HostPlan[] {
  const engine = sharedEngine();
  const layoutFor =
    typeof options.layout === "function" ? options.layout : () => (options.layout as NodeLayout | undefined) ?? nodeLayout();
  const servers = hostsWithRole(inventory, "server");
  const vaultHosts = hostsWithRole(inventory, "vault");
  if (!vaultHosts[0]) throw new Error("inventory has no vault host (validated earlier)");
  const names = certificateNames(config);

  return inventory.hosts.map((host) => {
    const layout = layoutFor(host);
    const isServer = host.roles.includes("server");
    const isVault = host.roles.includes("vault");
    const certificates = certificatesFor(host, config, layout);
    const context = {
      cluster: {
        name: config.name,
        datacenter: config.datacenter,
        region: config.region,
        logLevel: config.agents.logLevel.toUpperCase(),
      },
      host: { ...host, isServer, isClient: !isServer, isVault, runsJwksProxy: isServer || isVault },
      layout,
      ports,
      runtime: runtimeProfile(config),
      taskIsolation,
      deniedFingerprinters: deniedFingerprinters(inventory.provider),
      serverCount: servers.length,
      consulRetryJoin: servers.map((s) => s.privateIp),
      nomadServerIps: servers.map((s) => s.privateIp),
      nomadServerRpcAddrs: servers.map((s) => `${s.privateIp}:${ports.nomadRpc}`),
      vaultPeers: isVault ? vaultHosts.filter((v) => v.name !== host.name).map((v) => v.privateIp) : [],
      // a Vault node renews through its own Vault (a standby forwards to the active node);
      // other nodes through vault.service.consul, i.e. any unsealed Vault node. Their first
      // certificates come before Consul (and its DNS) exists: the certificates stage issues
      // those once through a Vault node's address (certificates.ts)
      vaultAddress: isVault ? `https://127.0.0.1:${layout.vault.loopbackPort}` : `https://${names.vaultServer}:${ports.vaultApi}`,
      // Nomad starts after Consul: other nodes find any unsealed Vault node by name
      nomadVaultAddress: isVault
        ? `https://127.0.0.1:${layout.vault.loopbackPort}`
        : `https://vault.service.consul:${ports.vaultApi}`,
      caFileForRenewal: layout.consul.caFile,
      secrets,
      certificateTemplates: certificates.map((c) => {
        const bundle = bundleFile(c.certFile);
        return {
          source: templateSource(layout, c),
          destination: bundle,
          // see install-certificate.sh.hbs for why the files are not written by the template itself
          command: [layout.consulTemplate.installScript, bundle, c.certFile, c.keyFile, c.owner, c.reloadUnit],
        };
      }),
    };
    const file = (template: string, path: string, mode: number, owner = "root", group = "root", secret = false): PlannedFile => ({
      path,
      content: engine.render(template, context),
      mode,
      owner,
      group,
      secret,
    });

    const files: PlannedFile[] = [
      file("consul/agent.hcl.hbs", layout.consul.configFile, 0o640, "root", "consul", true),
      file("systemd/consul.service.hbs", layout.consul.unit, 0o644),
      file("nomad/agent.hcl.hbs", layout.nomad.configFile, 0o640, "root", "nomad", true),
      file("systemd/nomad.service.hbs", layout.nomad.unit, 0o644),
      file("consul-template/consul-template.hcl.hbs", layout.consulTemplate.configFile, 0o640),
      file("consul-template/install-certificate.sh.hbs", layout.consulTemplate.installScript, 0o755),
      file("systemd/consul-template.service.hbs", layout.consulTemplate.unit, 0o644),
      file("dns/consul-resolved.conf.hbs", layout.resolvedDropIn, 0o644),
    ];
    if (isServer || isVault) {
      files.push(file("systemd/nomad-jwks-proxy.service.hbs", layout.jwksProxy.unit, 0o644), {
        path: layout.jwksProxy.script,
        content: readFileSync(join(templatesDir, "jwks-proxy", "nomad-jwks-proxy.mjs"), "utf8"),
        mode: 0o644,
        owner: "root",
        group: "root",
        secret: false,
      });
    }
    if (isVault) {
      files.push(
        file("vault/vault.hcl.hbs", layout.vault.configFile, 0o640, "root", "vault"),
        file("systemd/vault.service.hbs", layout.vault.unit, 0o644),
      );
    }
    for (const certificate of certificates) {
      files.push({
        path: templateSource(layout, certificate),
        content: engine.render("consul-template/certs/leaf.tpl.hbs", {
          ...context,
          product: certificate.product,
          role: certificate.role,
          issuePath: issuePath(certificate.product, certificate.role),
          commonName: certificate.commonName,
          altNames: certificate.altNames.join(","),
          ipSans: [
            "127.0.0.1",
            host.privateIp,
            ...(host.publicIp && host.publicIp !== host.privateIp ? [host.publicIp] : []),
          ].join(","),
          ttl: config.tls.leafTtl,
        }),
        mode: 0o644,
        owner: "root",
        group: "root",
        secret: false,
      });
    }
    return { host, files };
  });
}

/** consul-template's destination: certificate, CA and key together (0600), see leaf.tpl.hbs. */
export function bundleFile(certFile: string): string {
  return certFile.replace(/\.pem$/, "-bundle.pem");
}

function templateSource(layout: NodeLayout, certificate: CertificateSpec): string {
  return join(layout.consulTemplate.templatesDir, `${certificate.product}-${certificate.role}.pem.tpl`);
}

/** Certificates a host needs, with the names verify_server_hostname checks. */
function certificatesFor(host: InventoryHost, config: ClusterConfig, layout: NodeLayout): CertificateSpec[] {
  const names = certificateNames(config);
  const isServer = host.roles.includes("server");
  const role = isServer ? "server" : "client";
  const specs: CertificateSpec[] = [
    {
      product: "consul",
      role,
      owner: "consul",
      commonName: isServer ? names.consulServer : names.consulClient,
      altNames: [
        isServer ? names.consulServer : names.consulClient,
        "localhost",
        `${host.name}.node.${config.datacenter}.consul`,
      ],
      certFile: layout.consul.certFile,
      keyFile: layout.consul.keyFile,
      reloadUnit: "consul",
    },
    {
      product: "nomad",
      role,
      owner: "nomad",
      commonName: isServer ? names.nomadServer : names.nomadClient,
      altNames: [isServer ? names.nomadServer : names.nomadClient, "localhost", `nomad.service.${config.datacenter}.consul`],
      certFile: layout.nomad.certFile,
      keyFile: layout.nomad.keyFile,
      reloadUnit: "nomad",
    },
  ];
  if (host.roles.includes("vault")) {
    specs.push({
      product: "vault",
      role: "server",
      owner: "vault",
      commonName: names.vaultServer,
      altNames: [names.vaultServer, "active.vault.service.consul", "localhost", host.name],
      certFile: layout.vault.certFile,
      keyFile: layout.vault.keyFile,
      reloadUnit: "vault",
    });
  }
  return specs;
}
