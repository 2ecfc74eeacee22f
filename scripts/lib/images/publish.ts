/**
 * Build (or find cached) the docker profile's images and push every one to a
 * short-lived writable registry over the cluster's registry storage; serving
 * them is separate (registry-server.ts) so the benchmark can time this alone.
 */
import type { PlatformJobName } from "../platform/jobs.ts";
import type { StatePaths } from "../state/paths.ts";
import { buildPlatformImages } from "./build.ts";
import { hasImage, pushImage } from "./push.ts";
import { withPushRegistry } from "./registry-server.ts";

export interface ImagePublishResult {
  references: Partial<Record<PlatformJobName, string>>;
  layersBuilt: number;
  pushed: string[];
  uploadedBytes: number;
  buildSeconds: number;
  pushSeconds: number;
}

export async function buildAndPush(
  state: Pick<StatePaths, "root">,
  log: (line: string) => void,
  options: { cacheDir?: string } = {},
): Promise<ImagePublishResult> {
  const started = Date.now();
  const build = await buildPlatformImages(log, options);
  const buildSeconds = (Date.now() - started) / 1000;
  const pushStarted = Date.now();
  const images = Object.entries(build.images);
  const pushed: string[] = [];
  let uploadedBytes = 0;
  await withPushRegistry(state, log, async (base) => {
    const repositories: string[] = [];
    for (const [, image] of images) {
      if (await hasImage(base, image)) {
        repositories.push(image.repository);
        continue;
      }
      const result = await pushImage(base, image, repositories);
      repositories.push(image.repository);
      pushed.push(result.reference);
      uploadedBytes += result.uploadedBytes;
    }
  });
  const references: Partial<Record<PlatformJobName, string>> = {};
  for (const [job, image] of images) references[job as PlatformJobName] = `${image.repository}:${image.tag}`;
  return {
    references,
    layersBuilt: build.layersBuilt,
    pushed,
    uploadedBytes,
    buildSeconds,
    pushSeconds: (Date.now() - pushStarted) / 1000,
  };
}
