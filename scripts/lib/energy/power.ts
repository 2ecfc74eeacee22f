/**
 * The node's power source, chosen once at start: RAPL when a readable
 * powercap tree with package/psys zones exists (or `source: rapl` demands it),
 * else the estimation model. The reason for the choice is kept for the log and
 * the info metric.
 */
import { OperationError, UserError } from "../errors.ts";
import type { ExporterConfig } from "./config.ts";
import type { HostReader } from "./host.ts";
import { type Coefficients, coefficientsFor, idleFraction, modelPower } from "./model.ts";
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
  /** for the info metric: zones (current: PSYS may be given up) or coefficients */
  readonly description: string;
  /** RAPL: how the idle share is found, for the info metric */
  idleDescription?: string;
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
      // all zones: behind PSYS the meter also reads package and DRAM, to notice a stuck PSYS
      const zones = discoverZones(reader, config.host.sysfs);
      if (nodeZones(zones).length > 0) {
        const meter = new RaplMeter(reader, zones, { maxZoneWatts: config.rapl.maxZoneWatts });
        meter.poll(nowMs); // the first read proves energy_uj is readable
        return raplSource(
          meter,
          cpuModel,
          modelCoefficients(config, cpuModel),
          readMemTotalGb(reader, config.host.procfs),
          config,
        );
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
  const coefficients = modelCoefficients(config, cpuModel);
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

function modelCoefficients(config: ExporterConfig, cpuModel: string): Coefficients {
  return coefficientsFor(cpuModel, {
    family: config.model.cpuFamily,
    minWattsPerVcpu: config.model.minWattsPerVcpu,
    maxWattsPerVcpu: config.model.maxWattsPerVcpu,
    memoryWattsPerGb: config.model.memoryWattsPerGb,
  });
}

/**
 * The idle (static) share of measured energy. A configured idle power (watts
 * measured on this machine at rest) is used as is. Otherwise the measured
 * energy is split in the proportion the CPU family's model gives at the
 * interval's utilisation: idle = measured × P_model(0) / P_model(u). The
 * meter gives the scale, the model only the shape (its min:max ratio), so at
 * any utilisation above 0 the tasks get a share, and under steady load the
 * split does not drift. The memory term is in the model only when a DRAM or
 * PSYS zone measures memory.
 */
export function raplIdleJoules(
  joules: number,
  elapsedSeconds: number,
  utilisation: number,
  idle: { watts?: number; coefficients: Coefficients; vcpus: number; memoryGb: number },
): number {
  if (idle.watts !== undefined) return Math.min(joules, idle.watts * elapsedSeconds);
  return joules * idleFraction(idle.coefficients, idle.vcpus, idle.memoryGb, utilisation);
}

function raplSource(
  meter: RaplMeter,
  cpuModel: string,
  coefficients: Coefficients,
  memoryGb: number,
  config: ExporterConfig,
): PowerSource {
  const configured = config.rapl.idleWatts ?? (typeof config.rapl.idle === "number" ? config.rapl.idle : undefined);
  return {
    kind: "rapl",
    estimated: false,
    cpuModel,
    rapl: meter,
    get description() {
      return meter.zones.map((z) => `${z.id}:${z.name}`).join(",");
    },
    idleDescription:
      configured !== undefined
        ? `configured ${configured}W`
        : `model-shape ${coefficients.family} min=${coefficients.minWattsPerVcpu} max=${coefficients.maxWattsPerVcpu}`,
    reason: "RAPL powercap zones are readable",
    measure(nowMs, _elapsed, utilisation, vcpus) {
      const reading = meter.take(nowMs);
      if (reading.elapsedSeconds <= 0) return { joules: reading.joules, idleJoules: 0 };
      const measuresMemory = meter.zones.some((z) => z.kind === "dram" || z.kind === "psys");
      const idleJoules = raplIdleJoules(reading.joules, reading.elapsedSeconds, utilisation, {
        watts: configured,
        coefficients,
        vcpus,
        memoryGb: measuresMemory ? memoryGb : 0,
      });
      return { joules: reading.joules, idleJoules };
    },
  };
}
