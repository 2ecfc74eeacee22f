import * as fs from "node:fs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fsHostReader } from "../../../scripts/lib/energy/host.ts";
import { counterDelta, discoverZones, nodeZones, RaplMeter } from "../../../scripts/lib/energy/rapl.ts";
import { OperationError } from "../../../scripts/lib/errors.ts";
import { failingReader, FakeHost } from "../../helpers/energy-trees.ts";
import { tempDir } from "../../helpers/fixtures.ts";

let dir: Awaited<ReturnType<typeof tempDir>>;
let host: FakeHost;
const big = 262_143_328_850; // a common max_energy_range_uj (≈262 kJ)

beforeEach(async () => {
  dir = await tempDir("rapl");
  host = new FakeHost(dir.path);
});
afterEach(() => dir.remove());

function twoSockets(withDram = true): FakeHost {
  host
    .zone({ id: "intel-rapl:0", name: "package-0", maxRangeUj: big, energyUj: 1_000_000 })
    .zone({ id: "intel-rapl:0:0", name: "core", maxRangeUj: big, energyUj: 500_000 })
    .zone({ id: "intel-rapl:0:1", name: "uncore", maxRangeUj: big, energyUj: 100_000 })
    .zone({ id: "intel-rapl:1", name: "package-1", maxRangeUj: big, energyUj: 2_000_000 })
    .zone({ id: "intel-rapl-mmio:0", name: "package-0", maxRangeUj: big, energyUj: 1_000_000 });
  if (withDram) host.zone({ id: "intel-rapl:0:2", name: "dram", maxRangeUj: big, energyUj: 3_000_000 });
  return host;
}

describe("counterDelta", () => {
  it("subtracts when the counter grew and goes through max_energy_range_uj when it wrapped", () => {
    expect(counterDelta(100, 350, 1000)).toEqual({ deltaUj: 250, wrapped: false });
    expect(counterDelta(900, 50, 1000)).toEqual({ deltaUj: 150, wrapped: true });
  });
});

describe("zone discovery", () => {
  it("uses package + dram over two sockets, never core/uncore, and ignores mmio duplicates", () => {
    twoSockets();
    const all = discoverZones(fsHostReader, host.sysfs);
    expect(all.map((z) => z.id)).not.toContain("intel-rapl-mmio:0");
    expect(nodeZones(all).map((z) => `${z.id}:${z.kind}`)).toEqual([
      "intel-rapl:0:package",
      "intel-rapl:0:2:dram",
      "intel-rapl:1:package",
    ]);
  });

  it("uses PSYS alone when present", () => {
    twoSockets().zone({ id: "intel-rapl:2", name: "psys", maxRangeUj: big, energyUj: 0 });
    expect(nodeZones(discoverZones(fsHostReader, host.sysfs)).map((z) => z.name)).toEqual(["psys"]);
  });

  it("works without DRAM (client CPUs) and finds nothing without powercap", () => {
    twoSockets(false);
    expect(nodeZones(discoverZones(fsHostReader, host.sysfs)).map((z) => z.name)).toEqual(["package-0", "package-1"]);
    const empty = new FakeHost(`${dir.path}/empty`);
    expect(discoverZones(fsHostReader, empty.sysfs)).toEqual([]);
  });
});

