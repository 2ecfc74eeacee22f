/**
 * prepare, consul and nomad against fake nodes (test/helpers/fake-remote.ts):
 * what each puts on a node, and that a second run with nothing changed restarts
 * nothing, while a changed file restarts only its agent.
 */
import { $ } from "zx";
import { HostsFailedError } from "../../../scripts/lib/remote/errors.ts";
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { binaryPath } from "../../../scripts/lib/binaries/build.ts";
import { tools } from "../../../scripts/lib/binaries/catalog.ts";
import { createRecordingReporter } from "../../../scripts/lib/cli/output.ts";
import { nodeLayout } from "../../../scripts/lib/render/layout.ts";
import { planCluster } from "../../../scripts/lib/render/plan.ts";
import { listingPath } from "../../../scripts/lib/stages/binary-listing.ts";
import { installConsulAgents } from "../../../scripts/lib/stages/consul.ts";
import { touched } from "../../../scripts/lib/stages/install.ts";
import { installNomadAgents } from "../../../scripts/lib/stages/nomad.ts";
import { clientTools, nodeDirectories, prepareStage } from "../../../scripts/lib/stages/prepare.ts";
import type { ClusterRun } from "../../../scripts/lib/stages/run-context.ts";
import { type FakeRemote, fakeRemotes, prepareFactsAnswer } from "../../helpers/fake-remote.ts";
import { fixedSecrets, loopbackInventory, makeConfig, scratchDirs } from "../../helpers/fixtures.ts";

const scratch = scratchDirs();
const layout = nodeLayout();
const config = makeConfig({ name: "unit-stages", install: { method: "upload" } });
const inventory = loopbackInventory([
  { name: "server-1", roles: ["server", "vault"], ip: "127.0.0.1" },
  { name: "client-1", roles: ["client"], ip: "127.0.0.2" },
]);
const [server, client] = inventory.hosts as [(typeof inventory.hosts)[0], (typeof inventory.hosts)[0]];
/** one node of each kind: nothing to wait for between restarts (rolling.test.ts covers the order) */
const rollout = { kind: "clients", batchSize: 64, gate: { waitHealthy: async () => {} } } as const;

/** What `stat -c` would print for the fake's files: a changed content is a changed identity (its ctime would move). */
function fakeStat(fake: FakeRemote): string {
  return [...fake.files]
    .filter(([path]) => path.startsWith(`${layout.binDir}/`))
    .map(([path, f]) => {
      const changeTime = createHash("sha256").update(f.content).digest("hex").slice(0, 8);
      return `${path}|${f.content.length} 1 ${changeTime} 7 ${f.mode.toString(8)} ${f.owner} ${f.group}`;
    })
    .join("\n");
}

let stateDir = "";

/** `commands`: what prepare's facts find on the nodes */
function fakeRun(commands: Parameters<typeof prepareFactsAnswer>[0] = { systemctl: "/usr/bin/systemctl" }) {
  const fakes = fakeRemotes(["server-1", "client-1"]);
  for (const fake of fakes.remotes.values()) {
    fake.respond = (command) => {
      const listing = fake.files.get(listingPath(layout.binDir))?.content.toString() ?? "";
      if (command.startsWith("uname"))
        return {
          stdout: prepareFactsAnswer(commands, `${listing}--- hashistack stat ---\n${fakeStat(fake)}\n`),
        };
      // the upgrade check reads the listing on its own before any upload
      if (command.startsWith("cat ") && command.includes(listingPath(layout.binDir)))
        return { stdout: `${listing}--- hashistack stat ---\n${fakeStat(fake)}\n` };
      return command.startsWith("stat -c") ? { stdout: `${fakeStat(fake)}\n` } : undefined;
    };
  }
  const plans = new Map(planCluster(config, inventory, fixedSecrets(["server-1", "client-1"])).map((p) => [p.host.name, p]));
  const state = { rollout: join(stateDir, "rollout.json") };
  const run = {
    config,
    inventory,
    plans,
    state,
    reporter: createRecordingReporter(),
    remote: fakes.remote,
  } as unknown as ClusterRun;
  return { run, server: fakes.remote("server-1"), client: fakes.remote("client-1") };
}

