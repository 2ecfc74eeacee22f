/** A small typed Nomad HTTP API client. */
import { ApiError, type ClientOptions, HttpApi, unlessMissing } from "./http.ts";

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

export interface NomadJobListStub {
  ID: string;
  Type: string;
  Status: "pending" | "running" | "dead";
  Stop: boolean;
  JobModifyIndex?: number;
  JobSummary?: {
    Summary: Record<string, { Queued: number; Starting: number; Running: number; Failed: number; Lost: number }>;
  } | null;
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
  /** task drivers as the client fingerprints them (in the list stub since Nomad 0.9) */
  Drivers?: Record<string, { Detected: boolean; Healthy: boolean; HealthDescription: string }> | null;
}

export interface NomadNodeEvent {
  Message: string;
  Subsystem: string;
  /** RFC 3339 */
  Timestamp: string;
  Details: Record<string, string> | null;
}

export interface NomadNode extends NomadNodeStub {
  StatusDescription: string;
  Events: NomadNodeEvent[] | null;
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
    const existing = await unlessMissing(
      this.api.get<{ Rules: string; Description: string }>(`/v1/acl/policy/${encodeURIComponent(name)}`),
    );
    if (existing?.Rules === rules && existing.Description === description) return false;
    await this.api.post(`/v1/acl/policy/${encodeURIComponent(name)}`, { Name: name, Description: description, Rules: rules });
    return true;
  }

  createToken(token: { Name: string; Type: "client" | "management"; Policies?: string[] }): Promise<NomadAclToken> {
    return this.api.post<NomadAclToken>("/v1/acl/token", token);
  }

  /** Revoke a token by its accessor; true when it existed. */
  async deleteToken(accessorId: string): Promise<boolean> {
    return this.deleteIfExists(`/v1/acl/token/${encodeURIComponent(accessorId)}`);
  }

  /** Delete an ACL policy; true when it existed. */
  async deletePolicy(name: string): Promise<boolean> {
    return this.deleteIfExists(`/v1/acl/policy/${encodeURIComponent(name)}`);
  }

  /** Nomad answers a DELETE of something absent with 200, so look first: re-runs must report no change. */
  private async deleteIfExists(path: string): Promise<boolean> {
    if ((await unlessMissing(this.api.get<object>(path))) === undefined) return false;
    await this.api.delete(path);
    return true;
  }

  /** Jobs of a namespace with their per-group allocation counts. */
  jobs(namespace: string): Promise<NomadJobListStub[]> {
    return this.api.get<NomadJobListStub[]>("/v1/jobs", { namespace });
  }

  /** A Nomad variable, or undefined when the path holds none. */
  variable(namespace: string, path: string): Promise<NomadVariable | undefined> {
    return unlessMissing(this.api.get<NomadVariable>(`/v1/var/${path}`, { namespace }));
  }

  /** Every variable's path and modify index in a namespace (metadata only: no items). */
  variableIndexes(namespace: string): Promise<{ Path: string; ModifyIndex: number }[]> {
    return this.api.get<{ Path: string; ModifyIndex: number }[]>("/v1/vars", { namespace });
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

  // --- jobs, evaluations, deployments and allocations (used by `deploy`) ---

  /** HCL2 → job JSON on the server; `Variables` is var-file content (the endpoint ignores VariableFlags). */
  parseJob(request: { JobHCL: string; Variables?: string; Canonicalize?: boolean }, namespace?: string): Promise<NomadJob> {
    return this.api.post<NomadJob>("/v1/jobs/parse", request, ns(namespace));
  }

  validateJob(job: NomadJob): Promise<{ ValidationErrors: string[] | null; Error: string; Warnings: string }> {
    return this.api.post("/v1/validate/job", { Job: job }, ns(job.Namespace));
  }

  planJob(job: NomadJob): Promise<NomadPlanResponse> {
    return this.api.post<NomadPlanResponse>(`/v1/job/${id(job.ID)}/plan`, { Job: job, Diff: true }, ns(job.Namespace));
  }

  registerJob(request: {
    Job: NomadJob;
    EnforceIndex?: boolean;
    JobModifyIndex?: number;
    Submission?: NomadJobSubmission;
  }): Promise<NomadRegisterResponse> {
    return this.api.post<NomadRegisterResponse>("/v1/jobs", request, ns(request.Job.Namespace));
  }

  /** The job, or undefined when it does not exist. */
  job(jobId: string, namespace?: string): Promise<NomadJob | undefined> {
    return unlessMissing(this.api.get<NomadJob>(`/v1/job/${id(jobId)}`, ns(namespace)));
  }

  evaluation(evalId: string, namespace?: string): Promise<NomadEvaluation> {
    return this.api.get<NomadEvaluation>(`/v1/evaluation/${id(evalId)}`, ns(namespace));
  }

  deployment(deploymentId: string, namespace?: string): Promise<NomadDeployment> {
    return this.api.get<NomadDeployment>(`/v1/deployment/${id(deploymentId)}`, ns(namespace));
  }

  /** The job's most recent deployment (null when it never had one). */
  latestDeployment(jobId: string, namespace?: string): Promise<NomadDeployment | null> {
    return this.api.get<NomadDeployment | null>(`/v1/job/${id(jobId)}/deployment`, ns(namespace));
  }

  deploymentAllocations(deploymentId: string, namespace?: string): Promise<NomadAllocationStub[]> {
    return this.api.get<NomadAllocationStub[]>(`/v1/deployment/allocations/${id(deploymentId)}`, ns(namespace));
  }

  jobAllocations(jobId: string, namespace?: string): Promise<NomadAllocationStub[]> {
    return this.api.get<NomadAllocationStub[]>(`/v1/job/${id(jobId)}/allocations`, ns(namespace));
  }

  allocation(allocId: string, namespace?: string): Promise<NomadAllocationStub> {
    return this.api.get<NomadAllocationStub>(`/v1/allocation/${id(allocId)}`, ns(namespace));
  }

  /**
   * The last `bytes` of a task's stdout or stderr, as text (the servers forward
   * the request to the client that runs the allocation; needs read-logs).
   */
  taskLogTail(
    allocId: string,
    task: string,
    type: "stdout" | "stderr",
    options: { bytes: number; namespace?: string; timeoutMs?: number },
  ): Promise<string> {
    return this.api.getText(
      `/v1/client/fs/logs/${id(allocId)}`,
      { ...ns(options.namespace), task, type, origin: "end", offset: options.bytes, plain: true },
      options.timeoutMs,
    );
  }

  /** A node with its recent events (needs node:read), or undefined when it does not exist. */
  node(nodeId: string): Promise<NomadNode | undefined> {
    return unlessMissing(this.api.get<NomadNode>(`/v1/node/${id(nodeId)}`));
  }
}

