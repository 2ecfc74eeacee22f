/**
 * The local provider and remote execution on real systemd-nspawn nodes with
 * real sshd: fan-out, idempotent uploads, failures named by host, a node dying
 * mid-command, the static provider over the same nodes, and a teardown that
 * leaves nothing behind. Needs root (CI runs as root).
 */
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import { createRecordingReporter } from "../../../scripts/lib/cli/output.ts";
import { clusterConfigSchema } from "../../../scripts/lib/config/schema.ts";
import { InputError, OperationError } from "../../../scripts/lib/errors.ts";
import { inventoryPath, loadInventory } from "../../../scripts/lib/inventory/load.ts";
import type { Inventory } from "../../../scripts/lib/inventory/schema.ts";
import { localProvider } from "../../../scripts/lib/providers/local/provider.ts";
import { type LocalNames, localNamesFor } from "../../../scripts/lib/providers/local/names.ts";
import { staticProvider } from "../../../scripts/lib/providers/static.ts";
import type { ProviderContext } from "../../../scripts/lib/providers/types.ts";
import { HostsFailedError, HostUnreachableError, RemoteCommandError } from "../../../scripts/lib/remote/errors.ts";
import { onEachHost, requireAllSucceeded } from "../../../scripts/lib/remote/fanout.ts";
import { localFileSha256, RemoteHost, sshTarget } from "../../../scripts/lib/remote/ssh.ts";
import { zstdCopy } from "../../../scripts/lib/binaries/compressed.ts";
import { statePaths } from "../../../scripts/lib/state/paths.ts";
import { tempDir } from "../../helpers/fixtures.ts";

const cluster = "itlocal";
const cidr = "10.96.0.0/24";
let dir: Awaited<ReturnType<typeof tempDir>>;
let context: ProviderContext;
let inventory: Inventory;
let hosts: RemoteHost[];
/** this state dir's host-side names (its cluster id is in them) */
let names: LocalNames;
/** PIDs seen inside the nodes before teardown: none may survive it */
const containerProcesses: number[] = [];

function contextFor(overrides: Record<string, unknown> = {}): ProviderContext {
  const config = clusterConfigSchema.parse({
    name: cluster,
    topology: { servers: 1, clients: 2 },
    provider: { local: { cidr } },
    ...overrides,
  });
  return { config, state: statePaths(config.name), reporter: createRecordingReporter() };
}

/** Everything of this cluster still present on the machine. */
async function leftovers(): Promise<string[]> {
  const found: string[] = [];
  const netns = (await $({ quiet: true })`ip netns list`).stdout;
  for (const node of ["server-1", "client-1", "client-2"])
    if (netns.includes(names.netns(node))) found.push(`netns ${names.netns(node)}`);
  const links = (await $({ quiet: true })`ip -o link show`).stdout;
  if (links.includes(names.bridge)) found.push("bridge");
  for (const node of ["server-1", "client-1", "client-2"]) if (links.includes(names.hostVeth(node))) found.push(`veth ${node}`);
  const mounts = (await $({ quiet: true })`cat /proc/self/mounts`).stdout;
  if (mounts.includes(dir.path)) found.push("mounts");
  for (const pid of containerProcesses) if (existsSync(`/proc/${pid}`)) found.push(`process ${pid}`);
  return found;
}

beforeAll(async () => {
  dir = await tempDir("local");
  process.env.HASHISTACK_STATE_DIR = join(dir.path, "state");
  process.env.HASHISTACK_INVENTORY_DIR = join(dir.path, "inventories");
  context = contextFor();
  inventory = await localProvider.up(context);
  names = (await localNamesFor(context)) as LocalNames;
  hosts = inventory.hosts.map((h) => new RemoteHost(sshTarget(h)));
  await Promise.all(hosts.map((h) => h.connect({ waitMs: 10_000 })));
}, 600_000);

afterAll(async () => {
  for (const host of hosts ?? []) host.dispose();
  if (context) await localProvider.down(context, { dryRun: false, keepState: false });
  delete process.env.HASHISTACK_STATE_DIR;
  delete process.env.HASHISTACK_INVENTORY_DIR;
  await dir?.remove();
});

