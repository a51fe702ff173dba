/**
 * The Java client's own tests (java/src/test, JUnit 5 from Debian's "junit5" package, run by its
 * console launcher) and checks of the Java tree that no JUnit test can make: the optional APIs
 * stay out of the core package, the javax and jakarta helpers stay twins, and java/pom.xml
 * matches the build that CI runs.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../support/epush-process.js';
import { buildJava, type JavaBuild } from '../support/java/java-build.js';

const run = promisify(execFile);
const JUNIT = '/usr/share/java/junit-platform-console-standalone.jar';
const JAVA = join(REPO_ROOT, 'java');
const MAIN = join(JAVA, 'src', 'main', 'java', 'io', 'epush', 'client');

describe('the Java client', () => {
  let build: JavaBuild;

  before(async () => {
    build = await buildJava();
  });

  test('its JUnit 5 tests pass, and there are tests to pass', async () => {
    if (!existsSync(JUNIT))
      throw new Error(`${JUNIT} is missing: install the Debian package "junit5"`);
    const classpath = [
      build.testClasses,
      build.jar,
      build.stubClasses,
      '/usr/share/java/geronimo-jms_1.1_spec.jar',
    ].join(':');
    let output: string;
    try {
      const result = await run(
        'java',
        [
          '-XX:TieredStopAtLevel=1',
          '-XX:+UseSerialGC',
          '-jar',
          JUNIT,
          '--disable-banner',
          '--disable-ansi-colors',
          '--fail-if-no-tests',
          '--details=tree',
          '--class-path',
          classpath,
          '--scan-class-path',
          build.testClasses,
        ],
        { timeout: 120_000 },
      );
      output = result.stdout;
    } catch (error) {
      const failed = error as { stdout?: string; stderr?: string; message: string };
      assert.fail(`JUnit failed:\n${failed.stdout ?? ''}${failed.stderr ?? failed.message}`);
    }
    const passed = /\[\s*(\d+) tests successful\s*\]/.exec(output);
    const failedCount = /\[\s*(\d+) tests failed\s*\]/.exec(output);
    assert.ok(passed && Number(passed[1]) >= 30, `JUnit ran too few tests:\n${output}`);
    assert.equal(failedCount?.[1], '0', output);
  });

  test('only the helper packages need the JMS and Servlet APIs (jdeps of the jar)', async () => {
    const { stdout } = await run('jdeps', ['-verbose:package', build.jar]);
    const optional = /^(javax|jakarta)\.(jms|servlet)/;
    const users = new Set<string>();
    for (const line of stdout.split('\n')) {
      const match = /^\s+(\S+)\s+->\s+(\S+)/.exec(line);
      if (match?.[1] !== undefined && match[2] !== undefined && optional.test(match[2])) {
        users.add(`${match[1]} -> ${match[2]}`);
      }
    }
    assert.deepEqual([...users].sort(), [
      'io.epush.client.jms.jakarta -> jakarta.jms',
      'io.epush.client.jms.javax -> javax.jms',
      'io.epush.client.servlet.jakarta -> jakarta.servlet.http',
      'io.epush.client.servlet.javax -> javax.servlet.http',
    ]);
    const { stdout: listing } = await run('jar', ['--list', '--file', build.jar]);
    assert.doesNotMatch(listing, /^(jakarta|javax)\//m, 'no API class is packed into the jar');
  });

  test('the javax and jakarta helpers are the same code under two namespaces', () => {
    for (const [dir, file] of [
      ['jms', 'EpushJmsNotifier.java'],
      ['servlet', 'EpushPageViews.java'],
    ] as const) {
      // Only the namespace and the doc lines naming the servers of each API may differ.
      const strip = (text: string): string[] =>
        text
          .replace(/\b(javax|jakarta)\b/g, 'NS')
          .split('\n')
          .filter((line) => !/^ \* .*(Tomcat|TomEE|WebLogic|WildFly)/.test(line));
      const javax = readFileSync(join(MAIN, dir, 'javax', file), 'utf8');
      const jakarta = readFileSync(join(MAIN, dir, 'jakarta', file), 'utf8');
      const [a, b] = [strip(javax), strip(jakarta)];
      const at = a.findIndex((line, i) => line !== b[i]);
      assert.equal(
        at === -1 && a.length === b.length,
        true,
        `${dir}/{javax,jakarta}/${file} differ at line ${at + 1}: ${a[at] ?? ''} / ${b[at] ?? ''}`,
      );
    }
  });

  test("java/pom.xml has the package's version, the build's folders and Java level, and optional APIs", () => {
    const pom = readFileSync(join(JAVA, 'pom.xml'), 'utf8');
    const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    const tag = (name: string): string | undefined =>
      new RegExp(`<${name}>([^<]*)</${name}>`).exec(pom)?.[1];
    assert.equal(tag('groupId'), 'io.epush');
    assert.equal(tag('artifactId'), 'epush-client');
    assert.equal(tag('version'), version);
    assert.equal(tag('sourceDirectory'), 'src/main/java');
    assert.equal(tag('testSourceDirectory'), 'src/test/java');
    assert.equal(tag('maven.compiler.release'), '11');
    for (const folder of ['src/main/java', 'src/test/java']) {
      assert.ok(existsSync(join(JAVA, folder)), `${folder} exists`);
    }
    const dependencies = [...pom.matchAll(/<dependency>([\s\S]*?)<\/dependency>/g)].map(
      (match) => match[1] ?? '',
    );
    for (const api of ['javax.jms', 'jakarta.jms', 'javax.servlet', 'jakarta.servlet']) {
      const entry = dependencies.find((dep) => dep.includes(`<groupId>${api}</groupId>`));
      assert.ok(entry, `${api} is declared`);
      assert.match(entry, /<scope>provided<\/scope>/);
      assert.match(entry, /<optional>true<\/optional>/);
    }
    const junit = dependencies.find((dep) => dep.includes('junit-jupiter'));
    assert.match(junit ?? '', /<version>5\.9\.2<\/version>[\s\S]*<scope>test<\/scope>/);
  });
});
