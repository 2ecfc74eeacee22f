/**
 * Namespace, job and task group of the allocations on this node, from the
 * local Nomad agent. Allocation stubs are small (no Job body). We ask at
 * once when a cgroup names an allocation we do not know yet, so a task is
 * labelled from its first sample; the rate limit is per allocation (each
 * unknown one causes at most one request per `minRefreshMs`), so an allocation
 * the token cannot see does not make us hammer the agent, nor delay others.
 *
 * ACL (see docs/energy.md): namespace "*" { capabilities = ["read-job"] }, plus
 * agent { policy = "read" } when the node ID is not given in the config.
 */
import type { HttpApi } from "../clients/http.ts";

export interface AllocationMeta {
  namespace: string;
  job: string;
  group: string;
}

interface AllocationStub {
  ID: string;
  Namespace: string;
  JobID: string;
  TaskGroup: string;
  NodeID: string;
}

export interface MetadataLookup {
  lookup(allocIds: string[]): Promise<Map<string, AllocationMeta>>;
  errors: number;
}

export class NomadAllocationDirectory implements MetadataLookup {
  errors = 0;
  lastError: string | undefined;
  private known = new Map<string, AllocationMeta>();
  private readonly lastAttempt = new Map<string, number>();
  private nodeId: string | undefined;

  constructor(
    private readonly api: HttpApi,
    options: { nodeId?: string; minRefreshMs?: number; now?: () => number } = {},
  ) {
    this.nodeId = options.nodeId;
    this.minRefreshMs = options.minRefreshMs ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  private readonly minRefreshMs: number;
  private readonly now: () => number;

  async lookup(allocIds: string[]): Promise<Map<string, AllocationMeta>> {
    const now = this.now();
    const due = allocIds.filter(
      (id) => !this.known.has(id) && now - (this.lastAttempt.get(id) ?? -Infinity) >= this.minRefreshMs,
    );
    if (due.length > 0) {
      for (const id of due) this.lastAttempt.set(id, now);
      try {
        await this.refresh();
        this.lastError = undefined;
      } catch (error) {
        this.errors++;
        this.lastError = (error as Error).message;
      }
    }
    // forget allocations whose cgroups are gone (bounded memory)
    const wanted = new Set(allocIds);
    for (const id of this.known.keys()) if (!wanted.has(id)) this.known.delete(id);
    for (const id of this.lastAttempt.keys()) if (!wanted.has(id)) this.lastAttempt.delete(id);
    return this.known;
  }

  private async refresh(): Promise<void> {
    if (!this.nodeId) {
      const self = await this.api.get<{ stats?: { client?: { node_id?: string } } }>("/v1/agent/self");
      this.nodeId = self.stats?.client?.node_id;
      if (!this.nodeId) throw new Error("the local Nomad agent is not a client (no node_id in /v1/agent/self)");
    }
    const stubs = await this.api.get<AllocationStub[]>("/v1/allocations", {
      namespace: "*",
      task_states: "false",
      filter: `NodeID == "${this.nodeId}"`,
    });
    for (const s of stubs) this.known.set(s.ID, { namespace: s.Namespace, job: s.JobID, group: s.TaskGroup });
  }
}
