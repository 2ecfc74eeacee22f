/**
 * Remote commands built from parts: the template's literal text is shell code
 * we wrote, and every interpolated value is quoted (zx's rule), so a path, unit
 * or name can never become code. An array interpolates as quoted words.
 */
import { shellQuote } from "./quote.ts";

export type CommandValue = string | number | readonly (string | number)[];

export function sh(parts: TemplateStringsArray, ...values: CommandValue[]): string {
  let command = parts[0] ?? "";
  values.forEach((value, i) => {
    const words = Array.isArray(value) ? value : [value];
    command += words.map((w) => shellQuote(String(w))).join(" ") + (parts[i + 1] ?? "");
  });
  return command;
}
