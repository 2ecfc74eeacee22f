/**
 * One rendered "node" on loopback: a host of a single-server inventory whose
 * files live under a temp root, with test certificates at the layout's paths.
 * Each test file uses its own 127.0.0.x address so fixed ports never collide.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type NodeLayout, nodeLayout } from "../../scripts/lib/render/layout.ts";
import { type HostPlan, planCluster } from "../../scripts/lib/render/plan.ts";
import { certificateNames } from "../../scripts/lib/render/pki.ts";
import { writeHostFiles } from "./cluster-files.ts";
import { fixedSecrets, loopbackInventory, makeConfig } from "./fixtures.ts";
import { createTestCa, type IssuedCert, issueTestCert, type TestCa } from "./pki.ts";
import type { RenderSecrets } from "../../scripts/lib/state/secrets.ts";

export interface LoopbackNode {
  ip: string;
  root: string;
  layout: NodeLayout;
  plan: HostPlan;
  secrets: RenderSecrets;
  ca: TestCa;
  /** a client certificate for the operator (mTLS) */
  operator: IssuedCert;
}

export async function renderLoopbackServer(root: string, ip: string): Promise<LoopbackNode> {
  const config = makeConfig({ topology: { servers: 1, clients: 0 } });
  const inventory = loopbackInventory([{ name: "server-1", roles: ["server", "vault"], ip }]);
  const secrets = fixedSecrets(["server-1"]);
  const layout = nodeLayout(join(root, "node"));
  const [plan] = planCluster(config, inventory, secrets, { layout });
  if (!plan) throw new Error("no plan");
  await writeHostFiles(plan);
  const ca = await createTestCa(join(root, "ca"));
  const names = certificateNames(config);
  const ips = ["127.0.0.1", ip];
  const certs: [typeof layout.consul, string][] = [
    [layout.consul, names.consulServer],
    [layout.nomad, names.nomadServer],
    [layout.vault, names.vaultServer],
  ];
  for (const [paths, name] of certs) {
    await issueTestCert(ca, name, { dns: [name, "localhost"], ips }, paths);
    await writeFile(paths.caFile, await readFile(ca.caFile));
    await mkdir(paths.dataDir, { recursive: true });
  }
  await mkdir(join(layout.vault.auditLog, ".."), { recursive: true });
  const operator = await issueTestCert(ca, "operator", { dns: ["operator"] });
  return { ip, root, layout, plan, secrets, ca, operator };
}