describe("local provider", () => {
  it("writes an inventory with the planned addresses and a 0600 cluster key", async () => {
    expect(inventory.hosts.map((h) => [h.name, h.privateIp])).toEqual([
      ["server-1", "10.96.0.11"],
      ["client-1", "10.96.0.101"],
      ["client-2", "10.96.0.102"],
    ]);
    expect(await loadInventory(inventoryPath(cluster))).toEqual(inventory);
    const mode = (await $({ quiet: true })`stat -c %a ${inventory.hosts[0]?.ssh.keyPath ?? ""}`).stdout.trim();
    expect(mode).toBe("600");
  });

  it("a second up changes nothing and restarts nothing", async () => {
    const before = (await localProvider.status(context)).nodes.map((n) => n.detail);
    const again = await localProvider.up(contextFor());
    expect(again).toEqual(inventory);
    expect((await localProvider.status(context)).nodes.map((n) => n.detail)).toEqual(before);
  });

  it("refuses a CIDR that overlaps an existing route", async () => {
    const other = { ...contextFor({ name: "itother", provider: { local: { cidr: "10.96.0.128/25" } } }) };
    await expect(localProvider.up(other)).rejects.toThrow(InputError);
    await expect(localProvider.up(other)).rejects.toThrow(/overlaps the existing route 10.96.0.0\/24/);
  });
});

