/**
 * An in-process stand-in for the DigitalOcean API: a simulated account
 * (keys, VPCs with a default one, droplets that stay `new` for a while,
 * firewalls, volumes, projects, actions) behind a real HTTP server. Every
 * request and every answer is checked against the OpenAPI contract; a
 * mismatch is recorded in `violations` and the request is refused, so a test
 * that ends with violations fails.
 */
import { createHash, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Contract, type Operation } from "./contract.ts";

type Json = Record<string, unknown>;

export interface SimOptions {
  token: string;
  region?: string;
  /** how long a new droplet stays `new` (and its create action in-progress) */
  bootMs?: number;
  /** how long a destroyed droplet stays listed and a member of its VPC */
  destroyMs?: number;
  /** foreign keys already in the account (pushes ours to a later page) */
  foreignKeys?: number;
}

interface Exchange {
  method: string;
  path: string;
  query: string;
  status: number;
  operation?: string;
}

interface SimDroplet {
  id: number;
  name: string;
  size: string;
  region: string;
  image: string;
  tags: string[];
  vpc: string;
  privateIp: string;
  publicIp: string;
  createdAt: number;
  destroyedAt?: number;
  volumeIds: string[];
}

const sizes = [
  { slug: "s-1vcpu-1gb", memory: 1024, vcpus: 1, disk: 25, price_monthly: 6, price_hourly: 0.00893 },
  { slug: "s-1vcpu-2gb", memory: 2048, vcpus: 1, disk: 50, price_monthly: 12, price_hourly: 0.01786 },
  { slug: "s-2vcpu-4gb", memory: 4096, vcpus: 2, disk: 80, price_monthly: 24, price_hourly: 0.03571 },
];

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");

export class DoSimulator {
  readonly contract: Contract;
  readonly violations: string[] = [];
  readonly log: Exchange[] = [];
  url = "";
  private server?: Server;
  private nextId = 1000;
  private lingering: { vpc: string; until: number }[] = [];
  /** tags created implicitly by tagging a resource (as the API does) */
  readonly tagsSeen = new Set<string>();
  private readonly region: string;
  private readonly bootMs: number;
  private readonly destroyMs: number;

  keys: Json[] = [];
  vpcs: Json[] = [];
  droplets: SimDroplet[] = [];
  firewalls: Json[] = [];
  volumes: (Json & { droplet_ids: number[]; region: string })[] = [];
  projects: (Json & { resources: string[] })[] = [];
  actions = new Map<
    number,
    { id: number; type: string; doneAt: number; resourceId: number; resourceType: string; errored?: boolean }
  >();

  /** answer the next N requests with 429 (retry-after seconds) */
  throttle = { count: 0, retryAfter: 1 };
  /** droplet names whose create is applied but answered only after this delay (a client timeout) */
  slowCreates = new Map<string, number>();
  /** runs after the key list was served: e.g. a parallel run uploading the same key */
  afterKeyList?: () => void;
  /** droplet names to which a create answers 500 after applying it */
  failingCreates = new Set<string>();
  /** the next N successful answers say only 2 requests are left until the reset */
  nearlySpent = 0;
  /** answer the next N GET requests with 500 (a flaky load balancer) */
  serverErrors = 0;
  /** droplet names whose create is refused (422) without creating anything */
  rejectCreates = new Set<string>();
  /** operation id (e.g. volumes_delete) → the error it answers, the next `times` calls (default: every call) */
  refuse = new Map<string, { status: number; id: string; message: string; times?: number }>();

  constructor(readonly options: SimOptions) {
    this.contract = new Contract();
    this.region = options.region ?? "lon1";
    this.bootMs = options.bootMs ?? 300;
    this.destroyMs = options.destroyMs ?? 300;
    this.vpcs.push({
      id: randomUUID(),
      urn: "",
      name: `default-${this.region}`,
      region: this.region,
      ip_range: "10.106.0.0/20",
      default: true,
      created_at: iso(Date.now()),
      description: "",
    });
    for (const vpc of this.vpcs) vpc.urn = `do:vpc:${vpc.id}`;
    this.projects.push({
      id: randomUUID(),
      owner_uuid: randomUUID(),
      owner_id: 1,
      name: "first-project",
      description: "",
      purpose: "Just trying out DigitalOcean",
      environment: "Development",
      is_default: true,
      created_at: iso(Date.now()),
      updated_at: iso(Date.now()),
      resources: [],
    });
    for (let i = 0; i < (options.foreignKeys ?? 0); i++) {
      const blob = Buffer.alloc(51, i % 251).toString("base64");
      this.keys.push({
        id: this.id(),
        name: `someone-${i}`,
        fingerprint: `00:11:${String(i).padStart(4, "0")}`,
        public_key: `ssh-ed25519 ${blob} x`,
      });
    }
  }

