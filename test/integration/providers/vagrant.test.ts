/**
 * The Vagrant provider. Real VMs cannot boot here, so: the Vagrantfile is
 * checked by the real `vagrant validate` (Debian's package, installed by the
 * test prerequisites) for several generated topologies; the provider flow runs
 * against a stand-in `vagrant` on PATH that plays back recorded output
 * formats; and the hand-off is shown by pointing the stand-in's ssh-config at
 * real local-provider nodes and running the `prepare` stage through the
 * inventory the Vagrant provider produced.
 */
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { $ } from "zx";
import { createRecordingReporter } from "../../../scripts/lib/cli/output.ts";
import { clusterConfigSchema } from "../../../scripts/lib/config/schema.ts";
import { inventoryPath, loadInventory } from "../../../scripts/lib/inventory/load.ts";
import type { Inventory } from "../../../scripts/lib/inventory/schema.ts";
import { createVagrantProvider, vagrantProvider } from "../../../scripts/lib/providers/vagrant/provider.ts";
import {
  vagrantDir,
  vagrantEnv,
  vagrantFiles,
  vagrantTopology,
  writeTopology,
} from "../../../scripts/lib/providers/vagrant/topology.ts";
import type { ProviderContext } from "../../../scripts/lib/providers/types.ts";
import { onEachHost, requireAllSucceeded } from "../../../scripts/lib/remote/fanout.ts";
import { RemoteHost, sshTarget } from "../../../scripts/lib/remote/ssh.ts";
import { runStages } from "../../../scripts/lib/stages/pipeline.ts";
import { statePaths } from "../../../scripts/lib/state/paths.ts";
import { tempDir } from "../../helpers/fixtures.ts";
import { isolatedLocalCluster, type IsolatedCluster } from "../../helpers/local-cluster.ts";

const standinDir = fileURLToPath(new URL("../../helpers/vagrant-standin", import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`../../fixtures/vagrant/${name}`, import.meta.url));

function contextFor(
  name: string,
  vagrant: Record<string, unknown> = {},
  topology: Record<string, unknown> = {},
): ProviderContext {
  const config = clusterConfigSchema.parse({ name, provider: { type: "vagrant", vagrant }, topology });
  return { config, state: statePaths(config.name), reporter: createRecordingReporter() };
}

describe("Vagrantfile, checked by the real vagrant validate", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    dir = await tempDir("vagrant-validate");
    const version = await $({ quiet: true, nothrow: true })`vagrant --version`;
    if (version.exitCode !== 0)
      throw new Error("vagrant is not installed: run 'npx tsx scripts/setup/test-prerequisites.ts' (apt-get install vagrant)");
  });
  afterAll(async () => dir.remove());

  const validate = async (name: string, file: string) => {
    const files = { topology: file, dotfile: join(dir.path, name, "dotfile") };
    return $({ quiet: true, nothrow: true, env: vagrantEnv(files) })`vagrant validate --ignore-provider`;
  };

  it.each([
    ["single", { provider: "virtualbox" }, { servers: 1, clients: 0 }],
    ["default", { provider: "virtualbox", cpus: 2, memoryMb: 4096 }, {}],
    [
      "libvirt-ha",
      { provider: "libvirt", cidr: "10.89.8.0/24", box: "generic/debian12" },
      { servers: 5, clients: 3, vaultHa: true },
    ],
  ])("accepts the %s topology", async (name, vagrant, topology) => {
    const config = clusterConfigSchema.parse({ name: `v-${name}`, provider: { type: "vagrant", vagrant }, topology });
    const file = join(dir.path, name, "topology.json");
    await writeTopology(file, vagrantTopology(config));
    const result = await validate(name, file);
    expect(result.stdout + result.stderr).toContain("Vagrantfile validated successfully");
    expect(result.exitCode).toBe(0);
  });

  it("fails clearly without a topology, and on a topology Vagrant rejects", async () => {
    const missing = await validate("missing", join(dir.path, "nope.json"));
    expect(missing.exitCode).not.toBe(0);
    expect(missing.stderr).toMatch(/HASHISTACK_VAGRANT_TOPOLOGY points at .*nope\.json, which does not exist/);

    const config = clusterConfigSchema.parse({
      name: "v-bad",
      provider: { type: "vagrant" },
      topology: { servers: 1, clients: 0 },
    });
    const topology = vagrantTopology(config);
    topology.machines[0]!.hostname = "bad_host!";
    const file = join(dir.path, "bad", "topology.json");
    await writeTopology(file, topology);
    const bad = await validate("bad", file);
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toMatch(/hostname set for the VM 'server-1' should only contain/);
  });
});

