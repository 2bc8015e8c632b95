// ESLint: typescript-eslint's strict and stylistic type-checked rules over src, test and bench, with
// the few options this code base needs (below, each with its reason). Formatting is Prettier's
// (.prettierrc.json), so no formatting rule is on here. `npm run lint` runs both.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'data/', '.ci/node-*/'] },
  js.configs.recommended,
  tseslint.configs.strictTypeChecked,
  tseslint.configs.stylisticTypeChecked,
  {
    // Type information from the test configuration, which includes src, test and bench.
    languageOptions: { parserOptions: { project: ['./tsconfig.test.json'], tsconfigRootDir: import.meta.dirname } },
    rules: {
      // Numbers and booleans read well in messages; objects and nullable values still do not.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      // `() => resolve()` and `(x) => set.add(x)` callbacks are not confusing.
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
      // A leading underscore marks what is left out on purpose (a destructured key, an unused parameter).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    // Tests and benchmarks index what they have just built (`m[1]!` after a match that passed):
    // under noUncheckedIndexedAccess the assertion is the test's own claim, and a wrong one fails.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
  // The tool configurations at the root are in no TypeScript project: checked without types.
  { files: ['*.js', '*.ts'], extends: [tseslint.configs.disableTypeChecked] },
);
