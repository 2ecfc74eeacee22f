/**
 * The DigitalOcean provider: SSH key, VPC, cloud firewall, droplets, optional
 * block volume and a project, all found again by tag or name so `up` can be
 * re-run at any point (after a timeout, an interrupt or a success) and creates
 * only what is missing. `down` deletes everything of the cluster (teardown.ts).
 */
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { confirm } from "../../cli/confirm.ts";
import type { ClusterConfig } from "../../config/schema.ts";
import { InputError, OperationError } from "../../errors.ts";
import { inventoryPath, writeInventory } from "../../inventory/load.ts";
import { clusterSshKeyPath, ensureClusterSshKey } from "../../state/ssh-key.ts";
import type { DownOptions, NodeStatus, Provider, ProviderContext } from "../types.ts";
import { DoApiError, DoClient } from "./client.ts";
import { checkToken, describeFound, discover } from "./discover.ts";
import { createDroplet, dropletInventory, waitForDroplets } from "./droplets.ts";
import { md5Fingerprint } from "./fingerprint.ts";
import { doNames } from "./names.ts";
import { monthlyCost, planDroplets } from "./reconcile.ts";
import {
  type Action,
  type Droplet,
  type Firewall,
  type Project,
  type Size,
  type SshKey,
  type Volume,
  type Vpc,
  desiredDroplets,
  firewallBody,
  privateIpOf,
  publicIpOf,
  volumeBody,
  volumeHost,
} from "./resources.ts";
import { deleteCluster } from "./teardown.ts";
import { type DigitalOceanTiming, defaultTiming, waitForAction } from "./timing.ts";

export type { DigitalOceanTiming } from "./timing.ts";

/** Size slugs must exist and be offered in the region; the prices feed the cost summary. */
async function sizePrices(api: DoClient, config: ClusterConfig): Promise<Map<string, number>> {
  const options = config.provider.digitalocean;
  const sizes = (await api.list<Size>("/v2/sizes", "sizes")).items;
  for (const [field, slug] of [
    ["serverSize", options.serverSize],
    ["clientSize", options.clientSize],
  ] as const) {
    const size = sizes.find((s) => s.slug === slug);
    if (!size || !size.available || !size.regions.includes(options.region)) {
      const offered = sizes.filter((s) => s.available && s.regions.includes(options.region)).map((s) => s.slug);
      throw new InputError(
        `provider.digitalocean.${field} '${slug}' is ${size ? `not offered in region ${options.region}` : "not a DigitalOcean size"}.`,
        { hint: `Sizes offered in ${options.region}: ${offered.slice(0, 12).join(", ")}${offered.length > 12 ? ", …" : ""}.` },
      );
    }
  }
  return new Map(sizes.map((s) => [s.slug, s.price_monthly]));
}

async function uploadKey(api: DoClient, name: string, publicKey: string, fingerprint: string): Promise<SshKey> {
  try {
    return (await api.post<{ ssh_key: SshKey }>("/v2/account/keys", { name, public_key: publicKey })).ssh_key;
  } catch (error) {
    // "SSH Key is already in use on your account": uploaded since our lookup (a parallel run); use that one
    if (error instanceof DoApiError && error.status === 422) {
      const again = (await api.list<SshKey>("/v2/account/keys", "ssh_keys")).items.find((k) => k.fingerprint === fingerprint);
      if (again) return again;
    }
    throw error;
  }
}

async function attachVolume(
  api: DoClient,
  timing: DigitalOceanTiming,
  region: string,
  volume: Volume,
  droplet: Droplet,
): Promise<void> {
  if ((volume.droplet_ids ?? []).includes(droplet.id)) return;
  const { action } = await api.post<{ action: Action }>(`/v2/volumes/${volume.id}/actions`, {
    type: "attach",
    droplet_id: droplet.id,
    region,
  });
  await waitForAction(
    api,
    timing,
    `/v2/volumes/${volume.id}/actions/${action.id}`,
    `attaching volume ${volume.name} to ${droplet.name}`,
  );
}

