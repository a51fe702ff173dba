/**
 * Keeps bench results in docs/benchmarks.md: each run key owns the text between
 * `<!-- bench:KEY:start -->` and `<!-- bench:KEY:end -->`. A key seen for the first time is
 * inserted before `<!-- bench:SCENARIO:next -->` (or appended when that marker is absent).
 * Everything outside the markers is hand-written and left alone.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export function upsertSection(file: string, scenario: string, key: string, body: string): void {
  const start = `<!-- bench:${scenario}:${key}:start -->`;
  const end = `<!-- bench:${scenario}:${key}:end -->`;
  const next = `<!-- bench:${scenario}:next -->`;
  const block = `${start}\n${body.trim()}\n${end}`;
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
