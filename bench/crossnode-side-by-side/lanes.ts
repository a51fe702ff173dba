/**
 * One "lane" of the cross-node bench: a listener with its own push ID (epush) or channel (nchan)
 * on one keep-alive connection to the listen node, and a publisher on its own keep-alive API
 * connection to the publish node. The wire protocols are `LaneProtocol`s; the lane keeps the
 * resume position, stamps every notification it receives with `performance.now()` when its answer
 * was parsed, and re-listens only when the driver asks it to (so that between two blocks of
 * rounds no listen of an inactive phase is left held on a node).
 */
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { header, messages } from '../peers/nchan-answer.js';
import { ApiClient, listenRequestText, rawConnect, ResponseParser } from '../lib/http-client.js';

/** Where a listener resumes (epush: the cursor; nchan: Last-Modified and Etag). */
export interface Position {
  cursor?: string;
  lastModified?: string;
  etag?: string;
}

export interface LaneProtocol {
  /** The HTTP request text of the next listen on `key` from `position`. */
  listenText(key: string, position: Position, hostHeader: string): string;
  /** The payload seqs of one answer (updates `position`); `problem` names an error answer. */
  answer(
    position: Position,
    key: string,
    status: number,
    head: string,
    body: Buffer,
  ): { seqs: number[]; problem?: string; close?: boolean };
  /** The publish request for notification `seq` to `key`. */
  publish(key: string, seq: number): { method: string; path: string; body: unknown };
  /** Whether a publish answer status means "accepted". */
  accepted(status: number): boolean;
}

interface EpushListenBody {
  notifications?: { pushId?: string; payload?: { seq?: number } | null }[];
  cursor?: string;
  reconnect?: boolean;
  reset?: boolean;
  replaced?: boolean;
}

export const epushLanes: LaneProtocol = {
  listenText(key, position, hostHeader) {
    return listenRequestText(hostHeader, key, position.cursor ?? null);
  },
  answer(position, key, status, _head, body) {
    if (status !== 200) {
      return { seqs: [], problem: `HTTP ${status}: ${body.toString('utf8').slice(0, 120)}` };
    }
    const parsed = JSON.parse(body.toString('utf8')) as EpushListenBody;
    if (typeof parsed.cursor === 'string') position.cursor = parsed.cursor;
    const seqs: number[] = [];
    let problem: string | undefined;
    for (const n of parsed.notifications ?? []) {
      if (n.pushId !== key) problem = `notification for another push ID ${n.pushId}`;
      seqs.push(n.payload?.seq ?? -1);
    }
    if (parsed.reset) problem = 'reset: true';
    else if (parsed.replaced) problem = 'replaced: true';
    else if (parsed.reconnect) problem = 'reconnect: true';
    return { seqs, ...(problem === undefined ? {} : { problem }) };
  },
  publish(key, seq) {
    return { method: 'POST', path: `/api/push-ids/${key}/notify`, body: { payload: { seq } } };
  },
  accepted(status) {
    return status === 202;
  },
};

export const nchanLanes: LaneProtocol = {
  listenText(key, position, hostHeader) {
    const resume =
      position.lastModified === undefined
        ? ''
        : `If-Modified-Since: ${position.lastModified}\r\nIf-None-Match: ${position.etag ?? '0'}\r\n`;
    return `GET /sub/${key} HTTP/1.1\r\nHost: ${hostHeader}\r\n${resume}\r\n`;
  },
  answer(position, _key, status, head, body) {
    // 408: subscriber timeout, 304: nothing new; listen again.
    if (status === 408 || status === 304) return { seqs: [] };
    if (status !== 200) {
      return {
        seqs: [],
        problem: `HTTP ${status}: ${body.toString('utf8').slice(0, 120)}`,
        close: true,
      };
    }
    const lastModified = header(head, 'last-modified');
    const etag = header(head, 'etag');
    if (lastModified !== null) position.lastModified = lastModified;
    if (etag !== null) position.etag = etag;
    const seqs = messages(head, body).map(
      (part) => (JSON.parse(part) as { seq?: number }).seq ?? -1,
    );
    return { seqs };
  },
  publish(key, seq) {
    return { method: 'POST', path: `/pub/${key}`, body: { seq } };
  },
  accepted(status) {
    return status === 201 || status === 202;
  },
};

export class Lane {
  readonly position: Position = {};
  /** performance.now() at which each seq's answer was parsed (the first copy). */
  private readonly arrivals = new Map<number, number>();
  private readonly waiters = new Map<number, (at: number) => void>();
  private socket: Socket | null = null;
  private outstanding = false;
  /** Keep listening after an answer without a notification (hold expiry). */
  private keepListening = false;
  private publisher: ApiClient | null = null;
  duplicates = 0;
  emptyAnswers = 0;
  reconnects = 0;
  readonly problems: string[] = [];

