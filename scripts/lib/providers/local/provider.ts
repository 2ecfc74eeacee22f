/**
 * The local provider: a real multi-node cluster on one Linux host, like kind
 * for Kubernetes. Nodes are systemd-nspawn system containers with real systemd
 * and sshd, each in its own network namespace on a host bridge.
 */
import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { localLeftovers, saveInventory } from "../local-state.ts";
import { runtimeProfile } from "../../config/schema.ts";
import { servingPid, stopServing } from "../../images/registry-server.ts";
import type { Inventory, InventoryHost } from "../../inventory/schema.ts";
import { OperationError } from "../../errors.ts";
import { sh } from "../../remote/command.ts";
import { HostUnreachableError } from "../../remote/errors.ts";
import { onEachHost, requireAllSucceeded } from "../../remote/fanout.ts";
import { KnownHosts } from "../../remote/known-hosts.ts";
import { RemoteHost, sshTarget } from "../../remote/ssh.ts";
import { ensureDebianPackages } from "../../setup/debian-packages.ts";
import { clusterSshKeyPath, ensureClusterSshKey } from "../../state/ssh-key.ts";
import { gatewayAddress, plannedInventory } from "../../topology.ts";
import { parseCidr } from "../../util/net.ts";
import type { DownOptions, NodeStatus, Provider, ProviderContext, ProviderStatus } from "../types.ts";
import { ensureImage } from "./image.ts";
import { type LocalNames, localIdentity, localNames, localNamesFor } from "./names.ts";
import {
  checkCidrIsFree,
  ensureBridge,
  ensureNodeNetwork,
  linkExists,
  netnsExists,
  removeBridge,
  removeNodeNetwork,
} from "./network.ts";
import { hostRun } from "./host-command.ts";
import * as node from "./node.ts";
import { localProviderPackages, checkLocalRequirements } from "./requirements.ts";

const sshWaitMs = 90_000;

function nodesDir(context: ProviderContext): string {
  return join(context.state.root, "nodes");
}

export function knownHostsFor(context: Pick<ProviderContext, "state">): KnownHosts {
  return new KnownHosts(context.state.knownHosts);
}

/** The planned inventory; only `up` creates the key pair, so status and down never write state. */
async function plan(context: ProviderContext, create = false): Promise<Inventory> {
  const keyPath = create
    ? (await ensureClusterSshKey(context.state, `hashistack-${context.config.name}`)).privateKey
    : clusterSshKeyPath(context.state);
  return plannedInventory(context.config, context.config.provider.local.cidr, { user: "root", port: 22, keyPath }, "local");
}

