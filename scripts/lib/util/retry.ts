import { setTimeout as sleep } from "node:timers/promises";

/**
 * Retry an operation while it fails with an error `transient` accepts (e.g. a
 * new leader still initialising its ACL system), with capped backoff (by default
 * at 500 ms: the callers ask local, cheap APIs, and a long pause only delays the run).
 */
export async function retryWhile<T>(
  operation: () => Promise<T>,
  transient: (error: unknown) => boolean,
  options: { timeoutMs: number; initialDelayMs?: number; maxDelayMs?: number },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (let delay = options.initialDelayMs ?? 250; ; delay = Math.min(delay * 2, options.maxDelayMs ?? 500)) {
    try {
      return await operation();
    } catch (error) {
      if (!transient(error) || Date.now() + delay > deadline) throw error;
      await sleep(delay);
    }
  }
}
