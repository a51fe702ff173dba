import { EpushError } from '../../core/errors.js';
import { sendJson } from '../respond.js';
import type { PushService } from '../push-service.js';
import type { Router } from '../router.js';

/** Liveness and readiness for load balancers and orchestrators (docs/protocol.md). */
export function registerOpsRoutes(router: Router, service: PushService): void {
  router.on('GET', '/healthz', ({ res }) => {
    sendJson(res, 200, '{"status":"ok"}');
  });

  router.on('GET', '/readyz', ({ res }) => {
    const reason = service.notReadyReason();
    if (reason !== null) throw new EpushError('not_ready', reason, { 'retry-after': '1' });
    sendJson(res, 200, '{"status":"ready"}');
  });

  router.on('GET', '/metrics', async ({ res }) => {
    const { contentType, body } = await service.metricsText();
    res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
    res.end(body);
  });
}
