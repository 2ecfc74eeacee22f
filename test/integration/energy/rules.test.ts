/** The energy alert rules checked and unit-tested by promtool (Debian's prometheus package). */
import { describe, expect, it } from "vitest";
import { $ } from "zx";

const dir = "jobs/files/prometheus/rules";

describe("energy alert rules", () => {
  it("pass promtool check rules", async () => {
    const result = await $({ quiet: true, nothrow: true })`promtool check rules ${dir}/energy.rules.yml`;
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(/SUCCESS: \d+ rules found/);
  });

  it("fire as specified in energy.rules.test.yml (budget exceeded, exporter stale)", async () => {
    const result = await $({ quiet: true, nothrow: true, cwd: dir })`promtool test rules energy.rules.test.yml`;
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(/SUCCESS/);
  });
});
