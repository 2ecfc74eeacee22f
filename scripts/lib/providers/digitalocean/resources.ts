/**
 * The API shapes we use and the desired resources of a cluster: droplet
 * create bodies (with cloud-init from templates/digitalocean/), the firewall
 * rules, the volume and the project. Pure: nothing here talks to the API.
 */
import type { ClusterConfig } from "../../config/schema.ts";
import type { Role } from "../../inventory/schema.ts";
import { sharedEngine } from "../../render/engine.ts";
import { plannedHosts } from "../../topology.ts";
import { doNames } from "./names.ts";

export interface Droplet {
  id: number;
  name: string;
  status: "new" | "active" | "off" | "archive";
  tags: string[];
  vpc_uuid?: string;
  size_slug: string;
  region: { slug: string };
  networks: { v4: { ip_address: string; type: "public" | "private" }[] };
  volume_ids: string[];
}
export interface SshKey {
  id: number;
  fingerprint: string;
  name: string;
  public_key: string;
}
export interface Vpc {
  id: string;
  name: string;
  region: string;
  ip_range: string;
  default: boolean;
  urn: string;
}
export interface Firewall {
  id: string;
  name: string;
  status: string;
  tags: string[] | null;
}
export interface Volume {
  id: string;
  name: string;
  size_gigabytes: number;
  droplet_ids: number[] | null;
  tags: string[] | null;
  region: { slug: string };
}
export interface Project {
  id: string;
  name: string;
  is_default: boolean;
}
export interface Action {
  id: number;
  status: "in-progress" | "completed" | "errored";
  type: string;
}
export interface Size {
  slug: string;
  price_monthly: number;
  regions: string[];
  available: boolean;
  memory: number;
  vcpus: number;
}

export interface DesiredDroplet {
  host: string;
  roles: Role[];
  body: {
    name: string;
    region: string;
    size: string;
    image: string;
    ssh_keys: string[];
    tags: string[];
    vpc_uuid: string;
    user_data: string;
    monitoring: boolean;
    ipv6: boolean;
  };
}

/** The ports reachable from `allowedCidrs`: SSH and the web UIs/APIs (all TLS). */
export const uiPorts = [
  { port: "22", what: "SSH" },
  { port: "8501", what: "Consul HTTPS" },
  { port: "4646", what: "Nomad HTTPS" },
  { port: "8200", what: "Vault HTTPS" },
  { port: "3000", what: "Grafana" },
  { port: "9999", what: "Fabio" },
];

export function desiredDroplets(config: ClusterConfig, sshKeyFingerprint: string, vpcId: string): DesiredDroplet[] {
  const options = config.provider.digitalocean;
  const names = doNames(config.name);
  const engine = sharedEngine();
  return plannedHosts(config).map((host) => {
    const server = host.roles.includes("server");
    return {
      host: host.name,
      roles: host.roles,
      body: {
        name: names.droplet(host.name),
        region: options.region,
        size: server ? options.serverSize : options.clientSize,
        image: options.image,
        ssh_keys: [sshKeyFingerprint],
        // role tags as in seed 003 (server, client, vault) next to the cluster tag
        tags: [names.tag, ...host.roles],
        vpc_uuid: vpcId,
        user_data: engine.render("digitalocean/cloud-init.yaml.hbs", {
          hostname: names.droplet(host.name),
          cluster: config.name,
          roles: host.roles.join(","),
          vpcIpRange: options.vpcIpRange,
        }),
        monitoring: true,
        ipv6: false,
      },
    };
  });
}

export function firewallBody(config: ClusterConfig) {
  const names = doNames(config.name);
  const allowed = config.provider.digitalocean.allowedCidrs;
  // the config schema requires it with this provider
  if (!allowed) throw new Error("bug: firewallBody called without provider.digitalocean.allowedCidrs");
  const sources = { addresses: allowed };
  const cluster = { tags: [names.tag] };
  return {
    name: names.firewall,
    tags: [names.tag],
    inbound_rules: [
      ...uiPorts.map(({ port }) => ({ protocol: "tcp" as const, ports: port, sources })),
      // cluster traffic (RPC, gossip, Nomad dynamic ports) only between droplets of this cluster
      { protocol: "tcp" as const, ports: "1-65535", sources: cluster },
      { protocol: "udp" as const, ports: "1-65535", sources: cluster },
      { protocol: "icmp" as const, ports: "0", sources: cluster },
    ],
    outbound_rules: (["tcp", "udp"] as const)
      .map((protocol) => ({ protocol, ports: "1-65535", destinations: { addresses: ["0.0.0.0/0", "::/0"] } }))
      .concat([{ protocol: "icmp" as never, ports: "0", destinations: { addresses: ["0.0.0.0/0", "::/0"] } }]),
  };
}

export function volumeBody(config: ClusterConfig) {
  const names = doNames(config.name);
  return {
    name: names.volume,
    size_gigabytes: config.provider.digitalocean.volumeSizeGb,
    region: config.provider.digitalocean.region,
    filesystem_type: "ext4",
    filesystem_label: "hashistack",
    tags: [names.tag],
    description: `persistent data of cluster ${config.name} (hashistack-bootstrap)`,
  };
}

/** The volume goes to the first client (Prometheus' persistent storage), else the first server. */
export function volumeHost(config: ClusterConfig): string {
  const hosts = plannedHosts(config);
  return (hosts.find((h) => h.roles.includes("client")) ?? hosts[0]!).name;
}

/** The VPC address of a droplet: its `private` v4 network (never eth0's anchor address, which the API does not list). */
export function privateIpOf(droplet: Droplet): string | undefined {
  return droplet.networks.v4.find((n) => n.type === "private")?.ip_address;
}

export function publicIpOf(droplet: Droplet): string | undefined {
  return droplet.networks.v4.find((n) => n.type === "public")?.ip_address;
}