let savedCache: string | undefined;
beforeAll(async () => {
  // binaries from a cache of stand-ins: prepare uploads whatever the cache holds
  const cache = await scratch.make("stage-cache");
  stateDir = await scratch.make("stage-state");
  savedCache = process.env.HASHISTACK_CACHE;
  process.env.HASHISTACK_CACHE = cache;
  const specs = [
    { ...tools.consul, version: config.versions.consul },
    { ...tools.nomad, version: config.versions.nomad },
    { ...tools.vault, version: config.versions.vault },
    { ...tools["consul-template"], version: config.versions.consulTemplate },
    tools.fabio,
    tools.prometheus,
    tools.alertmanager,
  ];
  for (const spec of specs) {
    const path = binaryPath(spec, cache);
    await mkdir(join(path, ".."), { recursive: true });
    await writeFile(path, `#!/bin/sh\necho ${spec.name}\n`, { mode: 0o755 });
  }
});
afterAll(async () => {
  if (savedCache === undefined) delete process.env.HASHISTACK_CACHE;
  else process.env.HASHISTACK_CACHE = savedCache;
  await scratch.removeAll();
});

describe("prepare on fake nodes", () => {
  it("refuses a host without systemctl, whatever the facts after it say", async () => {
    const { run } = fakeRun({ zstd: "/usr/bin/zstd" });
    const error = await prepareStage.run(run).then(
      () => undefined,
      (e: unknown) => e as HostsFailedError,
    );
    expect(error).toBeInstanceOf(HostsFailedError);
    expect(error?.details.join("\n")).toMatch(/server-1: systemd is required \(no systemctl found\)/);
  });

  it("sends zstd copies only to hosts that have zstd, and only with a local zstd", async () => {
    const { run, server: s } = fakeRun({ systemctl: "/usr/bin/systemctl", zstd: "/usr/bin/zstd" });
    expect(await prepareStage.run(run)).toBe("10 binaries uploaded");
    const copies = s.log.filter((line) => line.startsWith("zstd copy for "));
    const localZstd = (await $({ nothrow: true, quiet: true })`zstd --version`).exitCode === 0;
    expect(copies.length).toBe(localZstd ? 4 : 0); // consul, nomad, consul-template, vault
    for (const line of copies) expect(line).toMatch(/\/zst\/[0-9a-f]{64}\.zst$/);
    const { run: plain, server: p } = fakeRun();
    await prepareStage.run(plain);
    expect(p.log.filter((line) => line.startsWith("zstd copy for "))).toEqual([]);
  });

  it("makes the service users and directories (Vault's only where Vault runs), uploads the binaries once", async () => {
    const { run, server: s, client: c } = fakeRun();
    expect(await prepareStage.run(run)).toBe("10 binaries uploaded");
    expect(s.dirs.get(layout.vault.dataDir)).toEqual({ path: layout.vault.dataDir, mode: 0o700, owner: "vault" });
    expect(c.dirs.has(layout.vault.dataDir)).toBe(false);
    expect(s.dirs.get(layout.nomad.dataDir)).toMatchObject({ mode: 0o750, owner: "nomad" });
    expect(c.dirs.get(layout.nomad.dataDir)).toEqual({ path: layout.nomad.dataDir, mode: 0o711 });
    expect(c.dirs.get(`${layout.nomad.hostVolumesDir}/grafana`)).toMatchObject({ owner: 472, mode: 0o750 });
    expect([...s.files.keys()].sort()).toEqual(
      ["consul", "consul-template", "nomad", "vault", ".hashistack-binaries.sha256"].map((b) => `${layout.binDir}/${b}`).sort(),
    );
    // the exec profile runs Fabio, Prometheus 3 and Alertmanager from the clients
    for (const tool of ["fabio", "prometheus", "alertmanager"]) expect(c.files.has(`${layout.binDir}/${tool}`), tool).toBe(true);
    expect(s.log.find((l) => l.includes("useradd"))).toContain("useradd --system");
    const checked: string[] = [];
    const uploadFile = s.uploadFile.bind(s);
    s.uploadFile = (localPath, path, options) => {
      checked.push(path);
      return uploadFile(localPath, path, options);
    };
    s.takeLog();
    expect(await prepareStage.run(run)).toBe("binaries up to date");
    // the listing answered for every binary: no upload check (remote checksum), no version run
    expect(checked).toEqual([]);
    expect(s.takeLog().filter((l) => l.includes("version"))).toEqual([]);
    // a binary changed on the node: only it is checked and uploaded again
    const consul = s.files.get(`${layout.binDir}/consul`);
    if (consul) consul.content = Buffer.from("tampered");
    expect(await prepareStage.run(run)).toBe("1 binaries uploaded");
    expect(checked).toEqual([`${layout.binDir}/consul`]);
    // its version is asked twice: by the upgrade check (its checksum is not the build's) and after the upload
    expect(s.takeLog().filter((l) => l.includes("version")).length).toBe(2);
    checked.length = 0;
    expect(await prepareStage.run(run)).toBe("binaries up to date");
    expect(checked).toEqual([]);
  });

  it("installs the enabled platform jobs' programs on clients in the exec profile only", () => {
    expect(clientTools(makeConfig({ jobs: { runtime: "exec", alertmanager: { enabled: false } } }))).toEqual([
      "fabio",
      "prometheus",
    ]);
    expect(clientTools(makeConfig({ jobs: { runtime: "docker" } }))).toEqual([]);
  });

  it("directory specs carry every path the agents need, with owners the agents run as", () => {
    const dirs = nodeDirectories(server, layout);
    expect(dirs.map((d) => d.path)).toContain(layout.consul.tlsDir);
    expect(dirs.find((d) => d.path === layout.consul.tlsDir)).toMatchObject({ mode: 0o750, group: "consul" });
    expect(nodeDirectories(client, layout).some((d) => d.path.startsWith(layout.vault.configDir))).toBe(false);
  });
});

