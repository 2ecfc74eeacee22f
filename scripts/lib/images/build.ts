/**
 * The docker profile's images built here from what is already cached, without
 * a Docker daemon and without the internet: one base layer from the local node
 * image (Debian bookworm with nodejs installed from its .deb by debootstrap),
 * plus one small layer each for the Go builds (Fabio, Prometheus 3, Alertmanager)
 * and the exporter bundle. The same binaries the exec profile runs, so both
 * profiles run the same software. Grafana and GitLab Runner are not built: they
 * stay on their official images.
 */
import { createHash } from "node:crypto";
import { chmod, copyFile, mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { binaryPath, ensureBinary } from "../binaries/build.ts";
import { programVersion, tools } from "../binaries/catalog.ts";
import { buildExporterBundle } from "../build/exporter-bundle.ts";
import type { PlatformJobName } from "../platform/jobs.ts";
import { ensureImage, imageId } from "../providers/local/image.ts";
import { assembleImage, type BuiltImage, layerFromDir, ociCacheDir, sha256File } from "./oci.ts";

/** what the base layer leaves out of the node image: documentation and package caches */
const baseExcludes = [
  "./usr/share/doc",
  "./usr/share/man",
  "./usr/share/info",
  "./usr/share/locale",
  "./var/cache/apt",
  "./var/cache/debconf",
  "./var/lib/apt/lists",
  "./var/log",
];
const baseLayerVersion = 1;

export type BuiltJobImages = Partial<Record<PlatformJobName, BuiltImage>>;

export interface ImageBuild {
  images: BuiltJobImages;
  /** layers written this time (0 when everything came from the cache) */
  layersBuilt: number;
}

/** Package versions from a dpkg status file. */
export function dpkgVersions(status: string): Map<string, string> {
  const versions = new Map<string, string>();
  for (const stanza of status.split(/\n\n+/)) {
    const name = /^Package: (\S+)$/m.exec(stanza)?.[1];
    const version = /^Version: (\S+)$/m.exec(stanza)?.[1];
    if (name && version && /^Status: install ok installed$/m.test(stanza)) versions.set(name, version);
  }
  return versions;
}

/** A one-file layer: `file` at `destination` (owned by root, mtime 0), cached by the file's digest. */
async function fileLayer(name: string, file: string, destination: string, mode: number, cacheDir: string) {
  const digest = (await sha256File(file)).slice(0, 16);
  const stage = join(cacheDir, `stage-${name}-${digest}-${process.pid}`);
  await rm(stage, { recursive: true, force: true });
  try {
    await mkdir(join(stage, destination, ".."), { recursive: true });
    await copyFile(file, join(stage, destination));
    await chmod(join(stage, destination), mode);
    return await layerFromDir(`${name}-${digest}`, stage, { normalizeOwner: true, cacheDir });
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

/** A cached Go build (built now if missing) as a one-file layer. */
async function toolLayer(
  name: "fabio" | "prometheus" | "alertmanager",
  destination: string,
  log: (line: string) => void,
  cacheDir: string,
) {
  await ensureBinary(tools[name], { log });
  return fileLayer(name, binaryPath(tools[name]), destination, 0o755, cacheDir);
}

/** `cacheDir`: where layers are cached (default ~/.cache/hashistack/oci; the benchmark's cold build uses an empty one) */
export async function buildPlatformImages(log: (line: string) => void, options: { cacheDir?: string } = {}): Promise<ImageBuild> {
  const cacheDir = options.cacheDir ?? ociCacheDir();
  const node = await ensureImage(log);
  const versions = dpkgVersions(await readFile(join(node.root, "var", "lib", "dpkg", "status"), "utf8"));
  const key = createHash("sha256")
    .update(JSON.stringify({ image: imageId(), baseExcludes, baseLayerVersion }))
    .digest("hex")
    .slice(0, 16);
  log("base layer from the node image (once: a few hundred MB of tar)");
  const base = await layerFromDir(`base-${key}`, node.root, { exclude: baseExcludes, cacheDir });
  const fabio = await toolLayer("fabio", "usr/bin/fabio", log, cacheDir);
  // /usr/local/bin: the path the exec profile installs them at, apart from Debian's older packages in the base
  const prometheus = await toolLayer("prometheus", "usr/local/bin/prometheus", log, cacheDir);
  const alertmanager = await toolLayer("alertmanager", "usr/local/bin/alertmanager", log, cacheDir);
  const bundle = await buildExporterBundle();
  const exporter = await fileLayer("energy-exporter", bundle.file, "app/energy-exporter.mjs", 0o644, cacheDir);
  const layersBuilt = [base, fabio, prometheus, alertmanager, exporter].filter((l) => l.built).length;
  const labels = { "org.opencontainers.image.source": "hashistack-bootstrap (built from the node image)" };
  const nobody = "65534:65534";
  const images: BuiltJobImages = {
    prometheus: assembleImage({
      repository: "hashistack/prometheus",
      version: programVersion(tools.prometheus),
      layers: [base.blob, prometheus.blob],
      entrypoint: ["/usr/local/bin/prometheus"],
      user: nobody,
      labels,
    }),
    alertmanager: assembleImage({
      repository: "hashistack/alertmanager",
      version: programVersion(tools.alertmanager),
      layers: [base.blob, alertmanager.blob],
      entrypoint: ["/usr/local/bin/alertmanager"],
      user: nobody,
      labels,
    }),
    fabio: assembleImage({
      repository: "hashistack/fabio",
      version: tools.fabio.version,
      layers: [base.blob, fabio.blob],
      entrypoint: ["/usr/bin/fabio"],
      user: nobody,
      labels,
    }),
    // root: the exporter reads energy_uj, which is root-only
    "energy-exporter": assembleImage({
      repository: "hashistack/energy-exporter",
      version: `0.1.0-node${versions.get("nodejs") ?? ""}`,
      layers: [base.blob, exporter.blob],
      entrypoint: ["/usr/bin/node", "/app/energy-exporter.mjs"],
      user: "0:0",
      labels,
    }),
  };
  return { images, layersBuilt };
}
