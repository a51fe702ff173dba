// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Imports flow one way (docs/architecture.md, "Layers"): what each folder of src/ may import
 * besides itself. src/core has its own, stricter rule below (no I/O either).
 */
const FOLDERS = [
  'core',
  'config',
  'observability',
  'admin',
  'backplane',
  'transports',
  'http',
  'node',
  'embed',
  'demo',
  'cli',
  'sdk',
];
const FOUNDATION = ['core', 'config', 'observability'];
const MAY_IMPORT = {
  config: ['core'],
  observability: ['core'],
  admin: ['core'],
  backplane: FOUNDATION,
  transports: FOUNDATION,
  http: [...FOUNDATION, 'transports', 'admin'],
  node: [...FOUNDATION, 'transports', 'http', 'admin', 'backplane'],
  embed: [...FOUNDATION, 'transports', 'http', 'admin', 'backplane', 'node'],
  demo: ['core', 'config'],
  cli: [...FOUNDATION, 'node', 'demo'],
  sdk: ['core'],
};
/** Type-only imports of the backplane contract's `NodeInfo`, the one type of a cluster node. */
const CONTRACT_TYPES = ['http', 'sdk'];
/** config checks a `--backplane stomp://` URL at load with the STOMP driver's pure parser. */
/** One `no-restricted-imports` entry per folder (a later entry for the same rule would replace it). */
function layerRules() {
  return Object.entries(MAY_IMPORT).map(([folder, allowed]) => {
    const patterns = [];
    for (const other of FOLDERS) {
      if (other === folder || allowed.includes(other)) continue;
      const message = `src/${folder} may import only ${allowed.join(', ')} (docs/architecture.md, Layers).`;
      if (other === 'backplane' && CONTRACT_TYPES.includes(folder)) {
        patterns.push({ regex: '^(\\.\\./)+backplane/(?!backplane\\.js$)', message });
        patterns.push({
          regex: '^(\\.\\./)+backplane/backplane\\.js$',
          allowTypeImports: true,
          message: `src/${folder} may import only types from the backplane contract.`,
        });
      } else {
        patterns.push({ regex: `^(\\.\\./)+${other}/`, message });
      }
    }
    return {
      files: [`src/${folder}/**/*.ts`],
      ignores: ['**/*.test.ts'],
      rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns }] },
    };
  });
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'client/dist/**', '**/*.js', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  {
    // The core domain is pure: no I/O, no clocks it does not receive, no process state.
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex:
                '^(node:)?(fs|net|http|https|http2|dgram|dns|tls|child_process|cluster|worker_threads|process|readline)(/.*)?$',
              message: 'src/core is pure domain code: no I/O modules.',
            },
            { regex: '^\\.\\./(?!core/)', message: 'src/core must not import outer layers.' },
          ],
        },
      ],
      'no-restricted-globals': ['error', 'process', 'setTimeout', 'setInterval', 'fetch'],
    },
  },
  ...layerRules(),
  {
    files: ['**/*.test.ts', 'test/**/*.ts', 'testbed/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unnecessary-condition': 'off',
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] },
          ],
        },
      ],
    },
  },
);
