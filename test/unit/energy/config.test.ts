import { describe, expect, it } from "vitest";
import { parseExporterConfig, resolveExporterConfig } from "../../../scripts/lib/energy/config.ts";
import { renderFamilies } from "../../../scripts/lib/energy/exposition.ts";
import { InputError } from "../../../scripts/lib/errors.ts";

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    return [(error as InputError).message, ...(error as InputError).details];
  }
  throw new Error("expected an InputError");
}

describe("exporter config", () => {
  it("has working defaults", () => {
    const c = parseExporterConfig("", "energy.yaml");
    expect(c).toMatchObject({ listen: "0.0.0.0:9875", interval: 5, source: "auto", carbon: { pue: 1, region: "WORLD" } });
    expect(c.host).toEqual({ sysfs: "/sys", procfs: "/proc", cgroup: "/sys/fs/cgroup" });
  });

  it("names the file, line and field of each mistake", () => {
    const text = ["interval: fast", "carbon:", "  pue: 0.8", "  region: Atlantis", "model:", "  minWatsPerVcpu: 1"].join("\n");
    const lines = problems(() => parseExporterConfig(text, "/local/energy.yaml"));
    expect(lines[0]).toMatch(/\/local\/energy.yaml has 4 problems/);
    expect(lines).toContainEqual(expect.stringMatching(/energy.yaml:1:\d+ interval: expected number, found "fast"/));
    expect(lines).toContainEqual(expect.stringMatching(/energy.yaml:3:\d+ carbon.pue: a PUE is 1.0 or more/));
    expect(lines).toContainEqual(expect.stringMatching(/energy.yaml:4:\d+ carbon.region: unknown region; use one of WORLD, FR/));
    expect(lines).toContainEqual(expect.stringMatching(/energy.yaml:6:\d+ model: unknown field 'minWatsPerVcpu'.*docs\/energy\.md/));
  });

  it("rejects min above max watts and a live provider it does not know", () => {
    const lines = problems(() =>
      parseExporterConfig(
        "model:\n  minWattsPerVcpu: 5\n  maxWattsPerVcpu: 1\ncarbon:\n  live:\n    provider: watttime\n",
        "e.yaml",
      ),
    );
    expect(lines.join("\n")).toMatch(/minWattsPerVcpu must not exceed maxWattsPerVcpu/);
    expect(lines.join("\n")).toMatch(/carbon.live.provider: expected one of "uk-carbon-intensity", found "watttime"/);
  });

  it("lets environment variables and flags override the file, and checks the result", () => {
    const c = resolveExporterConfig(
      "interval: 10\ncarbon:\n  region: FR\n",
      "e.yaml",
      { HASHISTACK_ENERGY_PUE: "1.2", NOMAD_ADDR: "https://127.0.0.1:4646" },
      { interval: 2 },
    );
    expect(c).toMatchObject({ interval: 2, carbon: { pue: 1.2, region: "FR" }, nomad: { address: "https://127.0.0.1:4646" } });
    expect(() => resolveExporterConfig(undefined, "(no file)", { HASHISTACK_ENERGY_PUE: "lots" }, {})).toThrow(
      /HASHISTACK_ENERGY_PUE must be a number/,
    );
    const lines = problems(() => resolveExporterConfig(undefined, "(no file)", { HASHISTACK_ENERGY_SOURCE: "gpu" }, {}));
    expect(lines.join("\n")).toMatch(/source: /);
  });
});

describe("exposition format", () => {
  it("escapes label values and skips empty families", () => {
    const text = renderFamilies([
      { name: "x_total", help: "a\nb", type: "counter", samples: [{ labels: { cpu_model: 'say "hi" \\ \n' }, value: 1.5 }] },
      { name: "empty", help: "", type: "gauge", samples: [] },
    ]);
    expect(text).toBe('# HELP x_total a\\nb\n# TYPE x_total counter\nx_total{cpu_model="say \\"hi\\" \\\\ \\n"} 1.5\n');
  });
});
