/**
 * What the account holds for a cluster: droplets by the cluster tag, the other
 * resources by their names (VPCs, firewalls and projects carry no tags of their own).
 */
import type { ClusterConfig } from "../../config/schema.ts";
import { InputError } from "../../errors.ts";
import { DoApiError, type DoClient } from "./client.ts";
import { doNames } from "./names.ts";
import type { Droplet, Firewall, Project, SshKey, Volume, Vpc } from "./resources.ts";

export interface Found {
  key?: SshKey;
  vpc?: Vpc;
  droplets: Droplet[];
  firewall?: Firewall;
  volume?: Volume;
  project?: Project;
}

/** `fingerprint`: find the key by what it is (up); without it, only a key we named (teardown). */
export async function discover(api: DoClient, config: ClusterConfig, fingerprint?: string): Promise<Found> {
  const names = doNames(config.name);
  const [keys, vpcs, droplets, firewalls, volumes, projects] = await Promise.all([
    api.list<SshKey>("/v2/account/keys", "ssh_keys"),
    api.list<Vpc>("/v2/vpcs", "vpcs"),
    api.list<Droplet>("/v2/droplets", "droplets", { tag_name: names.tag }),
    api.list<Firewall>("/v2/firewalls", "firewalls"),
    api.list<Volume>("/v2/volumes", "volumes", { region: config.provider.digitalocean.region }),
    api.list<Project>("/v2/projects", "projects"),
  ]);
  const projectName = config.provider.digitalocean.project ?? names.project;
  return {
    key: keys.items.find((k) => (fingerprint ? k.fingerprint === fingerprint : k.name === names.sshKey)),
    // a region's default VPC is never ours, whatever it is called
    vpc: vpcs.items.find((v) => v.name === names.vpc && !v.default),
    droplets: droplets.items,
    firewall: firewalls.items.find((f) => f.name === names.firewall),
    volume: volumes.items.find((v) => v.name === names.volume && (v.tags ?? []).includes(names.tag)),
    project: projects.items.find((p) => p.name === projectName),
  };
}

/** One cheap call first, so a bad token fails before anything else, with a clear message. */
export async function checkToken(api: DoClient): Promise<void> {
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

/** The project teardown may delete: only the one we named (a configured project may hold other things). */
export function ownProject(config: ClusterConfig, found: Found): Project | undefined {
  const project = found.project;
  return project && !project.is_default && project.name === doNames(config.name).project ? project : undefined;
}

/** What teardown would remove, one line each. */
export function describeFound(config: ClusterConfig, found: Found): string[] {
  const project = ownProject(config, found);
  return [
    ...found.droplets.map((d) => `droplet ${d.name} (${d.id}, ${d.status})`),
    ...(found.firewall ? [`firewall ${found.firewall.name}`] : []),
    ...(found.volume ? [`volume ${found.volume.name} (${found.volume.size_gigabytes} GB)`] : []),
    ...(found.vpc ? [`VPC ${found.vpc.name} ${found.vpc.ip_range}`] : []),
    ...(project ? [`project ${project.name}`] : []),
    ...(found.key ? [`SSH key ${found.key.name}`] : []),
  ];
}
