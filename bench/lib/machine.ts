/** What the bench ran on, for the report. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, release, totalmem, type } from 'node:os';

export interface MachineInfo {
  readonly nproc: number;
  readonly cpuModel: string;
  readonly memGiB: number;
  readonly node: string;
  readonly kernel: string;
  readonly portRange: string;
  readonly tcpTwReuse: string;
  readonly somaxconn: string;
}

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '?';
  }
}

export function machineInfo(): MachineInfo {
  const cpuinfo = read('/proc/cpuinfo');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? '?';
  return {
    nproc: availableParallelism(),
    cpuModel: model,
    memGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    kernel: `${type()} ${release()}`,
    portRange: read('/proc/sys/net/ipv4/ip_local_port_range').replace(/\s+/g, '–'),
    tcpTwReuse: read('/proc/sys/net/ipv4/tcp_tw_reuse'),
    somaxconn: read('/proc/sys/net/core/somaxconn'),
  };
}

export interface SourceInfo {
  /** Short commit of the work tree the server was built from ('?' outside git). */
  readonly commit: string;
  /** Uncommitted changes under src/ and the package files (git status --porcelain lines). */
  readonly uncommitted: string[];
}

/** Read-only git queries: which code the benchmark measured. */
export function sourceInfo(root: string): SourceInfo {
  const git = (args: string[]): string => {
    const result = spawnSync('git', args, { cwd: root, encoding: 'utf8' });
    return result.status === 0 ? result.stdout : '';
  };
  const commit = git(['rev-parse', '--short', 'HEAD']).trim() || '?';
  const uncommitted = git([
    'status',
    '--porcelain',
    '--',
    'src',
    'package.json',
    'package-lock.json',
  ])
    .split('\n')
    .filter((line) => line.trim() !== '');
  return { commit, uncommitted };
}
