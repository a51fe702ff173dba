/**
 * Builds the Java client (scripts/build-java.mjs, the script behind `npm run build:java`) into a
 * temp directory, once per test process, so tests never write into the work tree. Fails loudly,
 * naming the Debian package, when the JDK or an API jar is missing (the script's own message).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../epush-process.js';

const run = promisify(execFile);

export interface JavaBuild {
  readonly dir: string;
  readonly jar: string;
  readonly testClasses: string;
  readonly stubClasses: string;
  readonly jakartaWar: string;
  readonly javaxWar: string;
  /** How long the build took (milliseconds). */
  readonly tookMs: number;
}

let built: Promise<JavaBuild> | null = null;

/** The jar, the compiled JUnit tests and both sample WARs. */
export function buildJava(): Promise<JavaBuild> {
  built ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'epush-java-'));
    process.once('exit', () => {
      rmSync(dir, { recursive: true, force: true });
    });
    const began = Date.now();
    try {
      await run(
        process.execPath,
        [join(REPO_ROOT, 'scripts', 'build-java.mjs'), '--out', dir, '--tests', '--samples'],
        { cwd: REPO_ROOT, timeout: 180_000 },
      );
    } catch (error) {
      const failed = error as { stderr?: string; message: string };
      throw new Error(`npm run build:java failed: ${failed.stderr ?? failed.message}`);
    }
    return {
      dir,
      jar: join(dir, 'epush-client.jar'),
      testClasses: join(dir, 'test-classes'),
      stubClasses: join(dir, 'stub-classes'),
      jakartaWar: join(dir, 'sample-jakarta.war'),
      javaxWar: join(dir, 'sample-javax.war'),
      tookMs: Date.now() - began,
    };
  })();
  return built;
}
