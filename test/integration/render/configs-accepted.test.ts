/**
 * Every rendered Consul and Nomad config is accepted by the real binaries
 * (`consul validate`, `nomad config validate`), with real certificate files in
 * place so TLS settings are checked too.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import { nodeLayout } from "../../../scripts/lib/render/layout.ts";
import { type HostPlan, planCluster } from "../../../scripts/lib/render/plan.ts";
import { plannedInventory } from "../../../scripts/lib/topology.ts";
import { requireBinary } from "../../helpers/binaries.ts";
import { writeHostFiles } from "../../helpers/cluster-files.ts";
import { fixedSecrets, makeConfig, tempDir } from "../../helpers/fixtures.ts";
import { createTestCa, issueTestCert } from "../../helpers/pki.ts";

const consul = requireBinary("consul");
const nomad = requireBinary("nomad");
let dir: Awaited<ReturnType<typeof tempDir>>;
let plans: HostPlan[];

beforeAll(async () => {
  dir = await tempDir("validate");
  for (const runtime of ["exec", "docker"] as const) {
    const config = makeConfig({ topology: { servers: 3, clients: 2 }, jobs: { runtime } });
    const inventory = plannedInventory(config, "10.99.0.0/24", { user: "root", port: 22 }, "local");
    const rendered = planCluster(config, inventory, fixedSecrets(inventory.hosts.map((h) => h.name)), {
      layout: (host) => nodeLayout(join(dir.path, runtime, host.name)),
    });
    plans = [...(plans ?? []), ...rendered];
  }
  const ca = await createTestCa(join(dir.path, "ca"));
  let serial = 0;
  for (const plan of plans) {
    await writeHostFiles(plan);
    const root = plan.files[0]?.path.split("/etc/")[0] as string;
    const layout = nodeLayout(root);
    for (const product of [layout.consul, layout.nomad]) {
      await issueTestCert(ca, `leaf-${serial++}`, { ips: [plan.host.privateIp] }, product);
      await writeFile(product.caFile, await readFile(ca.caFile));
    }
  }
});
afterAll(async () => dir?.remove());

describe("rendered configs are accepted by the real products", () => {
  it("consul validate accepts every Consul agent config", async () => {
    for (const plan of plans) {
      const file = plan.files.find((f) => f.path.endsWith("/consul.d/consul.hcl"))?.path as string;
      const result = await $({ nothrow: true, quiet: true })`${consul} validate ${file}`;
      expect(result.exitCode, `${plan.host.name}: ${result.stderr}${result.stdout}`).toBe(0);
      expect(result.stdout).toContain("Configuration is valid!");
    }
  });

  it("nomad config validate accepts every Nomad agent config without warnings", async () => {
    for (const plan of plans) {
      const file = plan.files.find((f) => f.path.endsWith("/nomad.d/nomad.hcl"))?.path as string;
      const result = await $({ nothrow: true, quiet: true })`${nomad} config validate ${file}`;
      expect(result.exitCode, `${plan.host.name}: ${result.stderr}${result.stdout}`).toBe(0);
      expect(result.stdout).toContain("Configuration is valid!");
      expect(result.stderr + result.stdout).not.toMatch(/WARNING|error/i);
    }
  });

  it("the validators do reject a broken config (the checks above can fail)", async () => {
    const plan = plans[0] as HostPlan;
    const consulFile = plan.files.find((f) => f.path.endsWith("/consul.d/consul.hcl"))?.path as string;
    await writeFile(consulFile, `${await readFile(consulFile, "utf8")}\nbootstrap_expct = 3\n`);
    const badConsul = await $({ nothrow: true, quiet: true })`${consul} validate ${consulFile}`;
    expect(badConsul.exitCode).not.toBe(0);
    expect(badConsul.stderr).toContain("bootstrap_expct");

    const nomadFile = plan.files.find((f) => f.path.endsWith("/nomad.d/nomad.hcl"))?.path as string;
    await writeFile(nomadFile, `${await readFile(nomadFile, "utf8")}\nserver { bootstrap_expect = "three" }\n`);
    const badNomad = await $({ nothrow: true, quiet: true })`${nomad} config validate ${nomadFile}`;
    expect(badNomad.exitCode).not.toBe(0);
  });
});