function sortedEntries(items: Record<string, string>): [string, string][] {
  return Object.entries(items).sort(([a], [b]) => a.localeCompare(b));
}

/** A job as the API returns it; only the fields we read are typed, the rest passes through untouched. */
export interface NomadJob {
  ID: string;
  Name: string;
  Namespace: string;
  Type: "service" | "batch" | "system" | "sysbatch";
  Meta: Record<string, string> | null;
  Version?: number;
  JobModifyIndex?: number;
  Status?: string;
  Stop?: boolean;
  TaskGroups: { Name: string; Count: number; [key: string]: unknown }[] | null;
  [key: string]: unknown;
}

export interface NomadFieldDiff {
  Type: "Added" | "Deleted" | "Edited" | "None";
  Name: string;
  Old: string;
  New: string;
  Annotations: string[] | null;
}

export interface NomadObjectDiff {
  Type: "Added" | "Deleted" | "Edited" | "None";
  Name: string;
  Fields: NomadFieldDiff[] | null;
  Objects: NomadObjectDiff[] | null;
}

export interface NomadTaskDiff extends NomadObjectDiff {
  Annotations: string[] | null;
}

export interface NomadTaskGroupDiff extends NomadObjectDiff {
  Tasks: NomadTaskDiff[] | null;
  Updates: Record<string, number> | null;
}

