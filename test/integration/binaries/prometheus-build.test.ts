/**
 * Prometheus 3 and Alertmanager built from the Go module proxy like the HashiCorp
 * binaries (catalog entries, cached by test-prerequisites): the built binaries report
 * the expected versions, Prometheus loads a `consul_sd_configs` scrape config (which
 * Debian 12's 2.42 cannot), and both answer /-/ready on loopback. The platform jobs do
 * not use these builds yet, so the test prerequisites do not build them (about 20
 * cold minutes): this suite runs where `npm run binaries -- --tools
 * prometheus,alertmanager` has cached them, and says so where it has not.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import { existsSync } from "node:fs";
import { binaryPath, ensureBinary } from "../../../scripts/lib/binaries/build.ts";
import { tools } from "../../../scripts/lib/binaries/catalog.ts";
import { tempDir } from "../../helpers/fixtures.ts";

const ip = "127.0.0.72";
let dir: Awaited<ReturnType<typeof tempDir>>;
const started: ChildProcess[] = [];

async function ready(url: string, deadlineMs = 30_000): Promise<string> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      const response = await fetch(url);
      if (response.ok) return await response.text();
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} was not ready within ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function start(binary: string, args: string[]): ChildProcess {
  const child = spawn(binary, args, { stdio: ["ignore", "ignore", "pipe"] });
  started.push(child);
  return child;
}

beforeAll(async () => {
  dir = await tempDir("prometheus-build");
});

afterAll(async () => {
  for (const child of started) {
    if (child.exitCode === null) {
      const gone = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await gone;
    }
  }
  await dir.remove();
});

const built = existsSync(binaryPath(tools.prometheus)) && existsSync(binaryPath(tools.alertmanager));
if (!built)
  console.warn(
    "prometheus-build: Prometheus 3 / Alertmanager not cached; run 'npm run binaries -- --tools prometheus,alertmanager'",
  );

describe.skipIf(!built)("Prometheus 3 and Alertmanager from the Go module proxy", () => {
  it("Prometheus reports 3.16.0, loads consul_sd_configs and is ready", async () => {
    const { path } = await ensureBinary(tools.prometheus);
    expect((await $({ quiet: true })`${path} --version`).stdout).toMatch(/^prometheus, version 3\.16\.0 /);
    const config = join(dir.path, "prometheus.yml");
    await writeFile(
      config,
      [
        "scrape_configs:",
        "  - job_name: services",
        "    consul_sd_configs:",
        `      - server: "${ip}:18500"`,
        "        scheme: https",
        "        tls_config: { insecure_skip_verify: false }",
        "    relabel_configs:",
        "      - source_labels: [__meta_consul_tags]",
        "        regex: .*,prometheus,.*",
        "        action: keep",
        "      - source_labels: [__meta_consul_service]",
        "        regex: .+-sidecar-proxy",
        "        action: drop",
        "      - source_labels: [__meta_consul_service]",
        "        target_label: service",
        "",
      ].join("\n"),
    );
    start(path, [`--config.file=${config}`, `--storage.tsdb.path=${join(dir.path, "data")}`, `--web.listen-address=${ip}:19090`]);
    expect(await ready(`http://${ip}:19090/-/ready`)).toMatch(/ready/i);
    const loaded = (await (await fetch(`http://${ip}:19090/api/v1/status/config`)).json()) as { data: { yaml: string } };
    expect(loaded.data.yaml).toContain("consul_sd_configs:");
  });

  it("Alertmanager reports 0.35.0 and is ready", async () => {
    const { path } = await ensureBinary(tools.alertmanager);
    expect((await $({ quiet: true })`${path} --version`).stdout).toMatch(/^alertmanager, version 0\.35\.0 /);
    const config = join(dir.path, "alertmanager.yml");
    await writeFile(config, "route:\n  receiver: none\nreceivers:\n  - name: none\n");
    start(path, [
      `--config.file=${config}`,
      `--storage.path=${join(dir.path, "alertmanager")}`,
      `--web.listen-address=${ip}:19093`,
      `--cluster.listen-address=`,
    ]);
    expect(await ready(`http://${ip}:19093/-/ready`)).toMatch(/ok/i);
  });
});