  private id(): number {
    return this.nextId++;
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      // a fault in the simulator or the contract checker must fail the test, not hang the client
      this.handle(req, res).catch((error: unknown) => {
        this.violations.push(`simulator: ${req.method} ${req.url}: ${String(error)}`);
        if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ id: "simulator_error", message: String(error) }));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Requests per operation id, for measuring what a run costs. */
  counts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const e of this.log) counts[e.operation ?? "?"] = (counts[e.operation ?? "?"] ?? 0) + 1;
    return counts;
  }

  /** Droplets still listed (not yet gone after a destroy). */
  liveDroplets(now = Date.now()): SimDroplet[] {
    return this.droplets.filter((d) => d.destroyedAt === undefined || now - d.destroyedAt < this.destroyMs);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://sim");
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString();
    const method = req.method ?? "GET";
    const exchange: Exchange = { method, path: url.pathname, query: url.search, status: 0 };
    this.log.push(exchange);
    const send = (status: number, body?: unknown, headers: Record<string, string> = {}, operation?: Operation) => {
      exchange.status = status;
      if (operation) {
        const problems = this.contract.checkResponse(operation, status, body);
        if (problems.length) this.violations.push(...problems.map((p) => `response: ${p}`));
      }
      // an almost spent budget is announced once, with its reset two seconds ahead
      const nearlySpent = this.nearlySpent > 0 && status < 400 && this.nearlySpent--;
      const reset = String(Math.floor(Date.now() / 1000) + (nearlySpent ? 2 : 60));
      res.writeHead(status, {
        "ratelimit-limit": "5000",
        "ratelimit-remaining": nearlySpent ? "2" : "4999",
        "ratelimit-reset": reset,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...headers,
      });
      res.end(body === undefined ? undefined : JSON.stringify(body));
    };

    let body: unknown;
    if (text.length) {
      try {
        body = JSON.parse(text);
      } catch {
        this.violations.push(`request: ${method} ${url.pathname}: body is not JSON`);
        return send(400, { id: "bad_request", message: "body is not JSON" });
      }
    }
    const { problems, operation, params } = this.contract.checkRequest(method, url.pathname, url.searchParams, body);
    exchange.operation = operation?.id;
    if (req.headers.authorization !== `Bearer ${this.options.token}`) {
      return send(401, { id: "unauthorized", message: "Unable to authenticate you", request_id: randomUUID() }, {}, operation);
    }
    if (problems.length) {
      this.violations.push(...problems.map((p) => `request: ${p}`));
      return send(400, { id: "bad_request", message: problems.join("; ") });
    }
    if (this.throttle.count > 0) {
      this.throttle.count--;
      return send(
        429,
        { id: "too_many_requests", message: "API Rate limit exceeded.", request_id: randomUUID() },
        { "retry-after": String(this.throttle.retryAfter), "ratelimit-remaining": "0" },
        operation,
      );
    }
    if (method === "GET" && this.serverErrors > 0) {
      this.serverErrors--;
      return send(
        500,
        { id: "server_error", message: "Server was unable to give you a response.", request_id: randomUUID() },
        {},
        operation,
      );
    }
    const answer = this.route(operation!, params, url.searchParams, body as Json);
    if (answer.delayMs) await new Promise((r) => setTimeout(r, answer.delayMs));
    if (res.destroyed) return; // the client gave up (timeout); the change stays applied
    send(answer.status, answer.body, answer.headers, operation);
    const lastPage = !(answer.body as { links?: { pages?: { next?: string } } } | undefined)?.links?.pages?.next;
    if (operation!.id === "sshKeys_list" && lastPage) this.afterKeyList?.();
  }

  private page(items: unknown[], key: string, path: string, query: URLSearchParams) {
    const perPage = Math.min(Number(query.get("per_page") ?? 20), 200);
    const page = Number(query.get("page") ?? 1);
    const last = Math.max(1, Math.ceil(items.length / perPage));
    const link = (p: number) => {
      const q = new URLSearchParams(query);
      q.set("page", String(p));
      q.set("per_page", String(perPage));
      // like the real API: absolute links on api.digitalocean.com
      return `https://api.digitalocean.com${path}?${q}`;
    };
    const pages: Json = {};
    if (page < last) Object.assign(pages, { next: link(page + 1), last: link(last) });
    if (page > 1) Object.assign(pages, { first: link(1), prev: link(page - 1) });
    return {
      [key]: items.slice((page - 1) * perPage, page * perPage),
      links: { pages },
      meta: { total: items.length },
    };
  }

  private error(status: number, id: string, message: string) {
    return { status, body: { id, message, request_id: randomUUID() } };
  }

  private dropletJson(d: SimDroplet): Json {
    const size = sizes.find((s) => s.slug === d.size)!;
    const active = Date.now() - d.createdAt >= this.bootMs;
    const vpc = this.vpcs.find((v) => v.id === d.vpc);
    return {
      id: d.id,
      name: d.name,
      memory: size.memory,
      vcpus: size.vcpus,
      disk: size.disk,
      locked: false,
      status: active ? "active" : "new",
      kernel: null,
      created_at: iso(d.createdAt),
      features: ["monitoring", "private_networking"],
      backup_ids: [],
      next_backup_window: null,
      snapshot_ids: [],
      image: { id: 7, name: "12 x64", distribution: "Debian", slug: d.image, public: true, regions: [d.region], type: "base" },
      volume_ids: d.volumeIds,
      size: this.sizeJson(size),
      size_slug: d.size,
      networks: {
        v4: active
          ? [
              { ip_address: d.privateIp, netmask: "255.255.255.0", gateway: "", type: "private" },
              { ip_address: d.publicIp, netmask: "255.255.240.0", gateway: "203.0.113.1", type: "public" },
            ]
          : [],
        v6: [],
      },
      region: { name: "London 1", slug: d.region, features: ["backups"], available: true, sizes: sizes.map((s) => s.slug) },
      tags: d.tags,
      ...(vpc ? { vpc_uuid: d.vpc } : {}),
    };
  }

  private sizeJson(size: (typeof sizes)[number]) {
    return { ...size, transfer: 1, regions: [this.region, "ams3"], available: true, description: "Basic" };
  }

  private actionJson(id: number) {
    const a = this.actions.get(id)!;
    const done = Date.now() >= a.doneAt;
    return {
      id,
      status: done ? (a.errored ? "errored" : "completed") : "in-progress",
      type: a.type,
      started_at: iso(a.doneAt - this.bootMs),
      completed_at: done ? iso(a.doneAt) : null,
      resource_id: a.resourceId,
      resource_type: a.resourceType,
      region_slug: this.region,
    };
  }

  private newAction(type: string, resourceId: number, resourceType: string, ms: number): number {
    const id = this.id();
    this.actions.set(id, { id, type, doneAt: Date.now() + ms, resourceId, resourceType });
    return id;
  }

  /** The next free address of a VPC range (from .2). */
  private nextPrivateIp(vpcId: string): string {
    const vpc = this.vpcs.find((v) => v.id === vpcId)!;
    const [a, b, c] = String(vpc.ip_range).split(".");
    const used = this.droplets.filter((d) => d.vpc === vpcId).length;
    return `${a}.${b}.${c}.${used + 2}`;
  }

  private route(
    op: Operation,
    params: Record<string, string>,
    query: URLSearchParams,
    body: Json,
  ): { status: number; body?: unknown; headers?: Record<string, string>; delayMs?: number } {
    const path = op.template;
    const now = Date.now();
    // reap droplets whose destroy has finished: their volumes detach, their VPC membership ends
    for (const d of this.droplets.filter((d) => d.destroyedAt !== undefined && now - d.destroyedAt >= this.destroyMs)) {
      // like the real VPC service, membership ends a while after the droplet has left the listing
      this.lingering.push({ vpc: d.vpc, until: d.destroyedAt! + 2 * this.destroyMs });
      for (const v of this.volumes) v.droplet_ids = v.droplet_ids.filter((id) => id !== d.id);
      for (const p of this.projects) p.resources = p.resources.filter((u) => u !== `do:droplet:${d.id}`);
    }
    this.droplets = this.droplets.filter((d) => d.destroyedAt === undefined || now - d.destroyedAt < this.destroyMs);

    const refusal = this.refuse.get(op.id);
    if (refusal && (refusal.times === undefined || refusal.times > 0)) {
      if (refusal.times !== undefined) refusal.times--;
      return this.error(refusal.status, refusal.id, refusal.message);
    }

    switch (op.id) {
      case "account_get":
        return {
          status: 200,
          body: {
            account: {
              droplet_limit: 25,
              floating_ip_limit: 3,
              email: "sim@example.com",
              uuid: randomUUID(),
              email_verified: true,
              status: "active",
              status_message: "",
            },
          },
        };
      case "sizes_list":
        return {
          status: 200,
          body: this.page(
            sizes.map((s) => this.sizeJson(s)),
            "sizes",
            path,
            query,
          ),
        };
      case "sshKeys_list":
        return { status: 200, body: this.page(this.keys, "ssh_keys", path, query) };
      case "sshKeys_create": {
        const blob = String(body.public_key).split(/\s+/)[1] ?? "";
        const fingerprint = md5(Buffer.from(blob, "base64"));
        if (this.keys.some((k) => k.fingerprint === fingerprint)) {
          return this.error(422, "unprocessable_entity", "SSH Key is already in use on your account");
        }
        const key = { id: this.id(), name: body.name, fingerprint, public_key: body.public_key };
        this.keys.push(key);
        return { status: 201, body: { ssh_key: key } };
      }
      case "sshKeys_delete": {
        const idOrFp = params.ssh_key_identifier;
        const before = this.keys.length;
        this.keys = this.keys.filter((k) => String(k.id) !== idOrFp && k.fingerprint !== idOrFp);
        return before === this.keys.length
          ? this.error(404, "not_found", "The resource you requested could not be found.")
          : { status: 204 };
      }
      case "vpcs_list":
        return { status: 200, body: this.page(this.vpcs, "vpcs", path, query) };
      case "vpcs_create": {
        if (this.vpcs.some((v) => v.name === body.name)) return this.error(422, "unprocessable_entity", "name is already in use");
        const id = randomUUID();
        const vpc = {
          id,
          urn: `do:vpc:${id}`,
          name: body.name,
          region: body.region,
          ip_range: body.ip_range,
          description: body.description ?? "",
          default: false,
          created_at: iso(now),
        };
        this.vpcs.push(vpc);
        return { status: 201, body: { vpc } };
      }
      case "vpcs_delete": {
        const vpc = this.vpcs.find((v) => v.id === params.vpc_id);
        if (!vpc) return this.error(404, "not_found", "The resource you requested could not be found.");
        if (vpc.default) return this.error(403, "forbidden", "Cannot delete the default VPC of a region.");
        this.lingering = this.lingering.filter((l) => l.until > now);
        if (this.droplets.some((d) => d.vpc === vpc.id) || this.lingering.some((l) => l.vpc === vpc.id)) {
          return this.error(403, "forbidden", "Can not delete VPC with members");
        }
        this.vpcs = this.vpcs.filter((v) => v !== vpc);
        return { status: 204 };
      }
      case "droplets_list": {
        const tag = query.get("tag_name");
        const list = this.droplets.filter((d) => !tag || d.tags.includes(tag)).map((d) => this.dropletJson(d));
        return { status: 200, body: this.page(list, "droplets", path, query) };
      }
      case "droplets_create": {
        if (this.rejectCreates.delete(String(body.name)))
          return this.error(422, "unprocessable_entity", "simulated: out of capacity in this region");
        if (!body.name) return this.error(422, "unprocessable_entity", "the simulator only supports single creates");
        if (!sizes.some((s) => s.slug === body.size))
          return this.error(422, "unprocessable_entity", "You specified an invalid size for Droplet creation.");
        if (body.region !== this.region) return this.error(422, "unprocessable_entity", "Region is not available.");
        const vpc = this.vpcs.find((v) => v.id === body.vpc_uuid);
        if (body.vpc_uuid !== undefined && !vpc)
          return this.error(422, "unprocessable_entity", "vpc_uuid is not a VPC of this account");
        for (const key of (body.ssh_keys as string[]) ?? []) {
          if (!this.keys.some((k) => k.fingerprint === key || String(k.id) === key))
            return this.error(422, "unprocessable_entity", `ssh key ${key} not found`);
        }
        const id = this.id();
        const vpcId = vpc ? String(vpc.id) : String(this.vpcs.find((v) => v.default)!.id);
        const droplet: SimDroplet = {
          id,
          name: String(body.name),
          size: String(body.size),
          region: String(body.region),
          image: String(body.image),
          tags: [...((body.tags as string[]) ?? [])],
          vpc: vpcId,
          privateIp: this.nextPrivateIp(vpcId),
          publicIp: `203.0.113.${(id % 200) + 10}`,
          createdAt: now,
          volumeIds: [],
        };
        this.droplets.push(droplet);
        for (const tag of droplet.tags) this.tagsSeen.add(tag);
        const actionId = this.newAction("create", id, "droplet", this.bootMs);
        const answer = {
          status: 202,
          body: {
            droplet: this.dropletJson(droplet),
            links: { actions: [{ id: actionId, rel: "create", href: `https://api.digitalocean.com/v2/actions/${actionId}` }] },
          },
        };
        if (this.failingCreates.delete(droplet.name))
          return this.error(500, "server_error", "Server was unable to give you a response.");
        return { ...answer, delayMs: this.slowCreates.get(droplet.name) };
      }
      case "droplets_destroy": {
        const droplet = this.droplets.find((d) => d.id === Number(params.droplet_id) && d.destroyedAt === undefined);
        if (!droplet) return this.error(404, "not_found", "The resource you requested could not be found.");
        droplet.destroyedAt = now;
        return { status: 204 };
      }
      case "actions_get": {
        if (!this.actions.has(Number(params.action_id)))
          return this.error(404, "not_found", "The resource you requested could not be found.");
        return { status: 200, body: { action: this.actionJson(Number(params.action_id)) } };
      }
      case "firewalls_list":
        return { status: 200, body: this.page(this.firewalls, "firewalls", path, query) };
      case "firewalls_create": {
        const firewall = {
          id: randomUUID(),
          status: "succeeded",
          created_at: iso(now),
          pending_changes: [],
          droplet_ids: [],
          ...body,
        };
        this.firewalls.push(firewall);
        return { status: 202, body: { firewall } };
      }
      case "firewalls_delete": {
        const before = this.firewalls.length;
        this.firewalls = this.firewalls.filter((f) => f.id !== params.firewall_id);
        return before === this.firewalls.length
          ? this.error(404, "not_found", "The resource you requested could not be found.")
          : { status: 204 };
      }
      case "volumes_list": {
        const region = query.get("region");
        return {
          status: 200,
          body: this.page(
            this.volumes.filter((v) => !region || v.region === region).map((v) => this.volumeJson(v)),
            "volumes",
            path,
            query,
          ),
        };
      }
      case "volumes_create": {
        const volume = {
          id: randomUUID(),
          name: body.name,
          size_gigabytes: body.size_gigabytes,
          description: body.description ?? "",
          created_at: iso(now),
          droplet_ids: [] as number[],
          tags: (body.tags as string[]) ?? [],
          region: String(body.region),
          filesystem_type: body.filesystem_type ?? "",
          filesystem_label: body.filesystem_label ?? "",
        };
        this.volumes.push(volume);
        for (const tag of volume.tags) this.tagsSeen.add(tag);
        return { status: 201, body: { volume: this.volumeJson(volume) } };
      }
      case "volumeActions_post_byId": {
        const volume = this.volumes.find((v) => v.id === params.volume_id);
        const droplet = this.droplets.find((d) => d.id === body.droplet_id);
        if (!volume || !droplet) return this.error(404, "not_found", "The resource you requested could not be found.");
        if (body.type !== "attach") return this.error(422, "unprocessable_entity", "the simulator only attaches");
        if (volume.droplet_ids.length) return this.error(422, "unprocessable_entity", "volume is already attached");
        volume.droplet_ids.push(droplet.id);
        droplet.volumeIds.push(volume.id as string);
        const actionId = this.newAction("attach_volume", droplet.id, "volume", this.bootMs);
        return { status: 202, body: { action: this.actionJson(actionId) } };
      }
      case "volumeActions_get":
        if (!this.actions.has(Number(params.action_id)))
          return this.error(404, "not_found", "The resource you requested could not be found.");
        return { status: 200, body: { action: this.actionJson(Number(params.action_id)) } };
      case "volumes_delete": {
        const volume = this.volumes.find((v) => v.id === params.volume_id);
        if (!volume) return this.error(404, "not_found", "The resource you requested could not be found.");
        if (volume.droplet_ids.length) return this.error(409, "conflict", "volume is attached to a droplet; detach it first");
        this.volumes = this.volumes.filter((v) => v !== volume);
        for (const p of this.projects) p.resources = p.resources.filter((u) => u !== `do:volume:${volume.id}`);
        return { status: 204 };
      }
      case "tags_delete": {
        const tag = params.tag_id!;
        const used =
          this.droplets.some((d) => d.tags.includes(tag)) ||
          this.volumes.some((v) => (v.tags as string[]).includes(tag)) ||
          this.firewalls.some((f) => ((f.tags as string[] | null) ?? []).includes(tag));
        if (!used && !this.tagsSeen.has(tag))
          return this.error(404, "not_found", "The resource you requested could not be found.");
        // the real API untags resources; the provider deletes the tag last, so nothing should still carry it
        if (used) this.violations.push(`semantics: tag ${tag} deleted while resources still carry it`);
        this.tagsSeen.delete(tag);
        return { status: 204 };
      }
      case "projects_list":
        return { status: 200, body: this.page(this.projects.map(projectJson), "projects", path, query) };
      case "projects_create": {
        const project = {
          id: randomUUID(),
          owner_uuid: randomUUID(),
          owner_id: 1,
          name: body.name,
          description: "",
          purpose: body.purpose,
          environment: body.environment,
          is_default: false,
          created_at: iso(now),
          updated_at: iso(now),
          resources: [] as string[],
        };
        this.projects.push(project as never);
        return { status: 201, body: { project: projectJson(project) } };
      }
      case "projects_list_resources": {
        const project = this.projects.find((p) => p.id === params.project_id);
        if (!project) return this.error(404, "not_found", "The resource you requested could not be found.");
        const list = project.resources.map((urn) => ({ urn, assigned_at: iso(now), status: "ok" }));
        return { status: 200, body: this.page(list, "resources", path, query) };
      }
      case "projects_assign_resources": {
        const project = this.projects.find((p) => p.id === params.project_id);
        if (!project) return this.error(404, "not_found", "The resource you requested could not be found.");
        const urns = body.resources as string[];
        for (const urn of urns) {
          for (const p of this.projects) p.resources = p.resources.filter((u) => u !== urn);
          project.resources.push(urn);
        }
        return { status: 200, body: { resources: urns.map((urn) => ({ urn, assigned_at: iso(now), status: "assigned" })) } };
      }
      case "projects_delete": {
        const project = this.projects.find((p) => p.id === params.project_id);
        if (!project) return this.error(404, "not_found", "The resource you requested could not be found.");
        if (project.resources.length) return this.error(412, "precondition_failed", "cannot delete a project with resources");
        this.projects = this.projects.filter((p) => p !== project);
        return { status: 204 };
      }
      default:
        return this.error(501, "not_implemented", `the simulator does not implement ${op.id}`);
    }
  }

  private volumeJson(v: (typeof this.volumes)[number]): Json {
    return {
      ...v,
      region: { name: "London 1", slug: v.region, features: ["backups"], available: true, sizes: sizes.map((s) => s.slug) },
    };
  }
}

function projectJson(p: Json): Json {
  // the simulator's own bookkeeping is not part of the API's project object
  return Object.fromEntries(Object.entries(p).filter(([key]) => key !== "resources"));
}

function md5(bytes: Buffer): string {
  return createHash("md5").update(bytes).digest("hex").match(/../g)!.join(":");
}
