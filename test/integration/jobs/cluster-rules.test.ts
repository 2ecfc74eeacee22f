/** The cluster alert rules, with bootstrap's certificate threshold filled in, checked and unit-tested by promtool. */
import { cp, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import { certificateAlarmSeconds } from "../../../scripts/lib/config/schema.ts";
import { makeConfig, tempDir } from "../../helpers/fixtures.ts";

const rules = "jobs/files/prometheus/rules";
let dir: Awaited<ReturnType<typeof tempDir>>;

beforeAll(async () => {
  dir = await tempDir("cluster-rules");
  // what bootstrap puts into the Prometheus job's variable for the default 72h leaves
  const seconds = certificateAlarmSeconds(makeConfig({}));
  expect(seconds).toBe(18144);
  const text = (await readFile(join(rules, "cluster.rules.yml"), "utf8")).replaceAll("__CERT_ALARM_SECONDS__", String(seconds));
  await writeFile(join(dir.path, "cluster.rules.yml"), text);
  await cp(join(rules, "cluster.rules.test.yml"), join(dir.path, "cluster.rules.test.yml"));
});
afterAll(async () => dir?.remove());

describe("cluster alert rules", () => {
  it("pass promtool check rules", async () => {
    const result = await $({ quiet: true, nothrow: true })`promtool check rules ${join(dir.path, "cluster.rules.yml")}`;
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
  });

  it("fire as cluster.rules.test.yml says: certificate not renewed with 7 % left, Vault sealed or down, every Vault down", async () => {
    const result = await $({ quiet: true, nothrow: true, cwd: dir.path })`promtool test rules cluster.rules.test.yml`;
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(/SUCCESS/);
  });
});
