/**
 * The estimation model for machines without RAPL (VMs, containers):
 * P = vCPUs × (min + (max − min) × utilisation) + memory GB × W/GB.
 *
 * Coefficients are Cloud Carbon Footprint's (CCF) per-vCPU watts by CPU
 * microarchitecture, derived from SPECpower_ssj2008 results
 * (https://www.cloudcarbonfootprint.org/docs/methodology, ccf-coefficients).
 * The memory term is CCF's 0.392 W per GB. Every figure is overridable.
 */
export interface Coefficients {
  family: string;
  minWattsPerVcpu: number;
  maxWattsPerVcpu: number;
  memoryWattsPerGb: number;
}

interface Family {
  name: string;
  pattern: RegExp;
  min: number;
  max: number;
}

/** CCF coefficients (watts per vCPU at 0 % and 100 % utilisation). */
export const families: Family[] = [
  { name: "amd-epyc-1st-gen", pattern: /EPYC 7[0-9A-Z]{2}1(?!\d)/i, min: 0.82, max: 2.55 },
  { name: "amd-epyc-2nd-gen", pattern: /EPYC 7[0-9A-Z]{2}2(?!\d)/i, min: 0.47, max: 1.64 },
  { name: "amd-epyc-3rd-gen", pattern: /EPYC 7[0-9A-Z]{2}3(?!\d)/i, min: 0.45, max: 1.87 },
  { name: "intel-cascade-lake", pattern: /Xeon.*(Gold|Silver|Platinum|Bronze) [3-9]2\d\d/i, min: 0.64, max: 3.8 },
  { name: "intel-skylake", pattern: /Xeon.*(Gold|Silver|Platinum|Bronze) [3-9]1\d\d/i, min: 0.64, max: 4.05 },
  { name: "intel-broadwell", pattern: /Xeon.*E5-\d{4} v4/i, min: 0.71, max: 3.54 },
  { name: "intel-haswell", pattern: /Xeon.*E5-\d{4} v3/i, min: 1.9, max: 5.99 },
];

/** CCF's fallback when the microarchitecture is unknown: the average over AWS's fleet. */
export const unknownFamily = { name: "unknown-average", min: 0.74, max: 3.5 };
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