describe("consul and nomad agents on fake nodes", () => {
  it("start once, then a second run restarts nothing; a changed config restarts only that agent", async () => {
    const { run, server: s, client: c } = fakeRun();
    expect(touched(await installConsulAgents(run, inventory.hosts, rollout))).toBe(2);
    expect(touched(await installNomadAgents(run, inventory.hosts, rollout))).toBe(2);
    const first = s.takeLog();
    // the unit file is new: systemd re-reads units before the first start
    expect(first.indexOf("daemon-reload")).toBeLessThan(first.indexOf("start consul"));
    expect(first).toContain("start nomad");
    expect(s.files.get(layout.consul.unit)?.mode).toBe(0o644);
    c.takeLog();

    expect(touched(await installConsulAgents(run, inventory.hosts, rollout))).toBe(0);
    expect(touched(await installNomadAgents(run, inventory.hosts, rollout))).toBe(0);
    expect(s.takeLog().filter((l) => /^(start|restart|reload|upload|daemon-reload)/.test(l))).toEqual([]);

    // a config change on the client: Consul there restarts, nothing else does
    const plan = run.plans.get("client-1");
    const file = plan?.files.find((f) => f.path.startsWith(layout.consul.configDir) && f.path.endsWith(".hcl"));
    if (!plan || !file) throw new Error("no Consul config in the client's plan");
    file.content = `${file.content}\n# changed\n`;
    c.takeLog();
    expect(touched(await installConsulAgents(run, inventory.hosts, rollout))).toBe(1);
    expect(touched(await installNomadAgents(run, inventory.hosts, rollout))).toBe(0);
    expect(c.takeLog().filter((l) => /^(start|restart|reload|daemon-reload)/.test(l))).toEqual(["restart consul"]);
  });

  it("a replaced binary restarts its running agent even when no config changed", async () => {
    const { run, server: s } = fakeRun();
    await installNomadAgents(run, [server], rollout);
    await s.uploadContent("new nomad build", `${layout.binDir}/nomad`, { mode: 0o755 });
    s.takeLog();
    expect(touched(await installNomadAgents(run, [server], rollout))).toBe(1);
    expect(s.takeLog()).toContain("restart nomad");
  });
});
