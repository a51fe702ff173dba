import type { ListenAnswer, ListenRequest, TransportName } from '../types.js';
import type { Transport, TransportFailure, TransportSession, TransportSink } from './transport.js';

/**
 * WebSocket, then SSE, then long-poll (docs/protocol.md): a transport that fails before its first answer
 * (a proxy refuses the upgrade, or buffers the stream) is skipped from then on, for this page,
 * and the next one is tried at once. A transport that has worked once is never skipped: its
 * later failures are ordinary ones (the server restarting), retried with backoff above. When even
 * the last one fails before answering, the next attempt starts from the first again.
 */
export class FallbackTransport implements Transport {
  private skipped = 0;
  private readonly worked = new Set<TransportName>();

  constructor(
    private readonly transports: readonly Transport[],
    private readonly onChange: (name: TransportName) => void = () => undefined,
  ) {
    if (transports.length === 0) throw new Error('FallbackTransport needs a transport');
  }

  /** The transport in use now. */
  get name(): TransportName {
    return this.current.name;
  }

  private get current(): Transport {
    return this.transports[Math.min(this.skipped, this.transports.length - 1)] as Transport;
  }

  open(request: ListenRequest, sink: TransportSink): TransportSession {
    let cursor = request.cursor;
    let session: TransportSession | null = null;
    let closed = false;
    const attempt = (): void => {
      const transport = this.current;
      let answered = false;
      this.onChange(transport.name);
      session = transport.open(
        { ...request, cursor },
        {
          opened: () => {
            sink.opened();
          },
          answer: (answer: ListenAnswer) => {
            answered = true;
            this.worked.add(transport.name);
            cursor = answer.cursor;
            sink.answer(answer);
          },
          failed: (failure: TransportFailure) => {
            if (closed) return;
            const last = this.skipped >= this.transports.length - 1;
            if (!answered && !this.worked.has(transport.name) && !last && blocked(failure)) {
              this.skipped += 1;
              attempt();
              return;
            }
            if (!answered && last && !this.worked.has(transport.name)) this.skipped = 0;
            sink.failed(failure);
          },
        },
      );
    };
    attempt();
    return {
      close: () => {
        closed = true;
        session?.close();
      },
    };
  }
}

/** Failures a proxy in the way produces; an error the server itself sent is not one. */
function blocked(failure: TransportFailure): boolean {
  if (failure.kind === 'network' || failure.kind === 'timeout' || failure.kind === 'protocol') {
    return true;
  }
  // A proxy's own error page, or an old server without this endpoint.
  return failure.code === undefined;
}
