/**
 * The bundle under Debian 12's own Node.js 18 — what the exec-profile nodes
 * run — unpacked from Debian's .debs by the test prerequisites (not installed:
 * it runs in a private mount namespace, see scripts/lib/setup/debian-nodejs.ts).
 * It reads generated host trees and gets its carbon intensity from an
 * in-process server that speaks the UK Carbon Intensity API's documented format
 * (no internet here), which also exercises Node 18's fetch.
 */
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { once } from "node:events";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildExporterBundle } from "../../../scripts/lib/build/exporter-bundle.ts";
import { debianNodeDir } from "../../../scripts/lib/setup/debian-nodejs.ts";
import { allocA, FakeHost } from "../../helpers/energy-trees.ts";
import { tempDir } from "../../helpers/fixtures.ts";
import { type Agent, startAgent, untilReady } from "../../helpers/processes.ts";

const ip = "127.0.0.63";
let dir: Awaited<ReturnType<typeof tempDir>>;
let hostDir: Awaited<ReturnType<typeof tempDir>> | undefined;
let intensityServer: Server;
let exporter: Agent | undefined;
let ticker: NodeJS.Timeout | undefined;

beforeAll(async () => {
  const runner = join(debianNodeDir(), "node18.sh");
  if (!existsSync(runner)) throw new Error(`${runner} is missing: run 'npm run test:integration' (its prerequisites unpack it).`);
  dir = await tempDir("energy-node18");
  const bundle = await buildExporterBundle(join(dir.path, "energy-exporter.mjs"));
  intensityServer = createServer((_req, res) => {
    res.writeHead(200, { "Content-Type": "application/json" }).end(
      JSON.stringify({
        data: [{ from: "2026-11-22T04:00Z", to: "2026-11-22T04:30Z", intensity: { forecast: 140, actual: 133, index: "low" } }],
      }),
    );
  });
  intensityServer.listen(8083, ip);
  await once(intensityServer, "listening");

  // on tmpfs: rewritten five times a second, and writeback on a busy disk stalls the writes for seconds
  hostDir = await tempDir("energy-node18-host", "/dev/shm");
  const host = new FakeHost(hostDir.path).machine();
  host.zone({ id: "intel-rapl:0", name: "package-0", maxRangeUj: 1e12, energyUj: 0 });
  const started = Date.now();
  const advance = () => {
    const t = (Date.now() - started) / 1000;
    host
      .setEnergy("intel-rapl:0", Math.round(40e6 * t))
      .stat({ user: Math.round(100 * t), idle: Math.round(100 * t) })
      .v2Task(allocA, "web", Math.round(0.5e6 * t));
  };
  advance();
  ticker = setInterval(advance, 200);
  const config = join(dir.path, "energy.yaml");
  await writeFile(
    config,
    [
      `listen: "${ip}:9875"`,
      "interval: 1",
      "node: debian-node18",
      "rapl: { idleWatts: 10 }",
      `host: { sysfs: "${host.sysfs}", procfs: "${host.procfs}", cgroup: "${host.cgroup}" }`,
      `carbon: { region: GB, live: { provider: uk-carbon-intensity, url: "http://${ip}:8083", ttlSeconds: 60, timeoutSeconds: 2 } }`,
    ].join("\n"),
  );
  exporter = startAgent(
    "exporter on Debian node 18",
    "unshare",
    ["--mount", "--propagation", "private", runner, bundle.file, "--config", config],
    join(dir.path, "exporter.log"),
    { NOMAD_ADDR: "" },
  );
  await untilReady(exporter, async () => {
    const r = await fetch(`http://${ip}:9875/healthz`);
    if (r.status !== 200) throw new Error(`healthz ${r.status}`);
  });
}, 120_000);

afterAll(async () => {
  if (ticker) clearInterval(ticker);
  await exporter?.stop();
  await new Promise<void>((r) => (intensityServer ? intensityServer.close(() => r()) : r()));
  await dir?.remove();
  await hostDir?.remove();
});

describe("the bundle on Debian 12's nodejs 18", () => {
  it("serves measured energy per task and the live carbon intensity", async () => {
    await sleep(3000);
    const text = await (await fetch(`http://${ip}:9875/metrics`)).text();
    expect(text).toMatch(/hashistack_energy_build_info\{version="[^"]+",nodejs="18\.\d+\.\d+"\} 1/);
    expect(text).toContain(
      'hashistack_energy_carbon_intensity_grams_per_kwh{node="debian-node18",source="live",provider="uk-carbon-intensity"} 133',
    );
    const node = /hashistack_energy_node_joules_total\{node="debian-node18",estimated="false"\} (\S+)/.exec(text);
    expect(Number(node?.[1])).toBeGreaterThan(0);
    // 40 W with 10 W idle; the node is 1 CPU-s/s busy and web 0.5 of it → web ≈ 15 W
    const web = new RegExp(`task_watts\\{[^}]*task="web",alloc_id="${allocA}"\\} (\\S+)`).exec(text);
    expect(Number(web?.[1])).toBeGreaterThan(10);
    expect(Number(web?.[1])).toBeLessThan(20);
  });

  it("stops cleanly on SIGTERM", async () => {
    const agent = exporter as Agent;
    const exited = once(agent.child, "exit");
    agent.child.kill("SIGTERM");
    const [code] = (await exited) as [number | null];
    expect(code).toBe(0);
    expect(agent.log()).toMatch(/SIGTERM: stopping/);
  });
});
