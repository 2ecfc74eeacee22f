/**
 * Vault HA: three Vault servers on integrated raft storage (topology.vaultHa).
 * Followers join the leader with a shared bootstrap CA, are unsealed after they
 * join, get their own PKI certificates, and a re-run changes nothing. Needs root.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import type { Inventory } from "../../scripts/lib/inventory/schema.ts";
import { localProvider } from "../../scripts/lib/providers/local/provider.ts";
import { runStages } from "../../scripts/lib/stages/pipeline.ts";
import { type IsolatedCluster, isolatedLocalCluster, withDetails } from "../helpers/local-cluster.ts";

let isolated: IsolatedCluster;
let inventory: Inventory;
let first: Awaited<ReturnType<typeof runStages>>;

const vaultApi = async (address: string, path: string) => {
  const tls = isolated.context.state.tls;
  const token = (await $({ quiet: true })`cat ${join(isolated.context.state.secrets, "vault-root-token")}`).stdout.trim();
  const result = await $({
    quiet: true,
  })`curl -sS --max-time 10 --cacert ${join(tls, "ca.pem")} -H ${`X-Vault-Token: ${token}`} https://${address}:8200${path}`;
  return JSON.parse(result.stdout);
};

beforeAll(async () => {
  isolated = await isolatedLocalCluster("vault-ha", {
    name: "vaultha",
    topology: { servers: 3, clients: 0, vaultHa: true },
    provider: { local: { cidr: "10.91.0.0/24" } },
  });
  inventory = await localProvider.up(isolated.context);
  first = await withDetails(runStages(isolated.context, inventory));
}, 900_000);

afterAll(async () => isolated?.dispose());

describe("Vault HA on raft", () => {
  it("has three voters, one active node and two unsealed standbys", async () => {
    expect(first.vault?.summary).toContain("unsealed server-3");
    // joined followers start as non-voters; autopilot promotes them once they are stable
    type Peer = { node_id: string; voter: boolean; leader: boolean };
    let servers: Peer[] = [];
    for (let i = 0; i < 60; i++) {
      servers = (await vaultApi("10.91.0.11", "/v1/sys/storage/raft/configuration")).data.config.servers;
      if (servers.length === 3 && servers.every((s) => s.voter)) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(servers.map((s) => [s.node_id, s.voter]).sort()).toEqual([
      ["server-1", true],
      ["server-2", true],
      ["server-3", true],
    ]);
    expect(servers.filter((s) => s.leader)).toHaveLength(1);
    for (const address of ["10.91.0.12", "10.91.0.13"]) {
      const health = await vaultApi(address, "/v1/sys/health?standbyok=true");
      expect(health, address).toMatchObject({ initialized: true, sealed: false, standby: true });
    }
  });

  it("serves each node's own PKI certificate, verified against the cluster root", async () => {
    const ca = join(isolated.context.state.tls, "ca.pem");
    for (const address of ["10.91.0.11", "10.91.0.12", "10.91.0.13"]) {
      const result = await $({
        quiet: true,
        nothrow: true,
        input: "",
      })`openssl s_client -connect ${address}:8200 -CAfile ${ca} -verify_return_error -verify_ip ${address}`;
      expect(result.stdout, address).toContain("Verify return code: 0 (ok)");
    }
  });

  it("a re-run changes nothing", async () => {
    const again = await runStages(isolated.context, inventory, ["vault"]);
    expect(again.vault?.summary).toBe("no changes");
  });
});
