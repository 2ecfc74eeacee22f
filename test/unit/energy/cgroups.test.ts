import { mkdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CgroupNameCache,
  cpuacctFromBytes,
  defaultDockerParents,
  discoverTaskCgroups,
  parseCpuacctUsage,
  parseUsageUsec,
  TaskCpuReader,
  usageUsecFromBytes,
} from "../../../scripts/lib/energy/cgroups.ts";
import { fsHostReader, type HostReader } from "../../../scripts/lib/energy/host.ts";
import { allocA, allocB, FakeHost } from "../../helpers/energy-trees.ts";
import { tempDir } from "../../helpers/fixtures.ts";

let dir: Awaited<ReturnType<typeof tempDir>>;
let host: FakeHost;
beforeEach(async () => {
  dir = await tempDir("cgroups");
  host = new FakeHost(dir.path);
});
afterEach(() => dir.remove());

const reader = () => new TaskCpuReader(fsHostReader, { cgroup: host.cgroup, procfs: host.procfs });

describe("task cgroups", () => {
  it("reads cgroup v2 scopes of Nomad ≥1.7 (share and reserve slices) and of older Nomad (nomad.slice)", () => {
    host
      .v2Task(allocA, "web", 2_500_000)
      .v2Task(allocA, "log-shipper", 500_000, "reserve.slice")
      .v2Task(allocB, "db.main", 1_000_000, ".");
    const usages = reader().read();
    expect(usages.map((u) => [u.allocId, u.task, u.cpuSeconds, u.method]).sort()).toEqual(
      [
        [allocA, "log-shipper", 0.5, "cgroup-v2"],
        [allocA, "web", 2.5, "cgroup-v2"],
        [allocB, "db.main", 1, "cgroup-v2"],
      ].sort(),
    );
  });

  it("ignores scopes that are not Nomad tasks", () => {
    host.v2Task(allocA, "web", 1);
    mkdirSync(`${host.cgroup}/nomad.slice/share.slice/not-a-task.scope`, { recursive: true });
    expect(
      discoverTaskCgroups(fsHostReader, { root: host.cgroup, dockerParents: defaultDockerParents }).map((c) => c.task),
    ).toEqual(["web"]);
  });

  it("keeps a listed task with its last value when one read fails, so it does not flicker out", () => {
    host.v2Task(allocA, "web", 2_000_000);
    const r = reader();
    expect(r.read()[0]?.cpuSeconds).toBe(2);
    writeFileSync(`${host.cgroup}/nomad.slice/share.slice/${allocA}.web.scope/cpu.stat`, "");
    expect(r.read().map((u) => [u.task, u.cpuSeconds])).toEqual([["web", 2]]);
    rmSync(`${host.cgroup}/nomad.slice/share.slice/${allocA}.web.scope`, { recursive: true });
    expect(r.read()).toEqual([]);
  });

  it("parses a name once while it is listed, reports it gone once, and parses it again when it comes back", () => {
    host.v2Task(allocA, "web", 1).v2Task(allocB, "db", 1);
    const layout = { root: host.cgroup, dockerParents: defaultDockerParents };
    const cache = new CgroupNameCache();
    const gone: string[] = [];
    const first = discoverTaskCgroups(fsHostReader, layout, cache, (cg) => gone.push(cg.task ?? ""));
    const second = discoverTaskCgroups(fsHostReader, layout, cache, (cg) => gone.push(cg.task ?? ""));
    // the same objects: nothing re-parsed or re-built while listed
    expect(second.find((c) => c.task === "web")).toBe(first.find((c) => c.task === "web"));
    rmSync(`${host.cgroup}/nomad.slice/share.slice/${allocA}.web.scope`, { recursive: true });
    expect(discoverTaskCgroups(fsHostReader, layout, cache, (cg) => gone.push(cg.task ?? "")).map((c) => c.task)).toEqual(["db"]);
    expect(discoverTaskCgroups(fsHostReader, layout, cache, (cg) => gone.push(cg.task ?? "")).map((c) => c.task)).toEqual(["db"]);
    expect(gone).toEqual(["web"]);
    host.v2Task(allocA, "web", 5);
    const back = discoverTaskCgroups(fsHostReader, layout, cache).find((c) => c.task === "web");
    expect(back).toBeDefined();
    expect(back).not.toBe(first.find((c) => c.task === "web"));
  });

  it("reads cgroup v1 cpuacct (separate or co-mounted with cpu)", () => {
    host.v1Task(allocA, "web", 3e9).v1Task(allocB, "db", 1.5e9, "cpu,cpuacct");
    expect(
      reader()
        .read()
        .map((u) => [u.task, u.cpuSeconds, u.method])
        .sort(),
    ).toEqual([
      ["db", 1.5, "cpuacct"],
      ["web", 3, "cpuacct"],
    ]);
  });

  it("sums the processes of a v1 task that only has a cpu cgroup, keeping time of processes that exited", () => {
    host.v1ProcTask(allocA, "web", { 101: 300, 102: 100 }); // 3 s + 1 s
    const r = reader();
    expect(r.read()[0]).toMatchObject({ method: "procfs", cpuSeconds: 4 });
    host.v1ProcTask(allocA, "web", { 101: 500 }); // 102 exited; 101 used 2 s more
    rmSync(`${host.procfs}/102`, { recursive: true });
    expect(r.read()[0]?.cpuSeconds).toBeCloseTo(6, 9);
  });

  it("parses counters from the bytes exactly as from the text, garbled reads included", () => {
    const stats = [
      "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n",
      "usage_usec 0\n",
      "usage_usec 123456789012345678\n", // beyond 15 digits: the same double as Number()
      "usage_usec 42", // no newline
      "usage_usec \n",
      "usage_usec 12x\n",
      "",
      "user_usec 5\nusage_usec 7\n", // not the first line: the text parser finds it
      " usage_usec 7\n",
      "usage_usec 7\r\n",
    ];
    for (const text of stats) {
      const bytes = Buffer.alloc(4096, "9"); // stale bytes after the read must not count
      const length = bytes.write(text);
      expect(usageUsecFromBytes(bytes, length), JSON.stringify(text)).toBe(parseUsageUsec(text));
    }
    for (const text of ["3000000000\n", "0\n", "12345678901234567890\n", "42", "", "\n", " 7 \n", "7x\n", "-1\n"]) {
      const bytes = Buffer.alloc(4096, "9");
      const length = bytes.write(text);
      expect(cpuacctFromBytes(bytes, length), JSON.stringify(text)).toBe(parseCpuacctUsage(text));
    }
  });

  it("reads a counter file larger than its read buffer whole", () => {
    host.v2Task(allocA, "web", 1);
    const file = `${host.cgroup}/nomad.slice/share.slice/${allocA}.web.scope/cpu.stat`;
    writeFileSync(file, `usage_usec 3500000\n${"nr_periods 0\n".repeat(600)}`);
    const r = reader();
    expect(r.read()[0]?.cpuSeconds).toBe(3.5);
    writeFileSync(file, `${"nr_periods 0\n".repeat(600)}usage_usec 4500000\n`);
    expect(r.read()[0]?.cpuSeconds).toBe(4.5);
  });

  it("reads kept files in place with one read, and lists a folder that appears after it was missing", () => {
    host.v2Task(allocA, "web", 1);
    const file = `${host.cgroup}/nomad.slice/share.slice/${allocA}.web.scope/cpu.stat`;
    const into = Buffer.alloc(64);
    expect(into.toString("utf8", 0, fsHostReader.readKeptInto?.(file, into))).toBe("usage_usec 1\nuser_usec 1\nsystem_usec 0\n");
    writeFileSync(file, "usage_usec 2\n");
    expect(into.toString("utf8", 0, fsHostReader.readKeptInto?.(file, into))).toBe("usage_usec 2\n");
    expect(() => fsHostReader.readKeptInto?.(`${file}.missing`, into)).toThrow(/ENOENT/);
    const docker = `${host.cgroup}/docker`;
    expect(fsHostReader.exists?.(docker)).toBe(false);
    expect(fsHostReader.listNames?.(docker)).toEqual([]);
    expect(fsHostReader.listNames?.(docker)).toEqual([]);
    mkdirSync(`${docker}/abc`, { recursive: true });
    expect(fsHostReader.exists?.(docker)).toBe(true);
    expect(fsHostReader.listNames?.(docker)).toEqual(["abc"]);
    rmSync(docker, { recursive: true });
    expect(fsHostReader.listNames?.(docker)).toEqual([]);
    writeFileSync(docker, "a file, not a folder");
    expect(fsHostReader.listNames?.(docker)).toEqual([]);
  });

  describe("reusing a folder's listing while its stamp is unchanged", () => {
    const share = () => `${host.cgroup}/nomad.slice/share.slice`;
    /** fsHostReader counting listings, with reads of chosen cgroups failing as a removed cgroup's do (ENODEV) */
    const counting = () => {
      const listed: string[] = [];
      const removed = new Set<string>();
      const fail = (path: string) => {
        for (const dir of removed)
          if (path.startsWith(`${dir}/`)) throw Object.assign(new Error(`ENODEV: ${path}`), { code: "ENODEV" });
      };
      const reader: HostReader = {
        ...fsHostReader,
        listNames: (path) => (listed.push(path), fsHostReader.listNames?.(path) ?? []),
        readKeptInto: (path, into) => (fail(path), fsHostReader.readKeptInto?.(path, into) ?? 0),
      };
      return { reader, listed, removed };
    };
    /** the kernel's cgroupfs may keep a folder's times as they were: set them an hour back */
    const settle = (dir: string) => utimesSync(dir, new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));
    const tasks = (r: TaskCpuReader) =>
      r
        .read()
        .map((u) => [u.task, u.cpuSeconds])
        .sort();

    it("lists a settled folder of task cgroups once, and again when a cgroup is added", () => {
      host.v2Task(allocA, "web", 1e6).v2Task(allocB, "db", 2e6);
      settle(share());
      const { reader, listed } = counting();
      const r = new TaskCpuReader(reader, { cgroup: host.cgroup, procfs: host.procfs });
      expect(tasks(r)).toEqual([
        ["db", 2],
        ["web", 1],
      ]);
      host.v2Task(allocA, "web", 3e6);
      expect(tasks(r)).toEqual([
        ["db", 2],
        ["web", 3],
      ]);
      expect(listed.filter((p) => p === share())).toHaveLength(1);
      host.v2Task(allocA, "worker", 5e6);
      settle(share()); // the link count alone shows it
      expect(tasks(r)).toEqual([
        ["db", 2],
        ["web", 3],
        ["worker", 5],
      ]);
      expect(listed.filter((p) => p === share())).toHaveLength(2);
      // nomad.slice itself holds share.slice, not task cgroups: listed every time
      expect(listed.filter((p) => p === `${host.cgroup}/nomad.slice`)).toHaveLength(3);
    });

    it("finds a cgroup that began when another ended, in the same read, by the ended one's failed read", () => {
      host.v2Task(allocA, "web", 1e6).v2Task(allocB, "db", 2e6);
      settle(share());
      const { reader, listed, removed } = counting();
      const r = new TaskCpuReader(reader, { cgroup: host.cgroup, procfs: host.procfs });
      expect(tasks(r)).toEqual([
        ["db", 2],
        ["web", 1],
      ]);
      // db ends and batch begins between two reads: same link count, times kept
      const db = `${share()}/${allocB}.db.scope`;
      removed.add(db);
      rmSync(db, { recursive: true });
      host.v2Task(allocB, "batch", 4e6);
      settle(share());
      expect(tasks(r)).toEqual([
        ["batch", 4],
        ["web", 1],
      ]);
      expect(listed.filter((p) => p === share())).toHaveLength(2);
      expect(tasks(r)).toEqual([
        ["batch", 4],
        ["web", 1],
      ]);
      expect(listed.filter((p) => p === share())).toHaveLength(2);
    });

    it("lists a folder again while its times are recent (a change within the kernel's timestamp granularity)", () => {
      host.v2Task(allocA, "web", 1e6);
      const { reader, listed } = counting();
      const r = new TaskCpuReader(reader, { cgroup: host.cgroup, procfs: host.procfs });
      r.read();
      r.read();
      expect(listed.filter((p) => p === share())).toHaveLength(2);
    });

    it("lists a folder with other subfolders every time", () => {
      host.v2Task(allocA, "web", 1e6);
      mkdirSync(`${share()}/not-a-task`);
      settle(share());
      const { reader, listed } = counting();
      const r = new TaskCpuReader(reader, { cgroup: host.cgroup, procfs: host.procfs });
      r.read();
      r.read();
      expect(listed.filter((p) => p === share())).toHaveLength(2);
    });
  });
});