describe("remote execution", () => {
  it("runs a command on every node in parallel, each with its own output", async () => {
    const lines: string[] = [];
    const outcomes = await onEachHost(
      hosts,
      (h) => h.run("hostname; echo to-stderr >&2", { onLine: (line, stream) => lines.push(`[${h.name}] ${stream}: ${line}`) }),
      { concurrency: 3 },
    );
    expect(requireAllSucceeded("hostname", outcomes).map((r) => r.stdout)).toEqual(["server-1", "client-1", "client-2"]);
    expect(lines).toContain("[client-2] stderr: to-stderr");
  });

  it("uploads atomically and skips an upload whose checksum, mode and owner match", async () => {
    const host = hosts[0] as RemoteHost;
    const path = "/etc/hashistack-test/config.hcl";
    expect(await host.uploadContent("a = 1\n", path, { mode: 0o640 })).toBe("uploaded");
    expect(await host.uploadContent("a = 1\n", path, { mode: 0o640 })).toBe("unchanged");
    expect(await host.uploadContent("a = 1\n", path, { mode: 0o600 })).toBe("metadata-fixed");
    expect(await host.uploadContent("a = 2\n", path, { mode: 0o600 })).toBe("uploaded");
    expect((await host.run(`cat ${path}; stat -c '%a %U' ${path}; ls -a /etc/hashistack-test | wc -l`)).stdout).toBe(
      "a = 2\n600 root\n3",
    );
    const local = join(dir.path, "binary.bin");
    await writeFile(local, Buffer.alloc(3_000_000, 1));
    expect(await host.uploadFile(local, "/usr/local/bin/blob", { mode: 0o755 })).toBe("uploaded");
    expect(await host.uploadFile(local, "/usr/local/bin/blob", { mode: 0o755 })).toBe("unchanged");
  });

  it("sends a zstd copy where the node has zstd: the original's bytes arrive, checked against its checksum", async () => {
    const host = hosts[1] as RemoteHost;
    const local = join(dir.path, "packed.bin");
    await writeFile(local, Buffer.concat([Buffer.alloc(2_000_000, 7), Buffer.from("end\n")]));
    const copy = await zstdCopy(local, await localFileSha256(local), join(dir.path, "cache"));
    expect(copy).toMatch(/\.zst$/);
    const path = "/usr/local/bin/packed-blob";
    expect(await host.uploadFile(local, path, { mode: 0o755, zstdCopy: copy })).toBe("uploaded");
    expect((await host.run(`tail -c 4 ${path}; stat -c '%s %a' ${path}; ls -a /usr/local/bin | grep -c zst; true`)).stdout).toBe(
      "end\n2000004 755\n0",
    );
    expect(await host.uploadFile(local, path, { mode: 0o755, zstdCopy: copy })).toBe("unchanged");

    // a packed copy of other bytes is refused by the checksum check: nothing replaced, nothing left
    const other = join(dir.path, "other.bin");
    await writeFile(other, Buffer.alloc(1000, 9));
    const wrongCopy = await zstdCopy(other, await localFileSha256(other), join(dir.path, "cache"));
    await writeFile(local, Buffer.alloc(2_000_000, 8));
    await expect(host.uploadFile(local, path, { mode: 0o755, zstdCopy: wrongCopy })).rejects.toThrow(/arrived corrupted/);
    expect((await host.run(`tail -c 4 ${path}; ls -a /usr/local/bin | grep -c packed-blob; true`)).stdout).toBe("end\n1");
  });

  it("reports a failing command with host, exit code and stderr, without hiding the others", async () => {
    const outcomes = await onEachHost(hosts, (h) => h.run('[ "$(hostname)" != client-1 ] || { echo "disk full" >&2; exit 3; }'), {
      concurrency: 3,
    });
    expect(outcomes.map((o) => o.ok)).toEqual([true, false, true]);
    const error = outcomes[1]?.error as RemoteCommandError;
    expect(error).toBeInstanceOf(RemoteCommandError);
    expect([error.host, error.remoteExitCode]).toEqual(["client-1", 3]);
    expect(error.details).toEqual(["client-1 stderr: disk full"]);
    let thrown: unknown;
    try {
      requireAllSucceeded("Checking disks", outcomes);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(HostsFailedError);
    expect((thrown as HostsFailedError).message).toBe("Checking disks failed on 1 of 3 hosts: client-1.");
  });

  it("times out a command and names it", async () => {
    await expect((hosts[0] as RemoteHost).run("sleep 5", { timeoutMs: 500 })).rejects.toThrow(
      /server-1: 'sleep 5' was killed by timeout/,
    );
  });

  it("reports a command killed by a signal on a live host as that command's failure", async () => {
    const error = await (hosts[0] as RemoteHost).run("kill -TERM $$").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteCommandError);
    expect((error as Error).message).toMatch(/server-1: 'kill -TERM \$\$' was killed by (SIG)?TERM/);
    expect((await (hosts[0] as RemoteHost).run("echo still-here")).stdout.trim()).toBe("still-here");
  });

  it("refuses a wrong SSH key and a changed host key with clear messages", async () => {
    const wrongKey = join(dir.path, "wrong_key");
    await $({ quiet: true })`ssh-keygen -q -t ed25519 -N ${""} -f ${wrongKey}`;
    const target = { ...sshTarget(inventory.hosts[0] as Inventory["hosts"][number]), keyPath: wrongKey };
    await expect(new RemoteHost(target).connect()).rejects.toThrow(
      /SSH login as root@10.96.0.11:22 with key .*wrong_key was refused/,
    );
    const spoofed = new RemoteHost(sshTarget(inventory.hosts[0] as Inventory["hosts"][number]));
    await expect(spoofed.connect({ expectedHostKey: "SHA256:not-the-key" })).rejects.toThrow(
      /SSH host key of 10.96.0.11:22 changed/,
    );
  });
});

describe("static provider over the same nodes", () => {
  it("checks every host: an unreachable client is named and left to the run to skip, an unreachable server refused", async () => {
    const file = join(dir.path, "static.yaml");
    const ghost = (host: Inventory["hosts"][number]) => ({ ...host, privateIp: "10.96.0.250", publicIp: "10.96.0.250" });
    const withGhostClient = {
      ...inventory,
      hosts: [...inventory.hosts, { ...ghost(inventory.hosts[2] as Inventory["hosts"][number]), name: "ghost" }],
    };
    await writeFile(file, JSON.stringify(inventory));
    const ok = contextFor({ provider: { type: "static", static: { inventory: file } } });
    expect((await staticProvider.up(ok)).hosts).toHaveLength(3);
    await writeFile(file, JSON.stringify(withGhostClient));
    const reporter = createRecordingReporter();
    expect((await staticProvider.up({ ...ok, reporter })).hosts.map((h) => h.name)).toContain("ghost");
    expect(reporter.messages).toContainEqual({ kind: "warn", text: "ghost (10.96.0.250) does not answer over SSH" });
    expect(reporter.messages).toContainEqual({ kind: "success", text: "3 of 4 hosts answer" });
    const server = inventory.hosts.find((h) => h.roles.includes("server")) as Inventory["hosts"][number];
    const withGhostServer = { ...inventory, hosts: inventory.hosts.map((h) => (h === server ? ghost(h) : h)) };
    await writeFile(file, JSON.stringify(withGhostServer));
    const error = await staticProvider.up(ok).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OperationError);
    expect((error as OperationError).message).toBe(
      `${server.name} (10.96.0.250) is unreachable over SSH: bootstrap changes agent configuration and does not run on part of the servers.`,
    );
    expect((error as OperationError).details[0]).toBe(`servers: ${server.name}, the only one, is unreachable: bring it back`);
    expect((error as OperationError).details.join("\n")).toMatch(/cannot connect to 10.96.0.250:22 over SSH/);
  }, 60_000);
});

