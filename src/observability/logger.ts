import { pino, type Logger } from 'pino';

/** Structured JSON logs on stderr (stdout carries only the ready line), tagged with the node id. */
export function createLogger(level: string, nodeId: string): Logger {
  return pino({ level, base: { node: nodeId } }, pino.destination({ dest: 2, sync: false }));
}
