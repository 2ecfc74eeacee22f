/**
 * Real agents started by tests. Every process is tracked by PID and stopped in
 * afterAll — and on worker exit as a last resort — so a failing test leaves
 * nothing running. Only processes started here are ever signalled.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { openSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

export interface Agent {
  name: string;
  child: ChildProcess;
  logFile: string;
  log(): string;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export function startAgent(name: string, command: string, args: string[], logFile: string, env: NodeJS.ProcessEnv = {}): Agent {
  const out = openSync(logFile, "a");
  const child = spawn(command, args, { stdio: ["ignore", out, out], env: { ...process.env, ...env } });
  running.add(child);
  child.on("exit", () => running.delete(child));
  return {
    name,
    child,
    logFile,
    log: () => readFileSync(logFile, "utf8"),
    stop: () => stopProcess(child),
  };
}

export async function stopProcess(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timedOut = await Promise.race([exited.then(() => false), sleep(graceMs).then(() => true)]);
  if (timedOut) {
    child.kill("SIGKILL");
    await exited;
  }
}

/** Fail fast with the agent's log when it died instead of becoming ready. */
export async function untilReady<T>(agent: Agent, probe: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (agent.child.exitCode !== null)
      throw new Error(`${agent.name} exited (${agent.child.exitCode}):\n${agent.log().slice(-3000)}`);
    try {
      return await probe();
    } catch (error) {
      lastError = error;
      await sleep(200);
    }
  }
  throw new Error(`${agent.name} not ready after ${timeoutMs}ms: ${String(lastError)}\n${agent.log().slice(-3000)}`);
}
