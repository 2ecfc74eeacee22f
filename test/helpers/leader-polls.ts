/**
 * Watching a cluster's leaders while it changes: every server is asked for its
 * product's leader every 200 ms (Consul and Nomad `/v1/status/leader`, Vault
 * `/v1/sys/leader`), over mTLS with the operator's certificate where the product
 * asks for one. The figures: the longest stretch without any answering server
 * naming a leader, and how many servers did not answer at once.
 */
import { readFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";

export interface LeaderPoll {
  at: number;
  /** per server: the leader it names ("" for none), null when it did not answer */
  answers: (string | null)[];
}

export interface LeaderProbe {
  port: number;
  path: string;
  /** the leader named by the answer's body ("" for none) */
  leader(body: unknown): string;
  headers?: Record<string, string>;
  tls: { ca: Buffer; cert?: Buffer; key?: Buffer };
}

/** The operator's mTLS files from a cluster's state `tls` folder. */
export const operatorTls = (tlsDir: string): LeaderProbe["tls"] => ({
  ca: readFileSync(join(tlsDir, "ca.pem")),
  cert: readFileSync(join(tlsDir, "operator.pem")),
  key: readFileSync(join(tlsDir, "operator-key.pem")),
});

export const probes = {
  consul: (tls: LeaderProbe["tls"], token?: string): LeaderProbe => ({
    port: 8501,
    path: "/v1/status/leader",
    leader: String,
    headers: token ? { "X-Consul-Token": token } : undefined,
    tls,
  }),
  nomad: (tls: LeaderProbe["tls"], token: string): LeaderProbe => ({
    port: 4646,
    path: "/v1/status/leader",
    leader: String,
    headers: { "X-Nomad-Token": token },
    tls,
  }),
  // unauthenticated; a standby names the active node
  vault: (ca: Buffer): LeaderProbe => ({
    port: 8200,
    path: "/v1/sys/leader",
    leader: (body) => String((body as { leader_address?: string }).leader_address ?? ""),
    tls: { ca },
  }),
};

/** Ask every server for its leader every `intervalMs` until stopped (each request gives up after 1 s). */
export function pollLeaders(servers: string[], probe: LeaderProbe, intervalMs = 200) {
  const ask = (host: string) =>
    new Promise<string | null>((resolve) => {
      const req = httpsRequest(
        { host, port: probe.port, path: probe.path, headers: probe.headers, timeout: 1000, ...probe.tls },
        (res) => {
          let body = "";
          res.on("data", (chunk: Buffer) => (body += chunk.toString()));
          res.on("end", () => {
            try {
              resolve(res.statusCode === 200 ? probe.leader(JSON.parse(body)) : null);
            } catch {
              resolve(null);
            }
          });
        },
      );
      req.on("error", () => resolve(null));
      req.on("timeout", () => req.destroy());
      req.end();
    });
  const polls: LeaderPoll[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const at = Date.now();
      polls.push({ at, answers: await Promise.all(servers.map(ask)) });
      await new Promise((r) => setTimeout(r, Math.max(0, intervalMs - (Date.now() - at))));
    }
  })();
  return {
    polls,
    async stop() {
      running = false;
      await loop;
    },
  };
}

/** The longest run of polls in which no answering server named a leader, from its first poll to the next poll with one. */
export function longestLeaderless(polls: LeaderPoll[]): number {
  let longest = 0;
  let since: number | undefined;
  for (const poll of polls) {
    if (poll.answers.some((a) => a)) {
      if (since !== undefined) longest = Math.max(longest, poll.at - since);
      since = undefined;
    } else since ??= poll.at;
  }
  if (since !== undefined) longest = Math.max(longest, (polls.at(-1)?.at ?? since) - since);
  return longest;
}

/** The most servers that did not answer the same poll. */
export const mostDownAtOnce = (polls: LeaderPoll[]) =>
  Math.max(0, ...polls.map((p) => p.answers.filter((a) => a === null).length));

/** Polls in which no server named a leader. */
export const leaderlessPolls = (polls: LeaderPoll[]) => polls.filter((p) => !p.answers.some((a) => a)).length;
