/**
 * The operator-side image registry for real: Debian's docker-registry (unpacked
 * from its .deb into the cache, as the images stage does), an image built by
 * code from a real tar layer, pushed through the short-lived writable registry
 * on 127.0.0.1 (a shared layer mounted, not sent twice; a second push finds it
 * all there), then read back from the read-only registry the nodes pull from:
 * manifest, config and layer bytes by digest, and a push to it refused.
 */
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assembleImage, type BuiltImage, layerFromDir, mediaTypes } from "../../../scripts/lib/images/oci.ts";
import { hasImage, pushImage } from "../../../scripts/lib/images/push.ts";
import {
  ensureRegistryBinary,
  ensureServing,
  servingPid,
  stopServing,
  withPushRegistry,
} from "../../../scripts/lib/images/registry-server.ts";
import { tempDir } from "../../helpers/fixtures.ts";

const served = "127.0.0.74:5000";
let dir: Awaited<ReturnType<typeof tempDir>>;
let state: { root: string };
let one: BuiltImage;
let two: BuiltImage;
const log = () => undefined;

beforeAll(async () => {
  dir = await tempDir("registry");
  state = { root: join(dir.path, "state") };
  const rootfs = join(dir.path, "rootfs");
  await mkdir(join(rootfs, "etc"), { recursive: true });
  await writeFile(join(rootfs, "etc", "hello"), "hello from a layer built by code\n");
  const layer = await layerFromDir("it-registry", rootfs, { normalizeOwner: true, cacheDir: join(dir.path, "oci") });
  const image = (repository: string, entrypoint: string[]) =>
    assembleImage({ repository, version: "1.0+ds1", layers: [layer.blob], entrypoint, user: "65534:65534" });
  one = image("hashistack/it-one", ["/bin/cat", "/etc/hello"]);
  two = image("hashistack/it-two", ["/bin/true"]);
  await ensureRegistryBinary(log);
}, 300_000);

afterAll(async () => {
  if (state) await stopServing(state);
  await dir?.remove();
});

const get = (path: string, accept?: string) =>
  fetch(`http://${served}${path}`, { headers: accept ? { accept } : {} }).then(async (r) => ({
    status: r.status,
    digest: r.headers.get("docker-content-digest"),
    bytes: Buffer.from(await r.arrayBuffer()),
  }));
const sha256 = (bytes: Buffer) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

describe("the image registry (Debian's docker-registry)", () => {
  it("takes pushes on 127.0.0.1 only while pushing, mounts a shared layer and skips what it has", async () => {
    let pushBase = "";
    await withPushRegistry(state, log, async (base) => {
      pushBase = base;
      expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(await hasImage(base, one)).toBe(false);
      const first = await pushImage(base, one);
      expect(first).toEqual({
        reference: `hashistack/it-one:${one.tag}`,
        uploadedBytes: one.layers[0]!.size + one.config.size,
        skippedBlobs: 0,
      });
      // the layer comes from it-one by a cross-repository mount; only the config is sent
      const second = await pushImage(base, two, [one.repository]);
      expect(second.skippedBlobs).toBe(1);
      expect(second.uploadedBytes).toBe(two.config.size);
      const again = await pushImage(base, one);
      expect(again).toMatchObject({ uploadedBytes: 0, skippedBlobs: 2 });
      expect(await hasImage(base, one)).toBe(true);
      expect(await hasImage(base, two)).toBe(true);
    });
    // stopped afterwards: nothing listens there any more
    await expect(fetch(`${pushBase}/v2/`)).rejects.toThrow();
  });

  it("serves the pushed images read-only on the cluster address: manifest, config and layer read back by digest", async () => {
    expect(await ensureServing(state, served, log)).toBe("started");
    expect(await ensureServing(state, served, log)).toBe("running");
    const manifest = await get(`/v2/${one.repository}/manifests/${one.tag}`, mediaTypes.manifest);
    expect(manifest.status).toBe(200);
    expect(manifest.digest).toBe(one.manifest.digest);
    expect(sha256(manifest.bytes)).toBe(one.manifest.digest);
    const parsed = JSON.parse(manifest.bytes.toString("utf8")) as {
      mediaType: string;
      config: { digest: string };
      layers: { digest: string; size: number }[];
    };
    expect(parsed.mediaType).toBe(mediaTypes.manifest);
    expect(parsed.config.digest).toBe(one.config.digest);
    expect(parsed.layers).toEqual([{ mediaType: mediaTypes.layer, digest: one.layers[0]!.digest, size: one.layers[0]!.size }]);
    const config = await get(`/v2/${one.repository}/blobs/${one.config.digest}`);
    expect(config.status).toBe(200);
    expect(JSON.parse(config.bytes.toString("utf8")).config.Entrypoint).toEqual(["/bin/cat", "/etc/hello"]);
    const layer = await get(`/v2/${two.repository}/blobs/${two.layers[0]!.digest}`);
    expect(sha256(layer.bytes)).toBe(two.layers[0]!.digest);
    expect(layer.bytes.includes(Buffer.from("hello from a layer built by code"))).toBe(true);
    const tags = JSON.parse((await get(`/v2/${one.repository}/tags/list`)).bytes.toString("utf8")) as { tags: string[] };
    expect(tags.tags).toEqual([one.tag]);
    // read-only: a tenant on the private network cannot push over a platform image
    const upload = await fetch(`http://${served}/v2/${one.repository}/blobs/uploads/`, { method: "POST" });
    expect(upload.status).toBeGreaterThanOrEqual(400);
    expect(upload.status).not.toBe(202);
  });

  it("stops the served registry by its PID file, and only once", async () => {
    const pid = await servingPid(state);
    expect(pid).toBeGreaterThan(0);
    expect(await stopServing(state)).toEqual([`image registry (pid ${pid})`]);
    expect(await stopServing(state)).toEqual([]);
    await expect(fetch(`http://${served}/v2/`)).rejects.toThrow();
  });
});
