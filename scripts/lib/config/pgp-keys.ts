/**
 * The OpenPGP public keys named in `vault.unsealPgpKeys` and
 * `vault.rootTokenPgpKey`: paths are resolved against the config file's folder
 * and every file is checked with gpg when the config is loaded, so a wrong key
 * is found before anything is provisioned, not after Vault's one `init`.
 */
import { dirname, isAbsolute, resolve } from "node:path";
import { InputError } from "../errors.ts";
import { ensureGpg, PgpKeyError, type PgpPublicKey, readPgpPublicKey } from "../util/pgp.ts";
import type { ClusterConfig } from "./schema.ts";

export interface VaultPgpKeys {
  /** one per unseal key share, in share order; undefined without vault.unsealPgpKeys */
  unseal?: PgpPublicKey[];
  rootToken?: PgpPublicKey;
}

export function configuresPgp(config: Pick<ClusterConfig, "vault">): boolean {
  return config.vault.unsealPgpKeys !== undefined || config.vault.rootTokenPgpKey !== undefined;
}

/** Make the key paths absolute (relative to the config file's folder), in place. */
export function resolvePgpKeyPaths(config: ClusterConfig, configFile: string): void {
  const base = dirname(configFile);
  if (config.vault.unsealPgpKeys) config.vault.unsealPgpKeys = config.vault.unsealPgpKeys.map((p) => resolve(base, p));
  if (config.vault.rootTokenPgpKey) config.vault.rootTokenPgpKey = resolve(base, config.vault.rootTokenPgpKey);
}

/**
 * Read and check every configured key file (absolute paths); all problems are
 * reported at once, each naming the config file (or, from a stage that has
 * only the parsed config, "cluster config") and the field.
 */
export async function readVaultPgpKeys(
  config: Pick<ClusterConfig, "vault">,
  configFile: string,
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<VaultPgpKeys> {
  if (!configuresPgp(config)) return {};
  await ensureGpg(log);
  const problems: string[] = [];
  const read = async (field: string, file: string): Promise<PgpPublicKey | undefined> => {
    try {
      return await readPgpPublicKey(file);
    } catch (error) {
      if (!(error instanceof PgpKeyError)) throw error;
      problems.push(`${configFile} ${field}: ${error.message}`);
      return undefined;
    }
  };
  const unseal: (PgpPublicKey | undefined)[] = [];
  for (const [index, file] of (config.vault.unsealPgpKeys ?? []).entries()) {
    unseal.push(await read(`vault.unsealPgpKeys[${index}]`, file));
  }
  const rootToken = config.vault.rootTokenPgpKey ? await read("vault.rootTokenPgpKey", config.vault.rootTokenPgpKey) : undefined;
  if (problems.length > 0) {
    throw new InputError(
      `${isAbsolute(configFile) ? `Cluster config ${configFile}` : `The ${configFile}`} has ${problems.length} problem${problems.length === 1 ? "" : "s"} with OpenPGP keys.`,
      {
        details: problems,
        hint: "Each path (relative to the config file) must be one OpenPGP public key that can encrypt, ASCII-armored or binary: 'gpg --export --armor <fingerprint> > ops-1.asc'.",
      },
    );
  }
  return {
    unseal: config.vault.unsealPgpKeys ? (unseal as PgpPublicKey[]) : undefined,
    rootToken,
  };
}
