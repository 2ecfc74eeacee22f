/**
 * The planned hosts of a cluster: names, roles and addresses derived from the
 * topology in the config. Providers with addresses we choose (local, vagrant)
 * use this directly, so the inventory is known before anything is created.
 */
import type { ClusterConfig } from "./config/schema.ts";
import { InputError } from "./errors.ts";
import type { Inventory, InventoryHost, Role } from "./inventory/schema.ts";
import { cidrSize, formatIpv4, parseCidr } from "./util/net.ts";

export interface PlannedHost {
  name: string;
  roles: Role[];
  /** offset inside the private CIDR */
  offset: number;
}

const serverOffset = 10;
const clientOffset = 100;

export function plannedHosts(config: ClusterConfig): PlannedHost[] {
  const { servers, clients, vaultHa } = config.topology;
  const hosts: PlannedHost[] = [];
  for (let i = 1; i <= servers; i++) hosts.push({ name: `server-${i}`, roles: ["server"], offset: serverOffset + i });
  for (let i = 1; i <= clients; i++) hosts.push({ name: `client-${i}`, roles: ["client"], offset: clientOffset + i });
  const vaultNames =
    config.topology.vaultNodes ??
    hosts
      .filter((h) => h.roles.includes("server"))
      .slice(0, vaultHa ? 3 : 1)
      .map((h) => h.name);
  for (const name of vaultNames) {
    const host = hosts.find((h) => h.name === name);
    if (!host) {
      throw new InputError(`topology.vaultNodes names '${name}', which is not a node of this topology.`, {
        hint: `Node names are ${hosts.map((h) => h.name).join(", ")}.`,
      });
    }
    host.roles.push("vault");
  }
  return hosts;
}

/** Addresses for a provider whose private network we choose (local, vagrant). */
export function plannedInventory(
  config: ClusterConfig,
  cidrText: string,
  ssh: InventoryHost["ssh"],
  provider: Inventory["provider"],
): Inventory {
  const cidr = parseCidr(cidrText);
  if (!cidr) throw new InputError(`'${cidrText}' is not an IPv4 CIDR.`);
  const hosts = plannedHosts(config);
  const highest = Math.max(...hosts.map((h) => h.offset));
  if (highest >= cidrSize(cidr) - 1) {
    throw new InputError(`The private network ${cidrText} is too small for ${hosts.length} nodes.`, {
      hint: "Use a /24 or larger: servers take .11–.17 and clients .101 upwards.",
    });
  }
  return {
    cluster: config.name,
    provider,
    hosts: hosts.map((h) => {
      const ip = formatIpv4(cidr.network + h.offset);
      return { name: h.name, roles: h.roles, privateIp: ip, publicIp: ip, ssh };
    }),
  };
}

/** The host-side address of a provider network (the bridge or host-only interface): .1 */
export function gatewayAddress(cidrText: string): string {
  const cidr = parseCidr(cidrText);
  if (!cidr) throw new InputError(`'${cidrText}' is not an IPv4 CIDR.`);
  return formatIpv4(cidr.network + 1);
}
