/**
 * The shape most cluster tests share: a few epush nodes over one private Redis, optionally
 * behind a real load balancer. Start it in `before`, stop it in `after`; a start that fails
 * half-way stops what it had started.
 */
import { PrivateRedis, type RedisOptions } from '../../testbed/brokers/redis.js';
import { startEpush, type EpushProcess } from './epush-process.js';
import { Balancer, type BalancerKind } from './load-balancer.js';

export interface RedisClusterOptions {
  /** Every node's `--api-key`. */
  readonly apiKey: string;
  /** Node ids, started one after the other (default a, b, c). */
  readonly nodeIds?: readonly string[];
  /** Flags every node gets besides `--backplane`, `--node-id` and `--api-key`. */
  readonly flags?: readonly string[];
  /** A balancer in front of the nodes (none by default). */
  readonly balancer?: BalancerKind;
  readonly redis?: RedisOptions;
}

export class RedisCluster {
  private constructor(
    readonly redis: PrivateRedis,
    readonly nodes: readonly EpushProcess[],
    private readonly front: Balancer | null,
  ) {}

  static async start(options: RedisClusterOptions): Promise<RedisCluster> {
    const redis = await PrivateRedis.start(options.redis);
    const nodes: EpushProcess[] = [];
    try {
      for (const id of options.nodeIds ?? ['a', 'b', 'c']) {
        nodes.push(
          await startEpush([
            '--backplane',
            redis.url,
            '--node-id',
            id,
            '--api-key',
            options.apiKey,
            ...(options.flags ?? []),
          ]),
        );
      }
      const front =
        options.balancer === undefined
          ? null
          : await Balancer.start(
              options.balancer,
              nodes.map((node) => node.port),
            );
      return new RedisCluster(redis, nodes, front);
    } catch (error) {
      await Promise.all(nodes.map((node) => node.stop()));
      await redis.stop();
      throw error;
    }
  }

  /** The balancer in front of the nodes; throws when the cluster was started without one. */
  get balancer(): Balancer {
    if (this.front === null) throw new Error('this cluster was started without a balancer');
    return this.front;
  }

  async stop(): Promise<void> {
    await this.front?.stop();
    await Promise.all(this.nodes.map((node) => node.stop()));
    await this.redis.stop();
  }
}
