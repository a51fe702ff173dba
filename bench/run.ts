/**
 * Bench entry point: `npm run bench -- [scenario] [flags]` (see --help). Each scenario starts its
 * own server and load generator, bounds every phase in time and stops by itself.
 */
import { ArgError } from './lib/args.js';
import { CROSSNODE_USAGE, runCrossnodeSideBySide } from './crossnode-side-by-side/scenario.js';
import { runFailover } from './failover/scenario.js';
import { runHeldMax } from './held-max/scenario.js';
import { renderLongpollFanout, runLongpollFanout, USAGE } from './longpoll-fanout/scenario.js';
import { REDIS_USAGE, runRedisCrossnode } from './redis-crossnode/scenario.js';
import { runPublishThroughput } from './publish-throughput/scenario.js';
import { runSideBySide } from './side-by-side/scenario.js';
import { runStreamFanout, STREAM_USAGE } from './stream-fanout/scenario.js';
import { runWriteFloor } from './write-floor/scenario.js';

const SCENARIOS: Record<string, (argv: readonly string[]) => Promise<number>> = {
  failover: runFailover,
  'longpoll-fanout': runLongpollFanout,
  render: renderLongpollFanout,
  'redis-crossnode': runRedisCrossnode,
  'crossnode-side-by-side': runCrossnodeSideBySide,
  'write-floor': runWriteFloor,
  'stream-fanout': runStreamFanout,
  'side-by-side': runSideBySide,
  'publish-throughput': runPublishThroughput,
  'held-max': runHeldMax,
};

async function main(argv: readonly string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first.startsWith('--')) return runLongpollFanout(argv);
  const scenario = SCENARIOS[first];
  if (!scenario) {
    process.stderr.write(
      `bench: unknown scenario "${first}" (known: ${Object.keys(SCENARIOS).join(', ')})\n\n${USAGE}\n${REDIS_USAGE}\n${CROSSNODE_USAGE}\n${STREAM_USAGE}`,
    );
    return 2;
  }
  return scenario(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exit(code);
  },
  (error: unknown) => {
    if (error instanceof ArgError) {
      process.stderr.write(
        `bench: ${error.message}\n\n${USAGE}\n${REDIS_USAGE}\n${CROSSNODE_USAGE}\n${STREAM_USAGE}`,
      );
      process.exit(2);
    }
    process.stderr.write(
      `bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
