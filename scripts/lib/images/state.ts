/** Which image each platform job got from the images stage (images.json in the state), for the platform stage. */
import { join } from "node:path";
import type { PlatformJobName } from "../platform/jobs.ts";
import type { StatePaths } from "../state/paths.ts";
import { readFileIfExists } from "../util/fs.ts";

export const builtImagesFile = (state: Pick<StatePaths, "root">) => join(state.root, "images.json");

export async function readBuiltImages(state: Pick<StatePaths, "root">): Promise<Partial<Record<PlatformJobName, string>>> {
  return JSON.parse((await readFileIfExists(builtImagesFile(state))) ?? "{}") as Partial<Record<PlatformJobName, string>>;
}
