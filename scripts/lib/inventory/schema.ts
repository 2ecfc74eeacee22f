/**
 * The inventory (`inventories/<cluster>.yaml`): the hand-off between a provider
 * and every later stage. Stages only ever see this, so any provider — or a
 * hand-written file for existing hosts — drives the same pipeline.
 */
import { providerTypes } from "../providers/registry.ts";
import { z } from "zod";
import { isIpv4 } from "../util/net.ts";

const ipv4 = z.string().refine(isIpv4, "expected an IPv4 address such as 10.99.0.11");
const hostName = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, "expected a DNS label: lower-case letters, digits and '-'");

export const roles = ["server", "client", "vault"] as const;
export type Role = (typeof roles)[number];

export const inventoryHostSchema = z
  .strictObject({
    name: hostName,
    roles: z.array(z.enum(roles)).min(1),
    privateIp: ipv4,
    publicIp: ipv4.optional(),
    ssh: z
      .strictObject({
        user: z.string().min(1).default("root"),
        port: z.number().int().min(1).max(65535).default(22),
        /** private key path; relative paths are resolved against the inventory file */
        keyPath: z.string().min(1).optional(),
        /** host to connect to; default publicIp, else privateIp */
        host: z.string().min(1).optional(),
      })
      .default({ user: "root", port: 22 }),
    /** free-form provider facts (droplet id, machine name, …) */
    labels: z.record(z.string(), z.string()).optional(),
  })
  .refine((h) => !(h.roles.includes("server") && h.roles.includes("client")), {
    message: "a host is either a server or a client, not both (Consul runs one agent per host)",
    path: ["roles"],
  })
  .refine((h) => h.roles.includes("server") || h.roles.includes("client"), {
    message: "every host needs the role 'server' or 'client' ('vault' is added to one of them)",
    path: ["roles"],
  })
  .refine((h) => new Set(h.roles).size === h.roles.length, { message: "a role is listed twice", path: ["roles"] });

export const inventorySchema = z
  .strictObject({
    cluster: z.string().min(1),
    provider: z.enum(providerTypes).default("static"),
    hosts: z.array(inventoryHostSchema).min(1),
  })
  .superRefine((inventory, ctx) => {
    const seen = { name: new Map<string, number>(), privateIp: new Map<string, number>() };
    inventory.hosts.forEach((host, index) => {
      for (const key of ["name", "privateIp"] as const) {
        const first = seen[key].get(host[key]);
        if (first !== undefined) {
          ctx.addIssue({
            code: "custom",
            path: ["hosts", index, key],
            message: `duplicate ${key} '${host[key]}', already used by hosts[${first}]`,
          });
        } else seen[key].set(host[key], index);
      }
    });
    const servers = inventory.hosts.filter((h) => h.roles.includes("server")).length;
    if (servers === 0) ctx.addIssue({ code: "custom", path: ["hosts"], message: "no host has the role 'server'" });
    else if (servers % 2 === 0) {
      ctx.addIssue({
        code: "custom",
        path: ["hosts"],
        message: `${servers} servers cannot keep a raft quorum: use an odd number`,
      });
    }
    const vaults = inventory.hosts.filter((h) => h.roles.includes("vault")).length;
    if (vaults !== 1 && vaults !== 3) {
      ctx.addIssue({
        code: "custom",
        path: ["hosts"],
        message: `${vaults} hosts have the role 'vault': give it to exactly one host (or three for Vault HA)`,
      });
    }
  });

export type Inventory = z.output<typeof inventorySchema>;
export type InventoryHost = Inventory["hosts"][number];

export function hostsWithRole(inventory: Inventory, role: Role): InventoryHost[] {
  return inventory.hosts.filter((h) => h.roles.includes(role));
}
