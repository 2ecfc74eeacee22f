/**
 * Node energy from Intel/AMD RAPL through the powercap sysfs tree.
 *
 * - `energy_uj` is a wrapping counter; a read lower than the last one wrapped
 *   once through `max_energy_range_uj`. Two wraps between reads cannot be told
 *   from one, so we poll often enough that it cannot happen at a plausible
 *   power, and reject intervals that were too long to be sure.
 * - Node energy is PSYS (whole platform) when present, else Σ package + Σ dram.
 *   core/uncore are parts of the package and are never added; `intel-rapl-mmio`
 *   zones repeat the MSR package zone and are ignored.
 */
import { join } from "node:path";
import { OperationError } from "../errors.ts";
import { errnoCode, type HostReader } from "./host.ts";

export type ZoneKind = "psys" | "package" | "dram" | "core" | "uncore" | "other";

export interface RaplZone {
  /** directory name, e.g. intel-rapl:0 or intel-rapl:0:2 */
  id: string;
  name: string;
  kind: ZoneKind;
  energyFile: string;
  maxRangeUj: number;
}

export interface RaplOptions {
  /** a zone delta above this average power is implausible and rejected */
  maxZoneWatts: number;
}

/** Zones under <sysfs>/class/powercap, mmio duplicates left out. */
export function discoverZones(reader: HostReader, sysfs: string): RaplZone[] {
  const base = join(sysfs, "class", "powercap");
  const zones: RaplZone[] = [];
  for (const id of reader.listDirs(base).sort()) {
    // intel-rapl:N (package/psys) and intel-rapl:N:M (sub-zones); not the
    // "intel-rapl" control type itself, not intel-rapl-mmio:N duplicates
    if (!/^intel-rapl:\d+(:\d+)?$/.test(id)) continue;
    const dir = join(base, id);
    const name = reader.readText(join(dir, "name")).trim();
    const maxRangeUj = Number(reader.readText(join(dir, "max_energy_range_uj")).trim());
    if (!Number.isFinite(maxRangeUj) || maxRangeUj <= 0) continue;
    zones.push({ id, name, kind: zoneKind(name), energyFile: join(dir, "energy_uj"), maxRangeUj });
  }
  return zones;
}

function zoneKind(name: string): ZoneKind {
  if (name === "psys") return "psys";
  if (name.startsWith("package")) return "package";
  if (name === "dram") return "dram";
  if (name === "core") return "core";
  if (name === "uncore") return "uncore";
  return "other";
}

/** The zones whose sum is the node's energy. */
export function nodeZones(zones: RaplZone[]): RaplZone[] {
  const psys = zones.filter((z) => z.kind === "psys");
  if (psys.length > 0) return psys;
  return zones.filter((z) => z.kind === "package" || z.kind === "dram");
}

/** Energy between two reads of a wrapping counter (µJ), assuming at most one wrap. */
export function counterDelta(previous: number, current: number, maxRange: number): { deltaUj: number; wrapped: boolean } {
  if (current >= previous) return { deltaUj: current - previous, wrapped: false };
  return { deltaUj: maxRange - previous + current, wrapped: true };
}

export function permissionError(file: string, cause: unknown): OperationError {
  return new OperationError(`Cannot read ${file}: permission denied.`, {
    cause,
    hint:
      "Since Linux 5.10 energy_uj is readable by root only (CVE-2020-8694). Run the exporter as root " +
      "(the Nomad job does), or set source: model to use the estimation model instead.",
  });
}

export interface RaplReading {
  joules: number;
  elapsedSeconds: number;
}

export interface ZoneCounters {
  wraps: number;
  rejected: Record<"implausible" | "too_long_between_reads" | "read_error", number>;
}

/**
 * Polls the node zones and accumulates their energy. `poll()` may be called
 * more often than the export interval (see `safePollSeconds`); `take()`
 * returns what accumulated since the last take.
 *
 * With PSYS in use the package and DRAM zones are read too: PSYS covers the
 * whole platform, so an interval in which packages used energy and PSYS did
 * not means its counter is stuck (seen on some firmware). The meter then
 * switches to package + DRAM for good and flags the PSYS zone (`stuckZones`).
 *
 * Read errors after the first poll (a zone gone, EIO) never throw: the zone
 * is skipped, counted as `read_error`, and its next good read covers the gap
 * when that is still short enough to rule out a double wrap.
 */
