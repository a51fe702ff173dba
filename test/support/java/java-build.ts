/**
 * Builds the Java client (scripts/build-java.mjs, the script behind `npm run build:java`) with
 * its JUnit classes and sample WARs, outside the work tree: under node_modules/.cache, keyed by
 * a hash of the Java sources and the script, so the test files (each its own process) share one
 * build. Fails loudly, naming the Debian package, when the JDK or an API jar is missing (the
 * script's own message).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../epush-process.js';

const run = promisify(execFile);
const SCRIPT = join(REPO_ROOT, 'scripts', 'build-java.mjs');
const INPUTS = ['java/src', 'java/sample', 'java/stubs'].map((dir) => join(REPO_ROOT, dir));
const CACHE = join(REPO_ROOT, 'node_modules', '.cache', 'epush-java');

export interface JavaBuild {
  readonly dir: string;
  readonly jar: string;
  readonly testClasses: string;
  readonly stubClasses: string;
  readonly jakartaWar: string;
  readonly javaxWar: string;
  /** Whether this process built it (false: an earlier test process's build was reused). */
  readonly fresh: boolean;
}

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}

/** A hash of everything the build reads from the repository. */
function sourceHash(): string {
  const hash = createHash('sha256');
  for (const file of [SCRIPT, ...INPUTS.flatMap(files)]) {
    hash.update(relative(REPO_ROOT, file)).update('\0').update(readFileSync(file)).update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

function layout(dir: string, fresh: boolean): JavaBuild {
  return {
    dir,
    jar: join(dir, 'epush-client.jar'),
    testClasses: join(dir, 'test-classes'),
    stubClasses: join(dir, 'stub-classes'),
    jakartaWar: join(dir, 'sample-jakarta.war'),
    javaxWar: join(dir, 'sample-javax.war'),
    fresh,
  };
}

let built: Promise<JavaBuild> | null = null;

/** The jar, the compiled JUnit tests and both sample WARs for the current sources. */
export function buildJava(): Promise<JavaBuild> {
  built ??= (async () => {
    const dir = join(CACHE, sourceHash());
    if (existsSync(join(dir, 'complete'))) return layout(dir, false);
    mkdirSync(CACHE, { recursive: true });
    const staging = mkdtempSync(join(CACHE, 'building-'));
    try {
      await run(process.execPath, [SCRIPT, '--out', staging, '--tests', '--samples'], {
        cwd: REPO_ROOT,
        timeout: 180_000,
      });
      writeFileSync(join(staging, 'complete'), '');
      rmSync(dir, { recursive: true, force: true });
      renameSync(staging, dir);
    } catch (error) {
      rmSync(staging, { recursive: true, force: true });
      const failed = error as { stderr?: string; message: string };
      throw new Error(`npm run build:java failed: ${failed.stderr ?? failed.message}`);
    }
    return layout(dir, true);
  })();
  return built;
}
