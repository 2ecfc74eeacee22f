/**
 * Terminal output kept apart from core logic: library code emits messages
 * through a `Reporter`; the CLI decides how they look (TTY, plain lines or JSON).
 * Messages never carry secrets — callers pass paths, not values.
 */
import { stderr, stdout } from "node:process";

export type MessageKind = "info" | "success" | "warn" | "error" | "debug" | "step";

export interface Reporter {
  info(message: string): void;
  success(message: string): void;
  warn(message: string): void;
  debug(message: string): void;
  /** Start a long-running step; the returned function ends it. */
  step(title: string): StepHandle;
  /**
   * Start a long piece of work inside a step (a build, a download): a line when it
   * starts and when it ends, whatever the output, and it is named in the heartbeat.
   */
  activity: StartActivity;
}

export type StartActivity = (title: string) => ActivityHandle;

export interface ActivityHandle {
  done(summary?: string): void;
  fail(summary?: string): void;
}

/** Time and timers, injectable so the heartbeat can be tested with a fake clock. */
export interface ReporterClock {
  now(): number;
  setInterval(callback: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

const systemClock: ReporterClock = {
  now: () => Date.now(),
  setInterval: (callback, ms) => setInterval(callback, ms).unref(), // never keeps the process alive
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
};

/** How often a line says what is still running while steps or activities are open. */
export const heartbeatMs = 60_000;

export interface StepHandle {
  update(detail: string): void;
  done(summary?: string): void;
  fail(summary?: string): void;
}

export interface ReporterOptions {
  debug?: boolean;
  /** in JSON mode, human messages go to stderr so stdout stays parseable */
  json?: boolean;
  /** false forces plain lines even on a terminal */
  tty?: boolean;
  write?: (line: string) => void;
  clock?: ReporterClock;
  heartbeatMs?: number;
}

const colours = {
  info: "",
  success: "\x1b[32m",
  warn: "\x1b[33m",
  error: "\x1b[31m",
  debug: "\x1b[2m",
  step: "\x1b[36m",
} satisfies Record<MessageKind, string>;

const symbols = {
  info: "•",
  success: "✔",
  warn: "!",
  error: "✖",
  debug: "·",
  step: "→",
} satisfies Record<MessageKind, string>;

export function createReporter(options: ReporterOptions = {}): Reporter {
  const stream = options.json ? stderr : stdout;
  const tty = options.tty ?? (Boolean(stream.isTTY) && process.env.CI !== "true" && !process.env.NO_COLOR);
  const write = options.write ?? ((line: string) => stream.write(`${line}\n`));
  const format = (kind: MessageKind, message: string) =>
    tty ? `${colours[kind]}${symbols[kind]}\x1b[0m ${message}` : `${symbols[kind]} ${message}`;
  const emit = (kind: MessageKind, message: string) => write(format(kind, message));
  const clock = options.clock ?? systemClock;
  const running = heartbeat(clock, options.heartbeatMs ?? heartbeatMs, (line) => emit("info", line));
  const elapsedSince = (started: number) => `${((clock.now() - started) / 1000).toFixed(1)}s`;

  return {
    info: (m) => emit("info", m),
    success: (m) => emit("success", m),
    warn: (m) => emit("warn", m),
    debug: (m) => {
      if (options.debug) emit("debug", m);
    },
    step(title) {
      const started = clock.now();
      emit("step", `${title} …`);
      const end = running.open(title, started);
      return {
        update: (detail) => emit("debug", `${title}: ${detail}`),
        done: (summary) => {
          end();
          emit("success", `${title}${summary ? `: ${summary}` : ""} (${elapsedSince(started)})`);
        },
        fail: (summary) => {
          end();
          emit("error", `${title}${summary ? `: ${summary}` : ""} (${elapsedSince(started)})`);
        },
      };
    },
    activity(title) {
      const started = clock.now();
      emit("info", `${title} …`);
      const end = running.open(title, started);
      return {
        done: (summary) => {
          end();
          emit("info", `${title}: ${summary ?? "done"} (${elapsedSince(started)})`);
        },
        fail: (summary) => {
          end();
          emit("warn", `${title}: ${summary ?? "failed"} (${elapsedSince(started)})`);
        },
      };
    },
  };
}

/**
 * While anything is open, one line every `everyMs` naming what runs and for how
 * long — so a log without a terminal is never silent through a 30-minute build.
 */
function heartbeat(clock: ReporterClock, everyMs: number, say: (line: string) => void) {
  const open = new Map<number, { title: string; started: number }>();
  let next = 0;
  let timer: unknown;
  const beat = () => {
    const now = clock.now();
    const items = [...open.values()].map((o) => `${o.title} (${formatDuration(now - o.started)})`);
    say(`still running: ${items.join(", ")}`);
  };
  return {
    open(title: string, started: number): () => void {
      const id = next++;
      open.set(id, { title, started });
      if (timer === undefined) timer = clock.setInterval(beat, everyMs);
      return () => {
        if (!open.delete(id)) return;
        if (!open.size && timer !== undefined) {
          clock.clearInterval(timer);
          timer = undefined;
        }
      };
    },
  };
}

/** 75_000 -> "1m 15s"; 3_723_000 -> "1h 2m 3s". */
export function formatDuration(ms: number): string {
  const total = Math.floor(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  return h ? `${h}h ${m}m ${sec}s` : m ? `${m}m ${sec}s` : `${sec}s`;
}

/** A reporter that records messages, for tests and for `--output json` summaries. */
export function createRecordingReporter(): Reporter & { messages: { kind: MessageKind; text: string }[] } {
  const messages: { kind: MessageKind; text: string }[] = [];
  const push = (kind: MessageKind) => (text: string) => messages.push({ kind, text });
  return {
    messages,
    info: push("info"),
    success: push("success"),
    warn: push("warn"),
    debug: push("debug"),
    step(title) {
      push("step")(title);
      return { update: push("debug"), done: (s) => push("success")(s ?? title), fail: (s) => push("error")(s ?? title) };
    },
    activity(title) {
      push("info")(`${title} …`);
      return { done: (s) => push("info")(`${title}: ${s ?? "done"}`), fail: (s) => push("warn")(`${title}: ${s ?? "failed"}`) };
    },
  };
}

export function printJson(value: unknown): void {
  stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