describe("Vagrantfile by hand: cd vagrant && vagrant <command>, nothing exported", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    dir = await tempDir("vagrant-by-hand");
  });
  afterAll(async () => dir.remove());

  const stateDir = (name: string) => join(dir.path, name);
  async function cluster(state: string, name: string): Promise<string> {
    const config = clusterConfigSchema.parse({ name, provider: { type: "vagrant" }, topology: { servers: 1, clients: 1 } });
    const files = vagrantFiles(statePaths(name, state));
    await writeTopology(files.topology, vagrantTopology(config));
    return files.dotfile;
  }
  /** real vagrant in vagrant/, with only the state dir (and a throwaway dotfile path, so vagrant/.vagrant is not made) */
  const byHand = (state: string, extra: Record<string, string> = {}) => {
    const env: NodeJS.ProcessEnv = { ...process.env, HASHISTACK_STATE_DIR: state, ...extra };
    for (const key of ["HASHISTACK_VAGRANT_TOPOLOGY", "VAGRANT_CWD", "VAGRANT_DEFAULT_PROVIDER", "HASHISTACK_CLUSTER"])
      if (!(key in extra)) delete env[key];
    env.VAGRANT_DOTFILE_PATH = join(dir.path, "not-the-cluster-dotfile");
    env.VAGRANT_CHECKPOINT_DISABLE = "1";
    return $({ quiet: true, nothrow: true, env, cwd: vagrantDir })`vagrant validate --ignore-provider`;
  };

  it("finds the only cluster's topology and runs with its own dotfile", async () => {
    const state = stateDir("one");
    const dotfile = await cluster(state, "solo");
    const result = await byHand(state);
    expect(result.stdout + result.stderr).toContain("Vagrantfile validated successfully");
    expect(result.exitCode).toBe(0);
    expect(existsSync(dotfile)).toBe(true); // Vagrant ran again with the cluster's VAGRANT_DOTFILE_PATH
  });

  it("says the one command that creates a cluster when there is none", async () => {
    const result = await byHand(stateDir("none"));
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toContain(
      `No Vagrant cluster under ${stateDir("none")}. \`npm run bootstrap -- --provider vagrant\` (in the repository) creates it`,
    );
  });

  it("asks which of several clusters, and takes HASHISTACK_CLUSTER", async () => {
    const state = stateDir("two");
    await cluster(state, "alpha");
    const beta = await cluster(state, "beta");
    const ambiguous = await byHand(state);
    expect(ambiguous.exitCode).not.toBe(0);
    expect(ambiguous.stderr).toContain(
      `Several Vagrant clusters under ${state}: alpha, beta. Choose one: HASHISTACK_CLUSTER=alpha vagrant validate --ignore-provider`,
    );
    const chosen = await byHand(state, { HASHISTACK_CLUSTER: "beta" });
    expect(chosen.exitCode, chosen.stderr).toBe(0);
    expect(existsSync(beta)).toBe(true);
    expect((await byHand(state, { HASHISTACK_CLUSTER: "gamma" })).stderr).toContain("No Vagrant cluster named 'gamma'");
  });
});

