import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  parseMachineReadable,
  parseSshConfig,
  parseStatus,
  unescapeField,
} from "../../../scripts/lib/providers/vagrant/parse.ts";
import { createRecordingReporter } from "../../../scripts/lib/cli/output.ts";
import { InputError } from "../../../scripts/lib/errors.ts";
import {
  checkHostOnlyAddresses,
  hostOnlyRanges,
  insideRanges,
  parseNetworksConf,
} from "../../../scripts/lib/providers/vagrant/host-only.ts";
import { vagrantProvider } from "../../../scripts/lib/providers/vagrant/provider.ts";
import { vagrantTopology } from "../../../scripts/lib/providers/vagrant/topology.ts";
import { statePaths } from "../../../scripts/lib/state/paths.ts";
import { makeConfig, tempDir } from "../../helpers/fixtures.ts";

const fixture = (name: string) => readFile(new URL(`../../fixtures/vagrant/${name}`, import.meta.url), "utf8");

describe("vagrant --machine-readable", () => {
  it("undoes Vagrant's escaping of commas and newlines", () => {
    expect(unescapeField("a%!(VAGRANT_COMMA) b\\nc\\rd")).toBe("a, b\nc\rd");
    const [line] = parseMachineReadable("1763785201,,ui,info,x%!(VAGRANT_COMMA)y,z\n");
    expect(line).toEqual({ timestamp: 1763785201, target: "", type: "ui", data: ["info", "x,y", "z"] });
  });

  it("skips lines outside the format (plugin warnings)", () => {
    const text = "Vagrant failed to load plugin foo\n1763785201,server-1,state,running\n";
    expect(parseMachineReadable(text)).toHaveLength(1);
  });

  it("reads VirtualBox machine states, including a powered-off one", async () => {
    const states = parseStatus(await fixture("status-virtualbox.txt"));
    expect(states.map((s) => [s.name, s.state, s.provider])).toEqual([
      ["server-1", "running", "virtualbox"],
      ["server-2", "running", "virtualbox"],
      ["server-3", "running", "virtualbox"],
      ["client-1", "running", "virtualbox"],
      ["client-2", "poweroff", "virtualbox"],
    ]);
    expect(states[0]?.description).toBe(
      "The VM is running. To stop this VM, you can run `vagrant halt` to\nshut it down forcefully, or you can run `vagrant suspend` to simply\nsuspend the virtual machine. In either case, to restart it again,\nsimply run `vagrant up`.",
    );
  });

  it("reads libvirt machine states", async () => {
    const states = parseStatus(await fixture("status-libvirt.txt"));
    expect(states.map((s) => [s.name, s.state, s.provider])).toEqual([
      ["server-1", "running", "libvirt"],
      ["client-1", "running", "libvirt"],
    ]);
  });

  it("turns an error-exit line into an error carrying Vagrant's message", () => {
    const text =
      "1763785201,,error-exit,Vagrant::Errors::ProviderNotUsable,The provider 'virtualbox' is not usable%!(VAGRANT_COMMA) sorry\n";
    expect(() => parseStatus(text)).toThrow(/The provider 'virtualbox' is not usable, sorry/);
  });
});

describe("vagrant ssh-config", () => {
  it("reads VirtualBox port forwards and quoted identity files with spaces", async () => {
    const entries = parseSshConfig(await fixture("ssh-config-virtualbox.txt"));
    expect(entries).toHaveLength(5);
    expect(entries[1]).toEqual({
      host: "server-2",
      hostName: "127.0.0.1",
      user: "vagrant",
      port: 2200,
      identityFile: "/home/dev user/.hashistack/demo/vagrant/dotfile/machines/server-2/virtualbox/private_key",
    });
  });

  it("reads libvirt management addresses", async () => {
    const entries = parseSshConfig(await fixture("ssh-config-libvirt.txt"));
    expect(entries.map((e) => [e.host, e.hostName, e.port])).toEqual([
      ["server-1", "192.168.121.47", 22],
      ["client-1", "192.168.121.212", 22],
    ]);
  });

  it("names a machine whose block is incomplete", () => {
    expect(() => parseSshConfig("Host server-1\n  User vagrant\n")).toThrow(/machine 'server-1'/);
  });
});

