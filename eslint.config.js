// `npm run lint`: eslint 9 with typescript-eslint's recommended rules over the project's own code.
// Formatting is prettier's job (.prettierrc, `npm run format:check`), so no stylistic rules here.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'node_modules/',
      'dist/',
      'provisioning/',
      'test/fixtures/',
      'bench/results/',
      'test/artifacts/',
      '**/*.d.ts',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
      globals: { ...globals.node },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // `_` marks a parameter or binding kept for its position (a callback's signature, a tuple)
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      // `typeof import('koffi')`: the type of a module loaded lazily, on the platforms that have it
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { fixStyle: 'inline-type-imports', disallowTypeAnnotations: false },
      ],
      // `interface IcmpProbeOptions extends ProbeOptionsBase {}` names a protocol's options even when it adds none
      '@typescript-eslint/no-empty-object-type': ['error', { allowInterfaces: 'with-single-extends' }],
      // a `let` assigned later but read by a closure declared before the assignment stays a `let`
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // names, labels and header values are checked for control characters on purpose
      'no-control-regex': 'off',
    },
  },
  {
    // the embedded page runs in the browser, as ES modules; uPlot is the global its IIFE build defines
    files: ['agent/web/public/**/*.js'],
    languageOptions: { sourceType: 'module', globals: { ...globals.browser, uPlot: 'readonly' } },
  },
);
