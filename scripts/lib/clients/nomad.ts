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
  /** which task drivers jobs in the namespace may use (Nomad ≥1.3) */
  Capabilities?: { EnabledTaskDrivers?: string[] | null; DisabledTaskDrivers?: string[] | null } | null;
  ModifyIndex?: number;
}

export interface NomadVariable {
  Namespace: string;
  Path: string;
  Items: Record<string, string>;
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
    const drivers = (ns: NomadNamespace) =>
      JSON.stringify([ns.Capabilities?.EnabledTaskDrivers ?? [], ns.Capabilities?.DisabledTaskDrivers ?? []]);
    if (existing && existing.Description === namespace.Description && drivers(existing) === drivers(namespace)) return false;
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

  /** A Nomad variable, or undefined when the path holds none. */
  async variable(namespace: string, path: string): Promise<NomadVariable | undefined> {
    try {
      return await this.api.get<NomadVariable>(`/v1/var/${path}`, { namespace });
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return undefined;
      throw error;
    }
  }

  /** Write a variable unless it already holds exactly these items; returns whether it changed. */
  async upsertVariable(namespace: string, path: string, items: Record<string, string>): Promise<boolean> {
    const existing = await this.variable(namespace, path);
    if (existing && JSON.stringify(sortedEntries(existing.Items)) === JSON.stringify(sortedEntries(items))) return false;
    await this.api.put(`/v1/var/${path}`, { Namespace: namespace, Path: path, Items: items }, { namespace });
    return true;
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

function sortedEntries(items: Record<string, string>): [string, string][] {
  return Object.entries(items).sort(([a], [b]) => a.localeCompare(b));
}