export const localProvider: Provider = {
  name: "local",

  async up(context) {
    const { config, reporter } = context;
    if (process.getuid?.() === 0) {
      const installed = await ensureDebianPackages(localProviderPackages, (line) => reporter.info(line));
      if (installed.length) reporter.success(`installed ${installed.join(", ")}`);
    }
    await checkLocalRequirements();
    // this state dir's cluster id is in every host-side name: another checkout's `demo` is not ours
    const names = localNames(config.name, (await localIdentity(context.state, { create: true })) as string);
    const cidr = config.provider.local.cidr;
    await checkCidrIsFree(cidr, names.bridge);
    const imageStep = reporter.step("node image");
    const image = await ensureImage((line) => imageStep.update(line));
    imageStep.done(image.built ? `built in ${image.seconds}s` : "cached");

    const inventory = await plan(context, true);
    const { publicKey } = await ensureClusterSshKey(context.state, `hashistack-${config.name}`);
    const prefix = parseCidr(cidr)?.prefix ?? 24;
    const gateway = gatewayAddress(cidr);
    await ensureBridge(names, `${gateway}/${prefix}`);

    // Docker Engine runs inside the clients of a docker-profile cluster (installed by prepare)
    const dockerInside = runtimeProfile(config) === "docker";
    const bootStep = reporter.step(`starting ${inventory.hosts.length} nodes`);
    const knownHosts = knownHostsFor(context);
    const booted = await onEachHost(
      inventory.hosts,
      async (host) => {
        const paths = node.nodePaths(nodesDir(context), host.name);
        const netns = await ensureNodeNetwork(names, host.name, `${host.privateIp}/${prefix}`, gateway);
        await node.ensureOverlay(paths, image.root);
        const { hostKeyFingerprint } = await node.ensureIdentity(paths, host.name, publicKey);
        await knownHosts.pin(`${host.privateIp}:22`, hostKeyFingerprint);
        const docker = dockerInside && host.roles.includes("client");
        // the node sees /proc/sys read-only; dockerd needs forwarding on in the node's own namespace
        if (docker) await hostRun(["ip", "netns", "exec", netns, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        await node.boot(paths, names.machine(host.name), netns, { docker });
        return hostKeyFingerprint;
      },
      // network and mount setup is quick; keep the host's tools from racing each other too hard
      { concurrency: config.concurrency },
    );
    requireAllSucceeded("Starting local nodes", booted);
    bootStep.done();

    const sshStep = reporter.step("waiting for SSH on every node");
    const ready = await onEachHost(inventory.hosts, (host) => waitForSsh(context, host, knownHosts), {
      concurrency: inventory.hosts.length,
    });
    requireAllSucceeded("Waiting for SSH", ready);
    sshStep.done(`${inventory.hosts.length} nodes answer`);

    const file = await saveInventory(context, inventory);
    reporter.info(`inventory written to ${file}`);
    return inventory;
  },

  async status(context) {
    const inventory = await plan(context);
    const names = await localNamesFor(context);
    const nodes: NodeStatus[] = [];
    for (const host of inventory.hosts) {
      const paths = node.nodePaths(nodesDir(context), host.name);
      const pid = await node.runningPid(paths);
      const orphaned = !pid && !!names && (await node.containerPids(names.netns(host.name))).length > 0;
      nodes.push({
        name: host.name,
        address: host.privateIp,
        state: pid ? "running" : orphaned ? "unknown" : existsSync(paths.dir) ? "stopped" : "missing",
        detail: pid
          ? `systemd-nspawn pid ${pid}`
          : orphaned
            ? "container processes without systemd-nspawn; run teardown"
            : undefined,
      });
    }
    const resources = names && (await linkExists(names.bridge)) ? [`bridge ${names.bridge}`] : [];
    return { provider: "local", nodes, resources } satisfies ProviderStatus;
  },

  async removeNodes(context, hostNames) {
    const names = await localNamesFor(context);
    return names ? removeLocalNodes(context, names, hostNames) : [];
  },

  async down(context, options: DownOptions) {
    const planned = (await plan(context)).hosts.map((h) => h.name);
    // also nodes from an older topology that are still on disk
    const onDisk = existsSync(nodesDir(context)) ? await readdir(nodesDir(context)) : [];
    const hostNames = [...new Set([...planned, ...onDisk])];
    const names = await localNamesFor(context);
    // no identity and no nodes in this state: nothing on this machine is ours, whatever its name
    if (!names) return options.dryRun ? localLeftovers(context, options).items : removeLeftovers(context, options);
    if (options.dryRun)
      return [...(await describeExisting(context, names, hostNames)), ...localLeftovers(context, options).items];

    const removed = await removeLocalNodes(context, names, hostNames);
    // the image registry this machine served to the nodes (jobs.registry.build)
    removed.push(...(await stopServing(context.state)));
    removed.push(...(await removeBridge(names)));
    return [...removed, ...(await removeLeftovers(context, options))];
  },
};

/** Stop and remove these nodes: the container, its task cgroups, its files, its netns and veth. */
async function removeLocalNodes(context: ProviderContext, names: LocalNames, hostNames: string[]): Promise<string[]> {
  const removed: string[] = [];
  const outcomes = await onEachHost(
    hostNames.map((name) => ({ name })),
    async ({ name }) => {
      const paths = node.nodePaths(nodesDir(context), name);
      const done: string[] = [];
      const pid = await node.runningPid(paths);
      if (await node.stop(paths, names.netns(name)))
        done.push(`node ${name}${pid ? ` (pid ${pid})` : " (container without nspawn)"}`);
      done.push(...(await node.removeTaskCgroups(paths)));
      done.push(...(await node.removeDockerCgroups(paths)));
      done.push(...(await node.removeNodeFiles(paths)));
      done.push(...(await removeNodeNetwork(names, name)));
      return done;
    },
    { concurrency: context.config.concurrency },
  );
  for (const outcome of outcomes) removed.push(...(outcome.value ?? []));
  requireAllSucceeded("Removing local nodes", outcomes);
  return removed;
}

async function removeLeftovers(context: ProviderContext, options: DownOptions): Promise<string[]> {
  const leftovers = localLeftovers(context, options);
  await leftovers.remove();
  return leftovers.items;
}

async function describeExisting(context: ProviderContext, names: LocalNames, hostNames: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const name of hostNames) {
    const paths = node.nodePaths(nodesDir(context), name);
    const pid = await node.runningPid(paths);
    if (pid) found.push(`node ${name} (pid ${pid})`);
    else if ((await node.containerPids(names.netns(name))).length) found.push(`node ${name} (container without nspawn)`);
    if (await node.isMounted(paths.root)) found.push(`mount ${paths.root}`);
    if (existsSync(paths.dir)) found.push(`dir ${paths.dir}`);
    if (await linkExists(names.hostVeth(name))) found.push(`veth ${names.hostVeth(name)}`);
    if (netnsExists(names.netns(name))) found.push(`netns ${names.netns(name)}`);
  }
  if (await linkExists(names.bridge)) found.push(`bridge ${names.bridge}`);
  const registryPid = await servingPid(context.state);
  if (registryPid) found.push(`image registry (pid ${registryPid})`);
  return found;
}

/**
 * A node is ready once hashistack-cgroups-rw.service has made the cgroup v1 controllers
 * writable: a Nomad client started before that (or after it failed) cannot run tasks.
 */
async function waitForWritableCgroups(remote: RemoteHost, name: string): Promise<void> {
  const unit = "hashistack-cgroups-rw.service";
  const deadline = Date.now() + 30_000;
  for (;;) {
    const state = (await remote.run(sh`systemctl is-active ${unit}`, { allowFailure: true, timeoutMs: 10_000 })).stdout.trim();
    if (state === "active") return;
    if (state === "failed" || Date.now() > deadline) {
      const journal = await remote.run(sh`journalctl -u ${unit} -n 5 --no-pager -o cat`, { allowFailure: true });
      throw new OperationError(`${name}: the node booted but ${unit} is ${state}: its cgroup controllers are not writable.`, {
        details: journal.stdout
          .trim()
          .split("\n")
          .filter(Boolean)
          .map((line) => `${name} journal: ${line}`),
        hint: "Stop the cluster with `npm run teardown` and bring it up again; if it repeats, the host's cgroup mounts may be busy.",
      });
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Wait for sshd, failing fast with the console tail if the container died while booting. */
async function waitForSsh(context: ProviderContext, host: InventoryHost, knownHosts: KnownHosts): Promise<void> {
  const paths = node.nodePaths(nodesDir(context), host.name);
  const remote = new RemoteHost(sshTarget(host));
  let settled = false;
  const died = (async () => {
    while (!settled) {
      await new Promise((r) => setTimeout(r, 500));
      if (!settled && !(await node.runningPid(paths))) return;
    }
    return new Promise<never>(() => {}); // SSH won the race
  })();
  try {
    const outcome = await Promise.race([
      remote.connect({ waitMs: sshWaitMs, knownHosts }).then(() => "up" as const),
      died.then(() => "died" as const),
    ]);
    if (outcome === "died") {
      throw new HostUnreachableError(
        host.name,
        `the node stopped while booting. Last console lines:\n${(await node.consoleTail(paths)).join("\n")}`,
        `See the full console log in ${paths.consoleLog}.`,
      );
    }
    await waitForWritableCgroups(remote, host.name);
  } finally {
    settled = true;
    remote.dispose();
  }
}
