/** A small typed Consul HTTP API client: what the bootstrap stages use. */
import { ApiError, type ClientOptions, HttpApi, isNotFound, unlessMissing } from "./http.ts";

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

export interface ConsulAuthMethod {
  Name: string;
  Type: string;
  DisplayName?: string;
  Description?: string;
  Config: Record<string, unknown>;
}

export interface ConsulBindingRule {
  Description: string;
  BindType: "service" | "role" | "node" | "policy";
  BindName: string;
  Selector: string;
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(typeof value === "string" ? value.trim() : value);
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

  policyByName(name: string): Promise<ConsulAclPolicy | undefined> {
    return unlessMissing(
      this.api.get<ConsulAclPolicy>(`/v1/acl/policy/name/${encodeURIComponent(name)}`),
      (e) => isNotFound(e) || /not found/i.test(e.apiMessage),
    );
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
    return unlessMissing(client.selfToken(), (e) => e.status === 403 || isNotFound(e));
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

  authMethod(name: string): Promise<ConsulAuthMethod | undefined> {
    return unlessMissing(this.api.get<ConsulAuthMethod>(`/v1/acl/auth-method/${encodeURIComponent(name)}`));
  }

  /** Create or update an auth method; returns whether anything changed. */
  async upsertAuthMethod(method: ConsulAuthMethod): Promise<boolean> {
    const existing = await this.authMethod(method.Name);
    // Consul echoes the config with its own key order and extra defaults: compare what we set
    const same =
      existing?.Type === method.Type &&
      Object.entries(method.Config).every(([key, value]) => stableJson(existing.Config?.[key]) === stableJson(value));
    if (same) return false;
    if (existing) await this.api.put(`/v1/acl/auth-method/${encodeURIComponent(method.Name)}`, method);
    else await this.api.put("/v1/acl/auth-method", method);
    return true;
  }

  /** Make the binding rules of an auth method exactly these (matched by description). */
  async syncBindingRules(authMethod: string, rules: ConsulBindingRule[]): Promise<boolean> {
    const existing = await this.api.get<(ConsulBindingRule & { ID: string })[]>("/v1/acl/binding-rules", {
      authmethod: authMethod,
    });
    let changed = false;
    for (const rule of rules) {
      const current = existing.find((r) => r.Description === rule.Description);
      const same =
        current && current.BindType === rule.BindType && current.BindName === rule.BindName && current.Selector === rule.Selector;
      if (same) continue;
      if (current) await this.api.put(`/v1/acl/binding-rule/${current.ID}`, { ...rule, AuthMethod: authMethod });
      else await this.api.put("/v1/acl/binding-rule", { ...rule, AuthMethod: authMethod });
      changed = true;
    }
    return changed;
  }

  /** Create a role with these policies unless a role of that name exists. */
  async ensureRole(name: string, description: string, policies: string[]): Promise<boolean> {
    if (await unlessMissing(this.api.get<unknown>(`/v1/acl/role/name/${encodeURIComponent(name)}`))) return false;
    await this.api.put("/v1/acl/role", { Name: name, Description: description, Policies: policies.map((Name) => ({ Name })) });
    return true;
  }

  /** Wait (blocking query) until a leader is elected. */
  waitForLeader(timeoutMs = 60_000): Promise<string> {
    return this.api.waitFor<string, string>("/v1/status/leader", (leader) => (leader ? leader : undefined), {
      timeoutMs,
      what: "a Consul leader",
    });
  }
}
