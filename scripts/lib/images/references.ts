/**
 * Which image each platform job runs in the docker profile: the pinned official
 * image (the job file's `image` default) unless jobs.registry says otherwise —
 * the same repository and tag under a mirror, or the images bootstrap built.
 */
import { parse as parseHcl } from "@cdktf/hcl2json";
import { readFile } from "node:fs/promises";
import type { ClusterConfig } from "../config/schema.ts";
import { OperationError } from "../errors.ts";
import { jobFile, type PlatformJobName } from "../platform/jobs.ts";

/** Jobs whose images this tool cannot build here; with build they keep their official image. */
export const notBuilt: PlatformJobName[] = ["grafana", "gitlab-runner"];

/** The official reference with its registry host removed, as a mirror keeps it: quay.io/prometheus/x:1 → prometheus/x:1. */
export function repositoryPath(reference: string): string {
  const [first, ...rest] = reference.split("/");
  const hasRegistry = rest.length > 0 && (first?.includes(".") || first?.includes(":") || first === "localhost");
  const path = hasRegistry ? rest.join("/") : reference;
  // Docker Hub's official images live under library/
  return path.includes("/") ? path : `library/${path}`;
}

export function mirroredReference(official: string, address: string): string {
  return `${address}/${repositoryPath(official)}`;
}

/** The `image` variable's default in a job file. */
export async function officialImage(job: PlatformJobName): Promise<string> {
  const file = jobFile(job);
  const parsed = (await parseHcl(file, await readFile(file, "utf8"))) as {
    variable?: Record<string, { default?: string }[]>;
  };
  const image = parsed.variable?.image?.[0]?.default;
  if (!image) throw new OperationError(`${file} declares no image variable with a default.`);
  return image;
}

/**
 * The `image` variable per job, only where it differs from the job's default.
 * `built`: repository:tag of the images bootstrap pushed (jobs.registry.build).
 */
export async function imageVariables(
  config: ClusterConfig,
  jobs: PlatformJobName[],
  built: Partial<Record<PlatformJobName, string>>,
): Promise<Partial<Record<PlatformJobName, string>>> {
  const registry = config.jobs.registry;
  if (!registry) return {};
  const images: Partial<Record<PlatformJobName, string>> = {};
  for (const job of jobs) {
    if (registry.build) {
      if (notBuilt.includes(job)) continue;
      const reference = built[job];
      if (!reference)
        throw new OperationError(`No image was built for ${job}.`, { hint: "Run bootstrap again: the images stage builds it." });
      images[job] = `${registry.address}/${reference}`;
    } else {
      images[job] = mirroredReference(await officialImage(job), registry.address);
    }
  }
  return images;
}
