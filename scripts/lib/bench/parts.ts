/** Which parts of `npm run bench` run: all, or those `--only` names, minus the `--skip-*` ones. */
import { InputError } from "../errors.ts";

/** the parts `--only` selects from; local, bootstrap and docker need root */
export const benchParts = ["render", "local", "bootstrap", "docker", "energy"] as const;
export type BenchPart = (typeof benchParts)[number];

export function selectedParts(flags: { only?: string; skipLocal?: boolean; skipEnergy?: boolean }): Set<BenchPart> {
  const parts = new Set<BenchPart>(benchParts);
  if (flags.only !== undefined) {
    parts.clear();
    for (const name of flags.only.split(",").map((p) => p.trim())) {
      if (!benchParts.includes(name as BenchPart))
        throw new InputError(`Unknown bench part "${name}".`, {
          hint: `--only takes a comma-separated list of: ${benchParts.join(", ")}`,
        });
      parts.add(name as BenchPart);
    }
  }
  if (flags.skipLocal) for (const p of ["local", "bootstrap", "docker"] as const) parts.delete(p);
  if (flags.skipEnergy) parts.delete("energy");
  return parts;
}
