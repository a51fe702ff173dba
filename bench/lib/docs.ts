/**
 * Keeps bench results in docs/benchmarks.md: each run key owns the text between
 * `<!-- bench:KEY:start -->` and `<!-- bench:KEY:end -->`. A key seen for the first time is
 * inserted before `<!-- bench:SCENARIO:next -->` (or appended when that marker is absent).
 * Everything outside the markers is hand-written and left alone. Every section starts with the
 * line (under its heading) that says which code it measured and when (`measuredLine`).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { SourceInfo } from './machine.js';

/** Which epush code a run measured, and when it ran. */
export interface Measured {
  /** The short commit, or a label such as `abc1234, built in /tmp/x` ('?' when unknown). */
  readonly commit: string;
  /** The code had uncommitted changes (under src/ or the package files). */
  readonly dirty: boolean;
  /** When the run started (a Date or an ISO string). */
  readonly at: Date | string;
}

/** A run's `Measured` from the source info the bench records (`sourceInfo`). */
export function measuredFrom(source: SourceInfo, at: Date | string): Measured {
  return { commit: source.commit, dirty: source.uncommitted.length > 0, at };
}

/** `_Measured 2026-12-06 22:40 UTC on epush commit `abc1234`._` (the first line of a section). */
export function measuredLine({ commit, dirty, at }: Measured): string {
  const when = (typeof at === 'string' ? new Date(at) : at).toISOString().slice(0, 16);
  const changes = dirty ? ' with uncommitted changes' : '';
  return `_Measured ${when.replace('T', ' ')} UTC on epush commit \`${commit}\`${changes}._`;
}

export function upsertSection(
  file: string,
  scenario: string,
  key: string,
  body: string,
  measured: Measured,
): void {
  const start = `<!-- bench:${scenario}:${key}:start -->`;
  const end = `<!-- bench:${scenario}:${key}:end -->`;
  const next = `<!-- bench:${scenario}:next -->`;
  // Under the section's heading when it has one, else first.
  const section = body.trim();
  const headingEnd = section.startsWith('#') ? section.indexOf('\n') : -1;
  const stamped =
    headingEnd === -1
      ? `${measuredLine(measured)}\n\n${section}`
      : `${section.slice(0, headingEnd)}\n\n${measuredLine(measured)}\n${section.slice(headingEnd)}`;
  const block = `${start}\n${stamped}\n${end}`;
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  if (from !== -1 && to > from) {
    text = text.slice(0, from) + block + text.slice(to + end.length);
  } else {
    const at = text.indexOf(next);
    text =
      at === -1
        ? `${text.trimEnd()}\n\n${block}\n`
        : `${text.slice(0, at)}${block}\n\n${text.slice(at)}`;
  }
  writeFileSync(file, text);
}

/** docs/benchmarks.md of this checkout. */
export const BENCHMARKS_MD = fileURLToPath(new URL('../../docs/benchmarks.md', import.meta.url));

/** Writes one run's section of docs/benchmarks.md (see upsertSection). */
export function writeBenchSection(
  scenario: string,
  key: string,
  body: string,
  measured: Measured,
): void {
  upsertSection(BENCHMARKS_MD, scenario, key, body, measured);
}
