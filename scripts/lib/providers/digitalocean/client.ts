/**
 * A small typed client for the DigitalOcean API v2: bearer token, pagination
 * through `links.pages.next`, rate limits (ratelimit-* headers, 429 with
 * retry-after) and errors that carry the API's `{id, message, request_id}`.
 *
 * Creates are never retried after an ambiguous failure (timeout, reset, 5xx):
 * DigitalOcean allows duplicate droplet names, so the caller reconciles by
 * listing instead. A 429 is safe to retry: the request was not processed.
 */
import { setTimeout as sleep } from "node:timers/promises";
import axios, { type AxiosInstance, isAxiosError } from "axios";
import { InputError, OperationError, type UserErrorOptions } from "../../errors.ts";

export const defaultApiUrl = "https://api.digitalocean.com";
const maxPerPage = 200;

export interface DoClientOptions {
  token: string;
  baseUrl?: string;
  timeoutMs?: number;
  /** how many 429 answers in a row are waited out before giving up */
  maxRateLimitRetries?: number;
  /** how often a GET or DELETE is repeated after a network error or a 5xx */
  maxTransientRetries?: number;
  /** longest single wait for a 429 or an exhausted rate limit */
  maxWaitMs?: number;
  /** observed rate-limit state, for progress output */
  onRateLimit?: (info: { remaining?: number; waitMs: number }) => void;
}

/** An error answer of the API; `ambiguous` means the request may have been applied. */
export class DoApiError extends OperationError {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number | undefined,
    readonly apiId: string | undefined,
    readonly apiMessage: string,
    readonly requestId: string | undefined,
    options: UserErrorOptions = {},
  ) {
    super(
      `DigitalOcean ${method} ${path} failed${status ? ` (HTTP ${status}${apiId ? ` ${apiId}` : ""})` : ""}: ${apiMessage}` +
        (requestId ? ` [request_id ${requestId}]` : ""),
      { hint: options.hint ?? hintFor(status), ...options },
    );
  }

  /** true when the server may have acted on the request (timeouts, resets, 5xx) */
  get ambiguous(): boolean {
    return this.status === undefined || this.status >= 500;
  }
}

function hintFor(status: number | undefined): string | undefined {
  if (status === 401) return "Check DIGITALOCEAN_TOKEN: it is missing, revoked or mistyped (create one under API → Tokens).";
  if (status === 403) return "The token lacks a scope for this call: give it read and write access (or the listed scopes).";
  if (status === 429) return "DigitalOcean's rate limit was hit repeatedly; wait a minute and run the command again.";
  if (status === undefined)
    return "Is the API reachable (DIGITALOCEAN_API_URL, proxy settings)? Re-running is safe: it reconciles.";
  return undefined;
}

export interface Page<T> {
  items: T[];
  pages: number;
}

export class DoClient {
  readonly http: AxiosInstance;
  /** requests sent, for progress and for tests that measure reconcile cost */
  requests = 0;
  private readonly options: Required<Omit<DoClientOptions, "onRateLimit" | "baseUrl">> & Pick<DoClientOptions, "onRateLimit">;
  readonly baseUrl: string;

  constructor(options: DoClientOptions) {
    if (!options.token) {
      throw new InputError("DIGITALOCEAN_TOKEN is not set.", {
        hint: "Export a DigitalOcean personal access token with read/write scope: export DIGITALOCEAN_TOKEN=… (it is never stored or printed).",
      });
    }
    this.baseUrl = (options.baseUrl ?? defaultApiUrl).replace(/\/$/, "");
    this.options = {
      token: options.token,
      timeoutMs: options.timeoutMs ?? 60_000,
      maxRateLimitRetries: options.maxRateLimitRetries ?? 8,
      maxTransientRetries: options.maxTransientRetries ?? 3,
      maxWaitMs: options.maxWaitMs ?? 60_000,
      onRateLimit: options.onRateLimit,
    };
    this.http = axios.create({
      baseURL: this.baseUrl,
      timeout: this.options.timeoutMs,
      headers: { Authorization: `Bearer ${options.token}`, "Content-Type": "application/json" },
      validateStatus: () => true,
      maxRedirects: 0,
    });
  }

  static fromEnv(env: NodeJS.ProcessEnv = process.env, options: Partial<DoClientOptions> = {}): DoClient {
    return new DoClient({ token: env.DIGITALOCEAN_TOKEN ?? "", baseUrl: env.DIGITALOCEAN_API_URL || undefined, ...options });
  }

