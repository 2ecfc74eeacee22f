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

/**
 * Whether a refused delete is DigitalOcean saying "not yet": 409 (a volume still attached)
 * and 412 (a project still holding resources) always are; 403 only for a VPC that still has
 * members (any other 403 is a missing scope); 422 only when its message says something is
 * still in progress. Everything else is reported at once instead of being retried for minutes.
 */
export function isBusy(error: unknown): boolean {
  if (!(error instanceof DoApiError)) return false;
  if (error.status === 409 || error.status === 412) return true;
  if (error.status === 403) return /members/i.test(error.apiMessage);
  if (error.status === 422) return /pending|in progress|still|attached|busy|try again|locked/i.test(error.apiMessage);
  return false;
}

/** Retry a delete that DigitalOcean refuses while something is still detaching (see isBusy). */
export async function retryWhileBusy(timing: DigitalOceanTiming, action: () => Promise<unknown>, what: string): Promise<void> {
  const deadline = Date.now() + timing.waitMs;
  for (;;) {
    try {
      await action();
      return;
    } catch (error) {
      const busy = isBusy(error);
      if (!busy || Date.now() > deadline) {
        throw busy ? new OperationError(`Timed out waiting for ${what}: ${errorMessage(error)}`) : error;
      }
      await sleep(timing.pollMs);
    }
  }
}
