/**
 * OCI images written by code, without a Docker daemon: each layer is a plain
 * (uncompressed) tar made by GNU tar with sorted names, so the same input gives
 * the same bytes and the same digest; the config and manifest are JSON with a
 * fixed key order. Layers are cached by their input's key under
 * ~/.cache/hashistack/oci/ (or a given folder: the benchmark's cold build), so
 * a second build hashes nothing and reuses.
 */
import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { $ } from "zx";
import { cacheRoot } from "../binaries/build.ts";
import { withLock } from "../binaries/lock.ts";
import { OperationError } from "../errors.ts";

export const mediaTypes = {
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar",
} as const;

export interface Blob {
  digest: string;
  size: number;
  /** a file for layers; the bytes themselves for config and manifest */
  path?: string;
  bytes?: Buffer;
}

export interface ImageSpec {
  /** repository inside the registry, e.g. hashistack/prometheus */
  repository: string;
  /** the upstream version the tag starts with */
  version: string;
  layers: Blob[];
  entrypoint: string[];
  user: string;
  workingDir?: string;
  labels?: Record<string, string>;
}

export interface BuiltImage {
  repository: string;
  tag: string;
  layers: Blob[];
  config: Blob;
  manifest: Blob;
}

export function ociCacheDir(): string {
  return join(cacheRoot(), "oci");
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

export function bytesBlob(bytes: Buffer): Blob {
  return { digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}`, size: bytes.length, bytes };
}

/**
 * A layer from a folder, cached under `key` (which must change whenever the
 * folder's content does). `exclude` patterns are GNU tar's.
 */
export async function layerFromDir(
  key: string,
  dir: string,
  options: { exclude?: string[]; normalizeOwner?: boolean; cacheDir?: string } = {},
) {
  const dirOut = options.cacheDir ?? ociCacheDir();
  const file = join(dirOut, `${key}.tar`);
  const digestFile = `${file}.sha256`;
  const cached = async (): Promise<Blob | undefined> => {
    if (!existsSync(digestFile) || !existsSync(file)) return undefined;
    return { digest: `sha256:${(await readFile(digestFile, "utf8")).trim()}`, size: (await stat(file)).size, path: file };
  };
  const hit = await cached();
  if (hit) return { blob: hit, built: false };
  return withLock(join(cacheRoot(), "locks", `oci-${key}`), async () => {
    const again = await cached();
    if (again) return { blob: again, built: false };
    await mkdir(dirOut, { recursive: true });
    const partial = `${file}.partial-${process.pid}`;
    const owner = options.normalizeOwner ? ["--owner=0", "--group=0", "--mtime=@0"] : [];
    const result = await $({
      quiet: true,
      nothrow: true,
    })`tar --create --file=${partial} --directory=${dir} --sort=name --format=gnu --numeric-owner ${owner} ${(options.exclude ?? []).map((e) => `--exclude=${e}`)} .`;
    if (result.exitCode !== 0) {
      await rm(partial, { force: true });
      throw new OperationError(`tar could not write the image layer ${key}.`, {
        details: result.stderr.trim().split("\n").slice(-5),
      });
    }
    const digest = await sha256File(partial);
    await rename(partial, file);
    await writeFile(digestFile, `${digest}\n`);
    return { blob: { digest: `sha256:${digest}`, size: (await stat(file)).size, path: file }, built: true };
  });
}

/** The image config, manifest and a tag derived from the manifest: same content, same tag. */
export function assembleImage(spec: ImageSpec): BuiltImage {
  const config = bytesBlob(
    Buffer.from(
      JSON.stringify({
        architecture: "amd64",
        os: "linux",
        config: {
          User: spec.user,
          Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
          Entrypoint: spec.entrypoint,
          WorkingDir: spec.workingDir ?? "/",
          Labels: spec.labels ?? {},
        },
        rootfs: { type: "layers", diff_ids: spec.layers.map((l) => l.digest) },
      }),
    ),
  );
  const manifest = bytesBlob(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: mediaTypes.manifest,
        config: { mediaType: mediaTypes.config, digest: config.digest, size: config.size },
        layers: spec.layers.map((l) => ({ mediaType: mediaTypes.layer, digest: l.digest, size: l.size })),
      }),
    ),
  );
  return {
    repository: spec.repository,
    tag: imageTag(spec.version, manifest.digest),
    layers: spec.layers,
    config,
    manifest,
  };
}

/** A tag is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}: Debian's '+' and '~' become '_'. */
export function imageTag(version: string, manifestDigest: string): string {
  const clean = version.replace(/[^A-Za-z0-9_.-]/g, "_").replace(/^[.-]+/, "");
  return `${clean}-${manifestDigest.replace(/^sha256:/, "").slice(0, 12)}`.slice(0, 128);
}
