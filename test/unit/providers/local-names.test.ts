import { mkdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { identityFile, localIdentity, localNames } from "../../../scripts/lib/providers/local/names.ts";
import { statePaths } from "../../../scripts/lib/state/paths.ts";
import { scratchDirs } from "../../helpers/fixtures.ts";

const scratch = scratchDirs();
afterAll(() => scratch.removeAll());

const hostSideNames = (names: ReturnType<typeof localNames>, node: string) => [
  names.bridge,
  names.netns(node),
  names.hostVeth(node),
  names.peerVeth(node),
  names.machine(node),
];

describe("local resource names", () => {
  it("two state dirs with a cluster of the same name share no host-side name, and interfaces fit Linux's 15 characters", () => {
    const mine = localNames("unit-same-name", "0a1b2c3d");
    const theirs = localNames("unit-same-name", "ffee0011");
    for (const node of ["server-1", "client-12"]) {
      const a = hostSideNames(mine, node);
      const b = hostSideNames(theirs, node);
      for (const name of a) expect(b).not.toContain(name);
      for (const iface of [mine.bridge, mine.hostVeth(node), mine.peerVeth(node)]) expect(iface.length).toBeLessThanOrEqual(15);
    }
  });

  it("a cluster made before ids keeps exactly the names it was made with", () => {
    const legacy = localNames("unit-old", "legacy");
    expect(legacy.netns("server-1")).toBe("hs-unit-old-server-1");
    expect(legacy.machine("server-1")).toBe("unit-old-server-1");
    expect(legacy.bridge).toMatch(/^hs-[0-9a-f]{8}$/);
    expect(legacy.hostVeth("server-1")).toMatch(/^hv[0-9a-f]{8}$/);
    expect(hostSideNames(legacy, "server-1")).not.toContain(localNames("unit-old", "0a1b2c3d").bridge);
  });
});

describe("the state dir's cluster id", () => {
  it("an empty state has nothing on this machine until up creates an id (0644 in a 0700 state dir), which then stays", async () => {
    const state = statePaths("unit-fresh", join(await scratch.make("identity"), "state"));
    expect(await localIdentity(state)).toBeUndefined();
    const id = await localIdentity(state, { create: true });
    expect(id).toMatch(/^[0-9a-f]{8}$/);
    expect(await localIdentity(state)).toBe(id);
    expect(await localIdentity(state, { create: true })).toBe(id);
    expect((await readFile(identityFile(state), "utf8")).trim()).toBe(id);
    expect((await stat(state.root)).mode & 0o777).toBe(0o700);
  });

  it("a state with nodes but no id is a cluster from before ids: its legacy names are used (migration), none created", async () => {
    const state = statePaths("unit-legacy", join(await scratch.make("identity"), "state"));
    await mkdir(join(state.root, "nodes", "server-1"), { recursive: true });
    expect(await localIdentity(state)).toBe("legacy");
    expect(await localIdentity(state, { create: true })).toBe("legacy");
    await expect(stat(identityFile(state))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("two fresh state dirs get different ids", async () => {
    const base = await scratch.make("identity");
    const a = await localIdentity(statePaths("unit-twin", join(base, "a")), { create: true });
    const b = await localIdentity(statePaths("unit-twin", join(base, "b")), { create: true });
    expect(a).not.toBe(b);
  });
});
