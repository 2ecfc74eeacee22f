import { loadClusterConfig } from "../config/load.ts";
import { parseProviderType } from "../providers/registry.ts";
import type { ProviderContext } from "../providers/types.ts";
import { statePaths } from "../state/paths.ts";
import { confirm } from "./confirm.ts";
import type { Reporter } from "./output.ts";

/**
 * Config + state + reporter for a cluster command, with `--provider` overriding
 * the config; confirmations are asked on the terminal (or answered by --yes).
 */
export async function clusterContext(
  flags: { config?: string; cluster?: string; provider?: string; yes?: boolean },
  reporter: Reporter,
): Promise<ProviderContext> {
  const { config } = await loadClusterConfig({ file: flags.config, cluster: flags.cluster });
  if (flags.provider !== undefined) config.provider.type = parseProviderType(flags.provider);
  const yes = flags.yes ?? false;
  return { config, state: statePaths(config.name), reporter, yes, confirm: (question) => confirm(question, yes) };
}
