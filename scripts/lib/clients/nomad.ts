/** A small typed Nomad HTTP API client. */
import { ApiError, type ClientOptions, HttpApi } from "./http.ts";

export interface NomadAclToken {
  AccessorID: string;
  SecretID: string;
  Name: string;
  Type: "client" | "management";
  Policies: string[] | null;
}

export interface NomadNamespace {
  Name: string;
  Description: string;
  ModifyIndex?: number;
}

export interface NomadNodeStub {
  ID: string;
  Name: string;
  Status: "initializing" | "ready" | "down" | "disconnected";
  SchedulingEligibility: string;
  Address: string;
  Drain: boolean;
}

export interface NomadAgentSelf {
  config: { Region: string; Datacenter: string; NodeName: string; Server?: { Enabled: boolean } };
  member: { Name: string; Addr: string; Status: string };
}

export class NomadClient {
  readonly api: HttpApi;

  constructor(options: ClientOptions) {
    this.api = new HttpApi("nomad", options, "X-Nomad-Token");
  }

  leader(): Promise<string> {
    return this.api.get<string>("/v1/status/leader");
  }

  peers(): Promise<string[]> {
    return this.api.get<string[]>("/v1/status/peers");
  }

  agentSelf(): Promise<NomadAgentSelf> {
    return this.api.get<NomadAgentSelf>("/v1/agent/self");
  }

  nodes(): Promise<NomadNodeStub[]> {
    return this.api.get<NomadNodeStub[]>("/v1/nodes");
  }

  /**
   * Bootstrap ACLs with our own secret (Nomad ≥1.4 accepts BootstrapSecret).
   * Returns false when ACLs were already bootstrapped.
   */
  async bootstrapAcl(secretId: string): Promise<boolean> {
    try {
      await this.api.post<NomadAclToken>("/v1/acl/bootstrap", { BootstrapSecret: secretId });
      return true;
    } catch (error) {
      if (
        error instanceof ApiError &&
        error.status === 400 &&
        /bootstrap already done|ACL bootstrap already done/i.test(error.apiMessage)
      ) {
        return false;
      }
      throw error;
    }
  }

  selfToken(): Promise<NomadAclToken> {
    return this.api.get<NomadAclToken>("/v1/acl/token/self");
  }

  namespaces(): Promise<NomadNamespace[]> {
    return this.api.get<NomadNamespace[]>("/v1/namespaces");
  }

  /** Create or update a namespace; returns whether anything changed. */
  async upsertNamespace(namespace: NomadNamespace): Promise<boolean> {
    const existing = (await this.namespaces()).find((n) => n.Name === namespace.Name);
    if (existing && existing.Description === namespace.Description) return false;
    await this.api.post(`/v1/namespace/${encodeURIComponent(namespace.Name)}`, namespace);
    return true;
  }

  async upsertPolicy(name: string, description: string, rules: string): Promise<boolean> {
    try {
      const existing = await this.api.get<{ Rules: string; Description: string }>(`/v1/acl/policy/${encodeURIComponent(name)}`);
      if (existing.Rules === rules && existing.Description === description) return false;
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error;
    }
    await this.api.post(`/v1/acl/policy/${encodeURIComponent(name)}`, { Name: name, Description: description, Rules: rules });
    return true;
  }

  createToken(token: { Name: string; Type: "client" | "management"; Policies?: string[] }): Promise<NomadAclToken> {
    return this.api.post<NomadAclToken>("/v1/acl/token", token);
  }

  /** Wait (blocking query) until `count` nodes are ready. */
  waitForReadyNodes(count: number, timeoutMs = 120_000): Promise<NomadNodeStub[]> {
    return this.api.waitFor<NomadNodeStub[], NomadNodeStub[]>(
      "/v1/nodes",
      (nodes) => {
        const ready = nodes.filter((n) => n.Status === "ready");
        return ready.length >= count ? ready : undefined;
      },
      { timeoutMs, what: `${count} ready Nomad node(s)` },
    );
  }
}
