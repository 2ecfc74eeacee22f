/**
 * The Vagrant provider: VirtualBox or libvirt VMs from `vagrant/Vagrantfile`,
 * which reads a topology generated from the cluster config. Vagrant only
 * creates the machines; the inventory comes from `vagrant status
 * --machine-readable` and `vagrant ssh-config`, with the static private
 * address of each machine for bind/advertise (never the NAT address 10.0.2.15).
 */
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { dirname } from "node:path";
import { $, type ProcessOutput } from "zx";
import { InputError, OperationError } from "../../errors.ts";
import { localLeftovers, saveInventory } from "../local-state.ts";
import type { Inventory } from "../../inventory/schema.ts";
import { parseIpv4 } from "../../util/net.ts";
import type { DownOptions, NodeStatus, Provider } from "../types.ts";
import { checkHostOnlyAddresses, hostOnlyRanges, vboxNetworksConf } from "./host-only.ts";
import { parseMachineReadable, parseSshConfig, parseStatus, type MachineState } from "./parse.ts";
import { type VagrantFiles, type VagrantTopology, vagrantEnv, vagrantFiles, vagrantTopology, writeTopology } from "./topology.ts";

/** Vagrant's NAT interface has this address on every VM: useless for cluster traffic. */
export const natAddress = "10.0.2.15";

/** Runs vagrant with the cluster's environment; `onLine` sees output as it comes (vagrant up takes minutes). */
type Runner = (args: string[], files: VagrantFiles, onLine?: (line: string) => void) => Promise<ProcessOutput>;

const runVagrant: Runner = async (args, files, onLine) => {
  const child = $({ quiet: true, nothrow: true, env: vagrantEnv(files) })`vagrant ${args}`;
  if (onLine) {
    let partial = "";
    child.stdout.on("data", (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) if (line.trim()) onLine(line.trim());
    });
  }
  return child;
};

function tail(output: ProcessOutput, lines = 15): string[] {
  // machine-readable errors carry Vagrant's own message; otherwise show the end of stderr/stdout
  const failure = parseMachineReadable(output.stdout).find((l) => l.type === "error-exit");
  const text = failure ? (failure.data[1] ?? failure.data[0] ?? "") : output.stderr.trim() || output.stdout.trim();
  return text
    .split("\n")
    .filter((l) => l.trim())
    .slice(-lines);
}

async function requireVagrant(run: Runner, files: VagrantFiles): Promise<void> {
  let version: ProcessOutput;
  try {
    version = await run(["--version"], files);
  } catch (error) {
    throw new OperationError("Vagrant could not be started.", { cause: error, hint: installHint });
  }
  if (version.exitCode !== 0) {
    throw new OperationError(
      version.exitCode === 127 || /not found|ENOENT/.test(version.stderr)
        ? "vagrant is not installed (not on PATH)."
        : "vagrant --version failed.",
      { details: tail(version), hint: installHint },
    );
  }
}

const installHint =
  "Install Vagrant (Debian: 'apt-get install vagrant'; elsewhere https://developer.hashicorp.com/vagrant/install) and VirtualBox or libvirt.";

async function requirePlugin(run: Runner, files: VagrantFiles, provider: VagrantTopology["provider"]): Promise<void> {
  if (provider !== "libvirt") return; // VirtualBox support is built into Vagrant
  const plugins = await run(["plugin", "list", "--machine-readable"], files);
  const names = parseMachineReadable(plugins.stdout)
    .filter((l) => l.type === "plugin-name")
    .map((l) => l.data[0]);
  if (plugins.exitCode !== 0 || !names.includes("vagrant-libvirt")) {
    throw new OperationError("The Vagrant plugin vagrant-libvirt is not installed (provider.vagrant.provider is libvirt).", {
      details: plugins.exitCode !== 0 ? tail(plugins) : [`installed plugins: ${names.join(", ") || "none"}`],
      hint: "Install it with 'vagrant plugin install vagrant-libvirt' (Debian: 'apt-get install vagrant-libvirt'), or set provider.vagrant.provider to virtualbox.",
    });
  }
}

function checkTopology(topology: VagrantTopology, networksConf: string): void {
  if (topology.provider === "virtualbox") checkHostOnlyAddresses(topology.machines, hostOnlyRanges(networksConf));
  for (const machine of topology.machines) {
    if (machine.ip === natAddress) {
      throw new InputError(
        `provider.vagrant.cidr gives ${machine.name} the address ${natAddress}, Vagrant's NAT address on every VM.`,
        {
          hint: "Use a private network that does not contain 10.0.2.0/24, e.g. 192.168.56.0/24.",
        },
      );
    }
  }
}

async function machineStates(run: Runner, files: VagrantFiles): Promise<MachineState[]> {
  const status = await run(["status", "--machine-readable"], files);
  if (status.exitCode !== 0) {
    throw new OperationError("vagrant status failed.", {
      details: tail(status),
      hint: "Run 'vagrant status' in vagrant/ to see why.",
    });
  }
  return parseStatus(status.stdout);
}

