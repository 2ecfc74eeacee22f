/** A small typed Consul HTTP API client: what the bootstrap stages use. */
import { ApiError, type ClientOptions, HttpApi } from "./http.ts";

export interface ConsulMember {
  Name: string;
  Addr: string;
  Status: number; // 1 alive, 2 leaving, 3 left, 4 failed
  Tags: Record<string, string>;
}

export interface ConsulAclToken {
  AccessorID: string;
  SecretID: string;
  Description: string;
  Policies?: { ID: string; Name: string }[];
  Local?: boolean;
}

export interface ConsulAclPolicy {
  ID: string;
  Name: string;
  Rules: string;
  Description?: string;
}

export interface ConsulHealthCheck {
  Node: string;
  CheckID: string;
  Name: string;
  Status: "passing" | "warning" | "critical";
  ServiceName: string;
}

export const memberStatus = { 1: "alive", 2: "leaving", 3: "left", 4: "failed" } as Record<number, string>;

export class ConsulClient {
  readonly api: HttpApi;

  constructor(options: ClientOptions) {
    this.api = new HttpApi("consul", options, "X-Consul-Token");
  }

  leader(): Promise<string> {
    return this.api.get<string>("/v1/status/leader");
  }

  peers(): Promise<string[]> {
    return this.api.get<string[]>("/v1/status/peers");
  }

  members(): Promise<ConsulMember[]> {
    return this.api.get<ConsulMember[]>("/v1/agent/members");
  }

  /**
   * Bootstrap ACLs with a secret we generated, so a re-run knows the token
   * without having kept the response. Returns false when ACLs were already
   * bootstrapped (then the caller checks that its secret still works).
   */
  async bootstrapAcl(secretId: string): Promise<boolean> {
    try {
      await this.api.put<ConsulAclToken>("/v1/acl/bootstrap", { BootstrapSecret: secretId });
      return true;
    } catch (error) {
      if (error instanceof ApiError && error.status === 403 && /bootstrap no longer allowed/i.test(error.apiMessage))
        return false;
      throw error;
    }
  }

  selfToken(): Promise<ConsulAclToken> {
    return this.api.get<ConsulAclToken>("/v1/acl/token/self");
  }

  async policyByName(name: string): Promise<ConsulAclPolicy | undefined> {
    try {
      return await this.api.get<ConsulAclPolicy>(`/v1/acl/policy/name/${encodeURIComponent(name)}`);
    } catch (error) {
      if (error instanceof ApiError && (error.status === 404 || /not found/i.test(error.apiMessage))) return undefined;
      throw error;
    }
  }

  /** Create or update a policy by name; returns whether anything changed. */
  async upsertPolicy(policy: Omit<ConsulAclPolicy, "ID">): Promise<{ policy: ConsulAclPolicy; changed: boolean }> {
    const existing = await this.policyByName(policy.Name);
    if (!existing) return { policy: await this.api.put<ConsulAclPolicy>("/v1/acl/policy", policy), changed: true };
    if (existing.Rules === policy.Rules && (existing.Description ?? "") === (policy.Description ?? "")) {
      return { policy: existing, changed: false };
    }
    return {
      policy: await this.api.put<ConsulAclPolicy>(`/v1/acl/policy/${existing.ID}`, { ...policy, ID: existing.ID }),
      changed: true,
    };
  }

  async tokenBySecret(secretId: string): Promise<ConsulAclToken | undefined> {
    const client = new ConsulClient({ ...this.api.options, token: secretId });
    try {
      return await client.selfToken();
    } catch (error) {
      if (error instanceof ApiError && (error.status === 403 || error.status === 404)) return undefined;
      throw error;
    }
  }

  /** Create a token with a SecretID we chose (idempotent: an existing token is left alone). */
  async ensureToken(token: {
    SecretID: string;
    Description: string;
    Policies?: { Name: string }[];
    NodeIdentities?: { NodeName: string; Datacenter: string }[];
  }): Promise<{ token: ConsulAclToken; created: boolean }> {
    const existing = await this.tokenBySecret(token.SecretID);
    if (existing) return { token: existing, created: false };
    return { token: await this.api.put<ConsulAclToken>("/v1/acl/token", token), created: true };
  }

  healthChecks(service: string, params: Record<string, unknown> = {}): Promise<ConsulHealthCheck[]> {
    return this.api.get<ConsulHealthCheck[]>(`/v1/health/checks/${encodeURIComponent(service)}`, params);
  }

  services(): Promise<Record<string, string[]>> {
    return this.api.get<Record<string, string[]>>("/v1/catalog/services");
  }

  /** Wait (blocking query) until a leader is elected. */
  waitForLeader(timeoutMs = 60_000): Promise<string> {
    return this.api.waitFor<string, string>("/v1/status/leader", (leader) => (leader ? leader : undefined), {
      timeoutMs,
      what: "a Consul leader",
    });
  }
}
