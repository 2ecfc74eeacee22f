/**
 * images: with jobs.registry.build, the docker profile's images are built here
 * (scripts/lib/images/build.ts), pushed to a writable registry on 127.0.0.1 and
 * served read-only to the nodes at jobs.registry.address. Which image each job
 * got is kept in the state (images.json) for the platform stage. Without
 * build there is nothing to do: the official images, or a mirror the operator fills.
 */
import { runtimeProfile } from "../config/schema.ts";
import { buildAndPush } from "../images/publish.ts";
import { ensureServing } from "../images/registry-server.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { builtImagesFile } from "../images/state.ts";
import type { ClusterRun } from "./run-context.ts";
import type { Stage } from "./stage.ts";

export const imagesStage: Stage = {
  name: "images",
  description: "with jobs.registry.build: build the docker profile's images and serve them from a read-only registry",
  run: publishImages,
};

async function publishImages(run: ClusterRun): Promise<string> {
  const { config } = run;
  if (runtimeProfile(config) !== "docker") return "exec profile: no images";
  const registry = config.jobs.registry;
  if (!registry) return "official images";
  if (!registry.build) return `images from the mirror ${registry.address}`;
  const log = (line: string) => run.reporter.debug(line);
  const serving = await ensureServing(run.state, registry.address, log);
  const result = await buildAndPush(run.state, log);
  await writeFileAtomic(builtImagesFile(run.state), `${JSON.stringify(result.references, null, 2)}\n`, 0o600);
  const parts = [
    result.layersBuilt ? `${result.layersBuilt} layers built in ${result.buildSeconds.toFixed(1)} s` : "layers cached",
    result.pushed.length
      ? `${result.pushed.length} images pushed (${Math.round(result.uploadedBytes / 1e6)} MB, ${result.pushSeconds.toFixed(1)} s)`
      : "images up to date",
    serving === "started" ? `registry started at ${registry.address} (read-only)` : `registry at ${registry.address}`,
  ];
  return parts.join("; ");
}