describe("a node that dies", () => {
  it("is reported by the command it interrupts and by status", async () => {
    const victim = hosts[2] as RemoteHost;
    const running = victim.run("sleep 30", { timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 500));
    // SIGKILL to nspawn alone leaves the container running (reparented); teardown must still find it
    const pid = Number((await $({ quiet: true })`cat ${join(context.state.root, "nodes", "client-2", "nspawn.pid")}`).stdout);
    process.kill(pid, "SIGKILL");
    await new Promise((r) => setTimeout(r, 500));
    expect((await localProvider.status(context)).nodes.find((n) => n.name === "client-2")?.state).toBe("unknown");
    // then the container dies too, as a crashed machine would
    const pids = (await $({ quiet: true })`ip netns pids ${names.netns("client-2")}`).stdout.trim().split(/\s+/).map(Number);
    for (const p of pids) process.kill(p, "SIGKILL");
    const error = await running.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HostUnreachableError);
    expect((error as Error).message).toMatch(/^client-2: /);
    await new Promise((r) => setTimeout(r, 500));
    expect((await localProvider.status(context)).nodes.find((n) => n.name === "client-2")?.state).toBe("stopped");
  });
});

describe("teardown", () => {
  it("another state dir with a cluster of the same name sees and removes nothing of this one", async () => {
    const other = await tempDir("local-other");
    process.env.HASHISTACK_INVENTORY_DIR = join(other.path, "inventories");
    try {
      const stranger = { ...contextFor(), state: statePaths(cluster, join(other.path, "state")) };
      expect(await localProvider.down(stranger, { dryRun: true, keepState: false })).toEqual([]);
      expect(await localProvider.down(stranger, { dryRun: false, keepState: false })).toEqual([]);
      expect((await localProvider.status(stranger)).resources).toEqual([]);
      expect((await localProvider.status(context)).nodes.every((n) => n.state === "running" || n.name === "client-2")).toBe(true);
    } finally {
      process.env.HASHISTACK_INVENTORY_DIR = join(dir.path, "inventories");
      await other.remove();
    }
  });

  it("lists what it would remove, removes it, and leaves nothing behind", async () => {
    const wouldRemove = await localProvider.down(context, { dryRun: true, keepState: false });
    expect(wouldRemove).toContain(`bridge ${names.bridge}`);
    expect(wouldRemove).toContain(`netns ${names.netns("client-2")}`);
    for (const host of hosts) host.dispose();
    for (const node of ["server-1", "client-1", "client-2"]) {
      const out = (await $({ quiet: true, nothrow: true })`ip netns pids ${names.netns(node)}`).stdout.trim();
      containerProcesses.push(...out.split(/\s+/).filter(Boolean).map(Number));
    }
    expect(containerProcesses.length).toBeGreaterThan(10);
    const removed = await localProvider.down(context, { dryRun: false, keepState: false });
    expect(removed).toEqual(expect.arrayContaining(wouldRemove.filter((w) => !w.startsWith("node client-2"))));
    await new Promise((r) => setTimeout(r, 1000));
    expect(await leftovers()).toEqual([]);
    expect(existsSync(context.state.root)).toBe(false);
    expect(await localProvider.down(context, { dryRun: true, keepState: false })).toEqual([]);
  });
});
