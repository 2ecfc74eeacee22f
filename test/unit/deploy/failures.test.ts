/**
 * The failure report from recorded Nomad API answers (a real Nomad 1.11 dev
 * agent and the job in test/unit/deploy/fixtures/failed-deployment/, whose two
 * allocations crash twice each; the node trimmed to what the report reads), served by
 * a local HTTP server so the real client reads them: which allocations are
 * named, how their events and log tails read, and what happens when a log or a
 * node cannot be read.
 */
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NomadAllocationStub, NomadClient } from "../../../scripts/lib/clients/nomad.ts";
import { diagnoseFailures, failingAllocations, formatFailures, lastLines } from "../../../scripts/lib/deploy/failures.ts";

const fixtures = join(import.meta.dirname, "fixtures", "failed-deployment");
const recorded = (name: string) => readFileSync(join(fixtures, name), "utf8");
const allocations = JSON.parse(recorded("deployment-allocations.json")) as NomadAllocationStub[];
const node = recorded("node.json");
const logs = { stdout: recorded("logs-stdout.txt"), stderr: recorded("logs-stderr.txt") };

let server: Server;
let nomad: NomadClient;
const requests: URL[] = [];
/** what the server answers for logs and nodes, per test */
let answer: { logs: number; node: number } = { logs: 200, node: 200 };

