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
}

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

  return {
    info: (m) => emit("info", m),
    success: (m) => emit("success", m),
    warn: (m) => emit("warn", m),
    debug: (m) => {
      if (options.debug) emit("debug", m);
    },
    step(title) {
      const started = Date.now();
      emit("step", `${title} …`);
      const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
      return {
        update: (detail) => emit("debug", `${title}: ${detail}`),
        done: (summary) => emit("success", `${title}${summary ? `: ${summary}` : ""} (${elapsed()})`),
        fail: (summary) => emit("error", `${title}${summary ? `: ${summary}` : ""} (${elapsed()})`),
      };
    },
  };
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
  };
}

export function printJson(value: unknown): void {
  stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
