#!/usr/bin/env node
// Builds the Java client (java/) with the JDK's javac and jar: no Maven, no network.
//
//   node scripts/build-java.mjs                  java/dist/epush-client.jar
//   node scripts/build-java.mjs --out DIR        the jar into DIR instead (tests use a temp dir)
//   node scripts/build-java.mjs --tests          also DIR/test-classes (the JUnit 5 tests)
//   node scripts/build-java.mjs --samples        also DIR/sample-jakarta.war, DIR/sample-javax.war
//
// The optional APIs (JMS, Servlet) are compiled against jars of Debian packages and are never
// packaged; a missing one stops the build naming its package. Exported functions let tests call
// the same steps.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const JAVA_DIR = fileURLToPath(new URL('../java/', import.meta.url));

/** Compile-time jars, each with the Debian package that ships it. */
export const API_JARS = {
  javaxJms: {
    path: '/usr/share/java/geronimo-jms_1.1_spec.jar',
    pkg: 'libgeronimo-jms-1.1-spec-java',
  },
  javaxServlet: { path: '/usr/share/java/servlet-api.jar', pkg: 'libservlet-api-java' },
  jakartaServlet: { path: '/usr/share/tomcat10/lib/servlet-api.jar', pkg: 'libtomcat10-java' },
  junit: { path: '/usr/share/java/junit-platform-console-standalone.jar', pkg: 'junit5' },
};

/** ActiveMQ's JMS client and what it needs at run time, put into the sample WARs. */
export const ACTIVEMQ_CLIENT_JARS = [
  'activemq-client.jar',
  'geronimo-jms_1.1_spec.jar',
  'geronimo-j2ee-management-1.1-spec.jar',
  'hawtbuf.jar',
  'slf4j-api.jar',
  'slf4j-nop.jar',
].map((jar) => join('/usr/share/java', jar));

function need(jar) {
  if (!existsSync(jar.path)) {
    throw new Error(`${jar.path} is missing: install the Debian package "${jar.pkg}"`);
  }
  return jar.path;
}

function tool(name) {
  try {
    execFileSync(name, ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error(`${name} is missing: install the Debian package "openjdk-17-jdk-headless"`);
  }
  return name;
}

function javaFiles(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...javaFiles(path));
    else if (entry.name.endsWith('.java')) out.push(path);
  }
  return out.sort();
}

function javac(args) {
  try {
    execFileSync(tool('javac'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const output = `${error.stdout ?? ''}${error.stderr ?? ''}`;
    throw new Error(`javac failed:\n${output || error.message}`);
  }
}

function jar(args) {
  execFileSync(tool('jar'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Compiles java/src/main into `<out>/classes` and packs `<out>/epush-client.jar`. Java 11
 * bytecode; doclint checks that every public type and member has its Javadoc.
 */
export function buildClientJar(out) {
  const classes = join(out, 'classes');
  rmSync(classes, { recursive: true, force: true });
  mkdirSync(classes, { recursive: true });
  const classpath = [
    need(API_JARS.javaxJms),
    need(API_JARS.javaxServlet),
    need(API_JARS.jakartaServlet),
    buildStubs(out),
  ].join(':');
  javac([
    '--release',
    '11',
    '-encoding',
    'UTF-8',
    '-Xlint:all',
    '-Xdoclint:all/protected',
    '-Werror',
    '-cp',
    classpath,
    '-d',
    classes,
    ...javaFiles(join(JAVA_DIR, 'src', 'main', 'java')),
  ]);
  const jarFile = join(out, 'epush-client.jar');
  rmSync(jarFile, { force: true });
  jar(['--create', '--file', jarFile, '-C', classes, '.']);
  return jarFile;
}

/**
 * Compiles the jakarta.jms signatures (java/stubs/jakarta-jms) into `<out>/stub-classes`: on the
 * classpath of the jar's and the tests' compilation, never inside the jar.
 */
export function buildStubs(out) {
  const classes = join(out, 'stub-classes');
  rmSync(classes, { recursive: true, force: true });
  mkdirSync(classes, { recursive: true });
  javac(['--release', '11', '-d', classes, ...javaFiles(join(JAVA_DIR, 'stubs', 'jakarta-jms'))]);
  return classes;
}

/** Compiles java/src/test against the jar, JUnit 5 and the API jars into `<out>/test-classes`. */
export function buildTests(out, jarFile) {
  const classes = join(out, 'test-classes');
  rmSync(classes, { recursive: true, force: true });
  mkdirSync(classes, { recursive: true });
  const classpath = [
    jarFile,
    need(API_JARS.junit),
    need(API_JARS.javaxJms),
    join(out, 'stub-classes'),
  ].join(':');
  javac([
    '--release',
    '11',
    '-encoding',
    'UTF-8',
    '-Xlint:all',
    '-Werror',
    '-cp',
    classpath,
    '-d',
    classes,
    ...javaFiles(join(JAVA_DIR, 'src', 'test', 'java')),
  ]);
  return classes;
}

/**
 * Builds the sample web application for one servlet API into `<out>/sample-<api>.war`: the
 * servlets, the client jar and ActiveMQ's JMS client in WEB-INF/lib.
 */
export function buildSampleWar(out, jarFile, api) {
  const sample = join(JAVA_DIR, 'sample');
  const staging = mkdtempSync(join(tmpdir(), `epush-sample-${api}-`));
  try {
    const webInf = join(staging, 'WEB-INF');
    const classes = join(webInf, 'classes');
    const lib = join(webInf, 'lib');
    mkdirSync(classes, { recursive: true });
    mkdirSync(lib, { recursive: true });
    for (const path of ACTIVEMQ_CLIENT_JARS) {
      if (!existsSync(path))
        throw new Error(`${path} is missing: install the Debian package "activemq"`);
      copyFileSync(path, join(lib, path.split('/').pop()));
    }
    copyFileSync(jarFile, join(lib, 'epush-client.jar'));
    const servletJar = need(api === 'jakarta' ? API_JARS.jakartaServlet : API_JARS.javaxServlet);
    const sources = [
      ...javaFiles(join(sample, 'src', 'common')),
      ...javaFiles(join(sample, 'src', api)),
    ];
    javac([
      '--release',
      '11',
      '-encoding',
      'UTF-8',
      '-Xlint:all',
      '-Werror',
      '-cp',
      [jarFile, servletJar, ...ACTIVEMQ_CLIENT_JARS].join(':'),
      '-d',
      classes,
      ...sources,
    ]);
    copyFileSync(join(sample, 'web', `web-${api}.xml`), join(webInf, 'web.xml'));
    const war = join(out, `sample-${api}.war`);
    rmSync(war, { force: true });
    jar(['--create', '--file', war, '-C', staging, '.']);
    return war;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

function main(argv) {
  const outIndex = argv.indexOf('--out');
  const out = outIndex >= 0 ? argv[outIndex + 1] : join(JAVA_DIR, 'dist');
  if (!out) throw new Error('--out needs a directory');
  mkdirSync(out, { recursive: true });
  const began = Date.now();
  const jarFile = buildClientJar(out);
  const built = [jarFile];
  if (argv.includes('--tests')) built.push(buildTests(out, jarFile));
  if (argv.includes('--samples')) {
    built.push(buildSampleWar(out, jarFile, 'jakarta'), buildSampleWar(out, jarFile, 'javax'));
  }
  const shown = built.map((path) => relative(process.cwd(), path) || path).join(', ');
  console.log(`build-java: ${shown} (${Date.now() - began} ms)`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    main(process.argv.slice(2));
  } catch (error) {
    console.error(`build-java: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
}