describe("vagrant topology", () => {
  it("gives every machine its static private address, CPUs, memory and roles", () => {
    const topology = vagrantTopology(
      makeConfig({ name: "demo", provider: { vagrant: { cpus: 2, memoryMb: 2048, clientMemoryMb: 4096 } } }),
    );
    expect(topology).toMatchObject({
      cluster: "demo",
      provider: "virtualbox",
      box: "debian/bookworm64",
      netmask: "255.255.255.0",
    });
    expect(topology.machines.map((m) => [m.name, m.ip, m.memoryMb, m.roles.join("+")])).toEqual([
      ["server-1", "192.168.56.11", 2048, "server+vault"],
      ["server-2", "192.168.56.12", 2048, "server+vault"],
      ["server-3", "192.168.56.13", 2048, "server+vault"],
      ["client-1", "192.168.56.101", 4096, "client"],
      ["client-2", "192.168.56.102", 4096, "client"],
    ]);
    expect(topology.machines.every((m) => m.cpus === 2 && m.hostname.startsWith("demo-"))).toBe(true);
  });

  it("leaves VirtualBox's host-only range to the host's rule (checked by the provider), and checks the box name", () => {
    expect(makeConfig({ provider: { vagrant: { cidr: "10.20.0.0/24" } } }).provider.vagrant.cidr).toBe("10.20.0.0/24");
    expect(() => makeConfig({ provider: { vagrant: { box: "not a box" } } })).toThrow(/Vagrant box name/);
  });

  it("refuses a network that would give a machine Vagrant's NAT address, before running vagrant", async () => {
    const config = makeConfig({
      name: "nat",
      topology: { servers: 5 },
      provider: { vagrant: { provider: "libvirt", cidr: "10.0.2.0/24" } },
    });
    const context = { config, state: statePaths("nat", "/nonexistent"), reporter: createRecordingReporter() };
    await expect(vagrantProvider.up(context)).rejects.toThrow(/gives server-5 the address 10\.0\.2\.15, Vagrant's NAT address/);
  });
});

describe("VirtualBox host-only ranges (Vagrant's rule)", () => {
  it("reads the * lines of networks.conf, several ranges a line, comments and other lines ignored", () => {
    expect(parseNetworksConf("# allowed\n* 10.0.0.0/8 192.168.0.0/16\n  *   2001::/64\nnot a range\n*\n")).toEqual([
      "10.0.0.0/8",
      "192.168.0.0/16",
      "2001::/64",
    ]);
  });

  it("is VirtualBox's default 192.168.56.0/21 without the file, and exactly the file's ranges with it", async () => {
    expect(hostOnlyRanges("/nonexistent/networks.conf").ranges).toEqual(["192.168.56.0/21"]);
    const dir = await tempDir("vbox-conf");
    try {
      const file = join(dir.path, "networks.conf");
      await writeFile(file, "* 10.72.0.0/24\n");
      expect(hostOnlyRanges(file)).toEqual({ ranges: ["10.72.0.0/24"], source: file });
      await writeFile(file, "# nothing allowed\n");
      expect(hostOnlyRanges(file).ranges).toEqual([]);
    } finally {
      await dir.remove();
    }
  });

  it("checks each machine's address: CIDRs and single addresses, IPv6 entries never match", () => {
    expect(insideRanges("192.168.63.254", ["192.168.56.0/21"])).toBe(true);
    expect(insideRanges("192.168.64.1", ["192.168.56.0/21"])).toBe(false);
    expect(insideRanges("10.72.0.11", ["fd00::/8", "10.72.0.11"])).toBe(true);
    expect(insideRanges("10.72.0.12", ["fd00::/8", "10.72.0.11"])).toBe(false);
  });

  it("names every machine outside, the ranges and where they come from, with the line to add", () => {
    const machines = [
      { name: "server-1", ip: "10.20.0.11" },
      { name: "client-1", ip: "10.20.0.101" },
    ];
    expect(() => checkHostOnlyAddresses(machines, { ranges: ["10.20.0.0/24"], source: "/etc/vbox/networks.conf" })).not.toThrow();
    let error: unknown;
    try {
      checkHostOnlyAddresses(machines, hostOnlyRanges("/nonexistent/networks.conf"));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).message).toBe(
      "provider.vagrant.cidr gives server-1 10.20.0.11, client-1 10.20.0.101, outside VirtualBox's allowed host-only ranges (192.168.56.0/21; from VirtualBox's default (no /etc/vbox/networks.conf)).",
    );
    expect((error as InputError).hint).toContain("a line such as '* 10.20.0.0/24'");
    expect(() => checkHostOnlyAddresses(machines, { ranges: [], source: "/etc/vbox/networks.conf" })).toThrow(/\(none; from/);
  });
});
