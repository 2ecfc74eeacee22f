/**
 * The snapshot folder's manifest: written last by the snapshot writer, read and
 * checked (sha256 and size of every file) before a restore changes anything,
 * and the topology/version fit of a snapshot and a cluster.
 */
import { createHash } from "node:crypto";
import { readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  compareVersions,
  manifestName,
  readManifest,
  type SnapshotManifest,
  topologyProblems,
  verifySnapshotFiles,
} from "../../../scripts/lib/backup/manifest.ts";
import { SnapshotWriter } from "../../../scripts/lib/backup/snapshot.ts";
import { InputError } from "../../../scripts/lib/errors.ts";
import { scratchDirs } from "../../helpers/fixtures.ts";

const scratch = scratchDirs();
afterAll(() => scratch.removeAll());

const meta = {
  cluster: "c1",
  takenAt: "2026-12-02T13:00:00.000Z",
  topology: { servers: 1, clients: 1, vault: 1, hosts: ["server-1", "client-1"] },
  versions: { consul: "1.22.5", nomad: "1.11.3", vault: "1.21.0" },
};

async function plainSnapshot(): Promise<{ dir: string; manifest: SnapshotManifest }> {
  const dir = await scratch.make("manifest");
  const writer = new SnapshotWriter(dir, []);
  await writer.keep("consul", { host: "server-1", data: Buffer.from("consul raft") });
  await writer.keep("nomad", { host: "server-1", data: Buffer.from("nomad raft") });
  await writer.keep("vault", { host: "server-1", data: Buffer.from("vault raft") });
  await writer.keep("state", { data: Buffer.from("state archive") });
  await writer.finish(meta);
  return { dir, manifest: await readManifest(dir) };
}

describe("snapshot manifest", () => {
  it("lists every file with its size and sha256, 0600, and reads back what was written", async () => {
    const { dir, manifest } = await plainSnapshot();
    expect(manifest).toMatchObject({ format: 1, ...meta });
    expect(manifest.encryptedTo).toBeUndefined();
    expect(manifest.files.map((f) => f.name)).toEqual(["consul.snap", "nomad.snap", "vault.snap", "state.tar.gz"]);
    expect(manifest.files[0]).toMatchObject({
      part: "consul",
      bytes: 11,
      host: "server-1",
      sha256: createHash("sha256").update("consul raft").digest("hex"),
    });
    for (const name of [manifestName, ...manifest.files.map((f) => f.name)])
      expect((await stat(join(dir, name))).mode & 0o777, name).toBe(0o600);
    const parts = await verifySnapshotFiles(dir, manifest);
    expect(parts.get("vault")?.toString()).toBe("vault raft");
  });

  it("a changed byte, a truncated or a missing file: exit 2 naming each, before anything is restored", async () => {
    const { dir, manifest } = await plainSnapshot();
    await writeFile(join(dir, "nomad.snap"), "nomad rafT");
    await writeFile(join(dir, "vault.snap"), "vault");
    await rm(join(dir, "state.tar.gz"));
    const error = await verifySnapshotFiles(dir, manifest).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    const input = error as InputError;
    expect(input.exitCode).toBe(2);
    expect(input.message).toContain("3 files do not match its manifest");
    expect(input.details).toEqual([
      "nomad.snap: sha256 differs from the manifest (damaged?)",
      "vault.snap: 5 bytes, the manifest says 10",
      "state.tar.gz: cannot read it (ENOENT)",
    ]);
    expect(input.hint).toContain("Nothing was changed");
  });

  it("a folder without a manifest, with a broken one, or one missing a part is not a snapshot", async () => {
    const empty = await scratch.make("manifest-none");
    await expect(readManifest(empty)).rejects.toThrow(`${empty} is not a snapshot folder: it has no manifest.json.`);
    await writeFile(join(empty, manifestName), "{not json");
    await expect(readManifest(empty)).rejects.toThrow("is not JSON (damaged?)");
    const { dir } = await plainSnapshot();
    const parsed = JSON.parse(await readFile(join(dir, manifestName), "utf8")) as SnapshotManifest;
    await writeFile(join(dir, manifestName), JSON.stringify({ ...parsed, files: parsed.files.slice(0, 3) }));
    await expect(readManifest(dir)).rejects.toThrow("does not list exactly one file for state");
    await writeFile(join(dir, manifestName), JSON.stringify({ ...parsed, format: 2 }));
    const error = (await readManifest(dir).catch((e: unknown) => e)) as InputError;
    expect(error.message).toContain("is not a snapshot manifest this version understands");
    expect(error.details[0]).toMatch(/^format: /);
  });
});

describe("does the snapshot fit the cluster", () => {
  const target = { topology: meta.topology, versions: meta.versions };

  it("the same topology and versions, or newer ones, fit; clients and host names may differ", () => {
    expect(topologyProblems(meta, target)).toEqual([]);
    expect(
      topologyProblems(meta, {
        topology: { ...meta.topology, clients: 3, hosts: ["a", "b"] },
        versions: { consul: "1.22.6", nomad: "1.12.0", vault: "1.21.0" },
      }),
    ).toEqual([]);
  });

  it("other server or Vault node counts, or an older version, are each named", () => {
    expect(
      topologyProblems(meta, {
        topology: { servers: 3, clients: 1, vault: 3, hosts: [] },
        versions: { consul: "1.22.4", nomad: "1.11.3", vault: "1.20.9" },
      }),
    ).toEqual([
      "the snapshot is of 1 servers, the cluster has 3",
      "the snapshot is of 1 Vault nodes, the cluster has 3",
      "consul 1.22.4 on the cluster is older than 1.22.5 the snapshot was taken with (a raft snapshot only goes into the same or a newer version)",
      "vault 1.20.9 on the cluster is older than 1.21.0 the snapshot was taken with (a raft snapshot only goes into the same or a newer version)",
    ]);
  });

  it("compares versions by number", () => {
    expect(compareVersions("1.10.0", "1.9.9")).toBe(1);
    expect(compareVersions("1.9.0", "1.10.0")).toBe(-1);
    expect(compareVersions("1.21.0", "1.21.0-rc1")).toBe(0);
  });
});
