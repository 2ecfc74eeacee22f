/**
 * The DigitalOcean provider against a simulated account behind a real HTTP
 * server. Every request and answer is checked against DigitalOcean's OpenAPI
 * document; any mismatch fails the test (see afterEach). No network access.
 */
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { $ } from "zx";
import { createRecordingReporter } from "../../../scripts/lib/cli/output.ts";
import { clusterConfigSchema } from "../../../scripts/lib/config/schema.ts";
import { InputError, OperationError, type UserError } from "../../../scripts/lib/errors.ts";
import { inventoryPath, loadInventory } from "../../../scripts/lib/inventory/load.ts";
import { createDigitalOceanProvider } from "../../../scripts/lib/providers/digitalocean/provider.ts";
import { md5Fingerprint } from "../../../scripts/lib/providers/digitalocean/fingerprint.ts";
import type { ProviderContext } from "../../../scripts/lib/providers/types.ts";
import { statePaths } from "../../../scripts/lib/state/paths.ts";
import { tempDir } from "../../helpers/fixtures.ts";
import { DoSimulator, type SimOptions } from "../../helpers/digitalocean/simulator.ts";

const token = "dop_v1_simulated0123456789abcdef0123456789abcdef0123456789abcdef01";
const timing = { pollMs: 40, waitMs: 20_000, ambiguousGraceMs: 3_000, requestTimeoutMs: 1_500 };

let dir: Awaited<ReturnType<typeof tempDir>>;
let sim: DoSimulator;
const saved = { ...process.env };

async function startSim(options: Partial<SimOptions> = {}): Promise<DoSimulator> {
  sim = new DoSimulator({ token, ...options });
  process.env.DIGITALOCEAN_API_URL = await sim.start();
  return sim;
}

function contextFor(overrides: Record<string, unknown> = {}, yes = true) {
  const config = clusterConfigSchema.parse({
    name: "docluster",
    provider: { type: "digitalocean", digitalocean: { volumeSizeGb: 5, allowedCidrs: ["198.51.100.0/24"] } },
    ...overrides,
  });
  const reporter = createRecordingReporter();
  const context: ProviderContext = { config, state: statePaths(config.name), reporter, yes };
  return { context, reporter };
}

const provider = createDigitalOceanProvider(timing);
const posts = () => sim.log.filter((e) => e.method === "POST");

beforeEach(async () => {
  dir = await tempDir("do");
  process.env.HASHISTACK_STATE_DIR = join(dir.path, "state");
  process.env.HASHISTACK_INVENTORY_DIR = join(dir.path, "inventories");
  process.env.DIGITALOCEAN_TOKEN = token;
});

afterEach(async () => {
  await sim?.stop();
  for (const key of ["HASHISTACK_STATE_DIR", "HASHISTACK_INVENTORY_DIR", "DIGITALOCEAN_TOKEN", "DIGITALOCEAN_API_URL"]) {
    if (saved[key] === undefined) delete process.env[key];
    else process.env[key] = saved[key];
  }
  await dir.remove();
  // after the cleanup, so a failing contract check never leaves a server running
  expect(sim.violations).toEqual([]);
});

