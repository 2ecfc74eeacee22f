/**
 * The shared HTTP layer of the Consul, Nomad and Vault clients: TLS with a CA
 * and optional client certificate, a token header, typed errors that carry the
 * API's own message, and blocking-query support.
 */
import { readFileSync } from "node:fs";
import { Agent } from "node:https";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import { setTimeout as sleep } from "node:timers/promises";
import axios, { type AxiosInstance, type AxiosRequestConfig, isAxiosError } from "axios";
import { OperationError } from "../errors.ts";

export type Product = "consul" | "nomad" | "vault";

export interface TlsFiles {
  /** CA certificate (PEM file) that signs the server certificate */
  caFile?: string;
  /** client certificate and key (PEM files) for mTLS */
  certFile?: string;
  keyFile?: string;
  /** server name to verify instead of the host in the address (e.g. server.global.nomad) */
  serverName?: string;
}

export interface ClientOptions extends TlsFiles {
  /** base address such as https://10.99.0.11:8501 */
  address: string;
  token?: string;
  timeoutMs?: number;
}

export class ApiError extends OperationError {
  constructor(
    readonly product: Product,
    readonly method: string,
    readonly path: string,
    readonly status: number | undefined,
    readonly apiMessage: string,
    address: string,
  ) {
    super(`${product} ${method} ${path} failed${status ? ` (HTTP ${status})` : ""}: ${apiMessage}`, {
      hint: hintFor(product, status, apiMessage, address),
    });
  }
}

/** An API error that says the thing asked for does not exist. */
export const isNotFound = (error: ApiError) => error.status === 404;

/**
 * The call's answer, or undefined when the API says what was asked for does not
 * exist (a 404 unless `missing` says otherwise); every other error is thrown.
 */
export async function unlessMissing<T>(
  call: Promise<T>,
  missing: (error: ApiError) => boolean = isNotFound,
): Promise<T | undefined> {
  try {
    return await call;
  } catch (error) {
    if (error instanceof ApiError && missing(error)) return undefined;
    throw error;
  }
}

function hintFor(product: Product, status: number | undefined, message: string, address: string): string | undefined {
  if (status === 403 || status === 401)
    return `Check the ${product} token: it is missing, expired or lacks a policy for this path.`;
  if (status === undefined && /ECONNREFUSED|EHOSTUNREACH|ETIMEDOUT|timeout/i.test(message)) {
    return `Is ${product} running and reachable at ${address}?`;
  }
  if (/certificate|self.signed|unable to verify|TLS|alert/i.test(message)) {
    return "TLS failed: check the CA file, the client certificate and key, and the server name.";
  }
  return undefined;
}

export interface BlockingResult<T> {
  data: T;
  index: number;
}

export class HttpApi {
  readonly http: AxiosInstance;

  constructor(
    readonly product: Product,
    readonly options: ClientOptions,
    tokenHeader: string,
  ) {
    const agent = new Agent({
      ca: options.caFile ? readFileSync(options.caFile) : undefined,
      cert: options.certFile ? readFileSync(options.certFile) : undefined,
      key: options.keyFile ? readFileSync(options.keyFile) : undefined,
      keepAlive: true,
      // verify the name we were told to expect rather than the IP we dialled
      // (an explicit `checkServerIdentity: undefined` would break Node's default check)
      ...(options.serverName ? { servername: options.serverName, checkServerIdentity: expectName(options.serverName) } : {}),
    });
    this.http = axios.create({
      baseURL: options.address.replace(/\/$/, ""),
      httpsAgent: agent,
      timeout: options.timeoutMs ?? 30_000,
      headers: options.token ? { [tokenHeader]: options.token } : {},
      // errors are mapped below; a 404 is data for some callers
      validateStatus: () => true,
      maxRedirects: 0,
    });
  }

  async request<T>(
    method: string,
    path: string,
    config: AxiosRequestConfig = {},
  ): Promise<{ data: T; status: number; headers: Record<string, unknown> }> {
    try {
      const response = await this.http.request({ method, url: path, ...config });
      if (response.status >= 400) {
        throw new ApiError(this.product, method, path, response.status, errorText(response.data), this.options.address);
      }
      return { data: response.data as T, status: response.status, headers: response.headers as Record<string, unknown> };
    } catch (error) {
      if (error instanceof ApiError) throw error;
      const message = isAxiosError(error) ? `${error.code ?? ""} ${error.message}`.trim() : String(error);
      throw new ApiError(this.product, method, path, undefined, message, this.options.address);
    }
  }

