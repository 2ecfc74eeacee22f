/**
 * Docker tasks: container cgroups in the shapes docker makes (cgroupfs and
 * systemd drivers, cgroup v1 and v2, a configured cgroup parent), mapped to
 * Nomad allocations and tasks through a Docker Engine API served on a unix
 * socket with the documented /containers/json answer. A real docker daemon
 * is the docker-profile e2e's job.
 */
import { mkdirSync, renameSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { defaultDockerParents, discoverTaskCgroups, parentPath, TaskCpuReader } from "../../../scripts/lib/energy/cgroups.ts";
import { exporterConfigSchema } from "../../../scripts/lib/energy/config.ts";
import {
  allocIdLabel,
  ContainerDirectory,
  type ContainerSummary,
  dockerSocketLister,
  nomadTaskOf,
} from "../../../scripts/lib/energy/docker.ts";
import { EnergyExporter } from "../../../scripts/lib/energy/exporter.ts";
import { fsHostReader } from "../../../scripts/lib/energy/host.ts";
import { choosePowerSource } from "../../../scripts/lib/energy/power.ts";
import { allocA, allocB, containerA, containerB, FakeHost } from "../../helpers/energy-trees.ts";
import { tempDir } from "../../helpers/fixtures.ts";

let dir: Awaited<ReturnType<typeof tempDir>>;
let host: FakeHost;
beforeEach(async () => {
  dir = await tempDir("energy-docker");
  host = new FakeHost(dir.path).machine();
});
afterEach(() => dir.remove());

const layout = (over: { nomadParent?: string; dockerParents?: string[] } = {}) => ({
  root: host.cgroup,
  dockerParents: defaultDockerParents,
  ...over,
});

describe("container cgroups", () => {
  it("finds containers on cgroup v2 with the cgroupfs and the systemd driver", () => {
    host
      .dockerContainer(containerA, 2, { version: 2, driver: "cgroupfs" })
      .dockerContainer(containerB, 3, { version: 2, driver: "systemd" })
      .v2Task(allocA, "web", 1e6);
    const found = discoverTaskCgroups(fsHostReader, layout());
    expect(found.map((c) => [c.containerId ?? c.task, c.dir.slice(host.cgroup.length), c.method]).sort()).toEqual(
      [
        [containerA, `/docker/${containerA}`, "cgroup-v2"],
        [containerB, `/system.slice/docker-${containerB}.scope`, "cgroup-v2"],
        ["web", `/nomad.slice/share.slice/${allocA}.web.scope`, "cgroup-v2"],
      ].sort(),
    );
  });

  it("finds containers on cgroup v1 in the cpuacct hierarchies, once each", () => {
    host
      .dockerContainer(containerA, 2, { version: 1, driver: "cgroupfs", controller: "cpu,cpuacct" })
      .dockerContainer(containerA, 2, { version: 1, driver: "cgroupfs", controller: "cpuacct" })
      .dockerContainer(containerB, 3, { version: 1, driver: "systemd", controller: "cpuacct" });
    const usages = new TaskCpuReader(fsHostReader, { cgroup: host.cgroup, procfs: host.procfs }).read();
    expect(usages.map((u) => [u.containerId, u.cpuSeconds, u.method]).sort()).toEqual(
      [
        [containerA, 2, "cpuacct"],
        [containerB, 3, "cpuacct"],
      ].sort(),
    );
  });

  it("honours a configured docker cgroup parent and Nomad cgroup_parent (no default names assumed)", () => {
    // daemon cgroup-parent tenants-docker.slice: systemd nests it in tenants.slice
    host.dockerContainer(containerA, 2, { version: 2, driver: "systemd", parent: "tenants.slice/tenants-docker.slice" });
    host.dockerContainer(containerB, 2, { version: 2, driver: "cgroupfs", parent: "docker" });
    // Nomad with cgroup_parent = "hashi.slice"
    const scope = join(host.cgroup, "hashi.slice", "share.slice");
    host.v2Task(allocA, "web", 1e6);
    mkdirSync(join(host.cgroup, "hashi.slice"), { recursive: true });
    renameSync(join(host.cgroup, "nomad.slice", "share.slice"), scope);
    expect(parentPath("tenants-docker.slice")).toBe("tenants.slice/tenants-docker.slice");
    const found = discoverTaskCgroups(
      fsHostReader,
      layout({ nomadParent: "hashi.slice", dockerParents: ["tenants-docker.slice"] }),
    );
    expect(found.map((c) => c.containerId ?? c.task).sort()).toEqual([containerA, "web"].sort());
    // the defaults do not see them
    expect(discoverTaskCgroups(fsHostReader, layout()).map((c) => c.containerId ?? c.task)).toEqual([containerB]);
  });

  it("honours Nomad cgroup_parent on cgroup v1", () => {
    host.v1Task(allocA, "web", 1e9);
    renameSync(join(host.cgroup, "cpuacct", "nomad"), join(host.cgroup, "cpuacct", "hashi"));
    expect(discoverTaskCgroups(fsHostReader, layout({ nomadParent: "/hashi" })).map((c) => c.task)).toEqual(["web"]);
    expect(discoverTaskCgroups(fsHostReader, layout())).toEqual([]);
  });
});

describe("container identities", () => {
  const nomadContainer = (id: string, allocId: string, task: string, extra: Record<string, string> = {}): ContainerSummary => ({
    Id: id,
    Names: [`/${task}-${allocId}`],
    Labels: { [allocIdLabel]: allocId, ...extra },
  });

  it("trusts only what Nomad sets: the alloc_id label and the <task>-<alloc_id> name", () => {
    expect(nomadTaskOf(nomadContainer(containerA, allocA, "web"))).toEqual({ allocId: allocA, task: "web" });
    // a job may set com.hashicorp.nomad.task_name itself: it is not believed
    expect(nomadTaskOf(nomadContainer(containerA, allocA, "web", { "com.hashicorp.nomad.task_name": "someone-else" }))).toEqual({
      allocId: allocA,
      task: "web",
    });
    expect(nomadTaskOf({ Id: containerA, Names: ["/web"], Labels: { [allocIdLabel]: allocA } })).toBeUndefined();
    expect(nomadTaskOf({ Id: containerA, Names: [`/web-${allocA}`], Labels: {} })).toBeUndefined();
  });

  describe("over the Docker Engine API socket", () => {
    let server: Server;
    let socket: string;
    let containers: ContainerSummary[] = [];
    let requests: string[] = [];
    beforeEach(async () => {
      containers = [];
      requests = [];
      socket = join(dir.path, "docker.sock");
      server = createServer((req, res) => {
        requests.push(req.url ?? "");
        const url = new URL(req.url ?? "/", "http://docker");
        const filters = JSON.parse(url.searchParams.get("filters") ?? "{}") as { label?: string[] };
        const body = containers.filter((c) => (filters.label ?? []).every((l) => c.Labels?.[l] !== undefined));
        res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(body));
      });
      await new Promise<void>((resolve) => server.listen(socket, resolve));
    });
    afterEach(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });

    it("resolves a new container at once and remembers non-Nomad ones", async () => {
      let now = 0;
      const directory = new ContainerDirectory(dockerSocketLister(socket, 2000), { retryMs: 10_000, now: () => now });
      containers = [nomadContainer(containerA, allocA, "web"), { Id: containerB, Names: ["/adhoc"], Labels: {} }];
      const first = await directory.resolve([containerA, containerB]);
      expect(first.get(containerA)).toEqual({ allocId: allocA, task: "web" });
      expect(first.get(containerB)).toBeNull();
      expect(requests).toHaveLength(1);
      expect(decodeURIComponent(requests[0] as string)).toContain(`"label":["${allocIdLabel}"]`);
      // known ones cost no request
      now += 1000;
      await directory.resolve([containerA, containerB]);
      expect(requests).toHaveLength(1);
    });

    it("attributes a docker task's CPU share to its allocation and task, with Nomad's job labels", async () => {
      let now = 1_000_000;
      host.zone({ id: "intel-rapl:0", name: "package-0", maxRangeUj: 1e12, energyUj: 0 }).stat({ user: 0, idle: 0, vcpus: 4 });
      host.dockerContainer(containerA, 0, { version: 2, driver: "systemd" }).dockerContainer(containerB, 0, {
        version: 2,
        driver: "systemd",
      });
      containers = [nomadContainer(containerA, allocB, "api"), { Id: containerB, Names: ["/adhoc"], Labels: {} }];
      const config = exporterConfigSchema.parse({
        source: "rapl",
        host: { sysfs: host.sysfs, procfs: host.procfs, cgroup: host.cgroup },
        rapl: { idle: 10 },
      });
      const exporter = new EnergyExporter({
        reader: fsHostReader,
        procfs: host.procfs,
        node: "n1",
        power: choosePowerSource(config, fsHostReader, now),
        tasks: new TaskCpuReader(fsHostReader, { cgroup: host.cgroup, procfs: host.procfs }),
        metadata: { errors: 0, lookup: async () => new Map([[allocB, { namespace: "prod", job: "shop", group: "backend" }]]) },
        containers: new ContainerDirectory(dockerSocketLister(socket, 2000), { now: () => now }),
        intensity: () => ({ gramsPerKwh: 100, source: "static", provider: "static" }),
        pue: 1,
        version: "t",
        now: () => now,
      });
      await exporter.sample();
      now += 10_000;
      host.setEnergy("intel-rapl:0", 200e6).stat({ user: 1000, idle: 3000, vcpus: 4 });
      host
        .dockerContainer(containerA, 6, { version: 2, driver: "systemd" })
        .dockerContainer(containerB, 2, { version: 2, driver: "systemd" });
      await exporter.sample();
      const text = exporter.render();
      // 100 J dynamic; api 6 of 10 busy CPU-s; the non-Nomad container's 2 stay in system
      expect(text).toContain(
        `hashistack_energy_task_joules_total{node="n1",estimated="false",nomad_namespace="prod",nomad_job="shop",task_group="backend",task="api",alloc_id="${allocB}"} 60`,
      );
      expect(text).toContain('hashistack_energy_bucket_joules_total{node="n1",estimated="false",bucket="system"} 40');
      expect(text).toContain('hashistack_energy_docker_unresolved_containers{node="n1"} 0');
      expect(text).not.toContain(containerB);
    });

    it("counts a container list that fails, and asks again about that container only after the retry period", async () => {
      const handler = server.listeners("request")[0] as (...args: unknown[]) => void;
      server.removeAllListeners("request");
      server.on("request", (_req, res) => res.writeHead(500).end("boom"));
      let now = 0;
      const directory = new ContainerDirectory(dockerSocketLister(socket, 2000), { retryMs: 10_000, now: () => now });
      expect((await directory.resolve([containerA])).has(containerA)).toBe(false);
      expect(directory.errors).toBe(1);
      expect(directory.lastError).toMatch(/HTTP 500/);
      server.removeAllListeners("request");
      server.on("request", (req, res) => {
        requests.push(req.url ?? "");
        handler(req, res);
      });
      containers = [nomadContainer(containerA, allocA, "web")];
      now += 5000;
      expect((await directory.resolve([containerA])).has(containerA)).toBe(false);
      now += 5000;
      expect((await directory.resolve([containerA])).get(containerA)).toEqual({ allocId: allocA, task: "web" });
    });
  });
});