beforeAll(async () => {
  server = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://nomad");
    requests.push(url);
    const logMatch = /^\/v1\/client\/fs\/logs\/([0-9a-f-]+)$/.exec(url.pathname);
    if (logMatch) {
      if (answer.logs !== 200) return void response.writeHead(answer.logs).end("Permission denied");
      // Nomad's semantics: origin=end counts `offset` bytes back from the end of the file
      const text = logs[url.searchParams.get("type") as "stdout" | "stderr"];
      const from = Math.max(0, Buffer.byteLength(text) - Number(url.searchParams.get("offset")));
      return void response.writeHead(200, { "Content-Type": "text/plain" }).end(Buffer.from(text).subarray(from));
    }
    if (url.pathname.startsWith("/v1/node/")) {
      if (answer.node !== 200) return void response.writeHead(answer.node).end("Permission denied");
      return void response.writeHead(200, { "Content-Type": "application/json" }).end(node);
    }
    response.writeHead(404).end("not found");
  });
  server.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  nomad = new NomadClient({ address: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe("failure reports", () => {
  it("names every failed allocation of the deployment with its tasks' recorded events", () => {
    const failures = failingAllocations(allocations);
    expect(failures.length).toBe(allocations.length);
    for (const f of failures) {
      expect(f).toMatchObject({ clientStatus: "failed", healthy: false, description: "Failed tasks" });
      expect(f.tasks.map((t) => [t.task, t.state, t.failed, t.restarts])).toEqual([["boom", "dead", true, 1]]);
      expect(f.tasks[0]?.events.map((e) => e.type)).toEqual(
        expect.arrayContaining(["Received", "Started", "Terminated", "Restarting", "Not Restarting"]),
      );
    }
  });

  it("at a timeout also names allocations still running without a health verdict, never healthy ones", () => {
    const alloc = allocations[0] as NomadAllocationStub;
    const running = { ...alloc, ClientStatus: "running" as const, DeploymentStatus: { Healthy: null, Canary: false } };
    const healthy = {
      ...alloc,
      ID: "healthy",
      ClientStatus: "running" as const,
      DeploymentStatus: { Healthy: true, Canary: false },
    };
    expect(failingAllocations([running, healthy])).toEqual([]);
    expect(failingAllocations([running, healthy], { unsettled: true }).map((f) => f.allocId)).toEqual([alloc.ID]);
  });

  it("adds the last lines of stderr and stdout and the node's events, read as Nomad serves them", async () => {
    requests.length = 0;
    answer = { logs: 200, node: 200 };
    const [first] = await diagnoseFailures(nomad, failingAllocations(allocations).slice(0, 1), {
      namespace: "dev",
      logLines: 5,
      agentLog: async (f) => ({ lines: [`agent line about ${f.allocId.slice(0, 8)}`], source: `nomad agent log on ${f.node}` }),
    });
    const logRequests = requests.filter((r) => r.pathname.startsWith("/v1/client/fs/logs/"));
    expect(logRequests.map((r) => r.searchParams.get("type")).sort()).toEqual(["stderr", "stdout"]);
    for (const r of logRequests) {
      expect(Object.fromEntries(r.searchParams)).toEqual({
        namespace: "dev",
        task: "boom",
        type: r.searchParams.get("type"),
        origin: "end",
        offset: "2000",
        plain: "true",
      });
    }
    expect(first?.tasks[0]?.logs).toEqual({
      stdout: lastLines(logs.stdout, 5),
      stderr: lastLines(logs.stderr, 5),
    });
    expect(first?.tasks[0]?.logs?.stderr.at(-1)).toBe("[FATAL] Timeout registering backend.");

    const lines = formatFailures(first ? [first] : []);
    const alloc = allocations[0] as NomadAllocationStub;
    expect(lines[0]).toBe(
      `allocation ${alloc.ID.slice(0, 8)} (${alloc.Name}) on ${alloc.NodeName}: failed, unhealthy — Failed tasks`,
    );
    expect(lines[1]).toBe('  task "boom" dead (failed), 1 restart');
    expect(lines).toContain("    stderr (last 5 lines):");
    expect(lines).toContain("      | [FATAL] Timeout registering backend.");
    expect(lines).toContain("    stdout (last 5 lines):");
    expect(lines.filter((l) => /^ {4}\d\d:\d\d:\d\d Terminated: Exit Code: 1/.test(l)).length).toBeGreaterThan(0);
    expect(lines).toContain(`  node ${alloc.NodeName}: status ready`);
    expect(lines).toContain(`  nomad agent log on ${alloc.NodeName}:`);
    expect(lines.at(-1)).toBe(`    | agent line about ${alloc.ID.slice(0, 8)}`);
  });

  it("says why when the token may not read logs, and leaves the node out when it may not read nodes", async () => {
    answer = { logs: 403, node: 403 };
    const [first] = await diagnoseFailures(nomad, failingAllocations(allocations).slice(0, 1), { namespace: "dev" });
    expect(first?.tasks[0]?.logs).toEqual({ stderr: [], stdout: [], error: "not readable with this token (read-logs)" });
    expect(first?.nodeEvents).toBeUndefined();
    const lines = formatFailures(first ? [first] : []);
    expect(lines).toContain("    logs: not readable with this token (read-logs)");
    expect(lines.some((l) => l.startsWith("  node "))).toBe(false);
  });

  it("reads no logs with 0 lines, and none for a task that never started", async () => {
    requests.length = 0;
    answer = { logs: 200, node: 200 };
    const [none] = await diagnoseFailures(nomad, failingAllocations(allocations).slice(0, 1), { namespace: "dev", logLines: 0 });
    expect(none?.tasks[0]?.logs).toBeUndefined();
    const pending = failingAllocations([
      {
        ...(allocations[0] as NomadAllocationStub),
        ClientStatus: "pending",
        TaskStates: { boom: { State: "pending", Failed: false, Restarts: 0, Events: [] } },
      },
    ]);
    const [unstarted] = await diagnoseFailures(nomad, pending, { namespace: "dev" });
    expect(unstarted?.tasks[0]?.logs).toBeUndefined();
    expect(requests.filter((r) => r.pathname.startsWith("/v1/client/fs/logs/"))).toEqual([]);
  });

  it("keeps whole lines: a partial first line, terminal escapes and very long lines do not reach the report", () => {
    expect(lastLines("tial line\nfull 1\nfull 2\n\n", 5, true)).toEqual(["full 1", "full 2"]);
    expect(lastLines("\u001b[31mred\u001b[0m\r\nplain\n", 5)).toEqual(["red", "plain"]);
    const [long] = lastLines(`${"x".repeat(500)}\n`, 1);
    expect(long).toBe(`${"x".repeat(300)} …`);
    expect(lastLines("", 20)).toEqual([]);
  });
});
