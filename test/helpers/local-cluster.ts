/**
 * A local cluster whose state and inventory live in a temp dir, so a test never
 * touches the repository's .hashistack/ or inventories/, and is always torn down.
 */
import { join } from "node:path";
import { createRecordingReporter } from "../../scripts/lib/cli/output.ts";
import { clusterConfigSchema } from "../../scripts/lib/config/schema.ts";
import { UserError } from "../../scripts/lib/errors.ts";
import { localProvider } from "../../scripts/lib/providers/local/provider.ts";
import type { ProviderContext } from "../../scripts/lib/providers/types.ts";
import { statePaths } from "../../scripts/lib/state/paths.ts";
import { tempDir } from "./fixtures.ts";

export interface IsolatedCluster {
  dir: string;
  context: ProviderContext;
  /** tear the cluster down, restore the environment and remove the temp dir */
  dispose(): Promise<void>;
}

export async function isolatedLocalCluster(prefix: string, config: Record<string, unknown>): Promise<IsolatedCluster> {
  const dir = await tempDir(prefix);
  process.env.HASHISTACK_STATE_DIR = join(dir.path, "state");
  process.env.HASHISTACK_INVENTORY_DIR = join(dir.path, "inventories");
  const parsed = clusterConfigSchema.parse(config);
  const context: ProviderContext = { config: parsed, state: statePaths(parsed.name), reporter: createRecordingReporter() };
  return {
    dir: dir.path,
    context,
    async dispose() {
      try {
        await localProvider.down(context, { dryRun: false, keepState: false });
      } finally {
        delete process.env.HASHISTACK_STATE_DIR;
        delete process.env.HASHISTACK_INVENTORY_DIR;
        await dir.remove();
      }
    },
  };
}

/**
 * Await a pipeline run; a failure keeps the error's details (problem lists, log
 * tails) in the message, which is all a test report shows.
 */
export async function withDetails<T>(run: Promise<T>): Promise<T> {
  try {
    return await run;
  } catch (error) {
    if (error instanceof UserError && error.details.length) {
      throw new Error(`${error.message}\n${error.details.join("\n")}`, { cause: error });
    }
    throw error;
  }
}
