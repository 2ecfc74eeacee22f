/**
 * Cluster secrets generated locally, once, and kept in 0600 files under the
 * state dir. Generating them here (instead of on a node) makes every stage
 * idempotent: a re-run reads the same gossip keys and token IDs back.
 * Values never go through the reporter; callers log paths only.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { chmod, mkdir, rm, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { OperationError } from "../errors.ts";
import { readFileIfExists, writeFileAtomic } from "../util/fs.ts";
import type { StatePaths } from "./paths.ts";

export type SecretKind = "gossip-key" | "uuid";

const generators: Record<SecretKind, () => string> = {
  // Consul and Nomad both take a base64-encoded 32-byte key
  "gossip-key": () => randomBytes(32).toString("base64"),
  uuid: () => randomUUID(),
};

const validators: Record<SecretKind, (value: string) => boolean> = {
  "gossip-key": (v) => Buffer.from(v, "base64").length === 32,
  uuid: (v) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(v),
};

export class SecretStore {
  constructor(readonly paths: StatePaths) {}

  fileFor(name: string): string {
    if (!/^[a-z0-9][a-z0-9.-]*$/.test(name)) throw new Error(`invalid secret name: ${name}`);
    return resolve(this.paths.secrets, name);
  }

  async read(name: string): Promise<string | undefined> {
    const file = this.fileFor(name);
    const text = await readFileIfExists(file);
    if (text === undefined) return undefined;
    const mode = (await stat(file)).mode & 0o777;
    if (mode & 0o077) {
      throw new OperationError(`Secret file ${file} is readable by other users (mode ${mode.toString(8)}).`, {
        hint: `Run 'chmod 600 ${file}' and check who could have read it; rotate the secret if in doubt.`,
      });
    }
    return text.trim();
  }

  async write(name: string, value: string): Promise<string> {
    await this.ensureDir();
    const file = this.fileFor(name);
    await writeFileAtomic(file, `${value}\n`, 0o600);
    return file;
  }

  /** Remove a secret that is no longer valid anywhere (e.g. a revoked token). */
  async remove(name: string): Promise<void> {
    await rm(this.fileFor(name), { force: true });
  }

  /** Read a secret, generating and storing it on first use. */
  async ensure(name: string, kind: SecretKind): Promise<{ value: string; file: string; created: boolean }> {
    const existing = await this.read(name);
    const file = this.fileFor(name);
    if (existing !== undefined) {
      if (!validators[kind](existing)) {
        throw new OperationError(`Secret file ${file} does not hold a valid ${kind}.`, {
          hint: "Restore it from a backup. Deleting it makes a new secret that the running cluster will not accept.",
        });
      }
      return { value: existing, file, created: false };
    }
    const value = generators[kind]();
    await this.write(name, value);
    return { value, file, created: true };
  }

  private async ensureDir(): Promise<void> {
    await mkdir(this.paths.secrets, { recursive: true, mode: 0o700 });
    await chmod(this.paths.secrets, 0o700);
  }
}

/** Secrets the rendered configs need. Tokens from Vault arrive later, as files on the nodes. */
export interface RenderSecrets {
  consulGossipKey: string;
  nomadGossipKey: string;
  /** Consul ACL token SecretID per host, created with that ID in the consul stage */
  consulAgentTokens: Record<string, string>;
  /** Consul ACL token the Nomad agents use to register their own services */
  nomadConsulToken: string;
}

export async function ensureRenderSecrets(
  store: SecretStore,
  hostNames: string[],
): Promise<{ secrets: RenderSecrets; created: string[] }> {
  const created: string[] = [];
  const get = async (name: string, kind: SecretKind) => {
    const result = await store.ensure(name, kind);
    if (result.created) created.push(result.file);
    return result.value;
  };
  const consulAgentTokens: Record<string, string> = {};
  for (const host of hostNames) consulAgentTokens[host] = await get(`consul-agent-token.${host}`, "uuid");
  return {
    secrets: {
      consulGossipKey: await get("consul-gossip-key", "gossip-key"),
      nomadGossipKey: await get("nomad-gossip-key", "gossip-key"),
      consulAgentTokens,
      nomadConsulToken: await get("consul-nomad-agent-token", "uuid"),
    },
    created,
  };
}
