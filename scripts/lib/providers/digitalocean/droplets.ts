/**
 * Creating droplets without ever creating one twice, waiting for them, and
 * turning them into inventory hosts.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { ClusterConfig } from "../../config/schema.ts";
import { OperationError } from "../../errors.ts";
import type { Inventory } from "../../inventory/schema.ts";
import type { Reporter } from "../../cli/output.ts";
import { parseCidr, parseIpv4 } from "../../util/net.ts";
import { DoApiError, type DoClient } from "./client.ts";
import { planDroplets } from "./reconcile.ts";
import { type DesiredDroplet, type Droplet, privateIpOf, publicIpOf } from "./resources.ts";
import type { DigitalOceanTiming } from "./timing.ts";

/**
 * Create one droplet; never retried. After a timeout or a 5xx the create may
 * have happened, so look for it by tag instead of sending it again.
 */
export async function createDroplet(
  api: DoClient,
  timing: DigitalOceanTiming,
  reporter: Reporter,
  want: DesiredDroplet,
): Promise<{ droplet?: Droplet; actionId?: number }> {
  try {
    const answer = await api.post<{ droplet: Droplet; links?: { actions?: { id: number }[] } }>("/v2/droplets", want.body);
    return { droplet: answer.droplet, actionId: answer.links?.actions?.[0]?.id };
  } catch (error) {
    if (!(error instanceof DoApiError) || !error.ambiguous) throw error;
    reporter.warn(`creating droplet ${want.body.name}: ${error.apiMessage}; checking by tag whether it was created`);
    const tag = want.body.tags[0]!;
    const deadline = Date.now() + timing.ambiguousGraceMs;
    for (;;) {
      const tagged = await api.list<Droplet>("/v2/droplets", "droplets", { tag_name: tag });
      const found = tagged.items.find((d) => d.name === want.body.name);
      if (found) return { droplet: found };
      if (Date.now() > deadline) {
        throw new OperationError(
          `Creating droplet ${want.body.name} failed (${error.apiMessage}) and it has not appeared under tag ${tag}.`,
          {
            hint: "It was not sent again, to avoid a duplicate. Run bootstrap again: it lists by tag and creates only what is missing.",
          },
        );
      }
      await sleep(timing.pollMs);
    }
  }
}

/** List by tag until every desired droplet is active with a private and a public address. */
export async function waitForDroplets(
  api: DoClient,
  timing: DigitalOceanTiming,
  tag: string,
  desired: DesiredDroplet[],
): Promise<Droplet[]> {
  const deadline = Date.now() + timing.waitMs;
  for (;;) {
    const tagged = (await api.list<Droplet>("/v2/droplets", "droplets", { tag_name: tag })).items;
    const plan = planDroplets(desired, tagged);
    const missing = plan.missing.map((d) => d.body.name);
    if (missing.length) {
      throw new OperationError(`Droplets ${missing.join(", ")} disappeared while waiting for them to start.`, {
        hint: "Someone deleted them or removed the cluster tag; run bootstrap again to recreate them.",
      });
    }
    const waiting = plan.existing
      .filter(({ droplet }) => droplet.status !== "active" || !privateIpOf(droplet) || !publicIpOf(droplet))
      .map(({ droplet }) => `${droplet.name} (${droplet.status})`);
    if (!waiting.length) return plan.existing.map((e) => e.droplet);
    if (Date.now() > deadline) {
      throw new OperationError(`Droplets did not become active in time: ${waiting.join(", ")}.`, {
        hint: "Run bootstrap again later: it waits for the droplets that exist and creates nothing twice.",
      });
    }
    await sleep(timing.pollMs);
  }
}

/** Bind/advertise on the VPC address (checked to be inside vpcIpRange), SSH as root on the public one. */
export function dropletInventory(
  config: ClusterConfig,
  keyPath: string,
  desired: DesiredDroplet[],
  droplets: Droplet[],
): Inventory {
  const rangeText = config.provider.digitalocean.vpcIpRange;
  const range = parseCidr(rangeText)!;
  return {
    cluster: config.name,
    provider: "digitalocean",
    hosts: desired.map((want) => {
      const droplet = droplets.find((d) => d.name === want.body.name)!;
      const privateIp = privateIpOf(droplet)!;
      const publicIp = publicIpOf(droplet)!;
      const ip = parseIpv4(privateIp)!;
      if (ip < range.network || ip >= range.network + 2 ** (32 - range.prefix)) {
        throw new OperationError(
          `Droplet ${droplet.name}'s private address ${privateIp} is outside the VPC range ${rangeText}.`,
          {
            hint: "It was created in another VPC: delete it (teardown) and run bootstrap again.",
          },
        );
      }
      return {
        name: want.host,
        roles: want.roles,
        privateIp,
        publicIp,
        ssh: { user: "root", port: 22, keyPath, host: publicIp },
        labels: { dropletId: String(droplet.id), region: droplet.region.slug, size: droplet.size_slug },
      };
    }),
  };
}