  get<T>(path: string, params?: Record<string, unknown>): Promise<T> {
    return this.request<T>("GET", path, { params }).then((r) => r.data);
  }

  /** A GET whose answer is text (logs, files), never parsed as JSON. */
  getText(path: string, params?: Record<string, unknown>, timeoutMs?: number): Promise<string> {
    return this.request<string>("GET", path, {
      params,
      responseType: "text",
      transformResponse: [(data: unknown) => data],
      ...(timeoutMs ? { timeout: timeoutMs } : {}),
    }).then((r) => (typeof r.data === "string" ? r.data : String(r.data ?? "")));
  }

  put<T>(path: string, body?: unknown, params?: Record<string, unknown>): Promise<T> {
    return this.request<T>("PUT", path, { data: body, params }).then((r) => r.data);
  }

  post<T>(path: string, body?: unknown, params?: Record<string, unknown>): Promise<T> {
    return this.request<T>("POST", path, { data: body, params }).then((r) => r.data);
  }

  delete<T>(path: string, params?: Record<string, unknown>): Promise<T> {
    return this.request<T>("DELETE", path, { params }).then((r) => r.data);
  }

  /**
   * A blocking query (Consul and Nomad): returns when the index moves past
   * `index` or after `wait`. The HTTP timeout is stretched to cover the wait.
   */
  async blockingGet<T>(
    path: string,
    index: number,
    wait = "30s",
    params: Record<string, unknown> = {},
  ): Promise<BlockingResult<T>> {
    const waitMs = parseWait(wait);
    const response = await this.request<T>("GET", path, {
      params: { ...params, index, wait },
      // servers add up to wait/16 of jitter
      timeout: waitMs + waitMs / 16 + 10_000,
    });
    const header = Number(response.headers[`x-${this.product}-index`]);
    // a reset or missing index must not make the caller spin (Consul's advice: restart from 0)
    const next = Number.isFinite(header) && header > 0 ? header : 0;
    return { data: response.data, index: next < index ? 0 : next };
  }

  /** Follow a blocking endpoint until `done` returns a value or the deadline passes. */
  async waitFor<T, R>(
    path: string,
    done: (data: T) => R | undefined,
    options: { timeoutMs: number; params?: Record<string, unknown>; what: string },
  ): Promise<R> {
    const deadline = Date.now() + options.timeoutMs;
    let index = 0;
    let last: T | undefined;
    let lastError: ApiError | undefined;
    while (Date.now() < deadline) {
      const remaining = Math.max(1, Math.min(30, Math.ceil((deadline - Date.now()) / 1000)));
      let result: BlockingResult<T>;
      try {
        result = await this.blockingGet<T>(path, index, `${remaining}s`, options.params);
      } catch (error) {
        // an agent that is still starting refuses or resets connections: that is "not yet"
        if (!(error instanceof ApiError) || error.status !== undefined) throw error;
        lastError = error;
        await sleep(500);
        continue;
      }
      last = result.data;
      const value = done(result.data);
      if (value !== undefined) return value;
      index = result.index;
    }
    throw new OperationError(`Timed out after ${Math.round(options.timeoutMs / 1000)}s waiting for ${options.what}.`, {
      details:
        last !== undefined
          ? [`last answer from ${this.product}: ${JSON.stringify(last).slice(0, 300)}`]
          : lastError
            ? [lastError.message]
            : [],
    });
  }
}

function expectName(serverName: string) {
  return (_host: string, cert: PeerCertificate): Error | undefined => checkServerIdentity(serverName, cert);
}

function parseWait(wait: string): number {
  const match = /^(\d+)(ms|s|m)$/.exec(wait);
  if (!match) throw new Error(`invalid wait duration ${wait}`);
  const value = Number(match[1]);
  return match[2] === "ms" ? value : match[2] === "s" ? value * 1000 : value * 60_000;
}

function errorText(body: unknown): string {
  if (typeof body === "string") return body.trim() || "(empty body)";
  if (body && typeof body === "object") {
    const errors = (body as { errors?: unknown }).errors;
    if (Array.isArray(errors) && errors.length) return errors.join("; ");
    return JSON.stringify(body).slice(0, 500);
  }
  return "(empty body)";
}
