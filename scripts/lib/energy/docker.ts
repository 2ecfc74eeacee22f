/**
 * Which Nomad allocation and task a docker container runs, from the Docker
 * Engine API (GET /containers/json, https://docs.docker.com/engine/api/).
 *
 * Only what Nomad itself sets is trusted (drivers/docker/driver.go): the
 * `com.hashicorp.nomad.alloc_id` label, which Nomad writes over any label of
 * the same name from the job, and the container name `<task>-<alloc_id>`.
 * The other com.hashicorp.nomad.* labels exist only with the plugin's
 * `extra_labels` and can otherwise be set by the job author, so namespace,
 * job and group come from the Nomad API by allocation ID, as for exec tasks.
 *
 * A container seen for the first time is looked up at once (one request lists
 * every container); an unresolved one is asked about again at most once per
 * `retryMs`. A container that is not Nomad's is remembered as such (labels
 * and names do not change).
 */
import { request } from "node:http";

export interface ContainerTask {
  allocId: string;
  task: string;
}

export interface ContainerSummary {
  Id: string;
  Names?: string[];
  Labels?: Record<string, string> | null;
}

export interface ContainerLister {
  list(): Promise<ContainerSummary[]>;
}

export const allocIdLabel = "com.hashicorp.nomad.alloc_id";

/** The Nomad task of a container, or undefined when Nomad did not create it. */
export function nomadTaskOf(c: ContainerSummary): ContainerTask | undefined {
  const allocId = c.Labels?.[allocIdLabel];
  if (!allocId) return undefined;
  const suffix = `-${allocId}`;
  for (const raw of c.Names ?? []) {
    const name = raw.replace(/^\//, "");
    if (name.endsWith(suffix) && name.length > suffix.length) return { allocId, task: name.slice(0, -suffix.length) };
  }
  return undefined;
}

/** The Docker Engine API on its unix socket. */
export function dockerSocketLister(socketPath: string, timeoutMs: number): ContainerLister {
  const filters = encodeURIComponent(JSON.stringify({ label: [allocIdLabel] }));
  return {
    list: () =>
      new Promise((resolve, reject) => {
        const req = request(
          { socketPath, path: `/containers/json?all=true&filters=${filters}`, method: "GET", timeout: timeoutMs },
          (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (chunk: string) => (body += chunk));
            res.on("end", () => {
              if (res.statusCode !== 200)
                return reject(new Error(`docker answered HTTP ${res.statusCode}: ${body.slice(0, 200)}`));
              try {
                const parsed = JSON.parse(body) as unknown;
                if (!Array.isArray(parsed)) throw new Error("not a list");
                resolve(parsed as ContainerSummary[]);
              } catch (error) {
                reject(new Error(`docker's container list is not JSON: ${(error as Error).message}`));
              }
            });
          },
        );
        req.on("timeout", () => req.destroy(new Error(`docker did not answer within ${timeoutMs} ms`)));
        req.on("error", reject);
        req.end();
      }),
  };
}

export class ContainerDirectory {
  errors = 0;
  lastError: string | undefined;
  private readonly known = new Map<string, ContainerTask | null>();
  private readonly lastAttempt = new Map<string, number>();

  constructor(
    private readonly lister: ContainerLister,
    private readonly options: { retryMs?: number; now?: () => number } = {},
  ) {}

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  /** The tasks of these containers (null: not a Nomad container; absent: not known yet). */
  async resolve(ids: string[]): Promise<Map<string, ContainerTask | null>> {
    const now = this.now();
    const retryMs = this.options.retryMs ?? 10_000;
    const due = ids.filter((id) => !this.known.has(id) && now - (this.lastAttempt.get(id) ?? -Infinity) >= retryMs);
    if (due.length > 0) {
      for (const id of due) this.lastAttempt.set(id, now);
      try {
        const byId = new Map((await this.lister.list()).map((c) => [c.Id, c]));
        for (const id of due) {
          const c = byId.get(id);
          // not listed with the alloc_id label: not Nomad's (or already removed)
          this.known.set(id, c ? (nomadTaskOf(c) ?? null) : null);
        }
        this.lastError = undefined;
      } catch (error) {
        this.errors++;
        this.lastError = (error as Error).message;
      }
    }
    // forget containers whose cgroups are gone (bounded memory)
    const wanted = new Set(ids);
    for (const id of this.known.keys()) if (!wanted.has(id)) this.known.delete(id);
    for (const id of this.lastAttempt.keys()) if (!wanted.has(id)) this.lastAttempt.delete(id);
    return this.known;
  }
}