export interface NomadJobDiff {
  Type: "Added" | "Deleted" | "Edited" | "None";
  ID: string;
  Fields: NomadFieldDiff[] | null;
  Objects: NomadObjectDiff[] | null;
  TaskGroups: NomadTaskGroupDiff[] | null;
}

export interface NomadDesiredUpdates {
  Place: number;
  Stop: number;
  InPlaceUpdate: number;
  DestructiveUpdate: number;
  Canary: number;
  Ignore: number;
  Migrate: number;
  Preemptions: number;
  [key: string]: number;
}

export interface NomadAllocMetric {
  NodesEvaluated: number;
  NodesFiltered: number;
  NodesExhausted: number;
  NodesAvailable: Record<string, number> | null;
  ClassFiltered: Record<string, number> | null;
  ConstraintFiltered: Record<string, number> | null;
  ClassExhausted: Record<string, number> | null;
  DimensionExhausted: Record<string, number> | null;
  QuotaExhausted: string[] | null;
  CoalescedFailures: number;
}

export interface NomadPlanResponse {
  Annotations: { DesiredTGUpdates: Record<string, NomadDesiredUpdates> | null } | null;
  FailedTGAllocs: Record<string, NomadAllocMetric> | null;
  JobModifyIndex: number;
  Diff: NomadJobDiff | null;
  Warnings: string;
  NextPeriodicLaunch: string | null;
}

export interface NomadRegisterResponse {
  EvalID: string;
  EvalCreateIndex: number;
  JobModifyIndex: number;
  Warnings: string;
}

export interface NomadJobSubmission {
  Source: string;
  Format: "hcl2";
  /** var-file contents */
  Variables?: string;
  VariableFlags?: Record<string, string>;
}

export interface NomadEvaluation {
  ID: string;
  Status: "pending" | "complete" | "failed" | "canceled" | "blocked";
  StatusDescription: string;
  JobID: string;
  DeploymentID: string;
  BlockedEval: string;
  FailedTGAllocs: Record<string, NomadAllocMetric> | null;
  QueuedAllocations: Record<string, number> | null;
}

export interface NomadDeploymentGroup {
  DesiredTotal: number;
  DesiredCanaries: number;
  PlacedAllocs: number;
  HealthyAllocs: number;
  UnhealthyAllocs: number;
  AutoRevert: boolean;
  Promoted: boolean;
}

export interface NomadDeployment {
  ID: string;
  JobID: string;
  JobVersion: number;
  Status: "running" | "paused" | "failed" | "successful" | "cancelled" | "pending" | "blocked" | "unblocking";
  StatusDescription: string;
  TaskGroups: Record<string, NomadDeploymentGroup> | null;
}

export interface NomadTaskEvent {
  Type: string;
  Time: number;
  DisplayMessage: string;
  Message?: string;
  DriverError?: string;
  ExitCode?: number;
  FailsTask?: boolean;
}

export interface NomadTaskState {
  State: "pending" | "running" | "dead";
  Failed: boolean;
  Restarts: number;
  Events: NomadTaskEvent[] | null;
}

export interface NomadAllocationStub {
  ID: string;
  Name: string;
  EvalID: string;
  JobVersion: number;
  TaskGroup: string;
  NodeID: string;
  NodeName: string;
  ClientStatus: "pending" | "running" | "complete" | "failed" | "lost" | "unknown";
  ClientDescription: string;
  DesiredStatus: "run" | "stop" | "evict";
  DeploymentStatus: { Healthy: boolean | null; Canary: boolean } | null;
  TaskStates: Record<string, NomadTaskState> | null;
}

/** `?namespace=` for namespaced endpoints (the CI token may only touch dev and prod). */
const ns = (namespace?: string) => (namespace ? { namespace } : {});
const id = encodeURIComponent;
