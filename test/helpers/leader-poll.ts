/**
 * Ask servers for their raft leader (/v1/status/leader, Consul's or Nomad's)
 * every 200 ms while something runs, over mTLS with the cluster's operator
 * certificate, and measure the longest stretch in which none named a leader.
 */
import { readFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";

export interface LeaderPoll {
  at: number;
  /** per server: the leader it names ("" for none), null when it did not answer */
  answers: (string | null)[];
}

export function pollLeaders(options: { tlsDir: string; addresses: string[]; port: number; headers?: Record<string, string> }) {
  const files = {
    ca: readFileSync(join(options.tlsDir, "ca.pem")),
    cert: readFileSync(join(options.tlsDir, "operator.pem")),
    key: readFileSync(join(options.tlsDir, "operator-key.pem")),
  };
  const ask = (host: string) =>
    new Promise<string | null>((resolve) => {
      const req = httpsRequest(
        { host, port: options.port, path: "/v1/status/leader", headers: options.headers ?? {}, timeout: 1000, ...files },
        (res) => {
          let body = "";
          res.on("data", (chunk: Buffer) => (body += chunk.toString()));
          res.on("end", () => resolve(res.statusCode === 200 ? (JSON.parse(body) as string) : null));
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
      polls.push({ at, answers: await Promise.all(options.addresses.map(ask)) });
      await new Promise((r) => setTimeout(r, Math.max(0, 200 - (Date.now() - at))));
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

/** Polls in which no server named a leader. */
export const leaderlessPolls = (polls: LeaderPoll[]) => polls.filter((p) => !p.answers.some((a) => a)).length;
