import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { validationProblems } from "../../helpers/validation.ts";
import { inventorySchema } from "../../../scripts/lib/inventory/schema.ts";
import { parseYamlText } from "../../../scripts/lib/util/validated-yaml.ts";
import { plannedInventory } from "../../../scripts/lib/topology.ts";
import { makeConfig } from "../../helpers/fixtures.ts";

const host = (name: string, roles: string, ip: string) => `  - { name: ${name}, roles: [${roles}], privateIp: ${ip} }\n`;
const base = "cluster: lab\nhosts:\n";

const problems = (yaml: string) => validationProblems(yaml, "inv.yaml", inventorySchema, "Inventory");

describe("inventory", () => {
  it("accepts the committed static example", () => {
    const inventory = parseYamlText(readFileSync("inventories/example-static.yaml", "utf8"), "x", inventorySchema, "Inventory");
    expect(inventory.hosts.map((h) => h.name)).toEqual(["server-1", "server-2", "server-3", "client-1", "client-2"]);
    expect(inventory.hosts[0]?.ssh).toEqual({ user: "admin", port: 22, keyPath: "~/.ssh/id_ed25519" });
  });

  it("fills SSH defaults", () => {
    const inventory = parseYamlText(base + host("s1", "server, vault", "10.0.0.1"), "x", inventorySchema, "Inventory");
    expect(inventory.hosts[0]?.ssh).toEqual({ user: "root", port: 22 });
    expect(inventory.provider).toBe("static");
  });

  it("rejects duplicate names and addresses, naming the first use", () => {
    const yaml = base + host("s1", "server, vault", "10.0.0.1") + host("s1", "client", "10.0.0.1");
    expect(problems(yaml)).toEqual([
      "inv.yaml:4:13 hosts[1].name: duplicate name 's1', already used by hosts[0]",
      "inv.yaml:4:45 hosts[1].privateIp: duplicate privateIp '10.0.0.1', already used by hosts[0]",
    ]);
  });

  it("needs an odd number of servers and one vault host", () => {
    const yaml = base + host("s1", "server", "10.0.0.1") + host("s2", "server", "10.0.0.2");
    expect(problems(yaml)).toEqual([
      "inv.yaml:3:3 hosts: 2 servers cannot keep a raft quorum: use an odd number",
      "inv.yaml:3:3 hosts: 0 hosts have the role 'vault': give it to exactly one host (or three for Vault HA)",
    ]);
  });

  it("rejects bad addresses, roles and a host that is both server and client", () => {
    expect(problems(base + host("s1", "server, vault", "10.0.0.300"))).toEqual([
      'inv.yaml:3:52 hosts[0].privateIp: expected an IPv4 address such as 10.99.0.11, found "10.0.0.300"',
    ]);
    expect(problems(base + host("s1", "server, vault, db", "10.0.0.1"))[0]).toBe(
      'inv.yaml:3:40 hosts[0].roles[2]: expected one of "server", "client", "vault", found "db"',
    );
    expect(problems(base + host("s1", "server, client, vault", "10.0.0.1"))).toEqual([
      "inv.yaml:3:24 hosts[0].roles: a host is either a server or a client, not both (Consul runs one agent per host)",
    ]);
  });

  it("plans addresses from the topology for providers that choose them", () => {
    const config = makeConfig({ topology: { servers: 3, clients: 2 } });
    const inventory = plannedInventory(config, "10.99.0.0/24", { user: "root", port: 22 }, "local");
    expect(inventory.hosts.map((h) => [h.name, h.roles.join("+"), h.privateIp])).toEqual([
      ["server-1", "server+vault", "10.99.0.11"],
      ["server-2", "server+vault", "10.99.0.12"],
      ["server-3", "server+vault", "10.99.0.13"],
      ["client-1", "client", "10.99.0.101"],
      ["client-2", "client", "10.99.0.102"],
    ]);
    expect(() => inventorySchema.parse(inventory)).not.toThrow();
    expect(() => plannedInventory(config, "10.99.0.0/26", { user: "root", port: 22 }, "local")).toThrow(/too small for 5 nodes/);
  });

  it("places Vault HA on the first three servers", () => {
    const config = makeConfig({ topology: { servers: 3, clients: 0, vaultHa: true } });
    const inventory = plannedInventory(config, "10.99.0.0/24", { user: "root", port: 22 }, "local");
    expect(inventory.hosts.filter((h) => h.roles.includes("vault")).map((h) => h.name)).toEqual([
      "server-1",
      "server-2",
      "server-3",
    ]);
    const wrong = makeConfig({ topology: { servers: 3, clients: 0, vaultNodes: ["server-9"] } });
    expect(() => plannedInventory(wrong, "10.99.0.0/24", { user: "root", port: 22 }, "local")).toThrow(/'server-9'/);
  });
});
