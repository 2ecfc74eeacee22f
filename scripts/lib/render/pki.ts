/** Vault PKI mounts and roles: one root CA, one intermediate per product (seed 003 §5.2.2). */
export const pki = {
  rootMount: "pki-root",
  intermediates: {
    consul: "pki-consul",
    nomad: "pki-nomad",
    vault: "pki-vault",
  },
  roles: { server: "server", client: "client" },
} as const;

export type PkiProduct = keyof typeof pki.intermediates;

export function issuePath(product: PkiProduct, role: "server" | "client"): string {
  return `${pki.intermediates[product]}/issue/${pki.roles[role]}`;
}

/** Names Consul and Nomad check with verify_server_hostname. */
export function certificateNames(options: { datacenter: string; region: string }) {
  return {
    consulServer: `server.${options.datacenter}.consul`,
    consulClient: `client.${options.datacenter}.consul`,
    nomadServer: `server.${options.region}.nomad`,
    nomadClient: `client.${options.region}.nomad`,
    vaultServer: "vault.service.consul",
  };
}
