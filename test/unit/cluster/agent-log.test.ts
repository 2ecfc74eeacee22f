/**
 * The Nomad agent's journal for failure reports: the command runs in a real
 * shell against a stand-in `journalctl` that prints a recorded journal, so the
 * pipeline and its quoting are what is tested, not a canned answer.
 */
import { execFileSync } from "node:child_process";
import { chmod, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nomadAgentLog } from "../../../scripts/lib/cluster/agent-log.ts";
import { FakeRemote } from "../../helpers/fake-remote.ts";
import { tempDir } from "../../helpers/fixtures.ts";

const alloc = "0b8e6c3e-1d2a-4f6b-9c1e-7a5d2f4e8b90";
// lines as journalctl -o short-iso prints them for the nomad unit
const journal = [
  "2026-12-02T01:10:00+0000 client-1 nomad[311]:     2026-12-02T01:10:00.100Z [INFO]  client: node registration complete",
  `2026-12-02T01:10:05+0000 client-1 nomad[311]:     2026-12-02T01:10:05.200Z [INFO]  client.alloc_runner.task_runner: Task event: alloc_id=${alloc} task=fabio type=Received msg="Task received by client" failed=false`,
  '2026-12-02T01:10:06+0000 client-1 nomad[311]:     2026-12-02T01:10:06.000Z [INFO]  agent: (runner) rendered "(dynamic)" => "/opt/nomad/data/alloc/other/secrets/x"',
  `2026-12-02T01:10:09+0000 client-1 nomad[311]:     2026-12-02T01:10:09.300Z [ERROR] client.alloc_runner: prerun failed: alloc_id=${alloc} error="pre-run hook \\"consul\\" failed: 403 (ACL not found)"`,
  "2026-12-02T01:10:10+0000 client-1 nomad[311]:     2026-12-02T01:10:10.000Z [INFO]  client.gc: marking allocation for GC: alloc_id=11111111-2222-3333-4444-555555555555",
];

let dir: Awaited<ReturnType<typeof tempDir>>;
let journalFile: string;

/** A fake node whose commands run in bash with the stand-in journalctl first on PATH. */
function node(name: string): FakeRemote {
  const remote = new FakeRemote(name);
  remote.respond = (command) => {
    try {
      const stdout = execFileSync("bash", ["-c", command], {
        env: { PATH: `${dir.path}:/usr/bin:/bin`, JOURNAL: journalFile },
        encoding: "utf8",
      });
      return { stdout, code: 0 };
    } catch (error) {
      const e = error as { stdout: string; stderr: string; status: number };
      return { stdout: e.stdout, stderr: e.stderr, code: e.status };
    }
  };
  return remote;
}

beforeAll(async () => {
  dir = await tempDir("agent-log");
  journalFile = join(dir.path, "journal.txt");
  await writeFile(journalFile, `${journal.join("\n")}\n`);
  // honours -u nomad and -n N like journalctl; anything else is an error
  const stub = join(dir.path, "journalctl");
  await writeFile(
    stub,
    `#!/bin/bash
n=10; unit=""
while [ $# -gt 0 ]; do
  case "$1" in
    -u) unit="$2"; shift 2 ;;
    -n) n="$2"; shift 2 ;;
    --no-pager) shift ;;
    -o) shift 2 ;;
    *) echo "journalctl: unexpected $1" >&2; exit 1 ;;
  esac
done
[ "$unit" = nomad ] || { echo "-- No entries --"; exit 0; }
tail -n "$n" "$JOURNAL"
`,
  );
  await chmod(stub, 0o755);
});

afterAll(async () => dir?.remove());

describe("the Nomad agent's log on a node", () => {
  it("keeps the lines that name the allocation, newest last, as root", async () => {
    const remote = node("client-1");
    const log = await nomadAgentLog(remote, alloc);
    expect(log.source).toBe("nomad agent log on client-1 (last 2 lines naming the allocation)");
    expect(log.lines).toEqual([journal[1], journal[3]]);
    expect(remote.log[0]).toMatch(/^root /);
  });

  it("falls back to the last lines when none name the allocation", async () => {
    const log = await nomadAgentLog(node("client-2"), "99999999-0000-0000-0000-000000000000", 2);
    expect(log.source).toBe("nomad agent log on client-2 (last 2 lines; none name the allocation)");
    expect(log.lines).toEqual(journal.slice(-2));
  });

  it("quotes the allocation ID: a hostile value stays a grep pattern", async () => {
    const remote = node("client-1");
    const log = await nomadAgentLog(remote, `x'; touch ${join(dir.path, "pwned")}; echo '`);
    expect(log.source).toContain("none name the allocation");
    expect(execFileSync("ls", [dir.path], { encoding: "utf8" })).not.toContain("pwned");
  });

  it("says why when the journal cannot be read", async () => {
    const remote = new FakeRemote("client-3");
    remote.respond = () => ({ code: 127, stderr: "bash: journalctl: command not found\n" });
    const log = await nomadAgentLog(remote, alloc);
    expect(log).toEqual({
      lines: [],
      source: "nomad agent log on client-3 could not be read: bash: journalctl: command not found",
    });
  });
});
