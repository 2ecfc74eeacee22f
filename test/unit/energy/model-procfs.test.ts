import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fsHostReader } from "../../../scripts/lib/energy/host.ts";
import { coefficientsFor, detectFamily, idleFraction, modelPower } from "../../../scripts/lib/energy/model.ts";
import { parseProcStat, readMemTotalGb, utilisation } from "../../../scripts/lib/energy/procfs.ts";
import { choosePowerSource } from "../../../scripts/lib/energy/power.ts";
import { exporterConfigSchema } from "../../../scripts/lib/energy/config.ts";
import { failingReader, FakeHost } from "../../helpers/energy-trees.ts";
import { tempDir } from "../../helpers/fixtures.ts";

describe("/proc/stat", () => {
  it("counts busy time without steal and guest twice, and the vCPUs", () => {
    // user nice system idle iowait irq softirq steal guest guest_nice (guest is already in user)
    const t = parseProcStat("cpu  100 10 40 800 50 5 5 300 20 0\ncpu0 1\ncpu1 1\ncpu2 1\nintr 1\n");
    expect(t.busySeconds).toBeCloseTo(1.6, 9); // (100+10+40+5+5)/100
    expect(t.totalSeconds).toBeCloseTo(10.1, 9); // busy + idle + iowait, no steal
    expect(t.vcpus).toBe(3);
  });

  it("gives utilisation between two reads, ignoring time stolen by the hypervisor", () => {
    const a = parseProcStat("cpu  0 0 0 0 0 0 0 0 0 0\n");
    const b = parseProcStat("cpu  300 0 100 400 0 0 0 1000 0 0\n");
    expect(utilisation(a, b)).toBeCloseTo(0.5, 9);
  });
});

describe("the estimation model", () => {
  it("picks CCF coefficients by CPU family, and the fleet average when unknown", () => {
    expect(detectFamily("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz").name).toBe("intel-cascade-lake");
    expect(detectFamily("AMD EPYC 7502P 32-Core Processor").name).toBe("amd-epyc-2nd-gen");
    expect(detectFamily("AMD EPYC 7R13 Processor").name).toBe("amd-epyc-3rd-gen");
    expect(detectFamily("QEMU Virtual CPU version 2.5+")).toMatchObject({ name: "unknown-average", min: 0.74, max: 3.54 });
  });

  it("computes vCPUs × (min + (max − min) × u) + memory, with overrides", () => {
    const c = coefficientsFor("Intel(R) Xeon(R) Gold 6248", {});
    expect(c).toMatchObject({ family: "intel-cascade-lake", minWattsPerVcpu: 0.64, maxWattsPerVcpu: 3.97 });
    const p = modelPower(c, 4, 16, 0.5);
    expect(p.idleWatts).toBeCloseTo(4 * 0.64 + 16 * 0.392, 9);
    expect(p.watts).toBeCloseTo(p.idleWatts + 4 * (3.97 - 0.64) * 0.5, 9);
    const custom = coefficientsFor("anything", { minWattsPerVcpu: 1, maxWattsPerVcpu: 2, memoryWattsPerGb: 0 });
    expect(custom.family).toBe("unknown-average+override");
    expect(modelPower(custom, 2, 8, 1).watts).toBe(4);
  });
});

describe("choosing the power source", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let host: FakeHost;
  beforeEach(async () => {
    dir = await tempDir("power");
    host = new FakeHost(dir.path).machine("AMD EPYC 7R13 Processor", 4 * 1024 * 1024).stat({ user: 0, idle: 0, vcpus: 2 });
  });
  afterEach(() => dir.remove());
  const config = (over: Record<string, unknown> = {}) =>
    exporterConfigSchema.parse({ host: { sysfs: host.sysfs, procfs: host.procfs, cgroup: host.cgroup }, ...over });

  it("falls back to the model without RAPL and labels it estimated", () => {
    const source = choosePowerSource(config(), fsHostReader);
    expect(source).toMatchObject({ kind: "model", estimated: true });
    expect(readMemTotalGb(fsHostReader, host.procfs)).toBe(4);
    expect(source.coefficients?.family).toBe("amd-epyc-3rd-gen");
    // 2 vCPUs at 50 % for 10 s on EPYC 3rd gen with 4 GB: (2×0.45 + 4×0.392 + 2×1.57×0.5) × 10
    const e = source.measure(0, 10, 0.5, 2);
    expect(e.joules).toBeCloseTo((2 * 0.45 + 4 * 0.392 + 2 * 1.57 * 0.5) * 10, 6);
    expect(e.idleJoules).toBeCloseTo((2 * 0.45 + 4 * 0.392) * 10, 6);
  });

  it("uses RAPL when readable; falls back with the reason when energy_uj is root-only; fails when rapl is demanded", () => {
    host.zone({ id: "intel-rapl:0", name: "package-0", maxRangeUj: 1e12, energyUj: 0 });
    expect(choosePowerSource(config(), fsHostReader)).toMatchObject({ kind: "rapl", estimated: false });
    const denied = failingReader({ energy_uj: "EACCES" });
    const fallback = choosePowerSource(config(), denied);
    expect(fallback.kind).toBe("model");
    expect(fallback.reason).toMatch(/permission denied/);
    expect(() => choosePowerSource(config({ source: "rapl" }), denied)).toThrow(/permission denied/);
  });
});

