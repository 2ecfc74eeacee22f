/**
 * The DigitalOcean provider: SSH key, VPC, cloud firewall, droplets, optional
 * block volume and a project, all found again by tag or name so `up` can be
 * re-run at any point (after a timeout, an interrupt or a success) and creates
 * only what is missing. `down` deletes everything of the cluster in a safe order.
 */
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { confirm } from "../../cli/confirm.ts";
import { InputError, OperationError, errorMessage } from "../../errors.ts";
import { inventoryPath, writeInventory } from "../../inventory/load.ts";
import type { Inventory } from "../../inventory/schema.ts";
import { clusterSshKeyPath, ensureClusterSshKey } from "../../state/ssh-key.ts";
import { parseCidr, parseIpv4 } from "../../util/net.ts";
import type { DownOptions, NodeStatus, Provider, ProviderContext } from "../types.ts";
import { DoApiError, DoClient } from "./client.ts";
import { md5Fingerprint } from "./fingerprint.ts";
import { doNames } from "./names.ts";
import { monthlyCost, planDroplets } from "./reconcile.ts";
import {
  type Action,
  type DesiredDroplet,
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

export interface DigitalOceanTiming {
  /** between polls of actions and listings */
  pollMs: number;
  /** for droplets to become active, volumes to attach, members to leave a VPC */
  waitMs: number;
  /** after an ambiguous create (timeout, 5xx): how long to look for the droplet by tag before giving up */
  ambiguousGraceMs: number;
  /** per HTTP request */
  requestTimeoutMs: number;
}

const defaultTiming: DigitalOceanTiming = {
  pollMs: 5_000,
  waitMs: 10 * 60_000,
  ambiguousGraceMs: 60_000,
  requestTimeoutMs: 60_000,
};

/** What the account holds for this cluster right now. */
interface Found {
  key?: SshKey;
  vpc?: Vpc;
  droplets: Droplet[];
  firewall?: Firewall;
  volume?: Volume;
  project?: Project;
}

export function createDigitalOceanProvider(overrides: Partial<DigitalOceanTiming> = {}): Provider {
  const timing = { ...defaultTiming, ...overrides };

  function client(context: ProviderContext): DoClient {
    return DoClient.fromEnv(process.env, {
      timeoutMs: timing.requestTimeoutMs,
      onRateLimit: ({ waitMs }) => context.reporter.warn(`DigitalOcean rate limit: waiting ${Math.ceil(waitMs / 1000)}s`),
    });
  }

  async function discover(api: DoClient, context: ProviderContext, fingerprint?: string): Promise<Found> {
    const names = doNames(context.config.name);
    const region = context.config.provider.digitalocean.region;
    const [keys, vpcs, droplets, firewalls, volumes, projects] = await Promise.all([
      api.list<SshKey>("/v2/account/keys", "ssh_keys"),
      api.list<Vpc>("/v2/vpcs", "vpcs"),
      api.list<Droplet>("/v2/droplets", "droplets", { tag_name: names.tag }),
      api.list<Firewall>("/v2/firewalls", "firewalls"),
      api.list<Volume>("/v2/volumes", "volumes", { region }),
      api.list<Project>("/v2/projects", "projects"),
    ]);
    const projectName = context.config.provider.digitalocean.project ?? names.project;
    return {
      key: keys.items.find((k) => (fingerprint ? k.fingerprint === fingerprint : k.name === names.sshKey)),
      vpc: vpcs.items.find((v) => v.name === names.vpc && !v.default),
      droplets: droplets.items,
      firewall: firewalls.items.find((f) => f.name === names.firewall),
      volume: volumes.items.find((v) => v.name === names.volume && (v.tags ?? []).includes(names.tag)),
      project: projects.items.find((p) => p.name === projectName),
    };
  }

  async function checkToken(api: DoClient): Promise<void> {
    try {
      await api.get("/v2/account");
    } catch (error) {
      if (error instanceof DoApiError && error.status === 401) {
        throw new InputError("DigitalOcean rejected the token in DIGITALOCEAN_TOKEN (HTTP 401 unauthorized).", {
          hint: "Create a personal access token with read and write scope (API → Tokens) and export it as DIGITALOCEAN_TOKEN.",
        });
      }
      throw error;
    }
  }

  /** Size slugs must exist and be offered in the region; the prices feed the cost summary. */
  async function sizePrices(api: DoClient, context: ProviderContext): Promise<Map<string, number>> {
    const options = context.config.provider.digitalocean;
    const sizes = (await api.list<Size>("/v2/sizes", "sizes")).items;
    const prices = new Map(sizes.map((s) => [s.slug, s.price_monthly]));
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
    return prices;
  }

  async function ensureKey(api: DoClient, context: ProviderContext, publicKey: string, fingerprint: string, found: Found) {
    if (found.key) return found.key;
    try {
      const created = await api.post<{ ssh_key: SshKey }>("/v2/account/keys", {
        name: doNames(context.config.name).sshKey,
        public_key: publicKey,
      });
      return created.ssh_key;
    } catch (error) {
      // "SSH Key is already in use on your account": uploaded since our lookup (a parallel run); use that one
      if (error instanceof DoApiError && error.status === 422) {
        const again = (await api.list<SshKey>("/v2/account/keys", "ssh_keys")).items.find((k) => k.fingerprint === fingerprint);
        if (again) return again;
      }
      throw error;
    }
  }

  /** Poll an action until it completes; an errored action names what failed. */
  async function waitForAction(api: DoClient, path: string, what: string): Promise<void> {
    const deadline = Date.now() + timing.waitMs;
    for (;;) {
      const { action } = await api.get<{ action: Action }>(path);
      if (action.status === "completed") return;
      if (action.status === "errored") {
        throw new OperationError(`DigitalOcean reports that ${what} failed (action ${action.id}, ${action.type}).`, {
          hint: "See the droplet's history in the control panel; re-running bootstrap reconciles what exists.",
        });
      }
      if (Date.now() > deadline) {
        throw new OperationError(`Timed out waiting for ${what} (action ${action.id} still ${action.status}).`, {
          hint: "Run bootstrap again later: it picks up the resources that exist.",
        });
      }
      await sleep(timing.pollMs);
    }
  }

  /**
   * Create one droplet; never retried. After a timeout or a 5xx the create may
   * have happened, so look for it by tag instead of sending it again.
   */
  async function createDroplet(
    api: DoClient,
    context: ProviderContext,
    want: DesiredDroplet,
  ): Promise<{ droplet?: Droplet; actionId?: number }> {
    try {
      const answer = await api.post<{ droplet: Droplet; links?: { actions?: { id: number }[] } }>("/v2/droplets", want.body);
      return { droplet: answer.droplet, actionId: answer.links?.actions?.[0]?.id };
    } catch (error) {
      if (!(error instanceof DoApiError) || !error.ambiguous) throw error;
      context.reporter.warn(`creating droplet ${want.body.name}: ${error.apiMessage}; checking by tag whether it was created`);
      const deadline = Date.now() + timing.ambiguousGraceMs;
      for (;;) {
        const tagged = await api.list<Droplet>("/v2/droplets", "droplets", { tag_name: want.body.tags[0] });
        const found = tagged.items.find((d) => d.name === want.body.name);
        if (found) return { droplet: found };
        if (Date.now() > deadline) {
          throw new OperationError(
            `Creating droplet ${want.body.name} failed (${error.apiMessage}) and it has not appeared under tag ${want.body.tags[0]}.`,
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
  async function waitForDroplets(api: DoClient, context: ProviderContext, desired: DesiredDroplet[]): Promise<Droplet[]> {
    const tag = doNames(context.config.name).tag;
    const deadline = Date.now() + timing.waitMs;
    for (;;) {
      const tagged = (await api.list<Droplet>("/v2/droplets", "droplets", { tag_name: tag })).items;
      const plan = planDroplets(desired, tagged);
      const waiting = plan.existing
        .filter(({ droplet }) => droplet.status !== "active" || !privateIpOf(droplet) || !publicIpOf(droplet))
        .map(({ droplet }) => `${droplet.name} (${droplet.status})`);
      const missing = plan.missing.map((d) => d.body.name);
      if (missing.length) {
        throw new OperationError(`Droplets ${missing.join(", ")} disappeared while waiting for them to start.`, {
          hint: "Someone deleted them or removed the cluster tag; run bootstrap again to recreate them.",
        });
      }
      if (!waiting.length) return plan.existing.map((e) => e.droplet);
      if (Date.now() > deadline) {
        throw new OperationError(`Droplets did not become active in time: ${waiting.join(", ")}.`, {
          hint: "Run bootstrap again later: it waits for the droplets that exist and creates nothing twice.",
        });
      }
      await sleep(timing.pollMs);
    }
  }

  async function attachVolume(api: DoClient, context: ProviderContext, volume: Volume, droplet: Droplet): Promise<void> {
    if ((volume.droplet_ids ?? []).includes(droplet.id)) return;
    const { action } = await api.post<{ action: Action }>(`/v2/volumes/${volume.id}/actions`, {
      type: "attach",
      droplet_id: droplet.id,
      region: context.config.provider.digitalocean.region,
    });
    await waitForAction(
      api,
      `/v2/volumes/${volume.id}/actions/${action.id}`,
      `attaching volume ${volume.name} to ${droplet.name}`,
    );
  }

  function inventoryOf(context: ProviderContext, desired: DesiredDroplet[], droplets: Droplet[]): Inventory {
    const range = parseCidr(context.config.provider.digitalocean.vpcIpRange)!;
    return {
      cluster: context.config.name,
      provider: "digitalocean",
      hosts: desired.map((want) => {
        const droplet = droplets.find((d) => d.name === want.body.name)!;
        const privateIp = privateIpOf(droplet)!;
        const ip = parseIpv4(privateIp)!;
        const size = 2 ** (32 - range.prefix);
        // bind/advertise must be the VPC address; anything else means the droplet is not in our VPC
        if (ip < range.network || ip >= range.network + size) {
          throw new OperationError(
            `Droplet ${droplet.name}'s private address ${privateIp} is outside the VPC range ${context.config.provider.digitalocean.vpcIpRange}.`,
            { hint: "It was created in another VPC: delete it (teardown) and run bootstrap again." },
          );
        }
        return {
          name: want.host,
          roles: want.roles,
          privateIp,
          publicIp: publicIpOf(droplet)!,
          ssh: { user: "root", port: 22, keyPath: clusterSshKeyPath(context.state), host: publicIpOf(droplet)! },
          labels: { dropletId: String(droplet.id), region: droplet.region.slug, size: droplet.size_slug },
        };
      }),
    };
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
      const prices = await sizePrices(api, context);
      const found = await discover(api, context, fingerprint);
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
        ...(found.firewall ? [] : [`cloud firewall ${names.firewall} (SSH and UIs from ${options.allowedCidrs.join(", ")})`]),
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

      const key = await ensureKey(api, context, publicKey, fingerprint, found);
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
      for (const want of missing) created.push(await createDroplet(api, context, want));
      for (const { droplet, actionId } of created) {
        if (actionId !== undefined) await waitForAction(api, `/v2/actions/${actionId}`, `creating droplet ${droplet?.name}`);
      }
      const droplets = await waitForDroplets(api, context, desired);
      step.done(`${droplets.length} active`);

      let volume = found.volume;
      if (options.volumeSizeGb > 0) {
        volume ??= (await api.post<{ volume: Volume }>("/v2/volumes", volumeBody(config))).volume;
        const target = droplets.find((d) => d.name === names.droplet(volumeHost(config)))!;
        await attachVolume(api, context, volume, target);
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

      const inventory = inventoryOf(context, desired, droplets);
      const file = inventoryPath(config.name);
      await writeInventory(file, inventory);
      await writeInventory(context.state.inventoryCopy, inventory);
      reporter.info(`inventory written to ${file} (${api.requests} API requests)`);
      return inventory;
    },

    async status(context) {
      const api = client(context);
      await checkToken(api);
      const found = await discover(api, context);
      const nodes: NodeStatus[] = found.droplets.map((d) => ({
        name: d.name,
        address: publicIpOf(d) ?? "",
        state: d.status === "active" ? "running" : d.status === "off" ? "stopped" : "unknown",
        detail: `droplet ${d.id} ${d.status}, private ${privateIpOf(d) ?? "none"}`,
      }));
      return { provider: "digitalocean", nodes, resources: describe(context, found) };
    },

    async down(context, options: DownOptions) {
      const api = client(context);
      await checkToken(api);
      const found = await discover(api, context);
      const local = localLeftovers(context, options);
      if (options.dryRun) return [...describe(context, found), ...local];

      const removed: string[] = [];
      const failed: string[] = [];
      const attempt = async (what: string, action: () => Promise<void>) => {
        try {
          await action();
          removed.push(what);
        } catch (error) {
          failed.push(`${what}: ${errorMessage(error)}`);
        }
      };
      const gone = (error: unknown) => error instanceof DoApiError && error.status === 404;
      const del = (path: string) => api.delete(path).catch((error) => (gone(error) ? undefined : Promise.reject(error)));

      for (const d of found.droplets) await attempt(`droplet ${d.name} (${d.id})`, () => del(`/v2/droplets/${d.id}`));
      try {
        const tag = doNames(context.config.name).tag;
        const empty = () => api.list<Droplet>("/v2/droplets", "droplets", { tag_name: tag }).then((p) => p.items.length === 0);
        await waitUntil(empty, "the droplets to be deleted");
      } catch (error) {
        failed.push(errorMessage(error));
      }
      if (found.firewall) await attempt(`firewall ${found.firewall.name}`, () => del(`/v2/firewalls/${found.firewall!.id}`));
      if (found.volume) {
        const volume = found.volume;
        // a volume is detached asynchronously after its droplet is destroyed: retry while it is still attached
        await attempt(`volume ${volume.name}`, () =>
          retryWhileBusy(() => del(`/v2/volumes/${volume.id}`), `volume ${volume.name} to detach`),
        );
      }
      if (found.vpc && !found.vpc.default) {
        const vpc = found.vpc;
        // members (droplets) leave a VPC some time after they are destroyed
        await attempt(`VPC ${vpc.name}`, () => retryWhileBusy(() => del(`/v2/vpcs/${vpc.id}`), `VPC ${vpc.name} to be empty`));
      }
      // only the project we name ourselves: a project the user configured may hold other things
      if (found.project && !found.project.is_default && found.project.name === doNames(context.config.name).project) {
        const project = found.project;
        await attempt(`project ${project.name}`, () =>
          retryWhileBusy(() => del(`/v2/projects/${project.id}`), `project ${project.name} to be empty`),
        );
      }
      if (found.key) await attempt(`SSH key ${found.key.name}`, () => del(`/v2/account/keys/${found.key!.id}`));
      if (!failed.length) {
        // the cluster tag outlives its resources in the account; the role tags are shared and stay
        const tag = doNames(context.config.name).tag;
        await attempt(`tag ${tag}`, () => del(`/v2/tags/${encodeURIComponent(tag)}`));
      }
      if (failed.length) {
        throw new OperationError(`Teardown removed ${removed.length} resources but could not delete ${failed.length}.`, {
          details: failed,
          hint: "Run teardown again (it finds what is left by tag and name), or delete these in the control panel. Local state was kept.",
        });
      }
      for (const path of local.paths) await rm(path, { recursive: true, force: true });
      return [...removed, ...local];
    },
  };

  async function waitUntil(check: () => Promise<boolean>, what: string): Promise<void> {
    const deadline = Date.now() + timing.waitMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new OperationError(`Timed out waiting for ${what}.`);
      await sleep(timing.pollMs);
    }
  }

  /** Retry a delete that DigitalOcean refuses while something is still detaching (409, 412, 422, 403 "has members"). */
  async function retryWhileBusy(action: () => Promise<unknown>, what: string): Promise<void> {
    const deadline = Date.now() + timing.waitMs;
    for (;;) {
      try {
        await action();
        return;
      } catch (error) {
        const busy = error instanceof DoApiError && [403, 409, 412, 422].includes(error.status ?? 0);
        if (!busy || Date.now() > deadline) {
          throw busy ? new OperationError(`Timed out waiting for ${what}: ${errorMessage(error)}`) : error;
        }
        await sleep(timing.pollMs);
      }
    }
  }
}

function describe(context: ProviderContext, found: Found): string[] {
  return [
    ...found.droplets.map((d) => `droplet ${d.name} (${d.id}, ${d.status})`),
    ...(found.firewall ? [`firewall ${found.firewall.name}`] : []),
    ...(found.volume ? [`volume ${found.volume.name} (${found.volume.size_gigabytes} GB)`] : []),
    ...(found.vpc ? [`VPC ${found.vpc.name} ${found.vpc.ip_range}`] : []),
    ...(found.project ? [`project ${found.project.name}`] : []),
    ...(found.key ? [`SSH key ${found.key.name}`] : []),
  ].map((item) => `${item}`);
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

export const digitalOceanProvider = createDigitalOceanProvider();
