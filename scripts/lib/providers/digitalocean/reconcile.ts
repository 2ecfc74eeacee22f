/**
 * What exists versus what the config wants. Droplets are matched by name among
 * those carrying the cluster tag (DigitalOcean allows duplicate names, so a
 * listing by tag is the only truth); only the missing ones are created.
 */
import { OperationError } from "../../errors.ts";
import type { DesiredDroplet, Droplet } from "./resources.ts";

export interface DropletPlan {
  existing: { desired: DesiredDroplet; droplet: Droplet }[];
  missing: DesiredDroplet[];
  /** droplets with the cluster tag that the topology does not name (a smaller topology, a manual clone) */
  extra: Droplet[];
}

export function planDroplets(desired: DesiredDroplet[], tagged: Droplet[]): DropletPlan {
  const plan: DropletPlan = { existing: [], missing: [], extra: [] };
  const byName = new Map<string, Droplet[]>();
  for (const droplet of tagged) byName.set(droplet.name, [...(byName.get(droplet.name) ?? []), droplet]);
  for (const want of desired) {
    const found = byName.get(want.body.name) ?? [];
    if (found.length > 1) {
      throw new OperationError(
        `${found.length} droplets are named '${want.body.name}' with tag '${want.body.tags[0]}' (ids ${found.map((d) => d.id).join(", ")}).`,
        {
          hint: "DigitalOcean allows duplicate names; delete the extra one in the control panel (or with teardown) and run again.",
        },
      );
    }
    if (found[0]) plan.existing.push({ desired: want, droplet: found[0] });
    else plan.missing.push(want);
    byName.delete(want.body.name);
  }
  for (const rest of byName.values()) plan.extra.push(...rest);
  return plan;
}

/** Monthly cost of what will be created, from the sizes API's price_monthly. */
export function monthlyCost(missing: DesiredDroplet[], priceOf: (slug: string) => number): number {
  return missing.reduce((sum, d) => sum + priceOf(d.body.size), 0);
}