describe("Vagrant provider flow with a stand-in vagrant", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let log: string;
  const saved = { ...process.env };

  beforeEach(async () => {
    dir = await tempDir("vagrant");
    log = join(dir.path, "calls.jsonl");
    process.env.HASHISTACK_STATE_DIR = join(dir.path, "state");
    process.env.HASHISTACK_INVENTORY_DIR = join(dir.path, "inventories");
    process.env.PATH = `${standinDir}${delimiter}${saved.PATH}`;
    process.env.STANDIN_LOG = log;
  });
  afterEach(async () => {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
    await dir.remove();
  });

  const calls = async () =>
    (await readFile(log, "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { args: string[]; topology: string; dotfile: string; defaultProvider?: string });

  /** The recorded VirtualBox status with every machine running (the recording has client-2 powered off). */
  async function allRunning(): Promise<string> {
    const file = join(dir.path, "status-running.txt");
    const text = (await readFile(fixture("status-virtualbox.txt"), "utf8"))
      .replace("client-2,state,poweroff", "client-2,state,running")
      .replace("client-2,state-human-short,poweroff", "client-2,state-human-short,running");
    await writeFile(file, text);
    return file;
  }

  it("brings VirtualBox machines up one at a time and builds the inventory from ssh-config and the static IPs", async () => {
    process.env.STANDIN_STATUS = await allRunning();
    process.env.STANDIN_SSH_CONFIG = fixture("ssh-config-virtualbox.txt");
    const context = contextFor("vbox");
    const inventory = await vagrantProvider.up(context);
    expect(inventory.hosts.map((h) => [h.name, h.privateIp, h.ssh.host, h.ssh.port, h.ssh.user])).toEqual([
      ["server-1", "192.168.56.11", "127.0.0.1", 2222, "vagrant"],
      ["server-2", "192.168.56.12", "127.0.0.1", 2200, "vagrant"],
      ["server-3", "192.168.56.13", "127.0.0.1", 2201, "vagrant"],
      ["client-1", "192.168.56.101", "127.0.0.1", 2202, "vagrant"],
      ["client-2", "192.168.56.102", "127.0.0.1", 2203, "vagrant"],
    ]);
    expect(inventory.hosts.every((h) => h.privateIp !== "10.0.2.15" && h.publicIp === undefined)).toBe(true);
    expect(inventory.hosts[0]?.ssh.keyPath).toBe(
      "/home/dev user/.hashistack/demo/vagrant/dotfile/machines/server-1/virtualbox/private_key",
    );
    expect(inventory.hosts[0]?.roles).toEqual(["server", "vault"]);
    expect(await loadInventory(inventoryPath("vbox"))).toMatchObject({ provider: "vagrant", hosts: expect.any(Array) });
    // vagrant up's output reaches the progress display while it runs
    const messages = (context.reporter as ReturnType<typeof createRecordingReporter>).messages.map((m) => m.text);
    expect(messages).toContain("==> client-2: Machine booted and ready!");

    const seen = await calls();
    expect(seen.map((c) => c.args.join(" "))).toEqual([
      "--version",
      "up --provider=virtualbox --no-parallel",
      "status --machine-readable",
      "ssh-config",
    ]);
    const files = vagrantFiles(context.state);
    expect(seen.every((c) => c.dotfile === files.dotfile)).toBe(true);
    expect(seen[1]?.topology).toBe(files.topology);
    // commands without --provider (status, ssh-config) act on the machines' own provider
    expect(seen.map((c) => c.defaultProvider)).toEqual(["virtualbox", "virtualbox", "virtualbox", "virtualbox"]);
    const written = JSON.parse(await readFile(files.topology, "utf8")) as { machines: { ip: string }[] };
    expect(written.machines.map((m) => m.ip)).toEqual(inventory.hosts.map((h) => h.privateIp));

    const status = await vagrantProvider.status(context);
    expect(status.nodes.map((n) => n.state)).toEqual(["running", "running", "running", "running", "running"]);

    const listed = await vagrantProvider.down(context, { dryRun: true, keepState: false });
    expect(listed.filter((l) => l.startsWith("machine "))).toHaveLength(5);
    await vagrantProvider.down(context, { dryRun: false, keepState: false });
    expect((await calls()).some((c) => c.args.join(" ") === "destroy -f")).toBe(true);
    expect(existsSync(files.topology)).toBe(false);
    expect(existsSync(inventoryPath("vbox"))).toBe(false);
    expect(existsSync(context.state.root)).toBe(false);
    expect(await vagrantProvider.down(context, { dryRun: true, keepState: false })).toEqual([]);
  });

  it("requires the vagrant-libvirt plugin, then brings libvirt machines up in parallel", async () => {
    process.env.STANDIN_STATUS = fixture("status-libvirt.txt");
    process.env.STANDIN_SSH_CONFIG = fixture("ssh-config-libvirt.txt");
    const context = contextFor("lv", { provider: "libvirt", cidr: "10.89.9.0/24" }, { servers: 1, clients: 1 });
    await expect(vagrantProvider.up(context)).rejects.toThrow(/vagrant-libvirt is not installed/);

    const plugins = join(dir.path, "plugins.txt");
    await writeFile(
      plugins,
      "1763785201,,plugin-name,vagrant-libvirt\n1763785201,vagrant-libvirt,plugin-version,0.12.2%!(VAGRANT_COMMA) system\n",
    );
    process.env.STANDIN_PLUGINS = plugins;
    const inventory = await vagrantProvider.up(context);
    expect(inventory.hosts.map((h) => [h.name, h.privateIp, h.ssh.host])).toEqual([
      ["server-1", "10.89.9.11", "192.168.121.47"],
      ["client-1", "10.89.9.101", "192.168.121.212"],
    ]);
    expect((await calls()).map((c) => c.args.join(" "))).toContain("up --provider=libvirt --parallel");
    expect((await calls()).every((c) => c.defaultProvider === "libvirt")).toBe(true);
  });

  it("follows VirtualBox's host-only ranges from /etc/vbox/networks.conf, as Vagrant does", async () => {
    process.env.STANDIN_STATUS = await allRunning();
    process.env.STANDIN_SSH_CONFIG = fixture("ssh-config-virtualbox.txt");
    const context = contextFor("ranges", { cidr: "10.72.0.0/24" });
    const conf = join(dir.path, "networks.conf");
    // no networks.conf: VirtualBox's default 192.168.56.0/21 only, refused before vagrant runs
    await expect(createVagrantProvider(undefined, { networksConf: conf }).up(context)).rejects.toThrow(
      /gives server-1 10\.72\.0\.11, .*outside VirtualBox's allowed host-only ranges \(192\.168\.56\.0\/21; from VirtualBox's default/,
    );
    expect(existsSync(log)).toBe(false);
    // a networks.conf that lists the range: Vagrant accepts it, and so do we
    await writeFile(conf, "# host-only ranges\n* 10.72.0.0/24 192.168.56.0/21\n* fd00::/64\n");
    const inventory = await createVagrantProvider(undefined, { networksConf: conf }).up(context);
    expect(inventory.hosts.map((h) => h.privateIp)).toContain("10.72.0.101");
    expect((await calls()).map((c) => c.args.join(" "))).toContain("up --provider=virtualbox --no-parallel");
    // a networks.conf without that range refuses it, naming the file
    await writeFile(conf, "* 192.168.60.0/24\n");
    await expect(createVagrantProvider(undefined, { networksConf: conf }).up(context)).rejects.toThrow(
      new RegExp(`outside VirtualBox's allowed host-only ranges \\(192\\.168\\.60\\.0/24; from ${conf}\\)`),
    );
  });

  it("shows Vagrant's own message when vagrant up fails, and names machines that are not running", async () => {
    process.env.STANDIN_UP_ERROR =
      "The box 'debian/bookworm64' could not be found or\ncould not be accessed in the remote catalog.";
    const context = contextFor("fails");
    const error = (await vagrantProvider.up(context).catch((e: unknown) => e)) as { message: string; details: string[] };
    expect(error.message).toMatch(/vagrant up failed \(exit 1\)/);
    expect(error.details.join("\n")).toContain(
      "could not be found or\ncould not be accessed in the remote catalog.".split("\n")[0],
    );

    delete process.env.STANDIN_UP_ERROR;
    process.env.STANDIN_STATUS = fixture("status-virtualbox.txt"); // client-2 powered off
    process.env.STANDIN_SSH_CONFIG = fixture("ssh-config-virtualbox.txt");
    const stopped = (await vagrantProvider.up(context).catch((e: unknown) => e)) as { message: string; details: string[] };
    expect(stopped.message).toMatch(/not running after vagrant up: client-2 \(poweroff\)/);
    expect(stopped.details[0]).toMatch(/powered off/);
  });

  it("says how to install vagrant when it is missing", async () => {
    process.env.PATH = join(dir.path, "empty-bin");
    const error = (await vagrantProvider.up(contextFor("novagrant")).catch((e: unknown) => e)) as {
      message: string;
      hint: string;
    };
    expect(error.message).toMatch(/vagrant is not installed/);
    expect(error.hint).toMatch(/apt-get install vagrant/);
  });
});

describe("hand-off: stages run through the inventory the Vagrant provider wrote", () => {
  // real nodes from the local provider stand in for the VMs; the stand-in's ssh-config points at them
  const cidr = "10.89.0.0/24";
  let local: IsolatedCluster;
  let localInventory: Inventory;
  const saved = { ...process.env };

  beforeAll(async () => {
    local = await isolatedLocalCluster("vagrant-handoff", {
      name: "vghand",
      topology: { servers: 1, clients: 1 },
      provider: { local: { cidr } },
    });
    localInventory = await (await import("../../../scripts/lib/providers/local/provider.ts")).localProvider.up(local.context);
  });
  afterAll(async () => {
    try {
      // first, while HASHISTACK_* still point at the temp dir: dispose removes the nodes and that dir
      await local?.dispose();
    } finally {
      for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
      Object.assign(process.env, saved);
    }
  });

  it("runs an SSH fan-out and the prepare stage on the hosts named by vagrant ssh-config", async () => {
    const sshConfig = join(local.dir, "ssh-config.txt");
    await writeFile(
      sshConfig,
      localInventory.hosts
        .map(
          (h) =>
            `Host ${h.name}\n  HostName ${h.privateIp}\n  User root\n  Port 22\n  UserKnownHostsFile /dev/null\n  IdentityFile ${h.ssh.keyPath}\n  IdentitiesOnly yes\n`,
        )
        .join("\n"),
    );
    const status = join(local.dir, "status.txt");
    await writeFile(
      status,
      localInventory.hosts
        .map((h) => `1763785201,${h.name},provider-name,libvirt\n1763785201,${h.name},state,running\n`)
        .join(""),
    );
    const plugins = join(local.dir, "plugins.txt");
    await writeFile(plugins, "1763785201,,plugin-name,vagrant-libvirt\n");
    Object.assign(process.env, {
      PATH: `${standinDir}${delimiter}${saved.PATH}`,
      STANDIN_STATUS: status,
      STANDIN_SSH_CONFIG: sshConfig,
      STANDIN_PLUGINS: plugins,
    });
    // the same topology and network as the local nodes, so the static IPs are theirs
    const context = contextFor("vghand-vg", { provider: "libvirt", cidr }, { servers: 1, clients: 1 });
    // these local nodes stand in for VMs without Docker's privileges and reach no mirror:
    // the exec profile here; Docker's install is proven by the docker-profile e2e
    context.config.jobs.runtime = "exec";
    const inventory = await vagrantProvider.up(context);
    expect(inventory.hosts.map((h) => h.privateIp)).toEqual(localInventory.hosts.map((h) => h.privateIp));

    // the private address Vagrant's inventory names is really on that host
    const outcomes = await onEachHost(
      inventory.hosts,
      async (host) => {
        const remote = new RemoteHost(sshTarget(host));
        try {
          await remote.connect({ waitMs: 10_000 });
          return (await remote.run("hostname -I")).stdout;
        } finally {
          remote.dispose();
        }
      },
      { concurrency: 2 },
    );
    requireAllSucceeded("SSH through the Vagrant inventory", outcomes);
    inventory.hosts.forEach((host, i) => expect(outcomes[i]?.value?.split(/\s+/)).toContain(host.privateIp));

    const records = await runStages(context, inventory, ["prepare"]);
    expect(Object.keys(records)).toEqual(["prepare"]);
    for (const host of inventory.hosts) {
      const remote = new RemoteHost(sshTarget(host));
      try {
        await remote.connect({ waitMs: 10_000 });
        expect((await remote.run("consul version | head -1")).stdout).toMatch(/^Consul v/);
        // the exec profile's Prometheus 3 on the client
        if (host.roles.includes("client"))
          expect((await remote.run("/usr/local/bin/prometheus --version | head -1")).stdout).toMatch(/^prometheus, version 3\./);
      } finally {
        remote.dispose();
      }
    }
    // a second run reads each host's binary listing and finds everything in place
    const again = await runStages(context, inventory, ["prepare"]);
    expect(again.prepare?.summary).toBe("binaries up to date");
    await vagrantProvider.down(context, { dryRun: false, keepState: false });
  });
});
