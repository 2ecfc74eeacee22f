/**
 * The node's power source, chosen once at start: RAPL when a readable
 * powercap tree with package/psys zones exists (or `source: rapl` demands it),
 * else the estimation model. The reason for the choice is kept for the log and
 * the info metric.
 */
import { OperationError, UserError } from "../errors.ts";
import type { ExporterConfig } from "./config.ts";
import type { HostReader } from "./host.ts";
import { type Coefficients, coefficientsFor, modelPower } from "./model.ts";
import { readCpuModel, readMemTotalGb } from "./procfs.ts";
import { discoverZones, nodeZones, RaplMeter } from "./rapl.ts";

export interface IntervalEnergy {
  joules: number;
  idleJoules: number;
}

export interface PowerSource {
  kind: "rapl" | "model";
  estimated: boolean;
  cpuModel: string;
  /** for the info metric: zones or coefficients */
  description: string;
  /** why this source was chosen (logged at start) */
  reason: string;
  rapl?: RaplMeter;
  coefficients?: Coefficients;
  /** energy of the interval that ends now */
  measure(nowMs: number, elapsedSeconds: number, utilisation: number, vcpus: number): IntervalEnergy;
}

export function choosePowerSource(config: ExporterConfig, reader: HostReader, nowMs = Date.now()): PowerSource {
  const cpuModel = readCpuModel(reader, config.host.procfs);
  let raplProblem = "no RAPL zones under " + `${config.host.sysfs}/class/powercap`;
  if (config.source !== "model") {
    try {
      const zones = nodeZones(discoverZones(reader, config.host.sysfs));
      if (zones.length > 0) {
        const meter = new RaplMeter(reader, zones, { maxZoneWatts: config.rapl.maxZoneWatts });
        meter.poll(nowMs); // the first read proves energy_uj is readable
        return raplSource(meter, cpuModel, config.rapl.idleWatts);
      }
    } catch (error) {
      if (config.source === "rapl") throw error;
      raplProblem = error instanceof UserError ? `${error.message} ${error.hint ?? ""}`.trim() : String(error);
    }
    if (config.source === "rapl") {
      throw new OperationError(`source: rapl was asked for, but there is ${raplProblem}.`, {
        hint: "Use source: auto or model on machines without RAPL (most VMs and containers).",
      });
    }
  }
  const coefficients = coefficientsFor(cpuModel, {
    family: config.model.cpuFamily,
    minWattsPerVcpu: config.model.minWattsPerVcpu,
    maxWattsPerVcpu: config.model.maxWattsPerVcpu,
    memoryWattsPerGb: config.model.memoryWattsPerGb,
  });
  const memoryGb = readMemTotalGb(reader, config.host.procfs);
  return {
    kind: "model",
    estimated: true,
    cpuModel,
    coefficients,
    description: `family=${coefficients.family} min=${coefficients.minWattsPerVcpu}W/vCPU max=${coefficients.maxWattsPerVcpu}W/vCPU memory=${coefficients.memoryWattsPerGb}W/GB`,
    reason: config.source === "model" ? "source: model in the config" : raplProblem,
    measure(_now, elapsed, utilisation, vcpus) {
      const p = modelPower(coefficients, vcpus, memoryGb, utilisation);
      return { joules: p.watts * elapsed, idleJoules: p.idleWatts * elapsed };
    },
  };
}

function raplSource(meter: RaplMeter, cpuModel: string, idleWatts: number | undefined): PowerSource {
  // without a configured idle power, the lowest power seen so far stands for it
  let lowestWatts = Infinity;
  return {
    kind: "rapl",
    estimated: false,
    cpuModel,
    rapl: meter,
    description: `${meter.zones.map((z) => `${z.id}:${z.name}`).join(",")}`,
    reason: "RAPL powercap zones are readable",
    measure(nowMs) {
      const reading = meter.take(nowMs);
      if (reading.elapsedSeconds <= 0) return { joules: reading.joules, idleJoules: 0 };
      const watts = reading.joules / reading.elapsedSeconds;
      if (reading.joules > 0) lowestWatts = Math.min(lowestWatts, watts);
      const idle = idleWatts ?? (Number.isFinite(lowestWatts) ? lowestWatts : 0);
      return { joules: reading.joules, idleJoules: Math.min(reading.joules, idle * reading.elapsedSeconds) };
    },
  };
}
