/**
 * The estimation model for machines without RAPL (VMs, containers):
 * P = vCPUs × (min + (max − min) × utilisation) + memory GB × W/GB.
 *
 * Coefficients are copied exactly from ONE table of Cloud Carbon Footprint
 * (CCF), derived there from SPECpower_ssj2008 results:
 *   repository cloud-carbon-footprint/cloud-carbon-footprint, commit
 *   b7a049c7d25c0022919ab9010199dd9e77aa4577 (file last changed in 1559c186),
 *   packages/azure/src/domain/AzureFootprintEstimationConstants.ts,
 *   AZURE_CLOUD_CONSTANTS: MIN_WATTS_BY_COMPUTE_PROCESSOR, MAX_WATTS_BY_COMPUTE_PROCESSOR,
 *   MIN_WATTS_AVG / MAX_WATTS_AVG (unknown CPU), MEMORY_COEFFICIENT (0.000392 kWh/GB·h).
 * The family names are CCF's COMPUTE_PROCESSOR_TYPES
 * (packages/core/src/compute/ComputeProcessorTypes.ts, which holds the names
 * only). The Azure table is used because it is the only provider table with
 * every family detected here (AWS's has no EPYC 3rd gen); its per-family
 * values equal AWS's and GCP's, only the unknown average differs (AWS 3.5, GCP
 * median 4.11). Every figure is overridable in the config.
 */
export interface Coefficients {
  family: string;
  minWattsPerVcpu: number;
  maxWattsPerVcpu: number;
  memoryWattsPerGb: number;
}

interface Family {
  name: string;
  /** CCF's COMPUTE_PROCESSOR_TYPES value */
  ccfName: string;
  pattern: RegExp;
  min: number;
  max: number;
}

/** CCF coefficients (watts per vCPU at 0 % and 100 % utilisation), Azure table; see above. */
export const families: Family[] = [
  { name: "amd-epyc-1st-gen", ccfName: "AMD EPYC 1st Gen", pattern: /EPYC 7[0-9A-Z]{2}1(?!\d)/i, min: 0.82, max: 2.55 },
  { name: "amd-epyc-2nd-gen", ccfName: "AMD EPYC 2nd Gen", pattern: /EPYC 7[0-9A-Z]{2}2(?!\d)/i, min: 0.47, max: 1.69 },
  { name: "amd-epyc-3rd-gen", ccfName: "AMD EPYC 3rd Gen", pattern: /EPYC 7[0-9A-Z]{2}3(?!\d)/i, min: 0.45, max: 2.02 },
  {
    name: "intel-cascade-lake",
    ccfName: "Cascade Lake",
    pattern: /Xeon.*(Gold|Silver|Platinum|Bronze) [3-9]2\d\d/i,
    min: 0.64,
    max: 3.97,
  },
  { name: "intel-skylake", ccfName: "Skylake", pattern: /Xeon.*(Gold|Silver|Platinum|Bronze) [3-9]1\d\d/i, min: 0.65, max: 4.26 },
  { name: "intel-broadwell", ccfName: "Broadwell", pattern: /Xeon.*E5-\d{4}[A-Z]? v4/i, min: 0.71, max: 3.69 },
  { name: "intel-haswell", ccfName: "Haswell", pattern: /Xeon.*E5-\d{4}[A-Z]? v3/i, min: 1, max: 4.74 },
  { name: "intel-ivy-bridge", ccfName: "Ivy Bridge", pattern: /Xeon.*E5-\d{4}[A-Z]? v2/i, min: 3.04, max: 8.25 },
  { name: "intel-sandy-bridge", ccfName: "Sandy Bridge", pattern: /Xeon.*E5-\d{4}[A-Z]?(?! v\d)(\s|$)/i, min: 2.17, max: 8.58 },
  { name: "intel-coffee-lake", ccfName: "Coffee Lake", pattern: /Xeon.*E-2[12]\d\d/i, min: 1.14, max: 5.42 },
];

/** CCF's fallback when the microarchitecture is unknown (Azure table: MIN_WATTS_AVG, MAX_WATTS_AVG). */
export const unknownFamily = { name: "unknown-average", min: 0.74, max: 3.54 };
/** MEMORY_COEFFICIENT 0.000392 kWh per GB-hour = 0.392 W per GB */
export const memoryWattsPerGb = 0.392;

export function detectFamily(cpuModel: string): { name: string; min: number; max: number } {
  return families.find((f) => f.pattern.test(cpuModel)) ?? unknownFamily;
}

export function coefficientsFor(
  cpuModel: string,
  overrides: Partial<Pick<Coefficients, "minWattsPerVcpu" | "maxWattsPerVcpu" | "memoryWattsPerGb">> & { family?: string },
): Coefficients {
  const byName = overrides.family && overrides.family !== "auto" ? families.find((f) => f.name === overrides.family) : undefined;
  const base = byName ?? detectFamily(cpuModel);
  const overridden = overrides.minWattsPerVcpu !== undefined || overrides.maxWattsPerVcpu !== undefined;
  return {
    family: overridden ? `${base.name}+override` : base.name,
    minWattsPerVcpu: overrides.minWattsPerVcpu ?? base.min,
    maxWattsPerVcpu: overrides.maxWattsPerVcpu ?? base.max,
    memoryWattsPerGb: overrides.memoryWattsPerGb ?? memoryWattsPerGb,
  };
}

export interface ModelPower {
  watts: number;
  /** the part that does not depend on utilisation (min watts and memory) */
  idleWatts: number;
}

export function modelPower(c: Coefficients, vcpus: number, memoryGb: number, utilisation: number): ModelPower {
  const idleWatts = vcpus * c.minWattsPerVcpu + memoryGb * c.memoryWattsPerGb;
  return { watts: idleWatts + vcpus * (c.maxWattsPerVcpu - c.minWattsPerVcpu) * utilisation, idleWatts };
}

/**
 * The idle share of the power at utilisation `u`, by the model's shape:
 * idle / (idle + dynamic(u)). Used to split measured (RAPL) energy when no
 * idle power is configured: the scale comes from the meter, only the model's
 * min:max ratio matters, and at u > 0 the dynamic share is always above 0.
 */
export function idleFraction(c: Coefficients, vcpus: number, memoryGb: number, utilisation: number): number {
  const p = modelPower(c, vcpus, memoryGb, Math.min(1, Math.max(0, utilisation)));
  return p.watts > 0 ? p.idleWatts / p.watts : 1;
}
