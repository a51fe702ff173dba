import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CorsPolicy } from './cors.js';

describe('CorsPolicy.allowsOrigin', () => {
  const cors = new CorsPolicy(['https://orders.example.com']);

  it('allows the listed origins and requests without an Origin, refuses others', () => {
    assert.equal(cors.allowsOrigin('https://orders.example.com', 'push.example.com'), true);
    assert.equal(cors.allowsOrigin(undefined, 'push.example.com'), true);
    assert.equal(cors.allowsOrigin('https://evil.example.com', 'push.example.com'), false);
    assert.equal(cors.allowsOrigin('https://evil.example.com'), false);
  });

  it("allows pages of the server's own host (the hub frame), by host and port when the Host header has a port", () => {
    assert.equal(cors.allowsOrigin('https://push.example.com', 'push.example.com'), true);
    assert.equal(cors.allowsOrigin('http://push.example.com:8080', 'PUSH.example.com:8080'), true);
    assert.equal(cors.allowsOrigin('http://push.example.com:8081', 'push.example.com:8080'), false);
    // Behind a proxy that sends `Host $host` (no port): the host name decides.
    assert.equal(cors.allowsOrigin('http://push.example.com:8081', 'push.example.com'), true);
    assert.equal(
      cors.allowsOrigin('https://push.example.com.evil.test', 'push.example.com'),
      false,
    );
    assert.equal(cors.allowsOrigin('not a url', 'push.example.com'), false);
    assert.equal(cors.allowsOrigin('https://push.example.com', ''), false);
  });
});