export class RaplMeter {
  /** the zones whose sum is the node's energy now */
  zones: RaplZone[];
  /** every zone read: the node zones, and package/DRAM behind a PSYS zone */
  readonly tracked: RaplZone[];
  readonly counters = new Map<string, ZoneCounters>();
  /** PSYS zones found stuck and no longer used */
  readonly stuckZones: RaplZone[] = [];
  private readonly fallback: RaplZone[];
  private last = new Map<string, { uj: number; atMs: number }>();
  private pendingUj = new Map<string, number>();
  private pendingSince: number | undefined;
  private polled = false;

  constructor(
    private readonly reader: HostReader,
    zones: RaplZone[],
    private readonly options: RaplOptions,
  ) {
    this.zones = nodeZones(zones);
    if (this.zones.length === 0) throw new OperationError("No RAPL package, dram or psys zone found.");
    this.fallback = zones.filter((z) => z.kind === "package" || z.kind === "dram");
    this.tracked = this.zones[0]?.kind === "psys" ? [...this.zones, ...this.fallback] : this.zones;
    for (const z of this.tracked) {
      this.counters.set(z.id, { wraps: 0, rejected: { implausible: 0, too_long_between_reads: 0, read_error: 0 } });
      this.pendingUj.set(z.id, 0);
    }
  }

  /**
   * The longest poll period at which even `maxZoneWatts` cannot wrap the
   * smallest counter twice (half of one wrap period, for margin).
   */
  safePollSeconds(): number {
    const smallest = Math.min(...this.tracked.map((z) => z.maxRangeUj));
    return smallest / 1e6 / this.options.maxZoneWatts / 2;
  }

  /** Read every tracked zone. Only the first poll throws (it proves energy_uj is readable). */
  poll(nowMs: number): void {
    for (const zone of this.tracked) {
      let text: string;
      try {
        // read at every poll: kept open where the reader can (sysfs gives a fresh value on each read from offset 0)
        text = (this.reader.readKept ? this.reader.readKept(zone.energyFile) : this.reader.readText(zone.energyFile)).trim();
      } catch (error) {
        if (!this.polled) {
          if (errnoCode(error) === "EACCES" || errnoCode(error) === "EPERM") throw permissionError(zone.energyFile, error);
          throw new OperationError(`Cannot read ${zone.energyFile}: ${(error as Error).message}`, { cause: error });
        }
        (this.counters.get(zone.id) as ZoneCounters).rejected.read_error++;
        continue;
      }
      // an empty or garbled read must not look like a counter reset to 0
      if (!/^\d+$/.test(text)) continue;
      const uj = Number(text);
      const previous = this.last.get(zone.id);
      this.last.set(zone.id, { uj, atMs: nowMs });
      if (!previous) continue;
      const counters = this.counters.get(zone.id) as ZoneCounters;
      const elapsed = (nowMs - previous.atMs) / 1000;
      if (elapsed <= 0) continue;
      // a period in which the zone could have wrapped more than once is ambiguous
      if (elapsed * this.options.maxZoneWatts * 1e6 >= zone.maxRangeUj) {
        counters.rejected.too_long_between_reads++;
        continue;
      }
      const { deltaUj, wrapped } = counterDelta(previous.uj, uj, zone.maxRangeUj);
      if (deltaUj / 1e6 / elapsed > this.options.maxZoneWatts) {
        counters.rejected.implausible++;
        continue;
      }
      if (wrapped) counters.wraps++;
      this.pendingUj.set(zone.id, (this.pendingUj.get(zone.id) ?? 0) + deltaUj);
    }
    this.polled = true;
    this.pendingSince ??= nowMs;
  }

  /** Poll once more and hand over the energy accumulated since the previous take. */
  take(nowMs: number): RaplReading {
    this.poll(nowMs);
    const sum = (zones: RaplZone[]) => zones.reduce((s, z) => s + (this.pendingUj.get(z.id) ?? 0), 0);
    let uj = sum(this.zones);
    if (this.zones[0]?.kind === "psys" && uj === 0 && this.fallback.length > 0 && sum(this.fallback) > 0) {
      // the platform cannot use less than its packages: PSYS is stuck
      this.stuckZones.push(...this.zones);
      this.zones = this.fallback;
      uj = sum(this.zones);
    }
    const since = this.pendingSince ?? nowMs;
    const reading = { joules: uj / 1e6, elapsedSeconds: (nowMs - since) / 1000 };
    for (const id of this.pendingUj.keys()) this.pendingUj.set(id, 0);
    this.pendingSince = nowMs;
    return reading;
  }
}
