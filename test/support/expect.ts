/** Assertions shared by the integration tests. */
import assert from 'node:assert/strict';
import { request, type EpushProcess, type ErrorBody, type HttpAnswer } from './epush-process.js';

/**
 * The answer is the JSON error shape of docs/protocol.md: `{"error": {"code", "message"}}` with the given
 * status and code, a non-empty human message and a JSON content type.
 */
export function assertError(answer: HttpAnswer, status: number, code: string): void {
  assert.equal(
    answer.status,
    status,
    `expected ${status} ${code}, got ${answer.status} ${answer.text}`,
  );
  assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
  const body = answer.body as ErrorBody | undefined;
  assert.ok(body !== undefined, `the error answer is not JSON: ${answer.text}`);
  assert.deepEqual(Object.keys(body), ['error']);
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message']);
  assert.equal(body.error.code, code);
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.error.message.length > 0, 'the error message is empty');
}

/** A listen answer carries none of the optional flags. */
export function assertPlainAnswer(answer: object): void {
  for (const flag of ['reconnect', 'reset', 'replaced']) {
    assert.equal(flag in answer, false, `unexpected "${flag}" in ${JSON.stringify(answer)}`);
  }
}

/** The node still serves: its process runs and `/healthz` answers 200 within 3 s. */
export async function assertAlive(node: EpushProcess): Promise<void> {
  const { child } = node;
  assert.equal(child.exitCode, null, `the node exited (code ${child.exitCode}):\n${node.stderr()}`);
  assert.equal(child.signalCode, null, `the node died (${child.signalCode}):\n${node.stderr()}`);
  let status: number | string;
  try {
    status = (await request('GET', `${node.url}/healthz`, { signal: AbortSignal.timeout(3000) }))
      .status;
  } catch (error) {
    status = String(error);
  }
  assert.equal(status, 200, `/healthz does not answer 200:\n${node.stderr()}`);
}
