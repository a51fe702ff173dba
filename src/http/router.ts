import type { IncomingMessage, ServerResponse } from 'node:http';
import { EpushError } from '../core/errors.js';

export interface RouteContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Decoded path parameters, in the order of the pattern's `:name` segments. */
  readonly params: readonly string[];
  readonly url: URL;
}

export type RouteHandler = (context: RouteContext) => Promise<void> | void;

interface Route {
  readonly path: string;
  readonly pattern: RegExp;
  readonly handlers: Map<string, RouteHandler>;
}

/**
 * A small exact router: literal segments and `:param` segments, nothing else. Unknown paths are
 * 404, known paths with another method 405 with `Allow`.
 */
export class Router {
  private readonly routes: Route[] = [];

  on(method: string, path: string, handler: RouteHandler): this {
    const source = path
      .split('/')
      .map((segment) =>
        segment.startsWith(':') ? '([^/]+)' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
      )
      .join('/');
    let route = this.routes.find((r) => r.path === path);
    if (!route) {
      route = { path, pattern: new RegExp(`^${source}$`), handlers: new Map() };
      this.routes.push(route);
    }
    route.handlers.set(method, handler);
    return this;
  }

  /** Whether some route has this path (whatever its methods). */
  has(pathname: string): boolean {
    return this.routes.some((route) => route.pattern.test(pathname));
  }

  /** Finds the handler for a request; throws `not_found` or `method_not_allowed`. */
  match(method: string, pathname: string): { handler: RouteHandler; params: string[] } {
    const found = this.find(method, pathname);
    if (!found) throw new EpushError('not_found', `There is no ${pathname} here.`);
    return found;
  }

  /**
   * Like `match`, but a path no route has is `null` rather than `not_found`, so an embedding
   * host can pass the request on to its own routes. A known path with another method still
   * throws `method_not_allowed`: the path is epush's.
   */
  find(method: string, pathname: string): { handler: RouteHandler; params: string[] } | null {
    for (const route of this.routes) {
      const found = route.pattern.exec(pathname);
      if (!found) continue;
      const handler =
        route.handlers.get(method) ?? (method === 'HEAD' ? route.handlers.get('GET') : undefined);
      if (!handler) {
        const allow = [...route.handlers.keys()].join(', ');
        throw new EpushError(
          'method_not_allowed',
          `${method} is not allowed on ${pathname}; use ${allow}.`,
          { allow },
        );
      }
      return { handler, params: found.slice(1).map(decodeSegment) };
    }
    return null;
  }
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    // Left as is: the route's own validation rejects it with a precise code.
    return segment;
  }
}
