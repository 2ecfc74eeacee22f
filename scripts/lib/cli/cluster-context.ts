import { type ProviderType } from "../config/schema.ts";
import { loadClusterConfig } from "../config/load.ts";
import { InputError } from "../errors.ts";
import type { Reporter } from "./output.ts";
import { statePaths } from "../state/paths.ts";
import type { ProviderContext } from "../providers/types.ts";

const providerTypes: ProviderType[] = ["local", "vagrant", "digitalocean", "static"];

/** Config + state + reporter for a cluster command, with `--provider` overriding the config. */
export async function clusterContext(
  flags: { config?: string; cluster?: string; provider?: string; yes?: boolean },
  reporter: Reporter,
): Promise<ProviderContext> {
  const { config } = await loadClusterConfig({ file: flags.config, cluster: flags.cluster });
  if (flags.provider !== undefined) {
    if (!providerTypes.includes(flags.provider as ProviderType)) {
      throw new InputError(`--provider must be one of ${providerTypes.join(", ")}, not '${flags.provider}'.`);
    }
    config.provider.type = flags.provider as ProviderType;
  }
  return { config, state: statePaths(config.name), reporter, yes: flags.yes };
}