describe("coefficients: CCF's Azure table (AzureFootprintEstimationConstants.ts at b7a049c7), one test per family", () => {
  // [CPU model as in /proc/cpuinfo, family, CCF COMPUTE_PROCESSOR_TYPES name, min W/vCPU, max W/vCPU]
  const table: [string, string, string, number, number][] = [
    ["Intel(R) Xeon(R) Platinum 8272CL CPU @ 2.60GHz", "intel-cascade-lake", "Cascade Lake", 0.64, 3.97],
    ["Intel(R) Xeon(R) Platinum 8171M CPU @ 2.60GHz", "intel-skylake", "Skylake", 0.65, 4.26],
    ["Intel(R) Xeon(R) CPU E5-2673 v4 @ 2.30GHz", "intel-broadwell", "Broadwell", 0.71, 3.69],
    ["Intel(R) Xeon(R) CPU E5-2673 v3 @ 2.40GHz", "intel-haswell", "Haswell", 1, 4.74],
    ["Intel(R) Xeon(R) CPU E5-2680 v2 @ 2.80GHz", "intel-ivy-bridge", "Ivy Bridge", 3.04, 8.25],
    ["Intel(R) Xeon(R) CPU E5-2670 0 @ 2.60GHz", "intel-sandy-bridge", "Sandy Bridge", 2.17, 8.58],
    ["Intel(R) Xeon(R) E-2176G CPU @ 3.70GHz", "intel-coffee-lake", "Coffee Lake", 1.14, 5.42],
    ["AMD EPYC 7551 32-Core Processor", "amd-epyc-1st-gen", "AMD EPYC 1st Gen", 0.82, 2.55],
    ["AMD EPYC 7452 32-Core Processor", "amd-epyc-2nd-gen", "AMD EPYC 2nd Gen", 0.47, 1.69],
    ["AMD EPYC 7763 64-Core Processor", "amd-epyc-3rd-gen", "AMD EPYC 3rd Gen", 0.45, 2.02],
  ];
  for (const [cpu, family, ccfName, min, max] of table) {
    it(`${ccfName}: ${min} / ${max} W per vCPU`, () => {
      expect(detectFamily(cpu)).toMatchObject({ name: family, ccfName, min, max });
    });
  }

  it("unknown CPUs get MIN_WATTS_AVG / MAX_WATTS_AVG, memory MEMORY_COEFFICIENT as W/GB", () => {
    expect(detectFamily("Common KVM processor")).toMatchObject({ name: "unknown-average", min: 0.74, max: 3.54 });
    expect(coefficientsFor("Common KVM processor", {}).memoryWattsPerGb).toBe(0.392); // 0.000392 kWh/GB·h
  });

  it("the model-shape idle share is P(0)/P(u): all idle at rest, a dynamic share at any load", () => {
    const c = coefficientsFor("AMD EPYC 7763 64-Core Processor", {});
    expect(idleFraction(c, 8, 0, 0)).toBe(1);
    expect(idleFraction(c, 8, 0, 1)).toBeCloseTo(0.45 / 2.02, 9);
    expect(idleFraction(c, 8, 16, 0.25)).toBeCloseTo((8 * 0.45 + 16 * 0.392) / (8 * 0.45 + 16 * 0.392 + 8 * 1.57 * 0.25), 9);
  });
});
