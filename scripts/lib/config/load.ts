import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { loadYamlFile } from "../util/validated-yaml.ts";
import { readVaultPgpKeys, resolvePgpKeyPaths } from "./pgp-keys.ts";
import { InputError } from "../errors.ts";
import { type ClusterConfig, clusterConfigSchema, clusterNamePattern, clusterNameRule } from "./schema.ts";

export const defaultConfigFiles = ["cluster.yaml", "cluster.example.yaml"];

export interface LoadedConfig {
  file: string;
  config: ClusterConfig;
}

/** Load and validate the cluster config; `--cluster` overrides the name in the file. */
export async function loadClusterConfig(options: { file?: string; cluster?: string; cwd?: string } = {}): Promise<LoadedConfig> {
  const cwd = options.cwd ?? process.cwd();
  const file =
    options.file !== undefined
      ? resolve(cwd, options.file)
      : (defaultConfigFiles.map((f) => resolve(cwd, f)).find((f) => existsSync(f)) ?? resolve(cwd, "cluster.yaml"));
  const config = await loadYamlFile(
    file,
    clusterConfigSchema,
    "Cluster config",
    "Copy cluster.example.yaml to cluster.yaml and edit it; every field is documented there.",
  );
  if (options.cluster !== undefined) config.name = checkClusterName(options.cluster, "--cluster");
  // key files are read and checked with gpg now; the vault stage reads them again at init
  resolvePgpKeyPaths(config, file);
  await readVaultPgpKeys(config, file);
  return { file, config };
}

/** A cluster name from outside the config file (a flag), checked like the file's `name`. */
export function checkClusterName(value: string, source: string): string {
  if (!clusterNamePattern.test(value)) {
    throw new InputError(`${source} ${JSON.stringify(value)} is not a valid cluster name.`, {
      hint: `Use ${clusterNameRule} (a DNS label), e.g. --cluster demo.`,
    });
  }
  return value;
}
