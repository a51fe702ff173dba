/**
 * One held-max generator process (bench/held-max/generator.ts) seen from the scenario: its JSON
 * lines (progress, deliveries, error samples), commands on its stdin, and the sums over all of
 * them.
 */
import { onStdoutLine, type Spawned } from '../lib/processes.js';
import { sleep } from '../lib/stats.js';
import type { DeliveryLine, GeneratorCommand, GeneratorLine, ProgressLine } from './types.js';
import { log } from './run-support.js';

export class GeneratorProcess {
  progress: ProgressLine | null = null;
  readonly deliveries = new Map<number, DeliveryLine>();
  errorSamples: string[] = [];

  constructor(
    readonly index: number,
    readonly spawned: Spawned,
    readonly sources: string[],
    readonly listeners: number,
  ) {
    onStdoutLine(spawned, (line) => {
      let parsed: GeneratorLine;
      try {
        parsed = JSON.parse(line) as GeneratorLine;
      } catch {
        log(`generator ${index}: ${line.slice(0, 200)}`);
        return;
      }
      if (parsed.type === 'progress') this.progress = parsed;
      else if (parsed.type === 'delivery') this.deliveries.set(parsed.round, parsed);
      else this.errorSamples = parsed.samples;
    });
    spawned.child.stderr?.on('data', (chunk: Buffer) => {
      process.stderr.write(chunk);
    });
  }

  send(command: GeneratorCommand): void {
    const stdin = this.spawned.child.stdin;
    if (stdin && !stdin.destroyed) stdin.write(`${JSON.stringify(command)}\n`);
  }

  get alive(): boolean {
    return this.spawned.child.exitCode === null && this.spawned.child.signalCode === null;
  }
}

export function totals(generators: readonly GeneratorProcess[]): {
  connected: number;
  armed: number;
  held: number;
  failed: number;
  notifications: number;
  open: number;
  reconnects: number;
  reconnectAnswers: number;
  refused: number;
  errors: Record<string, number>;
  cpuMs: number;
} {
  const out = {
    connected: 0,
    armed: 0,
    held: 0,
    failed: 0,
    notifications: 0,
    open: 0,
    reconnects: 0,
    reconnectAnswers: 0,
    refused: 0,
    errors: {} as Record<string, number>,
    cpuMs: 0,
  };
  for (const g of generators) {
    const p = g.progress;
    if (!p) continue;
    out.connected += p.connected;
    out.armed += p.armed;
    out.held += p.held;
    out.failed += p.failed;
    out.notifications += p.notifications;
    out.open += p.open;
    out.reconnects += p.reconnects;
    out.reconnectAnswers += p.reconnectAnswers;
    out.cpuMs += p.cpuMs;
    for (const [kind, count] of Object.entries(p.errors)) {
      out.errors[kind] = (out.errors[kind] ?? 0) + count;
      if (kind.startsWith('status:')) out.refused += count;
    }
  }
  return out;
}

/** Asks every generator for a fresh progress line and waits for it (up to `timeoutMs`). */
export async function freshProgress(
  generators: readonly GeneratorProcess[],
  timeoutMs = 2000,
): Promise<void> {
  const before = generators.map((g) => g.progress);
  for (const g of generators) g.send({ cmd: 'progress' });
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (generators.every((g, i) => !g.alive || g.progress !== before[i])) return;
    await sleep(20);
  }
}