export function createVagrantProvider(run: Runner = runVagrant, options: { networksConf?: string } = {}): Provider {
  const networksConf = options.networksConf ?? vboxNetworksConf;
  return {
    name: "vagrant",

    async up(context) {
      const { config, reporter } = context;
      const topology = vagrantTopology(config);
      const files = vagrantFiles(context.state, topology.provider);
      checkTopology(topology, networksConf);
      await requireVagrant(run, files);
      await requirePlugin(run, files, topology.provider);
      await writeTopology(files.topology, topology);

      // libvirt brings machines up in parallel; VirtualBox does not support it
      const parallel = topology.provider === "libvirt" ? "--parallel" : "--no-parallel";
      const step = reporter.step(`vagrant up: ${topology.machines.length} ${topology.provider} machines`);
      const up = await run(["up", `--provider=${topology.provider}`, parallel], files, (line) => step.update(line));
      if (up.exitCode !== 0) {
        step.fail();
        throw new OperationError(`vagrant up failed (exit ${up.exitCode}). Vagrant said:`, {
          details: tail(up),
          hint: "Fix what Vagrant reports and run bootstrap again; 'npm run teardown' removes half-created machines.",
        });
      }

      const states = await machineStates(run, files);
      const notRunning = topology.machines
        .map((m) => ({ m, state: states.find((s) => s.name === m.name) }))
        .filter(({ state }) => state?.state !== "running");
      if (notRunning.length) {
        step.fail();
        throw new OperationError(
          `Vagrant machines are not running after vagrant up: ${notRunning.map(({ m, state }) => `${m.name} (${state?.state ?? "unknown to Vagrant"})`).join(", ")}.`,
          {
            details: notRunning.map(({ state }) => state?.description).filter((d): d is string => Boolean(d)),
            hint: "Look at the VM in VirtualBox/virt-manager, or run 'vagrant up' in vagrant/ to see the boot error.",
          },
        );
      }
      step.done();

      const sshConfig = await run(["ssh-config"], files);
      if (sshConfig.exitCode !== 0) {
        throw new OperationError("vagrant ssh-config failed.", { details: tail(sshConfig) });
      }
      const entries = parseSshConfig(sshConfig.stdout);
      const inventory: Inventory = {
        cluster: config.name,
        provider: "vagrant",
        hosts: topology.machines.map((machine) => {
          const ssh = entries.find((e) => e.host === machine.name);
          if (!ssh) {
            throw new OperationError(`vagrant ssh-config has no entry for machine '${machine.name}'.`, {
              hint: "Run 'vagrant ssh-config' in vagrant/ to see what Vagrant knows.",
            });
          }
          if (parseIpv4(ssh.hostName) === undefined && ssh.hostName !== "localhost") {
            reporter.debug(`${machine.name}: SSH host ${ssh.hostName} is a name, not an address`);
          }
          return {
            name: machine.name,
            roles: machine.roles,
            // the static private-network address, never what the NAT interface reports
            privateIp: machine.ip,
            ssh: {
              user: ssh.user,
              port: ssh.port,
              host: ssh.hostName,
              ...(ssh.identityFile ? { keyPath: ssh.identityFile } : {}),
            },
            labels: { vagrantMachine: machine.name, vagrantProvider: topology.provider },
          };
        }),
      };
      const file = await saveInventory(context, inventory);
      reporter.info(`inventory written to ${file}`);
      return inventory;
    },

    async status(context) {
      const topology = vagrantTopology(context.config);
      const files = vagrantFiles(context.state, topology.provider);
      if (!existsSync(files.topology)) {
        return {
          provider: "vagrant",
          nodes: topology.machines.map((m) => ({ name: m.name, address: m.ip, state: "missing" as const })),
          resources: [],
        };
      }
      await requireVagrant(run, files);
      const states = await machineStates(run, files);
      const nodes: NodeStatus[] = topology.machines.map((m) => {
        const state = states.find((s) => s.name === m.name)?.state ?? "not_created";
        return {
          name: m.name,
          address: m.ip,
          state:
            state === "running"
              ? "running"
              : state === "not_created"
                ? "missing"
                : ["poweroff", "shutoff", "saved"].includes(state)
                  ? "stopped"
                  : "unknown",
          detail: `${state} (${topology.provider})`,
        };
      });
      return { provider: "vagrant", nodes, resources: [`topology ${files.topology}`] };
    },

    async down(context, options: DownOptions) {
      const files = vagrantFiles(context.state, context.config.provider.vagrant.provider);
      const found: string[] = [];
      // without the topology nothing was brought up by us (the Vagrantfile cannot load without it)
      if (existsSync(files.topology)) {
        await requireVagrant(run, files);
        const states = await machineStates(run, files);
        found.push(...states.filter((s) => s.state !== "not_created").map((s) => `machine ${s.name} (${s.state})`));
        if (!options.dryRun && found.length) {
          const destroy = await run(["destroy", "-f"], files);
          if (destroy.exitCode !== 0) {
            throw new OperationError(`vagrant destroy failed (exit ${destroy.exitCode}). Vagrant said:`, {
              details: tail(destroy),
              hint: "Fix what Vagrant reports and run teardown again; the generated files were kept so it can.",
            });
          }
        }
        found.push(`generated files ${dirname(files.topology)}`);
      }
      const leftovers = localLeftovers(context, options);
      found.push(...leftovers.items);
      if (options.dryRun) return found;
      await rm(dirname(files.topology), { recursive: true, force: true });
      await leftovers.remove();
      return found;
    },
  };
}

export const vagrantProvider = createVagrantProvider();
