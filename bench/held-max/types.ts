/** What the held-max generators and the scenario process say to each other (JSON lines). */

/** The servers held-max can measure. */
export const TARGETS = ['epush', 'nchan'] as const;
export type Target = (typeof TARGETS)[number];

export function isTarget(value: string): value is Target {
  return (TARGETS as readonly string[]).includes(value);
}

/** Printed by a generator on stdout about once a second (and at once when asked). */
export interface ProgressLine {
  readonly type: 'progress';
  readonly generator: number;
  /** Listeners this generator owns. */
  readonly listeners: number;
  /** Sockets currently open (connecting or connected). */
  readonly open: number;
  /** Connected at least once. */
  readonly connected: number;
  /** A listen is outstanding on the connection. */
  readonly armed: number;
  /** Armed for more than a second: the server holds the request. */
  readonly held: number;
  /** Gave up after the reconnect budget. */
  readonly failed: number;
  readonly answers: number;
  readonly emptyAnswers: number;
  /** epush answers with `reconnect: true` (the node sent its held listeners away). */
  readonly reconnectAnswers: number;
  /** Notifications received so far, all rounds together (one per listener per round). */
  readonly notifications: number;
  readonly reconnects: number;
  readonly errors: Record<string, number>;
  /** This generator's user + system CPU so far, ms. */
  readonly cpuMs: number;
}

/** Printed once per `report` command: the deliveries of one notification. */
export interface DeliveryLine {
  readonly type: 'delivery';
  readonly generator: number;
  readonly round: number;
  /** Listeners that got the notification exactly once. */
  readonly delivered: number;
  /** Extra copies of it (a listener that got it more than once counts once per extra copy). */
  readonly duplicates: number;
  /** Answers that carried some other notification during the round. */
  readonly foreign: number;
  /** process.hrtime.bigint() of the first and last delivery, µs (CLOCK_MONOTONIC). */
  readonly firstUs: number | null;
  readonly lastUs: number | null;
  /** Publish → delivery of each listener that got it, ms rounded to 0.01. */
  readonly latenciesMs: number[];
}

export interface ErrorSamplesLine {
  readonly type: 'errors';
  readonly generator: number;
  readonly samples: string[];
}

export type GeneratorLine = ProgressLine | DeliveryLine | ErrorSamplesLine;

/**
 * Commands on the generator's stdin, one JSON object a line.
 * `report`: print the DeliveryLine of the notification whose payload is `key` (what the
 *   listeners receive), latencies taken from `publishUs`; `progress`: print a progress line now; `finish`: stop
 *   re-polling and reconnecting (the server is about to stop); `stop`: close every socket and exit.
 */
export type GeneratorCommand =
  | {
      readonly cmd: 'report';
      readonly round: number;
      readonly key: string;
      readonly publishUs: number;
    }
  | { readonly cmd: 'progress' }
  | { readonly cmd: 'finish' }
  | { readonly cmd: 'stop' };