  constructor(
    readonly key: string,
    private readonly protocol: LaneProtocol,
    private readonly listenPort: number,
    private readonly publishPort: number,
  ) {}

  /** Sends a listen unless one is outstanding. */
  listen(): void {
    this.keepListening = true;
    if (this.outstanding) return;
    const socket = this.socket ?? this.connect();
    this.outstanding = true;
    socket.write(this.protocol.listenText(this.key, this.position, `127.0.0.1:${this.listenPort}`));
  }

  /** After the current answer, send no further listen until `listen()` is called again. */
  pause(): void {
    this.keepListening = false;
  }

  /** Resolves with the arrival time of `seq`, or null after `ms`. */
  waitFor(seq: number, ms: number): Promise<number | null> {
    const at = this.arrivals.get(seq);
    if (at !== undefined) return Promise.resolve(at);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(seq);
        resolve(null);
      }, ms);
      this.waiters.set(seq, (arrived) => {
        clearTimeout(timer);
        resolve(arrived);
      });
    });
  }

  /** Forgets arrivals up to `seq` (they were collected). */
  forget(seq: number): void {
    for (const key of this.arrivals.keys()) if (key <= seq) this.arrivals.delete(key);
  }

  /** Publishes `seq` on this lane's publisher connection. */
  async publish(seq: number): Promise<{ sentAt: number; accepted: boolean; doneAt: number }> {
    this.publisher ??= await ApiClient.open('127.0.0.1', this.publishPort, 5000);
    const request = this.protocol.publish(this.key, seq);
    try {
      const response = await this.publisher.request(
        request.method,
        request.path,
        request.body,
        5000,
      );
      const accepted = this.protocol.accepted(response.status);
      if (!accepted) this.note(`publish: HTTP ${response.status} ${response.body.slice(0, 100)}`);
      return { sentAt: response.sentAt, accepted, doneAt: response.doneAt };
    } catch (error) {
      this.publisher = null;
      this.note(`publish: ${error instanceof Error ? error.message : String(error)}`);
      const now = performance.now();
      return { sentAt: now, accepted: false, doneAt: now };
    }
  }

  close(): void {
    this.keepListening = false;
    this.socket?.destroy();
    this.socket = null;
    this.publisher?.close();
    this.publisher = null;
  }

  private note(problem: string): void {
    if (this.problems.length < 5) this.problems.push(problem);
  }

  private connect(): Socket {
    const parser = new ResponseParser((status, body, connectionClose, head) => {
      const at = performance.now();
      this.outstanding = false;
      let answer: ReturnType<LaneProtocol['answer']>;
      try {
        answer = this.protocol.answer(this.position, this.key, status, head, body);
      } catch (error) {
        answer = { seqs: [], problem: `unparseable answer: ${String(error)}`, close: true };
      }
      if (answer.problem !== undefined) this.note(answer.problem);
      if (answer.seqs.length === 0) this.emptyAnswers += 1;
      for (const seq of answer.seqs) {
        if (this.arrivals.has(seq)) {
          this.duplicates += 1;
          continue;
        }
        this.arrivals.set(seq, at);
        const waiter = this.waiters.get(seq);
        if (waiter) {
          this.waiters.delete(seq);
          waiter(at);
        }
      }
      if (connectionClose || answer.close === true) this.drop();
      // An answer without a notification (hold expiry, 408) or an error: listen again at once
      // while the driver still waits; after a delivery the driver decides.
      if (answer.seqs.length === 0 && this.keepListening) {
        setImmediate(() => {
          if (this.keepListening) this.listen();
        });
      }
    });
    const socket = rawConnect({
      host: '127.0.0.1',
      port: this.listenPort,
      onData: (chunk) => {
        try {
          parser.feed(chunk);
        } catch (error) {
          this.note(`listen: ${String(error)}`);
          this.drop();
        }
      },
    });
    socket.on('error', (error) => {
      this.note(`listen socket: ${error.message}`);
    });
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = null;
      const wasOutstanding = this.outstanding;
      this.outstanding = false;
      if (wasOutstanding && this.keepListening) {
        this.reconnects += 1;
        setTimeout(() => {
          if (this.keepListening) this.listen();
        }, 50);
      }
    });
    this.socket = socket;
    return socket;
  }

  private drop(): void {
    const socket = this.socket;
    this.socket = null;
    this.outstanding = false;
    socket?.destroy();
  }
}
