/**
 * Where things live on a node. One place, so templates, stages and tests agree;
 * `root` lets tests render a layout under a temp dir and run real agents on it.
 */
import { join } from "node:path";

export interface ProductPaths {
  configDir: string;
  configFile: string;
  dataDir: string;
  tlsDir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  unit: string;
}

export interface NodeLayout {
  root: string;
  binDir: string;
  consul: ProductPaths;
  nomad: ProductPaths & { hostVolumesDir: string; pluginDir: string };
  vault: ProductPaths & { auditLog: string; loopbackPort: number };
  consulTemplate: {
    configDir: string;
    configFile: string;
    templatesDir: string;
    tokenFile: string;
    /** the templates' command: installs a renewed certificate and key, then reloads the agent */
    installScript: string;
    unit: string;
  };
  /** Nomad's public keys for Consul and Vault on servers and Vault nodes (templates/jwks-proxy) */
  jwksProxy: { script: string; unit: string };
  resolvedDropIn: string;
}

function product(root: string, name: string, certName: string): ProductPaths {
  const configDir = join(root, "etc", `${name}.d`);
  const tlsDir = join(configDir, "tls");
  return {
    configDir,
    configFile: join(configDir, `${name}.hcl`),
    dataDir: join(root, "opt", name, "data"),
    tlsDir,
    caFile: join(tlsDir, "ca.pem"),
    certFile: join(tlsDir, `${certName}.pem`),
    keyFile: join(tlsDir, `${certName}-key.pem`),
    unit: join(root, "etc", "systemd", "system", `${name}.service`),
  };
}

export function nodeLayout(root = "/"): NodeLayout {
  const consulTemplateDir = join(root, "etc", "consul-template.d");
  const nomad = product(root, "nomad", "agent");
  return {
    root,
    binDir: join(root, "usr", "local", "bin"),
    consul: product(root, "consul", "agent"),
    nomad: { ...nomad, hostVolumesDir: join(root, "opt", "nomad", "volumes"), pluginDir: join(root, "opt", "nomad", "plugins") },
    vault: { ...product(root, "vault", "vault"), auditLog: join(root, "var", "log", "vault", "audit.log"), loopbackPort: 8200 },
    consulTemplate: {
      configDir: consulTemplateDir,
      configFile: join(consulTemplateDir, "consul-template.hcl"),
      templatesDir: join(consulTemplateDir, "templates"),
      tokenFile: join(consulTemplateDir, "vault-token"),
      installScript: join(root, "usr", "local", "libexec", "hashistack", "install-certificate"),
      unit: join(root, "etc", "systemd", "system", "consul-template.service"),
    },
    jwksProxy: {
      script: join(root, "usr", "local", "libexec", "hashistack", "nomad-jwks-proxy.mjs"),
      unit: join(root, "etc", "systemd", "system", "nomad-jwks-proxy.service"),
    },
    resolvedDropIn: join(root, "etc", "systemd", "resolved.conf.d", "consul.conf"),
  };
}

/** Fixed ports: the cluster never exposes a plain-HTTP API port. */
export const ports = {
  consulHttps: 8501,
  consulGrpcTls: 8503,
  consulDns: 8600,
  consulServerRpc: 8300,
  consulSerfLan: 8301,
  nomadHttp: 4646,
  nomadRpc: 4647,
  nomadSerf: 4648,
  /** loopback only: the JWKS proxy (GET /.well-known/jwks.json) */
  nomadJwksProxy: 4649,
  /** the JWKS proxy's health as Prometheus metrics (GET /metrics, plain HTTP, private address) */
  nomadJwksProxyMetrics: 4650,
  vaultApi: 8200,
  vaultCluster: 8201,
} as const;
