/** How long and how often the DigitalOcean provider waits, and the polling helpers that use it. */
import { setTimeout as sleep } from "node:timers/promises";
import { OperationError, errorMessage } from "../../errors.ts";
import { DoApiError, type DoClient } from "./client.ts";
import type { Action } from "./resources.ts";

export interface DigitalOceanTiming {
  /** between polls of actions and listings */
  pollMs: number;
  /** for droplets to become active, volumes to attach, members to leave a VPC */
  waitMs: number;
  /** after an ambiguous create (timeout, 5xx): how long to look for the droplet by tag before giving up */
  ambiguousGraceMs: number;
  /** per HTTP request */
  requestTimeoutMs: number;
}

export const defaultTiming: DigitalOceanTiming = {
  pollMs: 5_000,
  waitMs: 10 * 60_000,
  ambiguousGraceMs: 60_000,
  requestTimeoutMs: 60_000,
};

/** Poll an action until it completes; an errored action names what failed. */
export async function waitForAction(api: DoClient, timing: DigitalOceanTiming, path: string, what: string): Promise<void> {
  const deadline = Date.now() + timing.waitMs;
  for (;;) {
    const { action } = await api.get<{ action: Action }>(path);
    if (action.status === "completed") return;
    if (action.status === "errored") {
      throw new OperationError(`DigitalOcean reports that ${what} failed (action ${action.id}, ${action.type}).`, {
        hint: "See the resource's history in the control panel; re-running bootstrap reconciles what exists.",
      });
    }
    if (Date.now() > deadline) {
      throw new OperationError(`Timed out waiting for ${what} (action ${action.id} still ${action.status}).`, {
        hint: "Run bootstrap again later: it picks up the resources that exist.",
      });
    }
    await sleep(timing.pollMs);
  }
}

export async function waitUntil(timing: DigitalOceanTiming, check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + timing.waitMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new OperationError(`Timed out waiting for ${what}.`);
    await sleep(timing.pollMs);
  }
}

/** Retry a delete that DigitalOcean refuses while something is still detaching (409, 412, 422, 403 "has members"). */
export async function retryWhileBusy(timing: DigitalOceanTiming, action: () => Promise<unknown>, what: string): Promise<void> {
  const deadline = Date.now() + timing.waitMs;
  for (;;) {
    try {
      await action();
      return;
    } catch (error) {
      const busy = error instanceof DoApiError && [403, 409, 412, 422].includes(error.status ?? 0);
      if (!busy || Date.now() > deadline) {
        throw busy ? new OperationError(`Timed out waiting for ${what}: ${errorMessage(error)}`) : error;
      }
      await sleep(timing.pollMs);
    }
  }
}
