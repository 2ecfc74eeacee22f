/**
 * The file `vagrant/Vagrantfile` reads: machines with names, static private
 * IPs, CPUs, memory and the box, generated from the cluster config so the
 * Vagrantfile itself never needs editing. Its path reaches Vagrant through
 * HASHISTACK_VAGRANT_TOPOLOGY; Vagrant's own state (.vagrant) goes to the
 * cluster's state dir through VAGRANT_DOTFILE_PATH, so clusters never collide.
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { ClusterConfig } from "../../config/schema.ts";
import type { Role } from "../../inventory/schema.ts";
import type { StatePaths } from "../../state/paths.ts";
import { plannedInventory } from "../../topology.ts";
import { formatIpv4, parseCidr } from "../../util/net.ts";
import { writeFileAtomic } from "../../util/fs.ts";

export const vagrantDir = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..", "vagrant");

export interface VagrantMachine {
  /** Vagrant machine name = inventory host name */
  name: string;
  hostname: string;
  ip: string;
  roles: Role[];
  cpus: number;
  memoryMb: number;
}

export interface VagrantTopology {
  cluster: string;
  provider: "virtualbox" | "libvirt";
  box: string;
  netmask: string;
  machines: VagrantMachine[];
}

export function vagrantTopology(config: ClusterConfig): VagrantTopology {
  const options = config.provider.vagrant;
  const planned = plannedInventory(config, options.cidr, { user: "vagrant", port: 22 }, "vagrant");
  const prefix = parseCidr(options.cidr)!.prefix;
  return {
    cluster: config.name,
    provider: options.provider,
    box: options.box,
    netmask: formatIpv4(2 ** 32 - 2 ** (32 - prefix)),
    machines: planned.hosts.map((host) => ({
      name: host.name,
      hostname: `${config.name}-${host.name}`,
      ip: host.privateIp,
      roles: host.roles,
      cpus: options.cpus,
      memoryMb: host.roles.includes("client") ? (options.clientMemoryMb ?? options.memoryMb) : options.memoryMb,
    })),
  };
}

export interface VagrantFiles {
  topology: string;
  dotfile: string;
  /** the Vagrant provider the machines use: VAGRANT_DEFAULT_PROVIDER */
  provider?: VagrantTopology["provider"];
}

export function vagrantFiles(state: StatePaths, provider?: VagrantTopology["provider"]): VagrantFiles {
  const dir = join(state.root, "vagrant");
  return { topology: join(dir, "topology.json"), dotfile: join(dir, "dotfile"), ...(provider ? { provider } : {}) };
}

export async function writeTopology(file: string, topology: VagrantTopology): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(topology, null, 2)}\n`, 0o644);
}

/** The environment every vagrant command runs with. */
export function vagrantEnv(files: VagrantFiles, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return {
    ...base,
    VAGRANT_CWD: vagrantDir,
    VAGRANT_DOTFILE_PATH: files.dotfile,
    HASHISTACK_VAGRANT_TOPOLOGY: files.topology,
    // commands without --provider (status, ssh, destroy) act on the provider the machines were made with
    ...(files.provider ? { VAGRANT_DEFAULT_PROVIDER: files.provider } : {}),
    // machine-readable output must not be coloured or paged
    VAGRANT_NO_COLOR: "1",
    VAGRANT_CHECKPOINT_DISABLE: "1",
  };
}
