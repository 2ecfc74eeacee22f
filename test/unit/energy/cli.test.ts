import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { $ } from "zx";

const run = (script: string, args: string[]) =>
  $({ nothrow: true, quiet: true, env: { ...process.env, NOMAD_ADDR: "" } })`npx --no-install tsx scripts/${script}.ts ${args}`;

describe("energy commands", () => {
  it("--help works and documents exit codes", async () => {
    for (const [script, name] of [
      ["energy-exporter", "energy-exporter"],
      ["energy-report", "energy-report"],
      ["build-exporter", "build:exporter"],
    ]) {
      const result = await run(script as string, ["--help"]);
      expect(result.exitCode, script).toBe(0);
      expect(result.stdout, script).toMatch(new RegExp(`^${name} — `));
      expect(result.stdout, script).toContain("2 bad input");
    }
  });

  it("a broken exporter config exits 2 naming the file, line and field", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hashistack-energy-cli-"));
    try {
      const file = join(dir, "energy.yaml");
      await writeFile(file, "interval: 5\ncarbon:\n  pue: 0.5\n");
      const result = await run("energy-exporter", ["--config", file]);
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain(`${file}:3:8 carbon.pue: a PUE is 1.0 or more`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("demanding RAPL where there is none exits 3 and says what to do", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hashistack-energy-cli-"));
    try {
      const result = await run("energy-exporter", ["--source", "rapl", "--host.sysfs", dir, "--listen", "127.0.0.1:0"]);
      expect(result.exitCode).toBe(3);
      expect(result.stderr).toMatch(
        /source: rapl was asked for, but there is no RAPL zones under .*\n.*hint: Use source: auto or model/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("the report refuses a missing subject and a missing Prometheus with exit 2", async () => {
    const noSubject = await run("energy-report", ["--from=-1h", "--prometheus", "http://127.0.0.1:9"]);
    expect(noSubject.exitCode).toBe(2);
    expect(noSubject.stderr).toContain("--job NAME and/or --namespace NS");
    const noUrl = await $({
      nothrow: true,
      quiet: true,
      env: { ...process.env, PROMETHEUS_URL: "" },
    })`npx --no-install tsx scripts/energy-report.ts --job x --from=-1h`;
    expect(noUrl.exitCode).toBe(2);
    expect(noUrl.stderr).toContain("--prometheus URL");
    const badOutput = await run("energy-report", ["--job", "x", "--from=-1h", "-o", "yaml"]);
    expect(badOutput.exitCode).toBe(2);
    expect(badOutput.stderr).toContain("--output must be 'text' or 'json' or 'markdown'");
  });
});