/** Local files of the cluster (inventory, state); strings for the listing, paths for removal. */
function localLeftovers(context: ProviderContext, options: DownOptions): string[] & { paths: string[] } {
  const file = inventoryPath(context.config.name);
  const paths = [
    ...(existsSync(file) ? [file] : []),
    ...(!options.keepState && existsSync(context.state.root) ? [context.state.root] : []),
  ];
  return Object.assign(
    paths.map((p) => (p === file ? `inventory ${p}` : `state ${p}`)),
    { paths },
  );
}

export function createDigitalOceanProvider(overrides: Partial<DigitalOceanTiming> = {}): Provider {
  const timing = { ...defaultTiming, ...overrides };

  function client(context: ProviderContext): DoClient {
    return DoClient.fromEnv(process.env, {
      timeoutMs: timing.requestTimeoutMs,
      onRateLimit: ({ waitMs }) => context.reporter.warn(`DigitalOcean rate limit: waiting ${Math.ceil(waitMs / 1000)}s`),
    });
  }

  return {
    name: "digitalocean",

    async up(context) {
      const { config, reporter } = context;
      const options = config.provider.digitalocean;
      const names = doNames(config.name);
      const api = client(context);
      await checkToken(api);
      const { publicKey } = await ensureClusterSshKey(context.state, names.sshKey);
      const fingerprint = md5Fingerprint(publicKey);
      const prices = await sizePrices(api, config);
      const found = await discover(api, config, fingerprint);
      if (found.vpc && found.vpc.region !== options.region) {
        throw new InputError(
          `VPC ${found.vpc.name} exists in region ${found.vpc.region}, but provider.digitalocean.region is ${options.region}.`,
          { hint: `Set region back to ${found.vpc.region}, or tear the cluster down first to move it.` },
        );
      }
      if (found.vpc && found.vpc.ip_range !== options.vpcIpRange) {
        throw new InputError(
          `VPC ${found.vpc.name} exists with range ${found.vpc.ip_range}, but provider.digitalocean.vpcIpRange is ${options.vpcIpRange}.`,
          { hint: "Set vpcIpRange to the existing range, or tear the cluster down first to change it." },
        );
      }

      const plan = planDroplets(desiredDroplets(config, fingerprint, found.vpc?.id ?? "(new VPC)"), found.droplets);
      for (const { desired, droplet } of plan.existing) {
        // resizing is a deliberate, billed operation: report the drift, do not act on it
        if (droplet.size_slug !== desired.body.size) {
          reporter.warn(`droplet ${droplet.name} is ${droplet.size_slug}, the config says ${desired.body.size}; left as it is`);
        }
      }
      for (const droplet of plan.extra) {
        reporter.warn(`droplet ${droplet.name} (id ${droplet.id}) has tag ${names.tag} but is not in the topology; left alone`);
      }
      const toCreate = [
        ...(found.key ? [] : [`SSH key ${names.sshKey} (${fingerprint})`]),
        ...(found.vpc ? [] : [`VPC ${names.vpc} ${options.vpcIpRange} in ${options.region}`]),
        ...(found.firewall ? [] : [`cloud firewall ${names.firewall} (SSH and UIs from ${(options.allowedCidrs ?? []).join(", ")})`]),
        ...plan.missing.map(
          (d) =>
            `droplet ${d.body.name} ${d.body.size} ${d.body.image} [${d.body.tags.join(", ")}] $${(prices.get(d.body.size) ?? 0).toFixed(2)}/month`,
        ),
        ...(options.volumeSizeGb > 0 && !found.volume
          ? [`block volume ${names.volume} ${options.volumeSizeGb} GB (billed per GB, not in the sizes API)`]
          : []),
        ...(found.project ? [] : [`project ${options.project ?? names.project}`]),
      ];
      if (toCreate.length) {
        for (const item of toCreate) reporter.info(`will create ${item}`);
        const cost = monthlyCost(plan.missing, (slug) => prices.get(slug) ?? 0);
        reporter.info(`droplets to create cost $${cost.toFixed(2)}/month (DigitalOcean sizes API, price_monthly)`);
        if (!(await confirm(`Create these ${toCreate.length} DigitalOcean resources?`, context.yes ?? false))) {
          throw new OperationError("Nothing was created: the DigitalOcean resources were not confirmed.", {
            hint: "Answer 'y', or pass --yes to confirm without a prompt.",
          });
        }
      } else reporter.info("all DigitalOcean resources exist; nothing to create");

      const key = found.key ?? (await uploadKey(api, names.sshKey, publicKey, fingerprint));
      const vpc =
        found.vpc ??
        (
          await api.post<{ vpc: Vpc }>("/v2/vpcs", {
            name: names.vpc,
            region: options.region,
            ip_range: options.vpcIpRange,
            description: `private network of cluster ${config.name} (hashistack-bootstrap)`,
          })
        ).vpc;
      // the firewall targets the tag, so droplets are covered from their first boot
      if (!found.firewall) await api.post<{ firewall: Firewall }>("/v2/firewalls", firewallBody(config));

      const desired = desiredDroplets(config, key.fingerprint, vpc.id);
      const missing = planDroplets(desired, found.droplets).missing;
      const step = reporter.step(`droplets: ${missing.length} to create, ${desired.length - missing.length} exist`);
      const created = [];
      for (const want of missing) created.push(await createDroplet(api, timing, reporter, want));
      for (const { droplet, actionId } of created) {
        if (actionId !== undefined)
          await waitForAction(api, timing, `/v2/actions/${actionId}`, `creating droplet ${droplet?.name}`);
      }
      const droplets = await waitForDroplets(api, timing, names.tag, desired);
      step.done(`${droplets.length} active`);

      let volume = found.volume;
      if (options.volumeSizeGb > 0) {
        volume ??= (await api.post<{ volume: Volume }>("/v2/volumes", volumeBody(config))).volume;
        const target = droplets.find((d) => d.name === names.droplet(volumeHost(config)))!;
        await attachVolume(api, timing, options.region, volume, target);
      }

      const project =
        found.project ??
        (
          await api.post<{ project: Project }>("/v2/projects", {
            name: options.project ?? names.project,
            purpose: "HashiCorp cluster (hashistack-bootstrap)",
            environment: "Development",
          })
        ).project;
      const assigned = new Set(
        (await api.list<{ urn: string }>(`/v2/projects/${project.id}/resources`, "resources")).items.map((r) => r.urn),
      );
      const urns = [...droplets.map((d) => `do:droplet:${d.id}`), ...(volume ? [`do:volume:${volume.id}`] : [])].filter(
        (urn) => !assigned.has(urn),
      );
      if (urns.length) await api.post(`/v2/projects/${project.id}/resources`, { resources: urns });

      const inventory = dropletInventory(config, clusterSshKeyPath(context.state), desired, droplets);
      const file = inventoryPath(config.name);
      await writeInventory(file, inventory);
      await writeInventory(context.state.inventoryCopy, inventory);
      reporter.info(`inventory written to ${file} (${api.requests} API requests)`);
      return inventory;
    },

    async status(context) {
      const api = client(context);
      await checkToken(api);
      const found = await discover(api, context.config);
      const nodes: NodeStatus[] = found.droplets.map((d) => ({
        name: d.name,
        address: publicIpOf(d) ?? "",
        state: d.status === "active" ? "running" : d.status === "off" ? "stopped" : "unknown",
        detail: `droplet ${d.id} ${d.status}, private ${privateIpOf(d) ?? "none"}`,
      }));
      return { provider: "digitalocean", nodes, resources: describeFound(context.config, found) };
    },

    async down(context, options: DownOptions) {
      const api = client(context);
      await checkToken(api);
      const found = await discover(api, context.config);
      const local = localLeftovers(context, options);
      if (options.dryRun) return [...describeFound(context.config, found), ...local];

      const removed = await deleteCluster(api, context.config, found, timing);
      for (const path of local.paths) await rm(path, { recursive: true, force: true });
      return [...removed, ...local];
    },
  };
}

export const digitalOceanProvider = createDigitalOceanProvider();