describe("DigitalOcean provider against the OpenAPI contract", () => {
  it("asks before creating, creates everything once, then reconciles to nothing and tears down by tag", async () => {
    await startSim();
    // no terminal and no --yes: it must refuse before creating anything
    const refused = contextFor({}, false);
    await expect(provider.up(refused.context)).rejects.toThrow(/Confirmation needed/);
    expect(posts()).toEqual([]);
    expect(refused.reporter.messages.some((m) => /cost \$48\.00\/month/.test(m.text))).toBe(true);

    const first = contextFor();
    const started = Date.now();
    const refusedRequests = sim.log.length;
    const inventory = await provider.up(first.context);
    const firstRun = { requests: sim.log.length - refusedRequests, ms: Date.now() - started };
    expect(inventory.hosts.map((h) => h.name)).toEqual(["server-1", "server-2", "server-3", "client-1", "client-2"]);
    for (const host of inventory.hosts) {
      expect(host.privateIp).toMatch(/^10\.10\.10\.\d+$/); // the VPC address, for bind/advertise
      expect(host.publicIp).toMatch(/^203\.0\.113\.\d+$/);
      expect(host.ssh.host).toBe(host.publicIp);
    }
    expect(inventory.hosts.find((h) => h.name === "server-1")?.roles).toEqual(["server", "vault"]);
    expect(await loadInventory(inventoryPath("docluster"))).toMatchObject({ provider: "digitalocean" });

    const ours = sim.liveDroplets();
    expect(ours).toHaveLength(5);
    expect(ours.find((d) => d.name === "docluster-server-1")?.tags).toEqual(["hashistack-docluster", "server", "vault"]);
    expect(ours.find((d) => d.name === "docluster-client-2")?.tags).toEqual(["hashistack-docluster", "client"]);
    expect(ours.find((d) => d.name === "docluster-server-2")?.size).toBe("s-1vcpu-2gb");
    expect(ours.find((d) => d.name === "docluster-client-1")?.size).toBe("s-1vcpu-1gb");
    const vpc = sim.vpcs.find((v) => v.name === "hashistack-docluster");
    expect(vpc?.ip_range).toBe("10.10.10.0/24");
    expect(new Set(ours.map((d) => d.vpc))).toEqual(new Set([vpc?.id]));
    const firewall = sim.firewalls[0] as {
      tags: string[];
      inbound_rules: { ports: string; sources: { addresses?: string[]; tags?: string[] } }[];
    };
    expect(firewall.tags).toEqual(["hashistack-docluster"]);
    expect(firewall.inbound_rules.find((r) => r.ports === "22")?.sources).toEqual({ addresses: ["198.51.100.0/24"] });
    expect(firewall.inbound_rules.find((r) => r.ports === "1-65535")?.sources).toEqual({ tags: ["hashistack-docluster"] });
    expect(sim.volumes).toHaveLength(1);
    expect(sim.volumes[0]?.droplet_ids).toEqual([ours.find((d) => d.name === "docluster-client-1")?.id]);
    const project = sim.projects.find((p) => p.name === "hashistack-docluster");
    expect(project?.resources).toHaveLength(6); // five droplets and the volume
    const userData = await readFile(new URL("../../../templates/digitalocean/cloud-init.yaml.hbs", import.meta.url), "utf8");
    expect(userData).toContain("#cloud-config");
    expect(sim.counts().droplets_create).toBe(5);

    // the second run finds everything by tag and name: no create, no prompt needed
    const before = sim.log.length;
    const second = contextFor({}, false);
    const again = await provider.up(second.context);
    const secondRun = sim.log.slice(before);
    expect(secondRun.filter((e) => e.method !== "GET")).toEqual([]);
    expect(again).toEqual(inventory);
    console.info(`first run: ${firstRun.requests} requests in ${firstRun.ms} ms; reconcile: ${secondRun.length} requests`);

    // status reports the droplets and the other resources
    const status = await provider.status(second.context);
    expect(status.nodes.filter((n) => n.state === "running")).toHaveLength(5);
    expect(status.resources).toContain("VPC hashistack-docluster 10.10.10.0/24");

    // teardown: lists, deletes in order, retries the VPC while members go away, leaves the default VPC
    const listed = await provider.down(second.context, { dryRun: true, keepState: false });
    expect(listed).toEqual(
      expect.arrayContaining(["firewall hashistack-docluster", "project hashistack-docluster", "SSH key hashistack-docluster"]),
    );
    expect(listed.filter((l) => l.startsWith("droplet "))).toHaveLength(5);
    const removed = await provider.down(second.context, { dryRun: false, keepState: false });
    expect(removed).toEqual(expect.arrayContaining(["VPC hashistack-docluster", "volume hashistack-docluster-data"]));
    expect(sim.liveDroplets()).toEqual([]);
    expect(sim.firewalls).toEqual([]);
    expect(sim.volumes).toEqual([]);
    expect(sim.vpcs.map((v) => v.name)).toEqual(["default-lon1"]);
    expect(sim.projects.map((p) => p.name)).toEqual(["first-project"]);
    expect(sim.keys).toEqual([]);
    expect([...sim.tagsSeen]).toEqual(["server", "vault", "client"]); // the cluster tag went, the shared role tags stay
    expect(removed).toContain("tag hashistack-docluster");
    expect(sim.log.some((e) => e.operation === "vpcs_delete" && e.status === 403)).toBe(true);
    expect(existsSync(inventoryPath("docluster"))).toBe(false);
    expect(existsSync(second.context.state.root)).toBe(false);
    expect(await provider.down(second.context, { dryRun: true, keepState: false })).toEqual([]);
  });

  it("does not duplicate a droplet whose create timed out or failed after the server accepted it", async () => {
    await startSim();
    sim.slowCreates.set("docluster-server-2", timing.requestTimeoutMs + 1_000);
    sim.failingCreates.add("docluster-client-1");
    const { context, reporter } = contextFor();
    const inventory = await provider.up(context);
    expect(inventory.hosts).toHaveLength(5);
    expect(sim.counts().droplets_create).toBe(5); // never sent twice
    const names = sim.liveDroplets().map((d) => d.name);
    expect(names).toHaveLength(5);
    expect(new Set(names).size).toBe(5);
    expect(reporter.messages.filter((m) => /checking by tag whether it was created/.test(m.text))).toHaveLength(2);
  });

  it("reconciles droplets left by an interrupted run and waits for droplets that stay 'new'", async () => {
    await startSim({ bootMs: 1_200 });
    // a run that failed after creating the three servers (they are still booting)
    sim.rejectCreates.add("docluster-client-1");
    await expect(provider.up(contextFor().context)).rejects.toThrow(/simulated: out of capacity/);
    expect(sim.liveDroplets().map((d) => d.name)).toEqual(["docluster-server-1", "docluster-server-2", "docluster-server-3"]);
    const before = sim.counts().droplets_create ?? 0;
    const inventory = await provider.up(contextFor().context);
    expect((sim.counts().droplets_create ?? 0) - before).toBe(2); // only the two clients
    expect(sim.liveDroplets()).toHaveLength(5);
    expect(inventory.hosts.every((h) => h.privateIp.startsWith("10.10.10."))).toBe(true);
    expect(sim.counts().actions_get ?? 0).toBeGreaterThan(2); // polled while in-progress
  });

  it("follows pagination, waits out 429 with retry-after, repeats a failed read, and takes a key uploaded in parallel (422)", async () => {
    await startSim({ foreignKeys: 450 });
    const { context } = contextFor({
      topology: { servers: 1, clients: 1 },
      provider: { type: "digitalocean", digitalocean: { volumeSizeGb: 0, allowedCidrs: ["198.51.100.0/24"] } },
    });
    // a parallel run uploads the same key between our lookup and our upload
    const { ensureClusterSshKey } = await import("../../../scripts/lib/state/ssh-key.ts");
    const { publicKey } = await ensureClusterSshKey(context.state, "x");
    let raced = false;
    sim.afterKeyList = () => {
      if (raced) return;
      raced = true;
      sim.keys.push({ id: 99, name: "parallel-run", fingerprint: md5Fingerprint(publicKey), public_key: publicKey });
    };
    sim.throttle = { count: 2, retryAfter: 1 };
    sim.serverErrors = 1; // a read failing once is repeated; a create never is (see above)
    const started = Date.now();
    await provider.up(context);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_000);
    expect(sim.log.filter((e) => e.status === 429)).toHaveLength(2);
    expect(sim.log.filter((e) => e.status === 500 && e.method === "GET")).toHaveLength(1);
    const keyPages = sim.log
      .filter((e) => e.operation === "sshKeys_list" && e.status === 200)
      .map((e) => new URLSearchParams(e.query).get("page") ?? "1");
    expect(keyPages.slice(0, 3)).toEqual(["1", "2", "3"]); // 450 foreign keys at 200 per page
    expect(
      sim.log
        .filter((e) => e.method === "GET")
        .every((e) => e.query.includes("per_page=200") || !/_list$/.test(e.operation ?? "")),
    ).toBe(true);
    expect(sim.log.some((e) => e.operation === "sshKeys_create" && e.status === 422)).toBe(true);
    expect(sim.keys.filter((k) => k.fingerprint === md5Fingerprint(publicKey))).toHaveLength(1);
    expect(sim.liveDroplets()[0]?.tags).toContain("hashistack-docluster");
  });

  it("reports a bad token clearly without the token, before anything is created", async () => {
    await startSim();
    const bad = "dop_v1_wrongwrongwrongwrongwrongwrongwrongwrongwrongwrongwrongwrong";
    process.env.DIGITALOCEAN_TOKEN = bad;
    const { context, reporter } = contextFor();
    const error = await provider.up(context).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    const text = JSON.stringify({
      m: (error as UserError).message,
      h: (error as UserError).hint,
      d: (error as UserError).details,
      r: reporter.messages,
      c: String((error as Error).cause),
    });
    expect(text).toMatch(/DIGITALOCEAN_TOKEN/);
    expect(text).not.toContain(bad);
    expect(text).not.toContain(bad.slice(7, 30));
    expect(sim.log.filter((e) => e.method !== "GET")).toEqual([]);

    delete process.env.DIGITALOCEAN_TOKEN;
    await expect(provider.up(context)).rejects.toThrow(/DIGITALOCEAN_TOKEN is not set/);
  });

  it("slows down when the ratelimit headers say the budget is nearly spent", async () => {
    await startSim();
    sim.nearlySpent = 1;
    const { context, reporter } = contextFor();
    const started = Date.now();
    await provider.status(context);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900); // waited for ratelimit-reset
    expect(reporter.messages.some((m) => /DigitalOcean rate limit: waiting [12]s/.test(m.text))).toBe(true);
    expect(sim.log.every((e) => e.status !== 429)).toBe(true);
  });

  it("names the config field of a size the region does not offer", async () => {
    await startSim();
    const { context } = contextFor({
      provider: { type: "digitalocean", digitalocean: { serverSize: "s-64vcpu-1tb", allowedCidrs: ["198.51.100.0/24"] } },
    });
    await expect(provider.up(context)).rejects.toThrow(
      /provider\.digitalocean\.serverSize 's-64vcpu-1tb' is not a DigitalOcean size/,
    );
    expect(posts()).toEqual([]);
  });

  it("reports what teardown could not delete and keeps the local state for a re-run", async () => {
    await startSim();
    const { context } = contextFor({
      topology: { servers: 1, clients: 0 },
      provider: { type: "digitalocean", digitalocean: { volumeSizeGb: 0, allowedCidrs: ["198.51.100.0/24"] } },
    });
    await provider.up(context);
    // someone put a droplet of their own into the cluster's VPC (no cluster tag): the VPC cannot go
    const vpc = sim.vpcs.find((v) => v.name === "hashistack-docluster")!;
    sim.droplets.push({
      ...sim.droplets[0]!,
      id: 4242,
      name: "someone-elses",
      tags: [],
      vpc: String(vpc.id),
      privateIp: "10.10.10.99",
    });
    const impatient = createDigitalOceanProvider({ ...timing, waitMs: 1_000 });
    const error = (await impatient.down(context, { dryRun: false, keepState: false }).catch((e: unknown) => e)) as OperationError;
    expect(error).toBeInstanceOf(OperationError);
    expect(error.message).toMatch(/could not delete 1/);
    expect(error.details.join("\n")).toMatch(
      /VPC hashistack-docluster: Timed out waiting for VPC hashistack-docluster to be empty.*Can not delete VPC with members/,
    );
    expect(sim.liveDroplets().map((d) => d.name)).toEqual(["someone-elses"]); // ours went, theirs stayed
    expect(sim.firewalls).toEqual([]);
    expect(existsSync(context.state.root)).toBe(true); // the SSH key is still needed to finish later
    expect(existsSync(inventoryPath("docluster"))).toBe(true);
  });

  it("works through the CLI: bootstrap refuses a bad token without printing it, teardown lists and removes", async () => {
    await startSim();
    const file = join(dir.path, "cluster.yaml");
    await writeFile(
      file,
      "name: docli\nprovider:\n  type: digitalocean\n  digitalocean:\n    volumeSizeGb: 0\n    allowedCidrs: [198.51.100.0/24]\ntopology:\n  servers: 1\n  clients: 0\n",
    );
    const cli = (script: string, args: string[], env: Record<string, string> = {}) =>
      $({
        nothrow: true,
        quiet: true,
        env: { ...process.env, ...env },
      })`npx --no-install tsx scripts/${script}.ts --config ${file} ${args}`;

    const bad = "dop_v1_clitokenclitokenclitokenclitokenclitokenclitokenclitoken00";
    const refused = await cli("bootstrap", ["--yes"], { DIGITALOCEAN_TOKEN: bad });
    expect(refused.exitCode).toBe(2);
    expect(refused.stdout + refused.stderr).toMatch(/rejected the token in DIGITALOCEAN_TOKEN/);
    expect(refused.stdout + refused.stderr).not.toContain(bad);

    // resources created by an earlier run; the CLI finds them by tag and name
    await provider.up({
      ...contextFor({
        name: "docli",
        topology: { servers: 1, clients: 0 },
        provider: { type: "digitalocean", digitalocean: { volumeSizeGb: 0, allowedCidrs: ["198.51.100.0/24"] } },
      }).context,
    });
    const listed = await cli("teardown", ["--dry-run", "--output", "json"]);
    expect(listed.exitCode).toBe(0);
    const wouldRemove = (JSON.parse(listed.stdout) as { wouldRemove: string[] }).wouldRemove;
    expect(wouldRemove).toEqual(
      expect.arrayContaining([expect.stringMatching(/^droplet docli-server-1/), "VPC hashistack-docli 10.10.10.0/24"]),
    );
    expect((await cli("teardown", [])).exitCode).not.toBe(0); // no terminal, no --yes: nothing removed
    expect(sim.liveDroplets()).toHaveLength(1);
    const removed = await cli("teardown", ["--yes"]);
    expect(removed.exitCode, removed.stdout + removed.stderr).toBe(0);
    expect(removed.stdout).toMatch(/tearing down 'docli'.*items removed/);
    expect(sim.liveDroplets()).toEqual([]);
    expect(sim.vpcs.map((v) => v.name)).toEqual(["default-lon1"]);
  });
});
