/** A small typed Vault HTTP API client. Vault has no blocking queries; waits poll health. */
import { setTimeout as sleep } from "node:timers/promises";
import { OperationError } from "../errors.ts";
import { ApiError, type ClientOptions, HttpApi } from "./http.ts";

export interface VaultSealStatus {
  type: string;
  initialized: boolean;
  sealed: boolean;
  t: number;
  n: number;
  progress: number;
  version: string;
}

export interface VaultInitResponse {
  keys: string[];
  keys_base64: string[];
  root_token: string;
}

export interface VaultHealth {
  initialized: boolean;
  sealed: boolean;
  standby: boolean;
  version: string;
}

export interface VaultIssuedCertificate {
  certificate: string;
  issuing_ca: string;
  ca_chain?: string[];
  private_key: string;
  serial_number: string;
  expiration: number;
}

export class VaultClient {
  readonly api: HttpApi;

  constructor(options: ClientOptions) {
    this.api = new HttpApi("vault", options, "X-Vault-Token");
  }

  withToken(token: string): VaultClient {
    return new VaultClient({ ...this.api.options, token });
  }

  /** sys/health answers every state with a status code; ask for 200 in all of them. */
  health(): Promise<VaultHealth> {
    return this.api.get<VaultHealth>("/v1/sys/health", {
      uninitcode: 200,
      sealedcode: 200,
      standbycode: 200,
      perfstandbyok: true,
    });
  }

  sealStatus(): Promise<VaultSealStatus> {
    return this.api.get<VaultSealStatus>("/v1/sys/seal-status");
  }

  /** pgpKeys: one base64 binary OpenPGP public key per share; the shares (and the root token) come back encrypted */
  init(options: {
    secretShares: number;
    secretThreshold: number;
    pgpKeys?: string[];
    rootTokenPgpKey?: string;
  }): Promise<VaultInitResponse> {
    return this.api.put<VaultInitResponse>("/v1/sys/init", {
      secret_shares: options.secretShares,
      secret_threshold: options.secretThreshold,
      pgp_keys: options.pgpKeys,
      root_token_pgp_key: options.rootTokenPgpKey,
    });
  }

  unseal(key: string): Promise<VaultSealStatus> {
    return this.api.put<VaultSealStatus>("/v1/sys/unseal", { key });
  }

  async mounts(): Promise<Record<string, { type: string }>> {
    const response = await this.api.get<{ data: Record<string, { type: string }> }>("/v1/sys/mounts");
    return response.data;
  }

  /** Enable a secrets engine unless a mount of that type already exists at the path. */
  async ensureMount(
    path: string,
    type: string,
    config: { max_lease_ttl?: string; default_lease_ttl?: string } = {},
    options?: Record<string, string>,
  ): Promise<boolean> {
    const existing = (await this.mounts())[`${path}/`];
    if (existing) {
      if (existing.type !== type) {
        throw new OperationError(`Vault already has a '${existing.type}' mount at ${path}/, expected '${type}'.`, {
          hint: "Move or disable that mount, or choose another path.",
        });
      }
      await this.api.post(`/v1/sys/mounts/${path}/tune`, config);
      return false;
    }
    await this.api.post(`/v1/sys/mounts/${path}`, { type, config, options });
    return true;
  }

  /** Enable an auth method unless one is mounted at the path; returns its accessor. */
  async ensureAuth(path: string, type: string): Promise<{ accessor: string; created: boolean }> {
    const list = async () =>
      (await this.api.get<{ data: Record<string, { type: string; accessor: string }> }>("/v1/sys/auth")).data;
    const existing = (await list())[`${path}/`];
    if (existing) {
      if (existing.type !== type) {
        throw new OperationError(`Vault already has a '${existing.type}' auth method at ${path}/, expected '${type}'.`, {
          hint: "Disable or move that auth method, or choose another path.",
        });
      }
      return { accessor: existing.accessor, created: false };
    }
    await this.api.post(`/v1/sys/auth/${path}`, { type });
    return { accessor: (await list())[`${path}/`]?.accessor ?? "", created: true };
  }

  read<T>(path: string): Promise<{ data: T }> {
    return this.api.get<{ data: T }>(`/v1/${path}`);
  }

  write<T>(path: string, body: unknown): Promise<{ data: T } | undefined> {
    return this.api.post<{ data: T } | undefined>(`/v1/${path}`, body);
  }

  async putPolicy(name: string, policy: string): Promise<void> {
    await this.api.put(`/v1/sys/policies/acl/${encodeURIComponent(name)}`, { policy });
  }

  async issueCertificate(
    issuePath: string,
    request: { common_name: string; alt_names?: string; ip_sans?: string; ttl?: string },
  ): Promise<VaultIssuedCertificate> {
    const response = await this.write<VaultIssuedCertificate>(issuePath, request);
    if (!response) throw new OperationError(`Vault returned no certificate for ${issuePath}.`);
    return response.data;
  }

  /** Poll health until `ready` holds (Vault has no blocking queries). */
  async waitUntil(ready: (health: VaultHealth) => boolean, options: { timeoutMs: number; what: string }): Promise<VaultHealth> {
    const deadline = Date.now() + options.timeoutMs;
    let lastError: unknown;
    for (let delay = 100; Date.now() < deadline; delay = Math.min(delay * 2, 500)) {
      try {
        const health = await this.health();
        if (ready(health)) return health;
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        lastError = error;
      }
      await sleep(delay);
    }
    throw new OperationError(`Timed out waiting for Vault to be ${options.what}.`, {
      details: lastError instanceof Error ? [lastError.message] : [],
    });
  }
}