  async request<T>(method: string, path: string, body?: unknown, params?: Record<string, unknown>): Promise<T> {
    // reads and deletes may be repeated after a reset or a 5xx; creates never (see above)
    const idempotent = method === "GET" || method === "DELETE";
    let transientLeft = idempotent ? this.options.maxTransientRetries : 0;
    for (let attempt = 0; ; attempt++) {
      this.requests++;
      let response;
      try {
        response = await this.http.request({ method, url: path, data: body, params });
      } catch (error) {
        // never echo axios' config: it holds the Authorization header
        const reason = isAxiosError(error) ? `${error.code ?? "network error"}: ${error.message}` : String(error);
        if (transientLeft-- > 0) {
          await sleep(this.backoffMs(attempt));
          continue;
        }
        throw new DoApiError(method, path, undefined, undefined, this.redact(reason), undefined);
      }
      if (response.status >= 500 && transientLeft-- > 0) {
        await sleep(this.backoffMs(attempt));
        continue;
      }
      const headers = response.headers as Record<string, string | undefined>;
      if (response.status === 429 && attempt < this.options.maxRateLimitRetries) {
        const waitMs = this.retryAfterMs(headers, attempt);
        this.options.onRateLimit?.({ remaining: Number(headers["ratelimit-remaining"] ?? 0), waitMs });
        await sleep(waitMs);
        continue;
      }
      if (response.status >= 400) {
        const data = (response.data ?? {}) as { id?: unknown; message?: unknown; request_id?: unknown };
        throw new DoApiError(
          method,
          path,
          response.status,
          typeof data.id === "string" ? data.id : undefined,
          this.redact(typeof data.message === "string" ? data.message : `HTTP ${response.status}`),
          typeof data.request_id === "string" ? data.request_id : undefined,
        );
      }
      await this.respectRemaining(headers);
      return response.data as T;
    }
  }

  /** 429: honour retry-after (seconds), else ratelimit-reset, else exponential backoff. */
  private retryAfterMs(headers: Record<string, string | undefined>, attempt: number): number {
    const retryAfter = Number(headers["retry-after"]);
    const reset = Number(headers["ratelimit-reset"]);
    let ms: number;
    if (Number.isFinite(retryAfter) && retryAfter >= 0) ms = retryAfter * 1000;
    else if (Number.isFinite(reset) && reset > 0) ms = reset * 1000 - Date.now();
    else ms = 1000 * 2 ** attempt;
    return Math.min(Math.max(ms, 100), this.options.maxWaitMs);
  }

  private backoffMs(attempt: number): number {
    return Math.min(250 * 2 ** attempt, this.options.maxWaitMs);
  }

  /** When the hourly budget is nearly spent, slow down instead of running into 429s. */
  private async respectRemaining(headers: Record<string, string | undefined>): Promise<void> {
    const remaining = Number(headers["ratelimit-remaining"]);
    const reset = Number(headers["ratelimit-reset"]);
    if (!Number.isFinite(remaining) || remaining > 5 || !Number.isFinite(reset)) return;
    const waitMs = Math.min(Math.max(reset * 1000 - Date.now(), 0), this.options.maxWaitMs);
    if (waitMs > 0) {
      this.options.onRateLimit?.({ remaining, waitMs });
      await sleep(waitMs);
    }
  }

  private redact(text: string): string {
    return this.options.token ? text.replaceAll(this.options.token, "[token]") : text;
  }

  get<T>(path: string, params?: Record<string, unknown>): Promise<T> {
    return this.request<T>("GET", path, undefined, params);
  }
  post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>("POST", path, body);
  }
  delete(path: string, params?: Record<string, unknown>): Promise<void> {
    return this.request<void>("DELETE", path, undefined, params);
  }

  /** Every item of a paginated list, following `links.pages.next` (per_page 200). */
  async list<T>(path: string, key: string, params: Record<string, unknown> = {}): Promise<Page<T>> {
    const items: T[] = [];
    let pages = 0;
    let next: { path: string; params: Record<string, unknown> } | undefined = {
      path,
      params: { ...params, per_page: maxPerPage },
    };
    while (next) {
      const body: Record<string, unknown> = await this.get(next.path, next.params);
      pages++;
      const chunk = body[key];
      if (!Array.isArray(chunk)) {
        throw new DoApiError("GET", path, 200, undefined, `the answer has no '${key}' list`, undefined);
      }
      items.push(...(chunk as T[]));
      const link = (body.links as { pages?: { next?: string } } | undefined)?.pages?.next;
      next = link ? this.relative(link) : undefined;
      if (pages > 1000) throw new DoApiError("GET", path, 200, undefined, "more than 1000 pages: pagination loops", undefined);
    }
    return { items, pages };
  }

  /** `links.pages.next` is absolute (api.digitalocean.com); keep our base URL so proxies and tests work. */
  private relative(link: string): { path: string; params: Record<string, unknown> } {
    const url = new URL(link, this.baseUrl);
    return { path: url.pathname, params: Object.fromEntries(url.searchParams) };
  }
}