describe("RaplMeter", () => {
  it("sums node zones between reads, ignoring core/uncore/mmio", () => {
    twoSockets();
    const meter = new RaplMeter(fsHostReader, discoverZones(fsHostReader, host.sysfs), { maxZoneWatts: 1000 });
    meter.poll(0);
    host.setEnergy("intel-rapl:0", 1_000_000 + 50e6); // 50 J
    host.setEnergy("intel-rapl:1", 2_000_000 + 40e6); // 40 J
    host.setEnergy("intel-rapl:0:2", 3_000_000 + 10e6); // 10 J
    host.setEnergy("intel-rapl:0:0", 500_000 + 45e6); // core: must not count
    host.setEnergy("intel-rapl-mmio:0", 1_000_000 + 50e6); // duplicate: must not count
    const reading = meter.take(1000);
    expect(reading.joules).toBeCloseTo(100, 6);
    expect(reading.elapsedSeconds).toBe(1);
  });

  it("handles a single wrap with a small range and counts it", () => {
    host.zone({ id: "intel-rapl:0", name: "package-0", maxRangeUj: 100e6, energyUj: 90e6 }); // 100 J range
    const meter = new RaplMeter(fsHostReader, discoverZones(fsHostReader, host.sysfs), { maxZoneWatts: 20 });
    meter.poll(0);
    host.setEnergy("intel-rapl:0", 5e6); // 10 J to the top, then 5 J
    expect(meter.take(1000).joules).toBeCloseTo(15, 6);
    expect(meter.counters.get("intel-rapl:0")?.wraps).toBe(1);
  });

  it("polls fast enough that a double wrap cannot happen, and rejects a period where it could have", () => {
    host.zone({ id: "intel-rapl:0", name: "package-0", maxRangeUj: 100e6, energyUj: 0 });
    const meter = new RaplMeter(fsHostReader, discoverZones(fsHostReader, host.sysfs), { maxZoneWatts: 20 });
    // 100 J at 20 W wraps every 5 s: polling every 2.5 s cannot see two wraps
    expect(meter.safePollSeconds()).toBeCloseTo(2.5, 6);
    meter.poll(0);
    // 12 s later the counter may have wrapped twice (2 × 100 J at ≤ 20 W): ambiguous, so rejected
    host.setEnergy("intel-rapl:0", 30e6);
    expect(meter.take(12_000).joules).toBe(0);
    expect(meter.counters.get("intel-rapl:0")?.rejected.too_long_between_reads).toBe(1);
    // polled at the safe period, two wraps over 10 s are two single wraps: all energy counted
    let uj = 30e6;
    let t = 12_000;
    let expected = 0;
    for (let i = 0; i < 4; i++) {
      uj = (uj + 45e6) % 100e6; // 45 J per 2.5 s = 18 W
      expected += 45;
      t += 2500;
      host.setEnergy("intel-rapl:0", uj);
      meter.poll(t);
    }
    expect(meter.take(t).joules).toBeCloseTo(expected, 6);
    // 30 → 75 → 20 (wrap) → 65 → 10 (wrap)
    expect(meter.counters.get("intel-rapl:0")?.wraps).toBe(2);
  });

  it("rejects an implausible jump and counts it, keeping the next good delta", () => {
    host.zone({ id: "intel-rapl:0", name: "package-0", maxRangeUj: big, energyUj: 0 });
    const meter = new RaplMeter(fsHostReader, discoverZones(fsHostReader, host.sysfs), { maxZoneWatts: 500 });
    meter.poll(0);
    host.setEnergy("intel-rapl:0", 5_000e6); // 5 kJ in 1 s = 5 kW
    expect(meter.take(1000).joules).toBe(0);
    expect(meter.counters.get("intel-rapl:0")?.rejected.implausible).toBe(1);
    host.setEnergy("intel-rapl:0", 5_000e6 + 30e6);
    expect(meter.take(2000).joules).toBeCloseTo(30, 6);
  });

  it("skips an empty or garbled read instead of taking it for a counter reset", () => {
    host.zone({ id: "intel-rapl:0", name: "package-0", maxRangeUj: big, energyUj: 10e6 });
    const meter = new RaplMeter(fsHostReader, discoverZones(fsHostReader, host.sysfs), { maxZoneWatts: 500 });
    meter.poll(0);
    const { writeFileSync } = fs;
    writeFileSync(`${host.sysfs}/class/powercap/intel-rapl:0/energy_uj`, "");
    meter.poll(500);
    host.setEnergy("intel-rapl:0", 30e6);
    expect(meter.take(1000).joules).toBeCloseTo(20, 6);
    expect(meter.counters.get("intel-rapl:0")?.wraps).toBe(0);
  });

  it("turns EACCES on energy_uj into a clear error (simulated: root is never denied by file modes)", () => {
    host.zone({ id: "intel-rapl:0", name: "package-0", maxRangeUj: big, energyUj: 0 });
    const reader = failingReader({ energy_uj: "EACCES" });
    const meter = new RaplMeter(reader, discoverZones(reader, host.sysfs), { maxZoneWatts: 500 });
    let error: unknown;
    try {
      meter.poll(0);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(OperationError);
    expect((error as OperationError).message).toMatch(/Cannot read .*intel-rapl:0\/energy_uj: permission denied/);
    expect((error as OperationError).hint).toMatch(/root only.*source: model/s);
  });
});
